"""Backup and restore: `flask db-backup PATH` and `flask db-restore BACKUP`.

SQLite is copied with its online backup API, which reads one consistent snapshot while the
app goes on working (WAL lets it write meanwhile), into a temporary file beside the target
that is renamed into place only when complete. PostgreSQL is dumped by ``pg_dump`` in its
custom format, from the same snapshot the summary's counts are read in; restoring it is
``pg_restore``'s job, which this module names but never runs over a live database.

A backup holds all the health data, so every backup and restore is written to the audit
log (actor "command line", with the operating-system account that ran it): a backup's
entry goes into the live database once the file is complete (a backup that cannot be
recorded is removed), a restore's into the restored one.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import sqlite3
import subprocess  # nosec B404  # runs pg_dump by absolute path, arguments as a list
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from .audit import record
from .extensions import db

# What a backup's summary counts: (table, what the operator reads).
COUNTED_TABLES = (
    ("clinic", "clinics"),
    ("clinician", "clinicians"),
    ("contact_request", "contact requests"),
)
SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"
# Seconds to wait for another connection's write to finish before giving up.
BUSY_TIMEOUT = 15


class BackupError(Exception):
    """Something the operator must fix; the message says what, in one line."""


@dataclass(frozen=True)
class DatabaseSummary:
    """What a database (or a backup of one) holds: a few counts and its schema revision."""

    counts: dict[str, int]
    revision: str | None

    def describe(self) -> str:
        """Say the counts and the revision in one line."""
        # A table missing from an older schema is left out rather than counted as empty.
        counts = ", ".join(
            f"{self.counts[table]} {label}"
            for table, label in COUNTED_TABLES
            if table in self.counts
        )
        return f"{counts}; schema revision {self.revision or 'none'}"


def _summarise(
    scalar: Callable[[str], object], has_table: Callable[[str], bool]
) -> DatabaseSummary:
    """Count the summary's tables and read alembic's revision through ``scalar(sql)``."""
    counts = {}
    for table, _label in COUNTED_TABLES:
        if has_table(table):
            sql = f"SELECT count(*) FROM {table}"  # noqa: S608  # nosec B608  # fixed names
            counts[table] = int(scalar(sql))
    revision = scalar("SELECT version_num FROM alembic_version")
    return DatabaseSummary(counts, None if revision is None else str(revision))


def _known_revisions() -> tuple[list[str], set[str]]:
    """The migrations' head(s) and every revision this code knows."""
    scripts = ScriptDirectory(current_app.extensions["migrate"].directory)
    known = {script.revision for script in scripts.walk_revisions()}
    return list(scripts.get_heads()), known


def _revision_note(revision: str | None) -> str:
    heads, _known = _known_revisions()
    return "current" if revision in heads else f"this code expects {', '.join(heads)}"


# --- SQLite ---------------------------------------------------------------------------------


def configured_sqlite_path() -> Path:
    """The file of the configured SQLite database (Flask-SQLAlchemy has made it absolute)."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        raise BackupError(f"The configured database is {url.get_backend_name()}, not SQLite.")
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("The configured SQLite database is not a plain file; nothing to copy.")
    return Path(url.database)


def _open_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: checking or copying a backup must never change it, nor create a file.
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)


def summarise_sqlite(path: Path) -> DatabaseSummary:
    """Read the summary of a SQLite file; BackupError when it is not one of ours."""
    try:
        connection = _open_read_only(path)
    except sqlite3.Error as error:
        raise BackupError(f"{path}: cannot be opened as a SQLite database ({error}).") from error
    try:
        verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"{path}: the SQLite database is damaged ({verdict}).")
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "alembic_version" not in tables:
            raise BackupError(f"{path}: not a clinic_finder database (no alembic_version table).")

        def scalar(sql: str):
            row = connection.execute(sql).fetchone()
            return None if row is None else row[0]

        return _summarise(scalar, tables.__contains__)
    except sqlite3.DatabaseError as error:
        raise BackupError(
            f"{path}: not a clinic_finder database, or a damaged one ({error})."
        ) from error
    finally:
        connection.close()


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _check_target(target: Path, force: bool, live: Path | None = None) -> None:
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory; create it first.")
    if target.is_dir():
        raise BackupError(f"{target} is a directory; give a file name.")
    if live is not None and target.exists() and live.exists() and target.samefile(live):
        raise BackupError(f"{target} is the database itself; back it up somewhere else.")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists; choose another name or add --force.")


def _write_beside(target: Path, force: bool, write: Callable[[Path], None]) -> None:
    """Have ``write`` fill a temporary file beside ``target``, then move it into place.

    A crash or an error leaves the target as it was (absent, or the old backup), never half
    written. mkstemp makes the file readable by its owner only, and the backup keeps that:
    it holds health data.
    """
    descriptor, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
    )
    os.close(descriptor)
    partial = Path(name)
    try:
        write(partial)
        with partial.open("rb+") as file:
            os.fsync(file.fileno())
        if force:
            os.replace(partial, target)
        else:
            # A hard link fails if the name was taken meanwhile, where a rename would not.
            try:
                os.link(partial, target)
            except FileExistsError as error:
                raise BackupError(
                    f"{target} already exists; choose another name or add --force."
                ) from error
            partial.unlink()
        _fsync_directory(target.parent)
    finally:
        partial.unlink(missing_ok=True)


def backup_sqlite(source: Path, target: Path, force: bool) -> DatabaseSummary:
    """Copy the live SQLite database to ``target`` with the online backup API."""
    if not source.is_file():
        raise BackupError(f"The configured database {source} does not exist.")
    _check_target(target, force, live=source)

    def write(partial: Path) -> None:
        live = sqlite3.connect(source, timeout=BUSY_TIMEOUT)
        copy = sqlite3.connect(partial)
        try:
            # One step (pages=-1): a single read transaction, so one consistent snapshot of
            # committed data; in WAL mode writers carry on meanwhile.
            live.backup(copy)
            # The copy inherits WAL mode; a backup must be one self-contained file.
            copy.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error as error:
            raise BackupError(f"The backup failed: {error}.") from error
        finally:
            copy.close()
            live.close()

    _write_beside(target, force, write)
    return summarise_sqlite(target)


def check_sqlite_backup(backup: Path) -> tuple[DatabaseSummary, bool]:
    """Check a backup file is a restorable clinic_finder database; say if it needs upgrading.

    Returns the backup's summary and whether its schema is older than this code's.
    """
    if not backup.is_file():
        raise BackupError(f"{backup}: no such file.")
    with backup.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header.startswith(PG_DUMP_HEADER):
        raise BackupError(
            f"{backup} is a PostgreSQL dump, not a SQLite backup; restore it with pg_restore."
        )
    if header != SQLITE_HEADER:
        raise BackupError(f"{backup} is not a SQLite database.")
    summary = summarise_sqlite(backup)
    heads, known = _known_revisions()
    if summary.revision in heads:
        return summary, False
    if summary.revision in known:
        return summary, True
    raise BackupError(
        f"{backup} has schema revision {summary.revision or 'none'}, which this code does not "
        "know (a newer version of clinic_finder made it?); restore it with that version."
    )


def restore_sqlite(backup: Path, target: Path) -> DatabaseSummary:
    """Replace the configured SQLite database's content with the backup's, in one go."""
    if target.exists() and target.samefile(backup):
        raise BackupError(f"{backup} is the configured database itself.")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} (where the database belongs) is not a directory.")
    # This process's pooled connections must not hold the database while it is replaced.
    db.session.remove()
    db.engine.dispose()
    source = _open_read_only(backup)
    database = sqlite3.connect(target, timeout=BUSY_TIMEOUT)
    try:
        # The backup API writes the destination in one transaction: other connections see
        # the old database or the restored one, never a mixture.
        source.backup(database)
    except sqlite3.OperationalError as error:
        raise BackupError(
            f"The restore failed and changed nothing ({error}); stop the app servers and "
            "the outbox sender, then try again."
        ) from error
    finally:
        database.close()
        source.close()
    return summarise_sqlite(target)


# --- PostgreSQL -----------------------------------------------------------------------------


def libpq_url(url: URL) -> str:
    """The database URL as pg_dump/pg_restore take it: no driver name, no password."""
    # Built afresh: URL.set(password=None) would mean "leave the password as it is".
    bare = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return bare.render_as_string(hide_password=False)


def pg_dump_command(url: URL, target: Path, pg_dump: str = "pg_dump") -> list[str]:
    """The pg_dump command line that writes ``url``'s database to ``target``."""
    return [pg_dump, "--format=custom", f"--file={target}", f"--dbname={libpq_url(url)}"]


def pg_restore_command(url: URL, backup: Path | str) -> list[str]:
    """The pg_restore command line that restores ``backup`` into ``url``'s database."""
    return [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        f"--dbname={libpq_url(url)}",
        str(backup),
    ]


def backup_postgresql(url: URL, target: Path, force: bool) -> DatabaseSummary:
    """Dump the PostgreSQL database with pg_dump (custom format) to ``target``."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        command = shlex.join(pg_dump_command(url, target))
        raise BackupError(
            "pg_dump is not installed here (Debian: apt-get install postgresql-client). "
            f"Run it where it is, with the password in PGPASSWORD or ~/.pgpass: {command}"
        )
    _check_target(target, force)
    environment = dict(os.environ)
    if url.password:
        # Never on the command line, where every user on the host can read it in ps.
        environment["PGPASSWORD"] = str(url.password)
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            # pg_dump reads the snapshot this transaction exports, so the counts printed
            # describe exactly the dump; the app goes on writing meanwhile.
            snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
            summary = _summarise(
                lambda sql: connection.scalar(text(sql)),
                lambda table: (
                    connection.scalar(text("SELECT to_regclass(:t)"), {"t": table}) is not None
                ),
            )

            def write(partial: Path) -> None:
                command = [*pg_dump_command(url, partial, pg_dump), f"--snapshot={snapshot}"]
                result = subprocess.run(  # noqa: S603  # nosec B603  # absolute path, no shell
                    command, env=environment, capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    lines = result.stderr.strip().splitlines() or [f"exit {result.returncode}"]
                    raise BackupError(f"pg_dump failed: {lines[-1]}")

            _write_beside(target, force, write)
    return summary


# --- the audit log --------------------------------------------------------------------------


def _operator() -> str:
    """The operating-system account running the command, as the audit log names it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return "unknown"


def record_in_audit_log(action: str, summary: str, changes: dict) -> bool:
    """Write and commit an audit entry; False when the schema is too old to have an audit log.

    Such a schema (before revision 45133fbbe6e2) holds no contact requests either.
    """
    if not inspect(db.engine).has_table("audit_entry"):
        return False
    try:
        record(
            db.session,
            "command line",
            action,
            "database",
            None,
            {**changes, "run_by": _operator()},
            summary=summary,
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        raise
    return True


def _audit_backup(path: Path, summary: DatabaseSummary) -> bool:
    """Record a finished backup; remove it when that fails, so no backup goes unrecorded."""
    try:
        return record_in_audit_log(
            "db.backup",
            f"backup written to {path.resolve()}: {summary.describe()}",
            {
                "path": str(path.resolve()),
                "bytes": path.stat().st_size,
                "counts": summary.counts,
                "revision": summary.revision,
            },
        )
    except SQLAlchemyError as error:
        path.unlink(missing_ok=True)
        raise BackupError(
            f"The backup could not be recorded in the audit log ({type(error).__name__}), so "
            f"{path} was removed; try again when the database takes writes."
        ) from error


def _audit_restore(
    backup: Path, target: Path, replaced: DatabaseSummary | None, restored: DatabaseSummary
) -> bool:
    """Record a restore in the restored database."""
    try:
        return record_in_audit_log(
            "db.restore",
            f"restored from {backup.resolve()}: {restored.describe()}",
            {
                "from": str(backup.resolve()),
                "database": str(target),
                "replaced": replaced.counts if replaced is not None else None,
                "counts": restored.counts,
                "revision": restored.revision,
            },
        )
    except SQLAlchemyError as error:
        raise BackupError(
            f"Restored {target} from {backup}, but the restore could not be recorded in the "
            f"audit log ({type(error).__name__}); record it by hand."
        ) from error


def _summary_if_readable(path: Path) -> DatabaseSummary | None:
    """The database's summary, or None when it is missing or damaged (a restore may fix it)."""
    try:
        return summarise_sqlite(path) if path.exists() else None
    except BackupError:
        return None


NOT_AUDITED = "This schema has no audit log (nor contact requests); the {what} is not recorded."


# --- the commands ---------------------------------------------------------------------------


@click.command("db-backup")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@with_appcontext
def db_backup_command(path: Path, force: bool) -> None:
    """Back up the database to PATH, safely while the app runs (SQLite; pg_dump for PostgreSQL)."""
    url = db.engine.url
    try:
        if url.get_backend_name() == "sqlite":
            summary = backup_sqlite(configured_sqlite_path(), path, force)
        elif url.get_backend_name() == "postgresql":
            summary = backup_postgresql(url, path, force)
        else:
            raise BackupError(f"Cannot back up a {url.get_backend_name()} database.")
        size = path.stat().st_size
        audited = _audit_backup(path, summary)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Wrote {path} ({size:,} bytes): {summary.describe()} ({_revision_note(summary.revision)})."
    )
    if not audited:
        click.echo(NOT_AUDITED.format(what="backup"))


@click.command("db-restore")
@click.argument("backup", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Really replace the database's content with BACKUP.")
@with_appcontext
def db_restore_command(backup: Path, yes: bool) -> None:
    """Replace the SQLite database's content with a db-backup file (stop the app first)."""
    url = db.engine.url
    try:
        if url.get_backend_name() == "postgresql":
            raise BackupError(
                "db-restore restores SQLite only. For PostgreSQL stop the app servers and run: "
                + shlex.join(pg_restore_command(url, backup))
            )
        target = configured_sqlite_path()
        summary, older = check_sqlite_backup(backup)
        replaced = _summary_if_readable(target)
        if not yes:
            current = replaced.describe() if replaced is not None else "no database"
            raise BackupError(
                f"This would replace {target} (now: {current}) with {backup} "
                f"({summary.describe()}). Stop the app servers and the outbox sender, then "
                "run again with --yes."
            )
        restored = restore_sqlite(backup, target)
        audited = _audit_restore(backup, target, replaced, restored)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Restored {target} from {backup}: {restored.describe()}.")
    if not audited:
        click.echo(NOT_AUDITED.format(what="restore"))
    if older:
        heads, _known = _known_revisions()
        click.echo(
            f"The backup's schema is older than this code's ({', '.join(heads)}): "
            "run `flask db upgrade` now, before starting the app."
        )
