"""Logs: one JSON object per line in production, each tagged with the request's id.

Every response carries ``X-Request-ID``; a load balancer's id is kept when it looks like
one, so a patient's "reference from the error page" or a proxy log leads to our lines.
Log messages never hold request bodies or query strings: those carry what patients wrote
and where they live.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

from flask import Flask, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is trusted only if it is short and plain: it goes into every log line.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


# A one-time link an admin gives a staff member carries its secret in the path (see
# staff/views.py open_link); while unused it signs up or resets an account, so no log line
# may hold it: not ours, not werkzeug's request lines, not gunicorn's access log.
_LINK_TOKEN = re.compile(r"(/staff/link/)[^/?#\s\"]+")


def hide_link_tokens(text: str) -> str:
    """Blank out the token of any one-time link in a path or a request line."""
    return _LINK_TOKEN.sub(r"\1[hidden]", text)


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    if not has_request_context():
        return None
    request_id = request.environ.get("clinic_finder.request_id")
    if request_id is None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else secrets.token_hex(16)
        request.environ["clinic_finder.request_id"] = request_id
    return request_id


class RequestContextFilter(logging.Filter):
    """Stamp each record with the request's id, method and path (never its query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        record.http_method = request.method if has_request_context() else None
        record.http_path = hide_link_tokens(request.path) if has_request_context() else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("request_id", "http_method", "http_path"):
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            # The traceback goes to the log (for us), never to a response (see errors.py).
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is when a record is logged, not when the app was
    made: gunicorn's workers and test runners replace it."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class DropQueryStrings(logging.Filter):
    """Take query strings and link tokens out of the development server's request lines.

    ``make run`` serves with it, and a line such as ``GET /find?postcode=0150&complaint=…``
    says where a patient lives and what hurts. (gunicorn's access log is ours: serving.py.)
    """

    _QUERY = re.compile(r"\?[^\s\"]*")

    def _clean(self, text: str) -> str:
        return self._QUERY.sub("", hide_link_tokens(text))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._clean(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = self._clean(record.msg)
        return True


def configure(app: Flask) -> None:
    """Send the app's logs (``clinic_finder`` and its modules) to stderr in the set format."""
    handler = StderrHandler()
    handler.addFilter(RequestContextFilter())
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logger = logging.getLogger("clinic_finder")
    logger.removeHandler(default_handler)
    # One handler however many apps a process creates (tests create many).
    for existing in [h for h in logger.handlers if getattr(h, "clinic_finder_handler", False)]:
        logger.removeHandler(existing)
    handler.clinic_finder_handler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(app.config["LOG_LEVEL"])
    app.logger.removeHandler(default_handler)
    werkzeug_logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, DropQueryStrings) for f in werkzeug_logger.filters):
        werkzeug_logger.addFilter(DropQueryStrings())

    @app.after_request
    def tag_response_with_request_id(response):
        response.headers[REQUEST_ID_HEADER] = current_request_id()
        return response

    @app.context_processor
    def inject_request_id() -> dict:
        return {"request_id": current_request_id()}
