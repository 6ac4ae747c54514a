"""Error pages for people and JSON errors for API clients, never a traceback."""

from __future__ import annotations

import contextlib

from flask import Flask, current_app, jsonify, render_template, request
from flask.globals import request_ctx
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .i18n import mark_error_page
from .web.requests import wants_json

# Werkzeug names and explains errors in English; pages say it in the visitor's language.
# The titles are Werkzeug's own names, so English pages read as before; JSON answers keep
# Werkzeug's English, because API clients are programs.
ERROR_TITLES = {
    400: _l("Bad Request"),
    401: _l("Unauthorized"),
    403: _l("Forbidden"),
    404: _l("Not Found"),
    405: _l("Method Not Allowed"),
    413: _l("Request Entity Too Large"),
    415: _l("Unsupported Media Type"),
    429: _l("Too Many Requests"),
    500: _l("Internal Server Error"),
    503: _l("Service Unavailable"),
}
ERROR_DESCRIPTIONS = {
    400: _l("We could not understand what your browser sent. Please go back and try again."),
    401: _l("Please sign in to see this page."),
    403: _l("You do not have access to this page."),
    405: _l("This page cannot be used that way. Please go back and try again."),
    413: _l("What you sent is too large. Files may be up to 5 MB."),
    415: _l("We cannot read that kind of file."),
}
CSRF_DESCRIPTION = _l(
    "The form had expired or was sent from somewhere else (the CSRF check failed). Please "
    "reload the page and send it again."
)


# The last resort when even the error page cannot be drawn: fixed text, no template, no
# request data, so it cannot fail too. The security headers still come (after_request).
FALLBACK_PAGE = (
    '<!doctype html><html lang="nb"><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Finn klinikk</title><h1>Noe gikk galt / Something went wrong</h1>"
    "<p>Prøv igjen om litt. / Please try again in a little while.</p>"
    '<p><a href="/find">Finn klinikk / Find a clinic</a></p></html>'
)


def render_error_page(template: str, status: int, **context) -> tuple[str, int]:
    """Render an error page whose links never come from the request; a fixed page if it fails."""
    mark_error_page()
    try:
        return render_template(template, **context), status
    except Exception:  # the error page must never become a second, bare error
        current_app.logger.exception("the error page %s could not be rendered", template)
        return FALLBACK_PAGE, status


def _anonymous_in_staff_area() -> bool:
    return request.path.startswith("/staff") and not current_user.is_authenticated


def _page_description(error: HTTPException) -> str | None:
    """What to tell a person about the error, in their language, when we know better."""
    if isinstance(error, CSRFError):
        return str(CSRF_DESCRIPTION)
    if error.description == type(error).description and error.code in ERROR_DESCRIPTIONS:
        return str(ERROR_DESCRIPTIONS[error.code])
    return error.description


def handle_http_error(error: HTTPException):
    """Render an HTTP error as JSON for the API, as a page otherwise."""
    status = error.code or 500
    if request_ctx.url_adapter is None:
        # The request was refused before routing (e.g. a Host not in TRUSTED_HOSTS):
        # no page can build links, so answer in plain text.
        return f"{status} {error.name}", status, {"Content-Type": "text/plain; charset=utf-8"}
    if status == 404 and _anonymous_in_staff_area():
        # Unknown staff paths answer as real ones do (sign in first), so an anonymous
        # visitor cannot list the staff area's routes by their answers.
        return current_app.login_manager.unauthorized()
    if status == 429:
        # Flask-Limiter's description is the limit itself; say what it means instead.
        description = _(
            "You have sent several requests in a short time. Please wait a while and try "
            "again, or email post@clinic-finder.example."
        )
    elif wants_json():
        description = error.description
    else:
        description = _page_description(error)
    if wants_json():
        return jsonify({"error": error.name, "message": description}), status
    return render_error_page(
        "errors/error.html",
        status,
        error=error,
        title=ERROR_TITLES.get(status),
        description=description,
    )


def handle_database_unavailable(error: Exception):
    """Answer 503 with a friendly page when the database cannot be reached."""
    with contextlib.suppress(SQLAlchemyError):  # the connection may be gone already
        db.session.rollback()
    current_app.logger.error(
        "database unavailable on %s %s: %s", request.method, request.path, type(error).__name__
    )
    headers = {"Retry-After": "60", "Cache-Control": "no-store"}
    if wants_json():
        body = {"error": "Service Unavailable", "message": "Please try again in a minute."}
        return jsonify(body), 503, headers
    page, status = render_error_page("errors/unavailable.html", 503)
    return page, status, headers


def handle_unexpected_error(error: Exception):
    """Roll back, log, and answer a plain 500 without internals."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    db.session.rollback()
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    wrapped = InternalServerError()
    if wants_json():
        return jsonify({"error": wrapped.name, "message": "Something went wrong."}), 500
    return render_error_page("errors/error.html", 500, error=wrapped, title=ERROR_TITLES[500])


def register(app: Flask) -> None:
    """Install handlers for HTTP errors and unexpected exceptions."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(InterfaceError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)
