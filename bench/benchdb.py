"""What both benchmarks share: a fresh database (migrated, postcodes loaded), and names.

SQLite is a file the caller chooses; a PostgreSQL database is created if missing and its
public schema emptied — never the ``test`` database the test suite uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clinic_finder import create_app
from clinic_finder.extensions import db
from clinic_finder.postcodes import load_postcodes

POSTCODE_FILE = Path(__file__).resolve().parent.parent / "data" / "postnummer-koordinatar.tsv"
# Synthetic clinics, shared by both benchmarks.
KM_PER_DEGREE_LATITUDE = 111.195
# Above the range the real Health Personnel Register has handed out, so they name nobody.
FIRST_HPR_NUMBER = 900_000_000

CLINIC_KINDS = ("Fysioterapi", "Kiropraktikk", "Helsehus", "Klinikk", "Bevegelsessenter")
STREETS = ("Storgata", "Kirkeveien", "Strandvegen", "Parkveien", "Skolegata", "Fjordgata")
FIRST_NAMES = ("Anne", "Kari", "Ingrid", "Nora", "Per", "Ole", "Lars", "Jonas", "Sigrid", "Erik")
SURNAMES = ("Hansen", "Olsen", "Larsen", "Berg", "Haugen", "Dahl", "Lie", "Moe", "Vik", "Aas")

# What synthetic clinicians speak and offer, with how often (a share of clinicians), so
# that language filters and complaints have realistic work: English is common, Tigrinya
# rare; every clinician speaks Norwegian.
LANGUAGE_SHARES = (
    ("en", 0.6),
    ("sv", 0.1),
    ("de", 0.05),
    ("pl", 0.03),
    ("ar", 0.02),
    ("ti", 0.002),
)
# Vocabulary keys (data/services.json), as the directory stores services.
SERVICES = (
    "exercise-therapy",
    "manual-therapy",
    "dry-needling",
    "shockwave-therapy",
    "massage",
    "spinal-manipulation",
    "rehabilitation",
)

# Wiping these would destroy the test suite's or the server's own data.
PROTECTED_DATABASES = {"test", "postgres", "template0", "template1"}


def prepare_postgres(url: str) -> None:
    """Create the benchmark database if missing, then empty its public schema."""
    parsed = make_url(url)
    if parsed.database in PROTECTED_DATABASES:
        sys.exit(f"Refusing to wipe the {parsed.database!r} database; use e.g. bench_search.")
    server = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        )
        if not exists:
            # Identifiers cannot be bound parameters; quote it the server's way.
            name = server.dialect.identifier_preparer.quote(parsed.database)
            connection.execute(text(f"CREATE DATABASE {name}"))
    server.dispose()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def create_bench_app(database_url: str) -> Flask:
    """An app on the given database, migrated, with the postcode register loaded."""
    if database_url.startswith("postgresql"):
        prepare_postgres(database_url)
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "APP_ENV": "development", "GEOCODER": "none"}
    )
    with app.app_context():
        upgrade()
        load_postcodes(db.session, POSTCODE_FILE)
        db.session.commit()
    return app


def reachable(url: str) -> bool:
    """Whether a PostgreSQL server answers at this URL's host (its database may not exist)."""
    server = create_engine(
        make_url(url).set(database="postgres"), connect_args={"connect_timeout": 3}
    )
    try:
        with server.connect():
            return True
    except Exception:  # noqa: BLE001 - any failure to connect means "not available"
        return False
    finally:
        server.dispose()


if __name__ == "__main__":
    # `python bench/benchdb.py --reachable URL`: exit 0 when PostgreSQL answers (make bench).
    if len(sys.argv) == 3 and sys.argv[1] == "--reachable":
        from clinic_finder.config import normalise_database_url

        sys.exit(0 if reachable(normalise_database_url(sys.argv[2])) else 1)
    sys.exit("usage: python bench/benchdb.py --reachable POSTGRES_URL")


def directory_arguments(parser: argparse.ArgumentParser, default_sqlite: str) -> None:
    """The options of a benchmark that builds the server benchmark's directory (or reuses it)."""
    parser.add_argument("--clinics", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="postcodes to time")
    parser.add_argument("--database-url", help=f"default: sqlite:///{default_sqlite}")
    parser.add_argument("--reuse", action="store_true", help="use the database as it is")
