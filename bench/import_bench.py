"""Benchmark the clinic import: a 10,000-row file with coordinates, first new, then unchanged.

The script writes a synthetic clinic list in the import format (a fixed seed; real
postcodes from the register, coordinates within about a kilometre of the postcode's
centre, one to three clinicians per clinic, about a tenth of them also at a second clinic,
agreements never for a chiropractor, booking links and access facts for half the clinics,
opening hours for nine in ten, every row valid), builds
a fresh database with the real migrations and postcode register, and then times what
``flask clinics import`` does — keep the file as a batch (``create_batch()``), plan it and
store the plan (``plan_batch()``), write it from the stored plan (``apply_batch()``),
commit; the web upload's jobs run the same functions — twice:

* the first import, where every row is new (the target is under 10 s);
* a second import of the same file, where every row must be unchanged (checked).

Rows carry coordinates, so nothing is geocoded and nothing touches the network. Each run
starts with an empty session, as a new ``flask`` process would. It prints figures and
asserts nothing about timings, which depend on the machine::

    python bench/import_bench.py [--rows 10000] [--seed 1] [--database-url URL]

Without ``--database-url`` the database is a SQLite file in a temporary directory. For
PostgreSQL pass e.g. ``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_import``:
the database is created if missing, and its ``public`` schema is DROPPED and recreated, so
never point this at a database whose contents matter (the test suite's ``test`` database
is refused).

To see where the time goes: ``python -m cProfile -s cumtime bench/import_bench.py``.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import math
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from benchdb import (
    CLINIC_KINDS,
    FIRST_HPR_NUMBER,
    FIRST_NAMES,
    KM_PER_DEGREE_LATITUDE,
    POSTCODE_FILE,
    STREETS,
    SURNAMES,
    create_bench_app,
)
from flask import Flask
from sqlalchemy import func, select
from stdnum.no import orgnr

from clinic_finder.config import normalise_database_url
from clinic_finder.extensions import db
from clinic_finder.import_format import CANONICAL_COLUMNS
from clinic_finder.importer import RowResult, RowStatus
from clinic_finder.imports import apply_batch, create_batch, plan_batch, stored_rejected_rows
from clinic_finder.models import Clinic, Profession
from clinic_finder.postcodes import read_postcode_register
from clinic_finder.public_json import refresh_all_stale
from clinic_finder.validation import check_in_norway

DEFAULT_ROWS = 10_000
TARGET_SECONDS = 10.0  # for DEFAULT_ROWS
MAX_OFFSET_KM = 1.0
MOBILE_PREFIXES = ("40", "41", "45", "46", "47", "48", "90", "91", "92", "93", "94", "95")
LANGUAGES = ("nb", "nb;en", "nb;en;de", "nn;en", "nb;pl")
SERVICES = ("exercise therapy", "dry needling", "manual therapy", "shockwave therapy", "massage")
YES_NO_UNKNOWN = ("yes", "no", "")
WEEKS = (
    "man-fre 08-16",
    "man-fre 08-16; tor 08-19",
    "man–tor 07:30–15:30, 16:00–20:00; fre 08–14",
    "hverdager 08-15; lør 10-14",
    "man, ons, fre 09-15",
)


@dataclass(frozen=True)
class Place:
    """A postcode in use and where its centre is."""

    postcode: str
    city: str
    latitude: float
    longitude: float


# --- The file --------------------------------------------------------------------------


def places_in_use(path: Path) -> list[Place]:
    """The register's postcodes still in use whose centre the importer accepts as Norway."""
    places = []
    for entry in read_postcode_register(path):
        place = Place(
            postcode=str(entry["postcode"]),
            city=str(entry["place"]),
            latitude=float(entry["latitude"]),  # type: ignore[arg-type]
            longitude=float(entry["longitude"]),  # type: ignore[arg-type]
        )
        try:
            # 9523 Kautokeino is registered at 84° E, in Siberia; rows there would be refused.
            check_in_norway(place.latitude, place.longitude)
        except ValueError:
            continue
        if entry["in_use"]:
            places.append(place)
    return places


def scatter(rng: random.Random, place: Place) -> tuple[float, float]:
    """A point uniformly inside a disc of MAX_OFFSET_KM around the postcode centre."""
    distance = MAX_OFFSET_KM * math.sqrt(rng.random())
    bearing = rng.uniform(0.0, 2.0 * math.pi)
    latitude = place.latitude + distance * math.cos(bearing) / KM_PER_DEGREE_LATITUDE
    longitude = place.longitude + distance * math.sin(bearing) / (
        KM_PER_DEGREE_LATITUDE * math.cos(math.radians(place.latitude))
    )
    return latitude, longitude


def org_number(rng: random.Random, taken: set[str]) -> str:
    """A random 9-digit number starting with 9 that passes the orgnr check digit."""
    while True:
        base = "9" + "".join(str(rng.randrange(10)) for _ in range(7))
        number = next((base + d for d in "0123456789" if orgnr.is_valid(base + d)), None)
        if number and number not in taken:
            taken.add(number)
            return number


def phone_number(rng: random.Random) -> str:
    """A valid Norwegian mobile number, in one of the notations people write."""
    while True:
        digits = rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randrange(10)) for _ in range(6))
        # Not every block of a mobile range is handed out; the importer refuses those.
        if phonenumbers.is_valid_number(phonenumbers.parse(digits, "NO")):
            break
    return rng.choice((f"+47 {digits[:3]} {digits[3:5]} {digits[5:]}", digits, f"0047{digits}"))


def clinic_details(rng: random.Random, place: Place, number: int, taken: set[str]) -> dict:
    """One clinic's cells, the same on each of its rows; about half give a booking link and
    access facts."""
    latitude, longitude = scatter(rng, place)
    facts = rng.random() < 0.5
    return {
        "clinic_name": f"{rng.choice(CLINIC_KINDS)} {place.city} {number}",
        "org_number": org_number(rng, taken) if rng.random() < 0.8 else "",
        "address": f"{rng.choice(STREETS)} {rng.randint(1, 150)}",
        "postcode": place.postcode,
        "city": place.city,
        "phone": phone_number(rng),
        "email": f"post@klinikk{number}.example",
        "website": f"https://klinikk{number}.example/" if rng.random() < 0.8 else "",
        "booking_url": f"https://booking.example/klinikk{number}" if facts else "",
        "step_free_access": rng.choice(YES_NO_UNKNOWN) if facts else "",
        "accessible_toilet": rng.choice(YES_NO_UNKNOWN) if facts else "",
        "parking": rng.choice(YES_NO_UNKNOWN) if facts else "",
        "opening_hours": rng.choice(WEEKS) if rng.random() < 0.9 else "",
        "latitude": f"{latitude:.6f}",
        "longitude": f"{longitude:.6f}",
    }


def practice_cells(rng: random.Random) -> dict[str, str]:
    """A clinician's work at one clinic: never a chiropractor with a public agreement."""
    profession = rng.choice(tuple(Profession))
    agreement = profession is not Profession.CHIROPRACTOR and rng.random() < 0.5
    return {
        "profession": profession.value,
        "helfo_agreement": rng.choice(("yes", "ja") if agreement else ("no", "nei", "")),
        "municipality_agreement": rng.choice(("", "Oslo", "Bergen")) if agreement else "",
        "accepts_new_patients": rng.choice(("yes", "no", "")),
        "services": ";".join(rng.sample(SERVICES, rng.randint(0, 3))),
    }


def clinic_rows(
    rng: random.Random,
    place: Place,
    number: int,
    hpr_numbers: Iterator[int],
    taken: set[str],
    earlier: list[dict[str, str]],
) -> list[dict[str, str]]:
    """The rows of one clinic: one to three clinicians sharing the clinic's details; about a
    tenth of them also work at a clinic written earlier (the same name and languages)."""
    clinic = clinic_details(rng, place, number, taken)
    rows: list[dict[str, str]] = []
    for _ in range(rng.randint(1, 3)):
        twin = rng.choice(earlier) if earlier and rng.random() < 0.1 else None
        if twin is not None and twin["hpr_number"] not in {row["hpr_number"] for row in rows}:
            person = {key: twin[key] for key in ("clinician_name", "hpr_number", "languages")}
        else:
            person = {
                "clinician_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
                "hpr_number": str(next(hpr_numbers)),
                "languages": rng.choice(LANGUAGES),
            }
        rows.append({**clinic, **person, **practice_cells(rng)})
    return rows


def generate_file(rng: random.Random, places: Sequence[Place], rows: int) -> str:
    """A clinic list of exactly ``rows`` rows (about two clinicians per clinic) as CSV."""
    hpr_numbers = itertools.count(FIRST_HPR_NUMBER)
    taken: set[str] = set()
    generated: list[dict[str, str]] = []
    number = 0
    while len(generated) < rows:
        number += 1
        place = rng.choice(places)
        generated.extend(clinic_rows(rng, place, number, hpr_numbers, taken, generated))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CANONICAL_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(generated[:rows])
    return buffer.getvalue()


# --- Measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRun:
    """How long one import took, split at the point where writing starts."""

    plan_seconds: float
    write_seconds: float
    # This process's CPU time for both (SQLite's work included; PostgreSQL's is not):
    # steadier than the wall clock on a busy machine.
    cpu_seconds: float
    counts: dict[str, int]
    rejected: list[RowResult]

    @property
    def seconds(self) -> float:
        return self.plan_seconds + self.write_seconds


def timed_import(app: Flask, path: Path) -> ImportRun:
    """Import the file as ``flask clinics import`` does, in a fresh app context."""
    with app.app_context():
        cpu_started = time.process_time()
        started = time.perf_counter()
        batch = create_batch(db.session, path.name, path.read_bytes())
        counts = plan_batch(db.session, batch)
        rejected = stored_rejected_rows(db.session, batch)
        planned = time.perf_counter()
        apply_batch(db.session, batch, "command line")
        db.session.commit()
        # The API's JSON of the clinics beyond what the commit stored, as the command
        # line and the job worker do right after.
        refresh_all_stale(db.session)
        finished = time.perf_counter()
        cpu_seconds = time.process_time() - cpu_started
        db.session.remove()
    return ImportRun(planned - started, finished - planned, cpu_seconds, counts, rejected)


def check(run: ImportRun, expected: RowStatus, rows: int) -> list[str]:
    """Say what is wrong if not every row got the expected status."""
    if run.counts[expected.value] == rows:
        return []
    problems = [f"CHECK FAILED: expected {rows} {expected.value} rows, got {run.counts}"]
    problems += [f"  line {row.line}: {'; '.join(row.errors)}" for row in run.rejected[:5]]
    return problems


def import_line(label: str, run: ImportRun, *, target: bool = False) -> str:
    verdict = ("PASS " if run.seconds < TARGET_SECONDS else "MISS ") if target else ""
    return (
        f"{verdict}{label}: {run.seconds:.1f} s"
        + (f"  (target < {TARGET_SECONDS:.0f} s)" if target else "")
        + f"  [plan {run.plan_seconds:.1f} s, write + commit {run.write_seconds:.1f} s;"
        + f" CPU {run.cpu_seconds:.1f} s]"
    )


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the figures."""
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, database_url: str, directory: Path) -> tuple[list[str], bool]:
    """Build the database and the file, import twice; return report lines and success."""
    progress("migrating and loading postcodes …")
    app = create_bench_app(database_url)
    with app.app_context():
        backend = db.engine.dialect.name
    progress(f"writing {args.rows} rows …")
    path = directory / "clinics.csv"
    places = places_in_use(POSTCODE_FILE)
    path.write_text(
        generate_file(random.Random(args.seed), places, args.rows), encoding="utf-8", newline=""
    )

    progress("importing (all new) …")
    first = timed_import(app, path)
    progress("importing again (all unchanged) …")
    second = timed_import(app, path)

    problems = check(first, RowStatus.NEW, args.rows) + check(
        second, RowStatus.UNCHANGED, args.rows
    )
    with app.app_context():
        clinics = db.session.scalar(select(func.count()).select_from(Clinic))
        db.engine.dispose()
    lines = [
        f"rows={args.rows}  clinics={clinics}  backend={backend}  seed={args.seed}",
        import_line(f"import {args.rows} rows (new)", first, target=args.rows == DEFAULT_ROWS),
        import_line("re-import (unchanged)", second),
        f"check: {first.counts['new']}/{args.rows} new, then "
        f"{second.counts['unchanged']}/{args.rows} unchanged: "
        + ("OK" if not problems else "NOT OK"),
        *problems,
    ]
    return lines, not problems


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="rows (clinicians) to import"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the file")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database whose public schema may be wiped (default: temp SQLite)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="import-bench-") as name:
        directory = Path(name)
        if args.database_url:
            url = normalise_database_url(args.database_url)
        else:
            url = f"sqlite:///{directory / 'bench.sqlite3'}"
        lines, ok = run(args, url, directory)
    print("\n".join(lines))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
