"""Lighthouse's four scores and LCP for each patient page, against the targets.

1. builds a demo SQLite database and serves it with ``gunicorn -w 2`` on a free loopback
   port, as ``page_weight.py`` does (its helpers, shared);
2. runs Lighthouse (the npm package package.json pins, ``node_modules/.bin/lighthouse``)
   with its mobile defaults (a Moto G Power's screen, simulated Slow 4G and 4× CPU
   slowdown) in Debian's Chromium (``CHROME_PATH=/usr/bin/chromium``, headless) against
   the finder, a results page, a complaint's results, the first result's clinic page and
   the contact page, ``--runs`` times each (3; one run's performance and LCP can differ
   by several points and half a second from the next);
3. prints the medians of performance, accessibility, best practices and SEO, and of the
   largest contentful paint, for each page; then PASS or MISS against the targets (100
   for accessibility, best practices and SEO on every page; performance ≥ 95 and
   LCP ≤ 1.5 s on the results page), and for every score below its target the audits
   that cost it points (in how many runs, where not in all).

There is no internet here, so the map's tiles cannot load: the map says so instead and
the page loads fewer bytes than it would with tiles (see bench/README.md).

``python bench/lighthouse.py --help`` for the options; ``make bench-lighthouse`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from page_weight import (
    CHROMIUM,
    PROJECT_ROOT,
    build_demo_database,
    demo_environment,
    free_port,
    start_server,
    stop_server,
)

LIGHTHOUSE = PROJECT_ROOT / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
SHORT_NAMES = {
    "performance": "perf",
    "accessibility": "a11y",
    "best-practices": "best",
    "seo": "SEO",
}
RESULTS_PAGE = "results"
PERFORMANCE_TARGET = 95
LCP_TARGET_MS = 1500.0
PAGES = [
    ("finder", "/find"),
    (RESULTS_PAGE, "/find?postcode=0150"),
    ("complaint", "/find?complaint=sciatica"),
    # The clinic page's path is the first result's link, found at run time.
    ("clinic", None),
    ("contact", "/contact"),
]


@dataclass
class PageScores:
    name: str
    path: str
    scores: dict[str, int]
    lcp_ms: float | None
    # Per category below its target: "audit id (score): title" for each audit that counts.
    failed: dict[str, list[str]]
    # One line a run: where its largest contentful paint went.
    lcp_runs: list[str]


def run_lighthouse(url: str, chromium: str, report: Path) -> dict:
    """Run Lighthouse (mobile defaults) once on the URL; its JSON report."""
    completed = subprocess.run(  # noqa: S603 - the pinned lighthouse, fixed arguments
        [
            str(LIGHTHOUSE),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={report}",
            f"--only-categories={','.join(CATEGORIES)}",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
        ],
        env={**os.environ, "CHROME_PATH": chromium},
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        sys.exit(f"lighthouse failed on {url}:\n{completed.stdout}{completed.stderr}")
    return json.loads(report.read_text(encoding="utf-8"))


def target(category: str, name: str) -> int | None:
    """The score this page must reach in this category (None: no target)."""
    if category == "performance":
        return PERFORMANCE_TARGET if name == RESULTS_PAGE else None
    return 100


def failed_audits(result: dict, category: str) -> list[str]:
    """The audits that count towards the category and did not pass, worst first."""
    audits = result["audits"]
    failing = []
    for ref in result["categories"][category]["auditRefs"]:
        audit = audits[ref["id"]]
        if ref.get("weight", 0) > 0 and audit.get("score") is not None and audit["score"] < 1:
            shown = audit.get("displayValue")
            failing.append(
                (
                    audit["score"],
                    f"{ref['id']} ({audit['score']:.2f}"
                    + (f", {shown}" if shown else "")
                    + f"): {audit['title']}",
                )
            )
    return [line for _, line in sorted(failing, key=lambda item: item[0])]


def scores_of(name: str, path: str, results: list[dict]) -> PageScores:
    """The page's median scores and LCP over its runs and, for each missed target, the
    audits that failed (with in how many runs, where not in all)."""
    scores = {
        category: round(
            statistics.median(result["categories"][category]["score"] * 100 for result in results)
        )
        for category in CATEGORIES
    }
    lcps = [
        result["audits"]["largest-contentful-paint"]["numericValue"]
        for result in results
        if "numericValue" in result["audits"].get("largest-contentful-paint", {})
    ]
    failed = {}
    for category in CATEGORIES:
        wanted = target(category, name)
        if wanted is not None and scores[category] < wanted:
            counts = Counter(line for result in results for line in failed_audits(result, category))
            failed[category] = [
                line + ("" if count == len(results) else f" [{count} of {len(results)} runs]")
                for line, count in counts.items()
            ]
    lcp = statistics.median(lcps) if lcps else None
    return PageScores(
        name=name,
        path=path,
        scores=scores,
        lcp_ms=lcp,
        failed=failed,
        lcp_runs=[lcp_story(result) for result in results],
    )


def lcp_story(result: dict) -> str:
    """Where one run's LCP went: the element, its parts, what blocked the first render."""
    audits = result["audits"]

    def seconds(audit_id: str) -> str:
        value = audits.get(audit_id, {}).get("numericValue")
        return "-" if value is None else f"{value / 1000:.2f} s"

    items = audits.get("lcp-breakdown-insight", {}).get("details", {}).get("items", [])
    parts = next((item["items"] for item in items if item.get("type") == "table"), [])
    element = next((item.get("nodeLabel") for item in items if item.get("type") == "node"), "?")
    blocking = audits.get("render-blocking-insight", {})
    blocking_files = [
        item["url"].rsplit("/", 1)[-1] for item in blocking.get("details", {}).get("items", [])
    ]
    saving = (blocking.get("metricSavings") or {}).get("LCP", 0)
    return (
        f"LCP {seconds('largest-contentful-paint')} (FCP {seconds('first-contentful-paint')})"
        f" on «{element}»: "
        + ", ".join(f"{part['label'].lower()} {part['duration']:.0f} ms" for part in parts)
        + f"; render-blocking ({saving:.0f} ms to save): {', '.join(blocking_files) or 'none'}"
    )


def first_clinic_path(base_url: str) -> str:
    """The first result's clinic page on the results page, as a patient would follow it."""
    with urllib.request.urlopen(f"{base_url}/find?postcode=0150", timeout=30) as page:  # noqa: S310
        found = re.search(r'href="(/clinics/[^"?#]+)', page.read().decode("utf-8"))
    if found is None:
        sys.exit("The results page listed no clinic: no clinic page to measure.")
    return found.group(1)


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def report(pages: list[PageScores], version: str, runs: int) -> list[str]:
    """The scores as a table, then each target with PASS or MISS and what failed."""
    lines = [
        f"Lighthouse {version}, mobile defaults (simulated Slow 4G, 4× CPU slowdown), "
        f"Chromium headless; medians of {runs} cold runs per page; no map tiles (no internet)",
        "",
        f"{'page':<10} {'perf':>4} {'a11y':>4} {'best':>4} {'SEO':>4} {'LCP':>7}  path",
    ]
    for page in pages:
        lcp = "-" if page.lcp_ms is None else f"{page.lcp_ms / 1000:.2f} s"
        lines.append(
            f"{page.name:<10} "
            + " ".join(f"{page.scores[category]:>4}" for category in CATEGORIES)
            + f" {lcp:>7}  {page.path}"
        )
    lines.append("")
    for category in ("accessibility", "best-practices", "seo"):
        missed = [page.name for page in pages if page.scores[category] < 100]
        lines.append(
            f"{category} 100 on every page: "
            + (", ".join(missed) + " below " if missed else "")
            + verdict(not missed)
        )
    results = next(page for page in pages if page.name == RESULTS_PAGE)
    performance = results.scores["performance"]
    lines.append(
        f"results page performance ≥ {PERFORMANCE_TARGET}: {performance} "
        f"{verdict(performance >= PERFORMANCE_TARGET)}"
    )
    lcp = results.lcp_ms
    lines.append(
        f"results page LCP ≤ {LCP_TARGET_MS / 1000:.1f} s: "
        + ("-" if lcp is None else f"{lcp / 1000:.2f} s")
        + f" {verdict(lcp is not None and lcp <= LCP_TARGET_MS)}"
    )
    if lcp is None or lcp > LCP_TARGET_MS:
        lines += ["", "results page LCP, run by run:"]
        lines += [f"  {story}" for story in results.lcp_runs]
    for page in pages:
        for category, audits in page.failed.items():
            lines += ["", f"{page.name} {category} {page.scores[category]}, failing audits:"]
            lines += [f"  {audit}" for audit in audits] or ["  (none weighted)"]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium (default {CHROMIUM})")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="Lighthouse runs per page; scores and LCP are their medians (default 3)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="FOLDER",
        help="keep Lighthouse's JSON reports in this folder (one per page and run)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not Path(args.chromium).exists():
        sys.exit(f"No Chromium at {args.chromium}: `make browser` installs Debian's.")
    if not LIGHTHOUSE.exists():
        sys.exit(f"No Lighthouse at {LIGHTHOUSE}: run `npm ci` (make bench-lighthouse does).")
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as workdir:
        reports = args.keep or Path(workdir)
        reports.mkdir(parents=True, exist_ok=True)
        env = demo_environment(Path(workdir))
        print("building the demo database …", file=sys.stderr, flush=True)
        build_demo_database(env)
        port = free_port()
        server = start_server({**env, "PORT": str(port)}, port, Path(workdir) / "gunicorn.log")
        base_url = f"http://127.0.0.1:{port}"
        pages, version = [], "?"
        try:
            for name, path in PAGES:
                path = path or first_clinic_path(base_url)
                results = []
                for run in range(1, args.runs + 1):
                    print(f"lighthouse {path} ({run}/{args.runs}) …", file=sys.stderr, flush=True)
                    report_path = reports / f"{name}-{run}.json"
                    results.append(run_lighthouse(base_url + path, args.chromium, report_path))
                version = results[0].get("lighthouseVersion", version)
                pages.append(scores_of(name, path, results))
        finally:
            stop_server(server)
    print("\n".join(report(pages, version, args.runs)))


if __name__ == "__main__":
    main()
