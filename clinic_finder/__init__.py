"""clinic_finder: find publicly licensed clinicians near a Norwegian postcode."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import event
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .config import check_production_config, config_from_environment
from .jsonutil import HtmlSafeJSONProvider

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_DATABASE_ID = 2**31 - 1


class DatabaseIdConverter(IntegerConverter):
    """``<int:…>`` limited to 1 … 2**31 - 1, the range of an integer primary key."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_DATABASE_ID)
        super().__init__(url_map, *args, **kwargs)


class ClinicFinderApp(Flask):
    """Flask, with JSON output that never contains raw markup characters."""

    json_provider_class = HtmlSafeJSONProvider


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the app: config, then extensions, blueprints, CLI commands and error pages."""
    app = ClinicFinderApp(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    # Ids in URLs stop at the database's integer range: a longer number is simply "not found".
    app.url_map.converters["int"] = DatabaseIdConverter
    app.config.from_mapping(config_from_environment())
    app.config["DATA_DIR"] = PROJECT_ROOT / "data"
    # The guides the app shows (the staff guide at /staff/help) are the docs themselves.
    app.config["DOCS_DIR"] = PROJECT_ROOT / "docs"
    if config is not None:
        app.config.from_mapping(config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        database = Path(app.instance_path) / "clinic_finder.sqlite3"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
    check_production_config(app.config)
    configure_logging(app)
    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    register_extensions(app)
    register_blueprints(app)
    register_static_files(app)
    register_commands(app)
    register_error_handlers(app)
    register_template_helpers(app)
    register_catalogues(app)
    register_response_headers(app)
    register_input_guard(app)
    return app


def configure_logging(app: Flask) -> None:
    """Structured logs tagged with a request id (see logs.py)."""
    from . import logs

    logs.configure(app)


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions to this app."""
    from . import auth, database, geocoding, hpr, i18n, mail
    from .extensions import csrf, db, limiter, migrate

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    # Dead pooled connections (a restart, a failover) are replaced before use: by
    # database.watch for psycopg, by SQLAlchemy's ping on every checkout for another driver.
    watched = database.uses_psycopg(url)
    if url.startswith("postgresql"):
        # A database host that drops packets must not hang requests for minutes.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options["connect_args"] = {"connect_timeout": 5, **options.get("connect_args", {})}
        if not watched:
            options.setdefault("pool_pre_ping", True)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        if watched:
            database.watch(app, db.engine)
        if url.startswith("sqlite"):
            event.listen(db.engine, "connect", _tune_sqlite_connection)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    geocoding.init_app(app)
    hpr.init_app(app)
    mail.init_app(app)


def _tune_sqlite_connection(dbapi_connection, _connection_record) -> None:
    # Concurrent requests and imports wait for each other instead of failing with
    # "database is locked"; WAL lets readers go on while one connection writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 15000")
    cursor.execute("PRAGMA journal_mode = WAL")
    # Deleted rows are overwritten with zeros, so a GDPR delete leaves no words on disk
    # (erasure.py checkpoints the write-ahead log afterwards).
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


def register_blueprints(app: Flask) -> None:
    """Attach one blueprint per area."""
    from .api.views import bp as api_bp
    from .browser_files import bp as browser_files_bp
    from .contact.views import bp as contact_bp
    from .health import bp as health_bp
    from .public.embed import bp as embed_bp
    from .public.pages import bp as clinics_bp
    from .public.views import bp as public_bp
    from .staff import bp as staff_bp
    from .vendor import leaflet_bp, markercluster_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(clinics_bp)
    app.register_blueprint(embed_bp)
    app.register_blueprint(contact_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(browser_files_bp)
    app.register_blueprint(leaflet_bp)
    app.register_blueprint(markercluster_bp)


def register_static_files(app: Flask) -> None:
    """Static files under content-hashed names for a year; responses compressed where safe."""
    from . import compression, static_files

    static_files.init_app(app)
    compression.init_app(app)


def register_commands(app: Flask) -> None:
    """Add the operator commands: `flask postcodes|clinics|staff|requests|outbox|jobs …`,
    `flask db-backup` and `flask db-restore`."""
    from .backup import db_backup_command, db_restore_command
    from .commands import (
        clinicians_cli,
        clinics_cli,
        jobs_cli,
        outbox_cli,
        postcodes_cli,
        requests_cli,
        staff_cli,
    )

    app.cli.add_command(postcodes_cli)
    app.cli.add_command(clinics_cli)
    app.cli.add_command(clinicians_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(requests_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(db_backup_command)
    app.cli.add_command(db_restore_command)


def register_error_handlers(app: Flask) -> None:
    """Answer errors with a page for people, or JSON under /api."""
    from .errors import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    """Make formatting helpers available to every template."""
    from .formatting import format_km, http_url
    from .models import now_utc, today
    from .web.catalogues import service_name, urgent_warning_signs

    app.add_template_filter(format_km, "km")
    app.add_template_filter(http_url, "http_url")
    # For templates/_partials/urgent_care.html, which any page may include.
    app.add_template_global(urgent_warning_signs)
    # A service key in the page's language: ``practice.services | map("service_name")``.
    app.add_template_filter(service_name, "service_name")

    @app.context_processor
    def inject_clock() -> dict:
        return {"now": now_utc(), "today": today()}


def register_catalogues(app: Flask) -> None:
    """Read and check the data catalogues (services, complaints, professions) at start."""
    from .web.catalogues import check_catalogues

    check_catalogues(app)


def register_response_headers(app: Flask) -> None:
    """Add the security headers every response needs, whatever the view."""
    from . import headers

    headers.register(app)


def register_input_guard(app: Flask) -> None:
    """Refuse text no field may hold, and files where none is taken, before any view sees them."""
    from flask_babel import gettext

    from .errors import render_error_page
    from .textguard import unexpected_file_field, unstorable_field
    from .web.requests import wants_json

    def refuse(field: str, message: str):
        if wants_json():
            return jsonify({"error": "Bad Request", "errors": {field: [message]}}), 400
        return render_error_page("errors/error.html", 400, error=BadRequest(), description=message)

    @app.before_request
    def refuse_unstorable_text():
        field = unstorable_field(request)
        if field is not None:
            return refuse(
                field,
                gettext(
                    "The field %(field)s contains characters we cannot store (such as a NUL "
                    "character). Remove them and try again.",
                    field=repr(field),
                ),
            )
        field = unexpected_file_field(request)
        if field is not None:
            return refuse(
                field,
                gettext(
                    "The field %(field)s was sent as a file, and we take no files here. "
                    "Type it in instead.",
                    field=repr(field),
                ),
            )
        return None
