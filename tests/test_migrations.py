"""The Alembic migrations: they build the models' schema, and go down and up again."""

from __future__ import annotations

import json
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
    "practice",
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
        index_triggers = {name for name in triggers if name.startswith("listed_clinic_after_")}
        json_triggers = {name for name in triggers if name.startswith("clinic_json_after_")}
        assert triggers == index_triggers | json_triggers
        expected = 6 if db.engine.dialect.name == "postgresql" else 7
        # With the filters' facts, three more keep has_hours in step with opening hours.
        assert len(index_triggers) == expected + 3
        # The stored JSON's: clinic insert and update, practice insert, update and
        # delete, clinician update.
        assert len(json_triggers) == 6
        downgrade(revision="a7c3e9f1b2d6")
        with db.engine.connect() as connection:
            assert len(trigger_names(connection)) == expected
        # Before practices, the first index's triggers are back.
        downgrade(revision="d4e8f0a1b2c5")
        with db.engine.connect() as connection:
            assert len(trigger_names(connection)) == expected - 1
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


def _sql(connection, statement: str, **values):
    return connection.execute(text(statement), values)


def test_clinics_agreement_moves_to_its_clinicians_but_never_to_a_chiropractor(
    empty_database_url,
):
    """Today's data moves into practices without loss; the one wrong fact (an agreement
    shown for a chiropractor) is corrected, and going back down restores the old shape."""
    app = create_app(config_for_tests(empty_database_url))
    with app.app_context():
        upgrade(revision="d4e8f0a1b2c5")
        with db.engine.begin() as connection:
            _sql(
                connection,
                "INSERT INTO postal_code (postcode, place, municipality, county, latitude,"
                " longitude, in_use) VALUES ('0150', 'OSLO', 'OSLO', 'OSLO', 59.91, 10.75, true)",
            )
            _sql(
                connection,
                "INSERT INTO clinic (id, name, address, postcode, city, latitude, longitude,"
                " location_source, helfo_agreement, accepts_new_patients,"
                " accepts_new_patients_confirmed_at, active, created_at, updated_at) VALUES"
                " (1, 'Ryggklinikken', 'Gata 1', '0150', 'Oslo', 59.91, 10.75, 'given', true,"
                " true, '2026-12-01 10:00:00', true, '2026-01-01', '2026-01-01')",
            )
            for number, (name, profession) in enumerate(
                (("Fysio Fredriksen", "physiotherapist"), ("Kiro Karlsen", "chiropractor")),
                start=1,
            ):
                _sql(
                    connection,
                    "INSERT INTO clinician (id, name, profession, hpr_number, clinic_id,"
                    " languages, services, active, created_at, updated_at) VALUES (:id, :name,"
                    " :profession, :hpr, 1, '[\"nb\"]', '[\"massasje\"]', true,"
                    " '2026-01-01', '2026-01-01')",
                    id=number,
                    name=name,
                    profession=profession,
                    hpr=str(1000 + number),
                )
        upgrade()
        with db.engine.connect() as connection:
            practices = _sql(
                connection,
                "SELECT clinician.name, practice.profession, practice.public_agreement,"
                " practice.agreement_municipality, practice.accepts_new_patients,"
                " practice.services, clinician.licence_status FROM practice JOIN clinician"
                " ON clinician.id = practice.clinician_id ORDER BY clinician.name",
            ).all()
            listed = _sql(
                connection, "SELECT professions, agreement_professions FROM listed_clinic"
            ).one()
        assert [tuple(row[:5]) for row in practices] == [
            ("Fysio Fredriksen", "physiotherapist", True, "OSLO", True),
            ("Kiro Karlsen", "chiropractor", False, None, True),
        ]
        assert all(row.licence_status == "unchecked" for row in practices)
        assert tuple(listed) == (1 + 2, 2)

        downgrade(revision="d4e8f0a1b2c5")
        with db.engine.connect() as connection:
            clinic = _sql(
                connection, "SELECT helfo_agreement, accepts_new_patients FROM clinic"
            ).one()
            clinicians = _sql(
                connection, "SELECT name, profession, clinic_id FROM clinician ORDER BY name"
            ).all()
        db.engine.dispose()
    assert tuple(clinic) == (True, True)
    assert [tuple(row) for row in clinicians] == [
        ("Fysio Fredriksen", "physiotherapist", 1),
        ("Kiro Karlsen", "chiropractor", 1),
    ]


def test_services_become_vocabulary_keys_and_unknown_ones_are_audited_not_lost(
    empty_database_url,
):
    """Stored free-text services become keys, matched like an import; a text the
    vocabulary lacks is left out but named in the audit log, and going down brings the
    English names and that text back."""
    app = create_app(config_for_tests(empty_database_url))
    with app.app_context():
        upgrade(revision="e5f9a2b3c4d1")
        with db.engine.begin() as connection:
            _sql(
                connection,
                "INSERT INTO postal_code (postcode, place, municipality, county, latitude,"
                " longitude, in_use) VALUES ('0150', 'OSLO', 'OSLO', 'OSLO', 59.91, 10.75, true)",
            )
            _sql(
                connection,
                "INSERT INTO clinic (id, name, address, postcode, city, latitude, longitude,"
                " location_source, active, created_at, updated_at) VALUES (1, 'Ryggklinikken',"
                " 'Gata 1', '0150', 'Oslo', 59.91, 10.75, 'given', true, '2026-01-01',"
                " '2026-01-01')",
            )
            for number, services in enumerate(
                (
                    '["Exercise therapy", "Manuell terapi", "treningsterapi"]',
                    '["tørrnåling", "Graston-teknikk"]',
                    "[]",
                ),
                start=1,
            ):
                _sql(
                    connection,
                    "INSERT INTO clinician (id, name, hpr_number, languages, licence_status,"
                    " created_at, updated_at) VALUES (:id, :name, :hpr, '[\"nb\"]',"
                    " 'unchecked', '2026-01-01', '2026-01-01')",
                    id=number,
                    name=f"Behandler {number}",
                    hpr=str(1000 + number),
                )
                _sql(
                    connection,
                    "INSERT INTO practice (id, clinician_id, clinic_id, profession, services,"
                    " public_agreement, active, created_at, updated_at) VALUES (:id, :id, 1,"
                    " 'physiotherapist', :services, false, true, '2026-01-01', '2026-01-01')",
                    id=number,
                    services=services,
                )
        upgrade()
        with db.engine.connect() as connection:
            services = _sql(connection, "SELECT services FROM practice ORDER BY id").scalars()
            after = [json.loads(value) if isinstance(value, str) else value for value in services]
            audit = _sql(
                connection, "SELECT action, object_id, actor_label, summary FROM audit_entry"
            ).all()
        assert after == [["exercise-therapy", "manual-therapy"], ["dry-needling"], []]
        assert [tuple(row[:3]) for row in audit] == [("practice.services_unknown", 2, "migration")]
        assert "Graston-teknikk" in audit[0].summary

        downgrade(revision="e5f9a2b3c4d1")
        with db.engine.connect() as connection:
            services = _sql(connection, "SELECT services FROM practice ORDER BY id").scalars()
            before = [json.loads(value) if isinstance(value, str) else value for value in services]
        db.engine.dispose()
    assert before == [
        ["exercise therapy", "manual therapy"],
        ["dry needling", "Graston-teknikk"],
        [],
    ]
