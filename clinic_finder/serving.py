"""How gunicorn logs requests: one JSON line each, without query strings or addresses.

Query strings carry what patients typed (postcode, complaint, the clinic they asked
about); a client address beside "POST /contact" says that this person sought help for
pain. Neither is needed to run the site, so neither is written (data minimisation; the
load balancer keeps addresses for abuse handling, if it must).
"""

from __future__ import annotations

import json
import re
import time

from gunicorn.glogging import Logger

from .logs import hide_link_tokens

_QUERY_STRING = re.compile(r"\?[^\s\"']+")


def _without_query_strings(args: tuple) -> tuple:
    """The values, without query strings or one-time link tokens in any text among them."""
    return tuple(
        hide_link_tokens(_QUERY_STRING.sub("", arg)) if isinstance(arg, str) else arg
        for arg in args
    )


class AccessLogger(Logger):
    """gunicorn's logger: access lines as JSON (method, path, status, size, time, id), and
    its own error lines without query strings.

    gunicorn writes "Error handling request /find?postcode=…" when a request fails outside
    the app's error handling; the query would put a patient's search in the error log.
    """

    def error(self, msg, *args, **kwargs):
        super().error(*_without_query_strings((msg, *args)), **kwargs)

    def exception(self, msg, *args, **kwargs):
        super().exception(*_without_query_strings((msg, *args)), **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(*_without_query_strings((msg, *args)), **kwargs)

    def critical(self, msg, *args, **kwargs):
        super().critical(*_without_query_strings((msg, *args)), **kwargs)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "http_method": atoms["m"],
            "http_path": hide_link_tokens(atoms["U"]),  # a one-time link's token is a secret
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"],
            "duration_ms": atoms["M"],
            "request_id": atoms.get("{x-request-id}o"),
        }
        self.access_log.info(json.dumps(entry, ensure_ascii=False))
