"""Where a results page's time goes: `/find` at 100,000 clinics, part by part, in CPU time.

Builds the server benchmark's directory (100,000 clinics placed where people live, seed 1;
``search_bench.insert_clinics``) unless ``--reuse`` finds one already built, then asks
the app in this process (Flask's test client, no HTTP) for ``/find?postcode=…&radius=25``
at postcodes drawn by population (seed 2, as the server benchmark draws them), and prints
the p50 and p90 CPU time (``time.process_time``: it holds on a machine others share) of
the whole request and of each part of it:

* **professions** and **filters** — the counts beside each profession, filter and language;
* **search** — choosing the page's clinics and the total (``rank_clinics_near``);
* **load** — reading what the page's cards show of its clinics (``cards.load_cards``);
* **map** — the folium map's parts for the page;
* **render** — the page's template, the map's parts included;
* **rest** — everything else: the form's validation, the postcode, Flask, the response.

Since issue 16 the results page leaves its search form out and counts nothing: opening
"Change search" fetches the form with its counts from ``/find/search-form``. The same
parts are then printed for that request too, at the same postcodes (professions, filters,
render and rest; the others are zero there): what a patient who opens the panel adds.

The parts are timed by wrapping the functions the views call, in this process only::

    python bench/find_breakdown.py [--queries 200] [--database-url URL] [--reuse]

Without ``--database-url`` the database is the SQLite file ``/tmp/find-breakdown.sqlite3``
(``--reuse`` keeps it between runs; otherwise it is rebuilt). A PostgreSQL URL's
``public`` schema is dropped and recreated, as the other benchmarks do.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import wraps

from benchdb import POSTCODE_FILE, create_bench_app, directory_arguments
from search_bench import analyze, draw_places, insert_clinics, places_in_use
from sqlalchemy import func, select

from clinic_finder import create_app, finder
from clinic_finder.config import normalise_database_url
from clinic_finder.extensions import db
from clinic_finder.models import Clinic
from clinic_finder.public import views

DEFAULT_SQLITE = "/tmp/find-breakdown.sqlite3"
PARTS = ("professions", "filters", "search", "load", "map", "render")
# Where each part lives: (module, function name) the views reach it through.
WRAPPED = {
    "professions": (finder, "_count_professions"),
    "filters": (finder, "_count_filters"),
    "search": (finder, "rank_clinics_near"),
    "load": (finder, "load_cards"),
    "map": (views, "build_results_map"),
    "render": (views, "render_template"),
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(database_url: str, clinics: int) -> None:
    """The server benchmark's directory: `clinics` clinics, seed 1."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        if os.path.exists(path):
            os.remove(path)
    progress("migrating and loading postcodes …")
    app = create_bench_app(database_url)
    with app.app_context():
        progress(f"inserting {clinics} clinics …")
        insert_clinics(db.session, random.Random(1), places_in_use(POSTCODE_FILE), clinics)
        analyze(db.session)
        db.session.remove()
        db.engine.dispose()


def instrument(spent: dict[str, float], waited: dict[str, float]) -> None:
    """Wrap each part's function so that its CPU time adds up in `spent`, its wall-clock
    time in `waited`."""
    for part, (module, name) in WRAPPED.items():
        original = getattr(module, name)

        def timed(*args, _original=original, _part=part, **kwargs):
            started, clock = time.process_time(), time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_part] += time.process_time() - started
                waited[_part] += time.perf_counter() - clock

        setattr(module, name, wraps(original)(timed))


def percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(database_url: str, queries: int, paths_of: Sequence[Callable[[str], str]]) -> list[str]:
    """Time each of ``paths_of`` (a path for a postcode) at the same postcodes, in turn."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "APP_ENV": "development",
            "GEOCODER": "none",
            "RATELIMIT_ENABLED": False,
        }
    )
    rng = random.Random(2)
    postcodes = [
        place.postcode for place in draw_places(rng, places_in_use(POSTCODE_FILE), queries)
    ]
    spent: dict[str, float] = defaultdict(float)
    waited: dict[str, float] = defaultdict(float)
    instrument(spent, waited)
    client = app.test_client()
    with app.app_context():
        clinics = db.session.scalar(select(func.count()).select_from(Clinic))
        backend = db.engine.dialect.name
    # Warm up: imports, compiled statements, templates.
    for postcode in postcodes[:5]:
        for path_of in paths_of:
            client.get(path_of(postcode))
    lines = []
    for path_of in paths_of:
        lines += _table(client, backend, clinics, postcodes, path_of, spent, waited)
    return lines


def _table(client, backend, clinics, postcodes, path_of, spent, waited) -> list[str]:
    """Request ``path_of`` at each postcode and print its parts' p50, p90 and mean."""
    samples: dict[str, list[float]] = defaultdict(list)
    walls: dict[str, list[float]] = defaultdict(list)
    for postcode in postcodes:
        spent.clear()
        waited.clear()
        started, clock = time.process_time(), time.perf_counter()
        response = client.get(path_of(postcode))
        total = time.process_time() - started
        wall = time.perf_counter() - clock
        if response.status_code != 200:
            sys.exit(f"{path_of(postcode)} answered {response.status_code}")
        for part in PARTS:
            samples[part].append(spent[part] * 1000)
        # The map is built before the template renders it; render excludes nothing else.
        samples["rest"].append((total - sum(spent[part] for part in PARTS)) * 1000)
        samples["request"].append(total * 1000)
        for part in PARTS:
            walls[part].append(waited[part] * 1000)
        walls["rest"].append((wall - sum(waited[part] for part in PARTS)) * 1000)
        walls["request"].append(wall * 1000)
    lines = [
        f"{backend}: {clinics} clinics, {len(postcodes)} requests of {path_of('NNNN')}, "
        "ms per request: CPU of this process (on PostgreSQL the server's own work is not in\n"
        "it), and wall clock (which includes it, and any wait for a busy machine's CPUs)",
        f"{'part':<12} {'CPU p50':>8} {'CPU p90':>8} {'CPU mean':>8} "
        f"{'wall p50':>9} {'wall p90':>9}",
    ]
    for part in (*PARTS, "rest", "request"):
        values = samples[part]
        lines.append(
            f"{part:<12} {percentile(values, 0.5):8.2f} {percentile(values, 0.9):8.2f} "
            f"{statistics.fmean(values):8.2f} {percentile(walls[part], 0.5):9.2f} "
            f"{percentile(walls[part], 0.9):9.2f}"
        )
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_arguments(parser, DEFAULT_SQLITE)
    parser.add_argument(
        "--extra", default="", help="more query arguments, e.g. '&helfo=true' or '&language=pl'"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    url = normalise_database_url(args.database_url or f"sqlite:///{DEFAULT_SQLITE}")
    if not args.reuse:
        build(url, args.clinics)
    print(
        "\n".join(
            measure(
                url,
                args.queries,
                [
                    lambda code: f"/find?postcode={code}&radius=25{args.extra}",
                    lambda code: f"/find/search-form?postcode={code}&radius=25{args.extra}",
                ],
            )
        )
    )


if __name__ == "__main__":
    main()
