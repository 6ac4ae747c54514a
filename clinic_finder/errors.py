"""Error pages for people and JSON errors for API clients, never a traceback."""

from __future__ import annotations

import contextlib

from flask import Flask, jsonify, render_template, request
from flask.globals import request_ctx
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/staff/api/"))


def register(app: Flask) -> None:
    """Install handlers for HTTP errors and unexpected exceptions."""

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        """Render an HTTP error as JSON for the API, as a page otherwise."""
        status = error.code or 500
        if request_ctx.url_adapter is None:
            # The request was refused before routing (e.g. a Host not in TRUSTED_HOSTS):
            # no page can build links, so answer in plain text.
            return f"{status} {error.name}", status, {"Content-Type": "text/plain; charset=utf-8"}
        description = error.description
        if status == 429:
            # Flask-Limiter's description is the limit itself; say what it means instead.
            description = (
                "You have sent several requests in a short time. Please wait a while and try "
                "again, or email post@clinic-finder.example."
            )
        if _wants_json():
            return jsonify({"error": error.name, "message": description}), status
        return render_template("errors/error.html", error=error, description=description), status

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def handle_database_unavailable(error: Exception):
        """Answer 503 with a friendly page when the database cannot be reached."""
        with contextlib.suppress(SQLAlchemyError):  # the connection may be gone already
            db.session.rollback()
        app.logger.error(
            "database unavailable on %s %s: %s", request.method, request.path, type(error).__name__
        )
        headers = {"Retry-After": "60", "Cache-Control": "no-store"}
        if _wants_json():
            body = {"error": "Service Unavailable", "message": "Please try again in a minute."}
            return jsonify(body), 503, headers
        return render_template("errors/unavailable.html"), 503, headers

    @app.errorhandler(Exception)
    def handle_unexpected_error(error: Exception):
        """Roll back, log, and answer a plain 500 without internals."""
        if isinstance(error, HTTPException):
            return handle_http_error(error)
        db.session.rollback()
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        wrapped = InternalServerError()
        if _wants_json():
            return jsonify({"error": wrapped.name, "message": "Something went wrong."}), 500
        return render_template("errors/error.html", error=wrapped), 500
