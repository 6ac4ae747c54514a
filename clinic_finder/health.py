"""Health checks for the load balancer and the orchestrator: is the process up, can it serve?

``/healthz`` (liveness) answers without touching anything, so a database outage never gets
healthy workers restarted; ``/readyz`` (readiness) asks the database for ``SELECT 1`` and
answers 503 while it cannot be reached, so traffic goes elsewhere until it is back.
Neither ever shows an error's details: the log gets the kind of failure, the caller a word.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db, limiter

bp = Blueprint("health", __name__)

# How long PostgreSQL may take over SELECT 1 before the database counts as unavailable.
READINESS_STATEMENT_TIMEOUT_MS = 2000


def _no_store(response):
    # A cached "ready" from a proxy would hide an outage.
    response.headers["Cache-Control"] = "no-store"
    return response


def database_is_reachable() -> bool:
    """Run ``SELECT 1`` on a pooled connection; False on any database error."""
    try:
        with db.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # SET LOCAL ends with this transaction, so the pool gets the connection back
                # with its usual settings.
                connection.execute(
                    text(f"SET LOCAL statement_timeout = {READINESS_STATEMENT_TIMEOUT_MS}")
                )
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        current_app.logger.warning(
            "readiness check: database unreachable (%s)", type(error).__name__
        )
        return False
    return True


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Say the process is alive; never touches the database."""
    return _no_store(jsonify({"status": "ok"}))


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Say whether this process can serve requests: 200 when the database answers, else 503."""
    if database_is_reachable():
        return _no_store(jsonify({"status": "ready"}))
    response = jsonify({"status": "unavailable", "database": "unreachable"})
    response.status_code = 503
    response.headers["Retry-After"] = "30"
    return _no_store(response)
