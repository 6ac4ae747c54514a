"""Where an API search answer's time goes: CPU per request in process, at 100,000 clinics.

Builds the server benchmark's directory (100,000 clinics placed where people live, seed 1;
``search_bench.insert_clinics``) unless ``--reuse`` finds one already built, then asks
the app in this process (Flask's test client, no HTTP) for ``/healthz`` (the ceiling) and
``/api/v1/clinics?postcode=…&radius=25`` and ``radius=100`` at postcodes drawn by
population (seed 2, as the server benchmark draws them), in turn, and prints the p50 and
p90 CPU time of each (``time.process_time``: it holds on a machine others share; on
PostgreSQL the server's own work is not in it), the API's share of ``/healthz``'s, and
the p50 wall-clock time (which has the database's work and round trips in it)::

    python bench/api_breakdown.py [--queries 200] [--database-url URL] [--reuse]
                                  [--rounds 2] [--profile 300]

Rate limits are on, in memory, as in production (the server benchmark turns them off).
``--profile N`` also prints cProfile's top functions over N API requests at 25 km.
Without ``--database-url`` the database is the SQLite file ``/tmp/api-breakdown.sqlite3``;
a PostgreSQL URL's ``public`` schema is dropped and recreated when it is built.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from collections.abc import Sequence

from benchdb import POSTCODE_FILE, directory_arguments
from find_breakdown import build, percentile
from search_bench import draw_places, places_in_use
from server_bench import vacuum_analyze
from sqlalchemy import func, select

from clinic_finder import create_app
from clinic_finder.config import normalise_database_url
from clinic_finder.extensions import db
from clinic_finder.models import ListedClinic
from clinic_finder.search import DriverStatement

DEFAULT_SQLITE = "/tmp/api-breakdown.sqlite3"
ENDPOINTS = {
    "healthz": "/healthz?postcode={}",
    "api_25km": "/api/v1/clinics?postcode={}&radius=25",
    "api_100km": "/api/v1/clinics?postcode={}&radius=100",
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(database_url: str, queries: int, rounds: int, profile: int) -> list[str]:
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "APP_ENV": "development", "GEOCODER": "none"}
    )
    postcodes = [
        place.postcode
        for place in draw_places(random.Random(2), places_in_use(POSTCODE_FILE), queries)
    ]
    client = app.test_client()
    with app.app_context():
        listed = db.session.scalar(select(func.count()).select_from(ListedClinic))
        backend = db.engine.dialect.name
    for pattern in ENDPOINTS.values():  # warm up: imports, compiled statements
        for postcode in postcodes[:5]:
            client.get(pattern.format(postcode))
    samples: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    walls: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    in_statements: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    spent = StatementClock()
    for _round in range(rounds):
        for name, pattern in ENDPOINTS.items():
            for postcode in postcodes:
                spent.seconds = 0.0
                started, clock = time.process_time(), time.perf_counter()
                with spent:
                    response = client.get(pattern.format(postcode))
                samples[name].append((time.process_time() - started) * 1000)
                walls[name].append((time.perf_counter() - clock) * 1000)
                in_statements[name].append(spent.seconds * 1000)
                if response.status_code != 200:
                    sys.exit(f"{pattern.format(postcode)} answered {response.status_code}")
    ceiling = percentile(samples["healthz"], 0.5)
    lines = [
        f"{backend}: {listed} listed clinics, {len(postcodes)} postcodes x {rounds} rounds, "
        f"load average {os.getloadavg()[0]:.2f}; CPU ms per request in this process",
        f"{'endpoint':<12}{'p50':>8}{'p90':>8}{'healthz/x':>11}{'wall p50':>10}"
        f"{'statements':>12}{'bound':>8}",
    ]
    for name, values in samples.items():
        p50 = percentile(values, 0.5)
        statements = percentile(in_statements[name], 0.5)
        lines.append(
            f"{name:<12}{p50:8.3f}{percentile(values, 0.9):8.3f}{ceiling / p50:10.0%}"
            f"{percentile(walls[name], 0.5):10.3f}{statements:12.3f}"
            f"{ceiling / (ceiling + statements):8.0%}"
        )
    lines.append(
        "statements = wall ms p50 inside the search's and the stored answers' statements "
        "(database and driver); bound = healthz / (healthz + statements), the share an "
        "answer would reach if all else it does on top of /healthz cost nothing"
    )
    if profile:
        profiler = cProfile.Profile()
        paths = [ENDPOINTS["api_25km"].format(code) for code in postcodes]
        profiler.enable()
        for index in range(profile):
            client.get(paths[index % len(paths)])
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(45)
    return lines


class StatementClock:
    """While entered, adds the wall time spent in ``DriverStatement.rows`` — every statement
    an API search runs (the index query, the count, the stored answers' read) — to
    ``seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._rows = DriverStatement.rows

    def __enter__(self) -> StatementClock:
        rows = self._rows

        def timed_rows(statement, connection, parameters):
            started = time.perf_counter()
            try:
                return rows(statement, connection, parameters)
            finally:
                self.seconds += time.perf_counter() - started

        DriverStatement.rows = timed_rows
        return self

    def __exit__(self, *_exc) -> None:
        DriverStatement.rows = self._rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_arguments(parser, DEFAULT_SQLITE)
    parser.add_argument("--rounds", type=int, default=2, help="times through the postcodes")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many API requests")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    url = normalise_database_url(args.database_url or f"sqlite:///{DEFAULT_SQLITE}")
    if not args.reuse:
        build(url, args.clinics)
        vacuum_analyze(url)
    print("\n".join(measure(url, args.queries, args.rounds, args.profile)))


if __name__ == "__main__":
    main()
