"""Lighthouse's four scores and LCP for each patient page, against the targets.

1. builds a demo SQLite database and serves it with ``gunicorn -w 2`` on a free loopback
   port, as ``page_weight.py`` does (its helpers, shared);
2. runs Lighthouse (the npm package package.json pins, ``node_modules/.bin/lighthouse``)
   with its mobile defaults (a Moto G Power's screen, simulated Slow 4G and 4× CPU
   slowdown) in Debian's Chromium (``CHROME_PATH=/usr/bin/chromium``, headless) against
   the finder, a results page, a complaint's results, the first result's clinic page and
   the contact page, one cold run each;
3. prints performance, accessibility, best practices and SEO, and the largest contentful
   paint, for each page; then PASS or MISS against the targets (100 for accessibility,
   best practices and SEO on every page; performance ≥ 95 and LCP ≤ 1.5 s on the results
   page), and for every score below its target the audits that cost it points.

There is no internet here, so the map's tiles cannot load: the map says so instead and
the page loads fewer bytes than it would with tiles (see bench/README.md).

``python bench/lighthouse.py --help`` for the options; ``make bench-lighthouse`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
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


def scores_of(name: str, path: str, result: dict) -> PageScores:
    """The page's scores, LCP and, for each missed target, the failing audits."""
    scores = {
        category: round(result["categories"][category]["score"] * 100) for category in CATEGORIES
    }
    lcp = result["audits"].get("largest-contentful-paint", {}).get("numericValue")
    failed = {}
    for category in CATEGORIES:
        wanted = target(category, name)
        if wanted is not None and scores[category] < wanted:
            failed[category] = failed_audits(result, category)
    return PageScores(name=name, path=path, scores=scores, lcp_ms=lcp, failed=failed)


def first_clinic_path(base_url: str) -> str:
    """The first result's clinic page on the results page, as a patient would follow it."""
    with urllib.request.urlopen(f"{base_url}/find?postcode=0150", timeout=30) as page:  # noqa: S310
        found = re.search(r'href="(/clinics/[^"?#]+)', page.read().decode("utf-8"))
    if found is None:
        sys.exit("The results page listed no clinic: no clinic page to measure.")
    return found.group(1)


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def report(pages: list[PageScores], version: str) -> list[str]:
    """The scores as a table, then each target with PASS or MISS and what failed."""
    lines = [
        f"Lighthouse {version}, mobile defaults (simulated Slow 4G, 4× CPU slowdown), "
        "Chromium headless; one cold run per page; no map tiles (no internet)",
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
    for page in pages:
        for category, audits in page.failed.items():
            lines += ["", f"{page.name} {category} {page.scores[category]}, failing audits:"]
            lines += [f"  {audit}" for audit in audits] or ["  (none weighted)"]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium (default {CHROMIUM})")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="FOLDER",
        help="keep Lighthouse's JSON reports in this folder (one per page)",
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
                print(f"lighthouse {path} …", file=sys.stderr, flush=True)
                result = run_lighthouse(base_url + path, args.chromium, reports / f"{name}.json")
                version = result.get("lighthouseVersion", version)
                pages.append(scores_of(name, path, result))
        finally:
            stop_server(server)
    print("\n".join(report(pages, version)))


if __name__ == "__main__":
    main()
