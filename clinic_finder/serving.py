"""How gunicorn logs requests: one JSON line each, without query strings or addresses.

Query strings carry what patients typed (postcode, complaint, the clinic they asked
about); a client address beside "POST /contact" says that this person sought help for
pain. Neither is needed to run the site, so neither is written (data minimisation; the
load balancer keeps addresses for abuse handling, if it must).
"""

from __future__ import annotations

import json
import time

from gunicorn.glogging import Logger

from .logs import hide_link_tokens


class AccessLogger(Logger):
    """gunicorn's logger, with access lines as JSON: method, path, status, size, time, id."""

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
