"""`flask db-backup` and `flask db-restore`: real SQLite files, real pg_dump and pg_restore."""

from __future__ import annotations

import getpass
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import delete, func, select, update

from clinic_finder import create_app
from clinic_finder.backup import (
    db_backup_command,
    db_restore_command,
    libpq_url,
    pg_restore_command,
)
from clinic_finder.contact_requests import ContactDetails, create_contact_request
from clinic_finder.extensions import db
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    ContactRequest,
    OutboxMessage,
    Practice,
    Profession,
    RequestEvent,
)
from clinic_finder.postcodes import load_postcodes

from .conftest import POSTCODE_FILE, config_for_tests
from .factories import make_clinic

# The newest migration in the repo: a fresh database is at it, so a backup names it current.
HEAD_REVISION = ScriptDirectory(str(Path(__file__).parents[1] / "migrations")).get_current_head()
FIRST_REVISION = "f593f03ba8e2"


def with_backup_commands(app: Flask) -> Flask:
    """Make sure the app has the commands (until the factory registers them itself)."""
    if "db-backup" not in app.cli.commands:
        app.cli.add_command(db_backup_command)
        app.cli.add_command(db_restore_command)
    return app


def flask_cli(app: Flask, *args: str):
    """Run `flask ARGS` on the app; fail on a traceback rather than a clean exit."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def sqlite_app(path: Path) -> Flask:
    return with_backup_commands(create_app(config_for_tests(f"sqlite:///{path}")))


@pytest.fixture(scope="session")
def template_database(tmp_path_factory) -> Path:
    """A migrated SQLite file with the postcode register, copied for each test."""
    path = tmp_path_factory.mktemp("backup-template") / "template.sqlite3"
    app = sqlite_app(path)
    with app.app_context():
        upgrade()
        load_postcodes(db.session, POSTCODE_FILE)
        db.session.commit()
        db.engine.dispose()
    # Fold the WAL into the file, so copying the file copies everything.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


@pytest.fixture
def live_path(tmp_path, template_database) -> Path:
    path = tmp_path / "live.sqlite3"
    shutil.copyfile(template_database, path)
    return path


@pytest.fixture
def live_app(live_path):
    """An app on its own SQLite file, as an operator's would be."""
    app = sqlite_app(live_path)
    yield app
    with app.app_context():
        db.engine.dispose()


def add_directory(app: Flask) -> str:
    """Two clinics and a contact request about the first; return the request's reference."""
    with app.app_context():
        first = make_clinic(db.session, name="Majorstua Fysio", postcode="0350")
        make_clinic(db.session, name="Tromsø Kiropraktikk", postcode="9008")
        request, _ = create_contact_request(
            db.session,
            ContactDetails(
                name="Pia Pasient",
                email="pia@example.org",
                phone=None,
                postcode="0150",
                profession=Profession.PHYSIOTHERAPIST,
                message="Vondt i ryggen",
                clinic_id=first.id,
            ),
            staff_inbox="inbox@clinic-finder.example",
            base_url="https://finnklinikk.example",
        )
        db.session.commit()
        return request.reference


def clinic_names(app: Flask) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(Clinic.name)))


def request_references(app: Flask) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(ContactRequest.reference)))


def audit_entries(app: Flask) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def names_in_sqlite_file(path: Path) -> list[str]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(row[0] for row in connection.execute("SELECT name FROM clinic"))
    finally:
        connection.close()


def wreck_directory(app: Flask) -> None:
    """What a bad day does: a clinic renamed, one deleted, the contact request deleted."""
    with app.app_context():
        db.session.execute(delete(OutboxMessage))
        db.session.execute(delete(RequestEvent))
        db.session.execute(delete(ContactRequest))
        tromso = db.session.scalar(select(Clinic.id).where(Clinic.name == "Tromsø Kiropraktikk"))
        people = select(Practice.clinician_id).where(Practice.clinic_id == tromso).subquery()
        clinician_ids = list(db.session.scalars(select(people.c.clinician_id)))
        db.session.execute(delete(Practice).where(Practice.clinic_id == tromso))
        db.session.execute(delete(Clinician).where(Clinician.id.in_(clinician_ids)))
        db.session.execute(delete(Clinic).where(Clinic.id == tromso))
        db.session.execute(update(Clinic).values(name="Renamed by mistake"))
        make_clinic(db.session, name="Added after the backup", postcode="5003")
        db.session.commit()


# --- SQLite: backup and restore -------------------------------------------------------------


def test_restore_brings_back_the_clinics_and_contact_requests_of_the_backup(live_app, tmp_path):
    reference = add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"
    assert flask_cli(live_app, "db-backup", str(backup)).exit_code == 0
    wreck_directory(live_app)
    assert request_references(live_app) == []

    result = flask_cli(live_app, "db-restore", str(backup), "--yes")

    assert result.exit_code == 0, result.output
    assert "2 clinics, 2 clinicians, 1 contact requests" in result.output
    assert clinic_names(live_app) == ["Majorstua Fysio", "Tromsø Kiropraktikk"]
    assert request_references(live_app) == [reference]
    with live_app.app_context():
        request = db.session.scalar(select(ContactRequest))
        assert request.message == "Vondt i ryggen" and request.clinic.name == "Majorstua Fysio"


def test_restore_is_audited_in_the_restored_database(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"
    flask_cli(live_app, "db-backup", str(backup))
    wreck_directory(live_app)
    assert flask_cli(live_app, "db-restore", str(backup)).exit_code == 1  # no --yes: no entry

    assert flask_cli(live_app, "db-restore", str(backup), "--yes").exit_code == 0

    # The backup was taken before its own entry was written, so the restore's is the only one.
    (entry,) = audit_entries(live_app)
    assert (entry.action, entry.actor_id, entry.actor_label) == ("db.restore", None, "command line")
    assert entry.changes["from"] == str(backup.resolve())
    assert entry.changes["replaced"] == {"clinic": 2, "clinician": 2, "contact_request": 0}
    assert entry.changes["counts"] == {"clinic": 2, "clinician": 2, "contact_request": 1}
    assert entry.changes["run_by"] == getpass.getuser()


def test_restored_database_takes_new_writes(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"
    flask_cli(live_app, "db-backup", str(backup))
    flask_cli(live_app, "db-restore", str(backup), "--yes")

    with live_app.app_context():
        make_clinic(db.session, name="After the restore", postcode="7010")
        db.session.commit()

    assert "After the restore" in clinic_names(live_app)


def test_backup_reports_its_size_counts_and_schema_revision(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"

    result = flask_cli(live_app, "db-backup", str(backup))

    assert result.exit_code == 0, result.output
    size = backup.stat().st_size
    assert f"Wrote {backup} ({size:,} bytes)" in result.output
    assert "2 clinics, 2 clinicians, 1 contact requests" in result.output
    assert f"schema revision {HEAD_REVISION} (current)" in result.output


def test_backup_is_audited_with_its_file_counts_and_operator(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"

    assert flask_cli(live_app, "db-backup", str(backup)).exit_code == 0

    (entry,) = audit_entries(live_app)
    assert (entry.action, entry.actor_id, entry.actor_label) == ("db.backup", None, "command line")
    assert entry.changes == {
        "path": str(backup.resolve()),
        "bytes": backup.stat().st_size,
        "counts": {"clinic": 2, "clinician": 2, "contact_request": 1},
        "revision": HEAD_REVISION,
        "run_by": getpass.getuser(),
    }
    assert str(backup.resolve()) in entry.summary and "Vondt i ryggen" not in entry.summary


def test_backup_that_cannot_be_audited_is_removed(live_app, live_path, tmp_path):
    add_directory(live_app)
    connection = sqlite3.connect(live_path)
    connection.execute(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entry "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    connection.commit()
    connection.close()
    backup = tmp_path / "nightly.sqlite3"

    result = flask_cli(live_app, "db-backup", str(backup))

    assert result.exit_code == 1
    assert "could not be recorded in the audit log" in result.output
    assert not backup.exists()
    assert [path.name for path in tmp_path.iterdir() if "nightly" in path.name] == []


def test_backup_is_one_self_contained_file_readable_only_by_its_owner(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"
    flask_cli(live_app, "db-backup", str(backup))

    assert backup.stat().st_mode & 0o077 == 0
    assert sorted(path.name for path in tmp_path.iterdir() if "nightly" in path.name) == [
        "nightly.sqlite3"
    ]
    connection = sqlite3.connect(backup)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()


def test_backup_during_an_open_write_transaction_holds_only_committed_data(
    live_app, live_path, tmp_path
):
    add_directory(live_app)
    writer = sqlite3.connect(live_path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE clinic SET name = 'Not committed yet'")
    writer.execute("DELETE FROM outbox_message")
    backup = tmp_path / "during-write.sqlite3"

    def commit_once_the_backup_is_written() -> None:
        # The writer was never blocked by the backup: it commits once the file is complete,
        # while the command waits to write its audit entry (which needs the write lock).
        deadline = time.monotonic() + 30
        while not backup.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        writer.execute("COMMIT")

    committer = threading.Thread(target=commit_once_the_backup_is_written)
    committer.start()
    try:
        result = flask_cli(live_app, "db-backup", str(backup))
    finally:
        committer.join(timeout=60)
        writer.close()

    assert result.exit_code == 0, result.output
    assert names_in_sqlite_file(backup) == ["Majorstua Fysio", "Tromsø Kiropraktikk"]
    assert clinic_names(live_app) == ["Not committed yet", "Not committed yet"]
    assert [entry.action for entry in audit_entries(live_app)] == ["db.backup"]


def test_backup_refuses_to_overwrite_an_existing_file(live_app, tmp_path):
    backup = tmp_path / "nightly.sqlite3"
    backup.write_bytes(b"yesterday's backup")

    result = flask_cli(live_app, "db-backup", str(backup))

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {backup} already exists; choose another name or add --force.\n"
    )
    assert backup.read_bytes() == b"yesterday's backup"
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".partial")] == []


def test_backup_with_force_replaces_an_existing_file(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"
    backup.write_bytes(b"yesterday's backup")

    result = flask_cli(live_app, "db-backup", "--force", str(backup))

    assert result.exit_code == 0, result.output
    assert names_in_sqlite_file(backup) == ["Majorstua Fysio", "Tromsø Kiropraktikk"]


def test_backup_never_overwrites_the_live_database(live_app, live_path):
    add_directory(live_app)

    result = flask_cli(live_app, "db-backup", "--force", str(live_path))

    assert result.exit_code == 1
    assert "is the database itself" in result.output
    assert clinic_names(live_app) == ["Majorstua Fysio", "Tromsø Kiropraktikk"]


def test_backup_into_a_missing_directory_says_so(live_app, tmp_path):
    result = flask_cli(live_app, "db-backup", str(tmp_path / "no-such-dir" / "b.sqlite3"))

    assert result.exit_code == 1
    assert (
        result.output == f"Error: {tmp_path / 'no-such-dir'} is not a directory; create it first.\n"
    )


def test_restore_without_yes_changes_nothing_and_says_what_it_would_replace(live_app, tmp_path):
    add_directory(live_app)
    backup = tmp_path / "nightly.sqlite3"
    flask_cli(live_app, "db-backup", str(backup))
    wreck_directory(live_app)

    result = flask_cli(live_app, "db-restore", str(backup))

    assert result.exit_code == 1
    assert "This would replace" in result.output and "run again with --yes" in result.output
    assert "(now: 2 clinics, 2 clinicians, 0 contact requests" in result.output
    assert clinic_names(live_app) == ["Added after the backup", "Renamed by mistake"]


def sqlite_database_without_alembic(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()


def sqlite_database_from_the_future(path: Path, template: Path) -> None:
    shutil.copyfile(template, path)
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    connection.commit()
    connection.close()


def damaged_sqlite_database(path: Path, template: Path) -> None:
    data = bytearray(template.read_bytes())
    # Keep the 100-byte header, overwrite the pages after the first with noise.
    data[4096:] = bytes(range(256)) * ((len(data) - 4096) // 256 + 1)
    path.write_bytes(bytes(data[: len(template.read_bytes())]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "no such file."),
        (lambda path, _t: path.write_bytes(b""), "is not a SQLite database."),
        (lambda path, _t: path.write_text("name,postcode\n"), "is not a SQLite database."),
        (
            lambda path, _t: path.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 64),
            "is a PostgreSQL dump, not a SQLite backup; restore it with pg_restore.",
        ),
        (lambda path, _t: sqlite_database_without_alembic(path), "not a clinic_finder database"),
        (sqlite_database_from_the_future, "schema revision ffffffffffff, which this code does"),
        (damaged_sqlite_database, "damaged"),
    ],
    ids=["missing", "empty", "csv", "pg-dump", "foreign-sqlite", "newer-schema", "damaged"],
)
def test_restore_refuses_a_file_that_is_not_a_backup_in_one_line(
    live_app, tmp_path, template_database, make, message
):
    add_directory(live_app)
    candidate = tmp_path / "candidate.bin"
    if make is not None:
        make(candidate, template_database)

    result = flask_cli(live_app, "db-restore", "--yes", str(candidate))

    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert message in result.output
    assert clinic_names(live_app) == ["Majorstua Fysio", "Tromsø Kiropraktikk"]


def test_restore_of_an_older_schema_tells_the_operator_to_upgrade(live_app, tmp_path):
    old_path = tmp_path / "old.sqlite3"
    old_app = sqlite_app(old_path)
    with old_app.app_context():
        upgrade(revision=FIRST_REVISION)
    backup = tmp_path / "old-backup.sqlite3"
    made = flask_cli(old_app, "db-backup", str(backup))
    with old_app.app_context():
        db.engine.dispose()
    # That schema had no contact requests: the summary leaves them out, not "0".
    assert "0 clinics, 0 clinicians; schema revision f593f03ba8e2" in made.output
    assert f"this code expects {HEAD_REVISION}" in made.output
    # Nor an audit log to write to, which the operator is told.
    assert "the backup is not recorded" in made.output

    result = flask_cli(live_app, "db-restore", "--yes", str(backup))

    assert result.exit_code == 0, result.output
    assert "run `flask db upgrade` now" in result.output
    assert "the restore is not recorded" in result.output
    upgraded = flask_cli(live_app, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    with live_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ContactRequest)) == 0


# --- PostgreSQL -----------------------------------------------------------------------------

PASSWORDED_URL = "postgresql+psycopg://clinics:s3cret-Pa55@db.internal:5432/clinic_finder"


def test_postgresql_backup_without_pg_dump_prints_the_command_without_password(
    tmp_path, monkeypatch
):
    # Building the app connects to nothing, so this runs without a PostgreSQL server.
    app = with_backup_commands(create_app(config_for_tests(PASSWORDED_URL)))
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no pg_dump on it

    result = flask_cli(app, "db-backup", str(tmp_path / "site.dump"))

    assert result.exit_code == 1
    assert "pg_dump is not installed here" in result.output
    assert (
        f"pg_dump --format=custom --file={tmp_path / 'site.dump'} "
        "--dbname=postgresql://clinics@db.internal:5432/clinic_finder"
    ) in result.output
    assert "s3cret" not in result.output
    assert not (tmp_path / "site.dump").exists()


def test_postgresql_restore_refuses_and_names_pg_restore_without_password(tmp_path):
    app = with_backup_commands(create_app(config_for_tests(PASSWORDED_URL)))

    result = flask_cli(app, "db-restore", "--yes", str(tmp_path / "site.dump"))

    assert result.exit_code == 1
    assert "db-restore restores SQLite only" in result.output
    assert (
        "pg_restore --clean --if-exists --no-owner --single-transaction "
        "--dbname=postgresql://clinics@db.internal:5432/clinic_finder"
    ) in result.output
    assert "s3cret" not in result.output


@pytest.fixture
def postgresql_app(app: Flask) -> Flask:
    """The conftest app, on PostgreSQL only (TEST_DATABASE_URL)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL backups need TEST_DATABASE_URL")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.fail("pg_dump and pg_restore must be installed where TEST_DATABASE_URL is set")
    return with_backup_commands(app)


def run_pg_restore(app: Flask, backup: Path) -> None:
    """Restore the way docs/deploy.md says, with the command db-restore names."""
    with app.app_context():
        url = db.engine.url
        db.engine.dispose()  # idle pooled connections would hold locks on the tables
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    subprocess.run(
        pg_restore_command(url, backup), env=environment, check=True, capture_output=True
    )


def test_postgresql_backup_restores_with_pg_restore(postgresql_app, tmp_path):
    reference = add_directory(postgresql_app)
    backup = tmp_path / "site.dump"

    result = flask_cli(postgresql_app, "db-backup", str(backup))

    assert result.exit_code == 0, result.output
    assert "2 clinics, 2 clinicians, 1 contact requests" in result.output
    assert f"schema revision {HEAD_REVISION} (current)" in result.output
    assert backup.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    (entry,) = audit_entries(postgresql_app)
    assert (entry.action, entry.actor_label) == ("db.backup", "command line")
    assert entry.changes["path"] == str(backup.resolve())
    assert entry.changes["counts"] == {"clinic": 2, "clinician": 2, "contact_request": 1}
    wreck_directory(postgresql_app)

    run_pg_restore(postgresql_app, backup)

    assert clinic_names(postgresql_app) == ["Majorstua Fysio", "Tromsø Kiropraktikk"]
    assert request_references(postgresql_app) == [reference]


def test_postgresql_backup_refuses_to_overwrite(postgresql_app, tmp_path):
    backup = tmp_path / "site.dump"
    backup.write_bytes(b"yesterday's dump")

    result = flask_cli(postgresql_app, "db-backup", str(backup))

    assert result.exit_code == 1
    assert "already exists; choose another name or add --force" in result.output
    assert backup.read_bytes() == b"yesterday's dump"


def test_libpq_url_drops_driver_and_password_and_keeps_options():
    app = create_app(config_for_tests(PASSWORDED_URL + "?sslmode=require"))
    with app.app_context():
        assert libpq_url(db.engine.url) == (
            "postgresql://clinics@db.internal:5432/clinic_finder?sslmode=require"
        )
