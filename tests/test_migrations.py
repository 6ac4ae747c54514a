"""The Alembic migrations: they build the models' schema, and go down and up again."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from clinic_finder import create_app
from clinic_finder.extensions import db

from .conftest import POSTGRES_URL, config_for_tests

EXPECTED_TABLES = {
    "postal_code",
    "clinic",
    "clinician",
    "staff_user",
    "audit_entry",
    "geocode_cache",
    "import_batch",
    "contact_request",
    "request_event",
    "referral",
    "outbox_message",
    "listed_clinic",
    "one_time_link",
    "import_row",
}


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
def empty_database_url(request, tmp_path):
    """A brand-new, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    server = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"cf_migrate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_builds_exactly_the_models_schema(empty_database_url):
    app = create_app(config_for_tests(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= EXPECTED_TABLES
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert differences == [], "models and migrations disagree: run flask db migrate"


def test_downgrade_removes_everything_and_upgrade_restores_it(empty_database_url):
    app = create_app(config_for_tests(empty_database_url))
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert not EXPECTED_TABLES & set(inspect(connection).get_table_names())
        upgrade()
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= EXPECTED_TABLES
        db.engine.dispose()


def trigger_names(connection) -> set[str]:
    if connection.dialect.name == "postgresql":
        query = "SELECT DISTINCT trigger_name FROM information_schema.triggers"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    return {name for (name,) in connection.execute(text(query))}


def test_search_index_triggers_exist_at_head_and_go_on_downgrade(empty_database_url):
    """A later migration that rebuilds clinic or clinician (SQLite batch mode does) drops
    their triggers with the old table; this notices, before the search goes stale."""
    app = create_app(config_for_tests(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            triggers = trigger_names(connection)
        assert triggers and all(name.startswith("listed_clinic_after_") for name in triggers)
        expected = 5 if db.engine.dialect.name == "postgresql" else 6
        assert len(triggers) == expected
        downgrade(revision="5eb53e9adfc3")
        with db.engine.connect() as connection:
            assert trigger_names(connection) == set()
            assert "listed_clinic" not in inspect(connection).get_table_names()
        db.engine.dispose()


def test_batches_uploaded_before_import_jobs_are_queued_or_marked_applied(empty_database_url):
    app = create_app(config_for_tests(empty_database_url))
    with app.app_context():
        upgrade(revision="b7e1c9d2a4f0")
        with db.engine.begin() as connection:
            for filename, applied_at in (("old.csv", "2026-11-01 10:00:00"), ("new.csv", None)):
                connection.execute(
                    text(
                        "INSERT INTO import_batch (filename, content, uploaded_at, applied_at,"
                        " summary) VALUES (:filename, 'x', '2026-11-01 09:00:00', :applied_at,"
                        " '{}')"
                    ),
                    {"filename": filename, "applied_at": applied_at},
                )
        upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT filename, status, rows_total, attempts FROM import_batch"
                    " ORDER BY filename"
                )
            ).all()
        db.engine.dispose()
    # The unapplied one is checked again by a worker, once; its preview link keeps working.
    assert [tuple(row) for row in rows] == [
        ("new.csv", "queued", 0, 0),
        ("old.csv", "applied", 0, 0),
    ]
