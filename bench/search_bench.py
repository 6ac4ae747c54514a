"""Benchmark the clinic search at scale: the listed_clinic index search against a full scan.

The script builds a fresh database with the real migrations and the real postcode
register, fills it with synthetic clinics placed where people live, then measures:

* how long generating and inserting the clinics takes;
* ``find_clinics_near()`` at 25 km and 100 km for a fixed, seeded set of postcodes
  (p50, p95, mean and queries per second, one query at a time);
* the naive way the finder must never work, on a few of the same postcodes: fetch every
  active clinic and compute a geodesic distance to each in Python. It also checks that
  both ways return the same first page of clinics.

It prints figures and asserts nothing about timings, which depend on the machine::

    python bench/search_bench.py [--clinics 100000] [--queries 200] [--seed 1]
        [--naive-queries 5] [--database-url URL]

Without ``--database-url`` the database is a SQLite file in a temporary directory
(``make bench`` runs exactly that). For PostgreSQL pass e.g.
``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_search``: the database
must exist, and its ``public`` schema is DROPPED and recreated, so never point this at a
database whose contents matter (the test suite's ``test`` database included).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchdb import (
    CLINIC_KINDS,
    FIRST_HPR_NUMBER,
    FIRST_NAMES,
    KM_PER_DEGREE_LATITUDE,
    LANGUAGE_SHARES,
    POSTCODE_FILE,
    SERVICES,
    STREETS,
    SURNAMES,
    create_bench_app,
)
from geopy.distance import geodesic, great_circle
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from clinic_finder.config import normalise_database_url
from clinic_finder.extensions import db
from clinic_finder.finder import FinderQuery
from clinic_finder.finder import find as run_finder
from clinic_finder.models import Clinic, Clinician, PostalCode, Practice, Profession
from clinic_finder.postcodes import read_postcode_register
from clinic_finder.public_json import refresh_all_stale
from clinic_finder.search import find_clinics_near
from clinic_finder.web.search_forms import LANGUAGE_CODES

RADII_KM = (25, 100)
# The finder page's search with its counts (per profession and per filter), at 25 km:
# plain, and with the filter patients use most from the articles.
FINDER_QUERIES = {
    "plain": FinderQuery(25),
    "helfo": FinderQuery(25, helfo_only=True),
}
FINDER_MOMENT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # a Wednesday morning
PAGE_SIZE = 20
BATCH_SIZE = 5_000
MAX_OFFSET_KM = 2.0
PROFESSIONS = tuple(Profession)


@dataclass(frozen=True)
class Place:
    """A postcode in use, how many people live there, and where its centre is."""

    postcode: str
    city: str
    latitude: float
    longitude: float
    population: int


@dataclass(frozen=True)
class Timings:
    """Per-query wall-clock times in milliseconds."""

    samples_ms: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile; works for any number of samples, one included."""
        ordered = sorted(self.samples_ms)
        rank = max(1, math.ceil(share * len(ordered)))
        return ordered[rank - 1]


# --- Database --------------------------------------------------------------------------


def analyze(session: Session) -> None:
    """Refresh the planner's statistics; both backends choose indexes by them."""
    session.execute(text("ANALYZE"))
    session.commit()


# --- Synthetic clinics -----------------------------------------------------------------


def read_population(path: Path) -> dict[str, int]:
    """Return postcode -> population (FOLKETAL); empty counts as 1 so every code can be drawn.

    read_postcode_register() drops this column because the app has no use for it.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return {
            row["POSTNR"].strip(): int(row["FOLKETAL"]) if row["FOLKETAL"].strip() else 1
            for row in csv.DictReader(handle, delimiter="\t")
        }


def places_in_use(path: Path) -> list[Place]:
    """The register's postcodes still in use, with their population."""
    population = read_population(path)
    return [
        Place(
            postcode=str(entry["postcode"]),
            city=str(entry["place"]),
            latitude=float(entry["latitude"]),  # type: ignore[arg-type]
            longitude=float(entry["longitude"]),  # type: ignore[arg-type]
            population=population.get(str(entry["postcode"]), 1),
        )
        for entry in read_postcode_register(path)
        if entry["in_use"]
    ]


def draw_places(rng: random.Random, places: Sequence[Place], count: int) -> list[Place]:
    """Draw places with replacement, as often as people live there."""
    return rng.choices(places, weights=[place.population for place in places], k=count)


def scatter(rng: random.Random, place: Place) -> tuple[float, float]:
    """A point uniformly inside a disc of MAX_OFFSET_KM around the postcode centre."""
    # sqrt keeps the density even; without it points would bunch at the centre.
    distance = MAX_OFFSET_KM * math.sqrt(rng.random())
    bearing = rng.uniform(0.0, 2.0 * math.pi)
    north_km = distance * math.cos(bearing)
    east_km = distance * math.sin(bearing)
    latitude = place.latitude + north_km / KM_PER_DEGREE_LATITUDE
    longitude = place.longitude + east_km / (
        KM_PER_DEGREE_LATITUDE * math.cos(math.radians(place.latitude))
    )
    return latitude, longitude


def clinic_row(rng: random.Random, place: Place, number: int, now: datetime) -> dict[str, Any]:
    """Every non-null column of one clinic, ready for a Core insert."""
    latitude, longitude = scatter(rng, place)
    return {
        "name": f"{rng.choice(CLINIC_KINDS)} {place.city} {number}",
        "address": f"{rng.choice(STREETS)} {rng.randint(1, 150)}",
        "postcode": place.postcode,
        "city": place.city,
        "latitude": latitude,
        "longitude": longitude,
        "location_source": "given",
        "step_free_access": rng.choice((True, False, None)),
        "active": True,
        "created_at": now,
        "updated_at": now,
    }


def clinician_row(rng: random.Random, hpr_number: int, now: datetime) -> dict[str, Any]:
    """One clinician (the person), with a unique HPR number; the licence not yet checked."""
    return {
        "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
        "hpr_number": str(hpr_number),
        "languages": ["nb"] + [code for code, share in LANGUAGE_SHARES if rng.random() < share],
        "licence_status": "unchecked",
        "licence_categories": [],
        "created_at": now,
        "updated_at": now,
    }


def practice_row(
    rng: random.Random, clinic_id: int, clinician_id: int, now: datetime
) -> dict[str, Any]:
    """A clinician at a clinic: their profession, services, agreement and answer there."""
    profession = rng.choice(PROFESSIONS)
    agreement = profession is not Profession.CHIROPRACTOR and rng.random() < 0.5
    answer = rng.choice((True, False, None))
    return {
        "clinician_id": clinician_id,
        "clinic_id": clinic_id,
        "profession": profession.value,
        "services": rng.sample(SERVICES, rng.randint(0, 3)),
        "public_agreement": agreement,
        "agreement_municipality": None,
        "accepts_new_patients": answer,
        "accepts_new_patients_confirmed_at": now if answer is not None else None,
        "active": True,
        "created_at": now,
        "updated_at": now,
    }


def insert_clinics(
    session: Session, rng: random.Random, places: Sequence[Place], count: int
) -> int:
    """Generate and insert `count` clinics with their clinicians; return clinicians added.

    Core bulk inserts in batches: the ORM unit of work would spend minutes building
    objects that nothing reads.
    """
    now = datetime.now(UTC)
    hpr_numbers = iter(range(FIRST_HPR_NUMBER, FIRST_HPR_NUMBER + 3 * count))
    clinic_insert = insert(Clinic.__table__).returning(
        Clinic.__table__.c.id, sort_by_parameter_order=True
    )
    clinician_insert = insert(Clinician.__table__).returning(
        Clinician.__table__.c.id, sort_by_parameter_order=True
    )
    practice_insert = insert(Practice.__table__).returning(Practice.__table__.c.id)
    clinicians_added = 0
    for start in range(0, count, BATCH_SIZE):
        size = min(BATCH_SIZE, count - start)
        clinics = [
            clinic_row(rng, place, start + offset + 1, now)
            for offset, place in enumerate(draw_places(rng, places, size))
        ]
        # The database hands out the ids; RETURNING in parameter order pairs them up.
        clinic_ids = session.execute(clinic_insert, clinics).scalars().all()
        # One to three clinicians a clinic, each a person of their own.
        at_clinic = [clinic_id for clinic_id in clinic_ids for _ in range(rng.randint(1, 3))]
        clinicians = [clinician_row(rng, next(hpr_numbers), now) for _ in at_clinic]
        clinician_ids = session.execute(clinician_insert, clinicians).scalars().all()
        practices = [
            practice_row(rng, clinic_id, clinician_id, now)
            for clinic_id, clinician_id in zip(at_clinic, clinician_ids, strict=True)
        ]
        # RETURNING makes SQLAlchemy send a thousand rows a statement (insertmanyvalues),
        # so PostgreSQL's statement-level listed_clinic triggers run once per thousand.
        session.execute(practice_insert, practices).all()
        clinicians_added += len(clinicians)
    session.commit()
    # The commit stores a bounded number of the clinics' API JSON; the rest as
    # `flask clinics import` does, so the API is measured on stored JSON.
    refresh_all_stale(session)
    return clinicians_added


# --- Measuring -------------------------------------------------------------------------


def pick_origins(
    session: Session, rng: random.Random, places: Sequence[Place], count: int
) -> list[PostalCode]:
    """A fixed set of query postcodes, drawn like patients: by population."""
    origins = [session.get(PostalCode, place.postcode) for place in draw_places(rng, places, count)]
    return [origin for origin in origins if origin is not None]


def timed_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000.0, result


def time_search(session: Session, origins: Sequence[PostalCode], radius_km: int) -> Timings:
    """Time find_clinics_near() for each origin, one after another."""
    samples = []
    # One untimed query first, so statement compilation is not charged to the sample.
    find_clinics_near(session, origins[0], radius_km=radius_km, limit=PAGE_SIZE)
    for origin in origins:
        # A request starts with an empty session; cached clinics would flatter the figure.
        session.expunge_all()
        elapsed, _ = timed_ms(
            lambda origin=origin: find_clinics_near(
                session, origin, radius_km=radius_km, limit=PAGE_SIZE
            )
        )
        samples.append(elapsed)
    return Timings(samples)


def time_finder(session: Session, origins: Sequence[PostalCode], query: FinderQuery) -> Timings:
    """Time the finder page's search with its counts (finder.find, with_counts) per origin.

    In CPU time: SQLite runs in this process, so the figure holds on a busy machine too.
    """

    def search(origin: PostalCode):
        return run_finder(
            session,
            origin,
            query,
            limit=PAGE_SIZE,
            offset=0,
            now=FINDER_MOMENT,
            with_counts=True,
            count_languages=LANGUAGE_CODES,
        )

    search(origins[0])
    samples = []
    for origin in origins:
        session.expunge_all()
        started = time.process_time()
        search(origin)
        samples.append((time.process_time() - started) * 1000.0)
    return Timings(samples)


def all_active_clinics(session: Session) -> list[tuple[int, float, float]]:
    # The finder also demands an active clinician; every generated clinic has one, so
    # the plain table read lists the same clinics.
    query = select(Clinic.id, Clinic.latitude, Clinic.longitude).where(Clinic.active.is_(True))
    return [(row.id, row.latitude, row.longitude) for row in session.execute(query)]


def rank_all(
    origin: PostalCode,
    clinics: Sequence[tuple[int, float, float]],
    distance: Callable[..., Any],
) -> list[tuple[float, int]]:
    """(km, id) of every clinic, nearest first, by the given geopy distance."""
    point = (origin.latitude, origin.longitude)
    return sorted((distance(point, (lat, lon)).km, clinic_id) for clinic_id, lat, lon in clinics)


def naive_search(session: Session, origin: PostalCode) -> list[tuple[float, int]]:
    """What the project must never do: a full table read and a geodesic to every clinic."""
    return rank_all(origin, all_active_clinics(session), geodesic)


def expected_page(ranked: Sequence[tuple[float, int]], radius_km: float) -> list[int]:
    """The first page find_clinics_near() promises, derived from a full ranking."""
    within = [clinic_id for km, clinic_id in ranked if km <= radius_km]
    # Nothing within the radius: the finder falls back to the nearest clinics anyway.
    page = within if within else [clinic_id for _, clinic_id in ranked]
    return page[:PAGE_SIZE]


def finder_page(session: Session, origin: PostalCode, radius_km: float) -> list[int]:
    result = find_clinics_near(session, origin, radius_km=radius_km, limit=PAGE_SIZE)
    return [hit.clinic.id for hit in result.hits]


def compare_naive(
    session: Session, origins: Sequence[PostalCode]
) -> tuple[Timings, list[str], int]:
    """Time the naive search and check the finder returns the same pages.

    Return the timings, the mismatches, and how many pages a geodesic ranking would have
    ordered differently. The check ranks by great-circle distance, which is what the finder
    uses: geodesic (ellipsoid) and great-circle (sphere) distances differ by up to ~0.5 %,
    enough to swap two clinics a few metres apart in a dense city or move one across the
    radius. Such swaps say nothing about the search, so they are counted, not failed.
    """
    samples = []
    mismatches = []
    geodesic_differs = 0
    for origin in origins:
        session.expunge_all()
        elapsed, geodesic_ranking = timed_ms(lambda origin=origin: naive_search(session, origin))
        samples.append(elapsed)
        circle_ranking = rank_all(origin, all_active_clinics(session), great_circle)
        for radius_km in RADII_KM:
            got = finder_page(session, origin, radius_km)
            if got != expected_page(circle_ranking, radius_km):
                mismatches.append(f"MISMATCH: postcode {origin.postcode} at {radius_km} km")
            elif got != expected_page(geodesic_ranking, radius_km):
                geodesic_differs += 1
    return Timings(samples), mismatches, geodesic_differs


# --- Report ----------------------------------------------------------------------------


def search_line(radius_km: int, timings: Timings) -> str:
    label = f"radius {radius_km} km:"
    return (
        f"{label:<15}p50 {timings.percentile(0.50):.1f} ms  "
        f"p95 {timings.percentile(0.95):.1f} ms  mean {timings.mean:.1f} ms  "
        f"({1000.0 / timings.mean:.0f} q/s)"
    )


def finder_line(name: str, timings: Timings) -> str:
    label = f"finder {name}:"
    return (
        f"{label:<15}p50 {timings.percentile(0.50):.1f} ms  "
        f"p95 {timings.percentile(0.95):.1f} ms  mean {timings.mean:.1f} ms  "
        "CPU (25 km, with the counts)"
    )


def naive_lines(
    naive: Timings,
    searches: dict[int, Timings],
    mismatches: list[str],
    geodesic_differs: int,
    checked: int,
) -> list[str]:
    speedups = ", ".join(
        f"{naive.mean / timings.mean:.0f}x at {radius_km} km"
        for radius_km, timings in searches.items()
    )
    return [
        f"naive geodesic full scan ({len(naive.samples_ms)} queries): "
        f"mean {naive.mean:.0f} ms  -> the search is faster by {speedups}",
        f"same first {PAGE_SIZE} ids as a great-circle full scan, {checked} pages: "
        + ("OK" if not mismatches else f"{len(mismatches)} MISMATCHED"),
        *mismatches,
        f"  (geodesic order differs on {geodesic_differs} of {checked} pages: "
        "ellipsoid vs sphere, not an error)",
    ]


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the figures."""
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, database_url: str) -> list[str]:
    """Build the database, measure, and return the report lines."""
    rng = random.Random(args.seed)
    progress("migrating and loading postcodes …")
    app = create_bench_app(database_url)
    places = places_in_use(POSTCODE_FILE)
    with app.app_context():
        session = db.session
        progress(f"inserting {args.clinics} clinics …")
        insert_seconds = time.perf_counter()
        clinicians = insert_clinics(session, rng, places, args.clinics)
        insert_seconds = time.perf_counter() - insert_seconds
        analyze(session)
        clinic_count = session.scalar(select(func.count()).select_from(Clinic))

        origins = pick_origins(session, rng, places, args.queries)
        searches: dict[int, Timings] = {}
        for radius_km in RADII_KM:
            progress(f"timing {len(origins)} searches at {radius_km} km …")
            searches[radius_km] = time_search(session, origins, radius_km)
        finders: dict[str, Timings] = {}
        for name, query in FINDER_QUERIES.items():
            progress(f"timing {len(origins)} finder searches with counts ({name}) …")
            finders[name] = time_finder(session, origins, query)
        naive_origins = origins[: args.naive_queries]
        progress(f"timing {len(naive_origins)} naive full scans …")
        naive, mismatches, geodesic_differs = compare_naive(session, naive_origins)
        backend = db.engine.dialect.name
        db.session.remove()
        db.engine.dispose()

    return [
        f"clinics={clinic_count}  clinicians={clinicians}  backend={backend}  "
        f"queries={len(origins)}  seed={args.seed}",
        f"insert: {insert_seconds:.1f} s  (generation + Core bulk insert)",
        *(search_line(radius_km, timings) for radius_km, timings in searches.items()),
        *(finder_line(name, timings) for name, timings in finders.items()),
        *naive_lines(
            naive, searches, mismatches, geodesic_differs, len(naive_origins) * len(RADII_KM)
        ),
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinics", type=int, default=100_000, help="clinics to generate")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per radius")
    parser.add_argument(
        "--naive-queries", type=int, default=5, help="full scans to time (seconds each)"
    )
    parser.add_argument(
        "--database-url",
        help="an existing database whose public schema may be wiped (default: temp SQLite)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for clinics and queries")
    args = parser.parse_args(argv)
    if args.clinics < 1 or args.queries < 1 or args.naive_queries < 1:
        parser.error("--clinics, --queries and --naive-queries must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.database_url:
        lines = run(args, normalise_database_url(args.database_url))
    else:
        with tempfile.TemporaryDirectory(prefix="search-bench-") as directory:
            lines = run(args, f"sqlite:///{Path(directory) / 'bench.sqlite3'}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
