"""Measure what a patient's phone downloads and when it sees something, page by page.

1. builds a demo SQLite database in a temporary folder the way ``make db`` does (the real
   migrations, the postcode register, data/clinics.csv), through the ``flask`` CLI;
2. serves it with ``gunicorn -w 2`` on a free loopback port (development settings,
   geocoding off, no rate limits);
3. opens each page in headless Chromium (Playwright, /usr/bin/chromium) as a phone:
   360×800 CSS pixels, 4× CPU slowdown (CDP ``Emulation.setCPUThrottlingRate``) and Slow 4G
   (150 ms latency, 1.6 Mbit/s down, 750 kbit/s up; CDP
   ``Network.emulateNetworkConditions``), with a cold cache; map tiles are blocked and left
   out of every figure;
4. opens it again in the same browser (a repeat visit) and counts the static files fetched
   again (over the network, or revalidated with a 304; not from the browser's cache);
5. prints, for the results page (/find?postcode=0150), the first clinic's page and the
   contact page: bytes transferred (headers included), requests, first contentful paint,
   where the first result starts (its y, and when it was painted), and the repeat visit;
   then PASS or MISS against the targets (results page ≤ 120 KB, first result painted
   ≤ 1.0 s, no static file fetched again).

``python bench/page_weight.py --help`` for the options; ``make bench-page-weight`` runs it.
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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gunicorn_process import free_port, start_gunicorn, stop_server
from playwright.sync_api import Browser, sync_playwright

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 360, "height": 800}
CPU_SLOWDOWN = 4
# Slow 4G as Chrome's DevTools (and Lighthouse) define it: bytes per second.
SLOW_4G = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_600_000 / 8,
    "uploadThroughput": 750_000 / 8,
}
TILE_PATTERNS = ["*tile.openstreetmap.org*"]
RESULTS_TARGET_BYTES = 120 * 1024
FIRST_RESULT_TARGET_MS = 1000.0
# The first result card, as the results page marks it up.
RESULT_SELECTOR = "ol.clinic-list > li"

# Run in every page before its own scripts: mark the first result for the Element Timing
# API as soon as the parser adds it, so Chromium reports when its text was painted.
MARK_FIRST_RESULT = """
(() => {
  const selector = %s;
  const mark = () => {
    const card = document.querySelector(selector);
    if (!card) { return false; }
    for (const element of [card, ...card.querySelectorAll("*")]) {
      element.setAttribute("elementtiming", "first-result");
    }
    return true;
  };
  const observer = new MutationObserver(() => { if (mark()) { observer.disconnect(); } });
  observer.observe(document, {childList: true, subtree: true});
  window.__firstResultPaints = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.identifier === "first-result") {
        window.__firstResultPaints.push(entry.renderTime || entry.loadTime);
      }
    }
  }).observe({type: "element", buffered: true});
})();
"""

MEASURE = """
(selector) => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const card = document.querySelector(selector);
  const paints = window.__firstResultPaints || [];
  return {
    fcp: paint ? paint.startTime : null,
    resultY: card ? card.getBoundingClientRect().top + window.scrollY : null,
    resultPainted: paints.length ? Math.min(...paints) : null,
    clinicHref: card && card.querySelector("a[href^='/clinics/']")
      ? card.querySelector("a[href^='/clinics/']").getAttribute("href") : null,
  };
}
"""


@dataclass
class Traffic:
    """What one page load asked the network for, from the DevTools protocol's events."""

    urls: dict[str, str] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, float] = field(default_factory=dict)
    from_cache: set[str] = field(default_factory=set)
    statuses: dict[str, int] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    # Static paths the server's access log shows it was asked for during this load.
    served_static: list[str] = field(default_factory=list)

    def counted(self) -> list[str]:
        """The request ids that count: not tiles, not data: URLs, none that was blocked."""
        return [
            request_id
            for request_id, url in self.urls.items()
            if url.startswith("http")
            and "tile.openstreetmap.org" not in url
            and request_id not in self.blocked
        ]

    def transferred(self) -> int:
        return int(sum(self.bytes.get(request_id, 0) for request_id in self.counted()))

    def timeline(self) -> list[str]:
        """One line a request: when it started and ended (ms after the first), size, URL."""
        ids = self.counted()
        if not ids:
            return []
        zero = min(self.started[request_id] for request_id in ids)
        lines = []
        for request_id in sorted(ids, key=self.started.__getitem__):
            start = (self.started[request_id] - zero) * 1000
            end = (self.ended.get(request_id, self.started[request_id]) - zero) * 1000
            size = self.bytes.get(request_id, 0) / 1024
            lines.append(
                f"    {start:6.0f} – {end:6.0f} ms {size:6.1f} KB  {self.urls[request_id]}"
            )
        return lines

    def static_fetched_again(self) -> list[str]:
        """Static files the server was asked for (a 304 too) rather than the cache.

        The server's access log decides: DevTools reports no cache hit for a worker's
        script (the map's tile probe), which would read as a fetch.
        """
        return sorted(set(self.served_static))


@dataclass
class PageFigures:
    name: str
    path: str
    bytes: int
    requests: int
    fcp_ms: float | None
    result_y: float | None
    result_painted_ms: float | None
    refetched: list[str]
    clinic_href: str | None
    timeline: list[str]


def flask_cli(env: dict[str, str], *args: str) -> None:
    completed = subprocess.run(  # noqa: S603 - our own venv's flask, fixed arguments
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        sys.exit(f"flask {' '.join(args)} failed:\n{completed.stdout}{completed.stderr}")


def demo_environment(workdir: Path) -> dict[str, str]:
    """The app's settings for a demo database in this folder: development, geocoding off,
    no rate limits."""
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'demo.sqlite3'}",
        "APP_ENV": "development",
        "GEOCODER": "none",
        "RATELIMIT_ENABLED": "false",
    }


def build_demo_database(env: dict[str, str]) -> None:
    """Migrate, then load the postcodes and the demo clinics, as `make db` does."""
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "postcodes", "load", "--if-empty")
    flask_cli(env, "clinics", "import", "data/clinics.csv", "--if-empty")


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """Start gunicorn on the demo database and wait until it answers /healthz."""
    # The access log tells which static files a repeat visit really fetched.
    return start_gunicorn(env, port, log, options=("--access-logfile", "-"))


def warm_up(browser: Browser, url: str) -> None:
    """Open the page a few times at full speed first, so that every worker has imported
    what it needs and compressed the static files once, as a server that has been running
    has: the phone's figures should not include that."""
    for _ in range(4):
        context = browser.new_context(viewport=VIEWPORT)
        context.new_page().goto(url, wait_until="networkidle")
        context.close()


def load(page, cdp, url: str) -> Traffic:
    """Open the URL and wait until the page and its map are done; what went over the wire."""
    traffic = Traffic()

    def sent(event):
        traffic.urls[event["requestId"]] = event["request"]["url"]
        traffic.started.setdefault(event["requestId"], event["timestamp"])

    def received(event):
        response = event["response"]
        traffic.statuses[event["requestId"]] = response["status"]
        if response.get("fromDiskCache") or response.get("fromPrefetchCache"):
            traffic.from_cache.add(event["requestId"])

    def finished(event):
        traffic.bytes[event["requestId"]] = event["encodedDataLength"]
        traffic.ended[event["requestId"]] = event["timestamp"]

    def served_from_cache(event):
        traffic.from_cache.add(event["requestId"])

    def failed(event):
        if event.get("blockedReason"):
            traffic.blocked.add(event["requestId"])

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceived", received)
    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.requestServedFromCache", served_from_cache)
    cdp.on("Network.loadingFailed", failed)
    page.goto(url, wait_until="load")
    # The map loads Leaflet after the load event; let it finish before counting.
    page.wait_for_load_state("networkidle")
    cdp.remove_listener("Network.requestWillBeSent", sent)
    cdp.remove_listener("Network.responseReceived", received)
    cdp.remove_listener("Network.loadingFinished", finished)
    cdp.remove_listener("Network.requestServedFromCache", served_from_cache)
    cdp.remove_listener("Network.loadingFailed", failed)
    return traffic


STATIC_REQUEST = re.compile(r'"GET (/static/[^ ?"]+)')


def visit_twice(
    browser: Browser, url: str, blocked: Sequence[str], server_log: Path
) -> tuple[Traffic, dict, Traffic]:
    """Load a page cold as a slow phone, then again from the same browser's cache."""
    context = browser.new_context(
        viewport=VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    context.add_init_script(MARK_FIRST_RESULT % json.dumps(RESULT_SELECTOR))
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    # Blocked here, not with Playwright's routing, which would turn the HTTP cache off.
    cdp.send("Network.setBlockedURLs", {"urls": [*TILE_PATTERNS, *blocked]})
    cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    first = load(page, cdp, url)
    figures = page.evaluate(MEASURE, RESULT_SELECTOR)
    # A repeat visit: a new navigation to the page, as following a link back to it is.
    page.goto("about:blank")
    offset = server_log.stat().st_size
    repeat = load(page, cdp, url)
    time.sleep(0.5)  # gunicorn writes its access log line after the answer
    with server_log.open("rb") as log:
        log.seek(offset)
        repeat.served_static = STATIC_REQUEST.findall(log.read().decode("utf-8", "replace"))
    context.close()
    return first, figures, repeat


def median_of(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def measure_page(
    browser: Browser,
    base_url: str,
    name: str,
    path: str,
    *,
    runs: int,
    server_log: Path,
    blocked: Sequence[str] = (),
) -> PageFigures:
    """The page's figures over several cold and repeat visits: times are the medians."""
    warm_up(browser, base_url + path)
    visits = [visit_twice(browser, base_url + path, blocked, server_log) for _ in range(runs)]
    first, figures, _ = visits[0]
    refetched = sorted({url for *_, repeat in visits for url in repeat.static_fetched_again()})
    return PageFigures(
        name=name,
        path=path,
        bytes=int(statistics.median(visit.transferred() for visit, _, _ in visits)),
        requests=len(first.counted()),
        fcp_ms=median_of([figures["fcp"] for _, figures, _ in visits]),
        result_y=figures["resultY"],
        result_painted_ms=median_of([figures["resultPainted"] for _, figures, _ in visits]),
        refetched=refetched,
        clinic_href=figures["clinicHref"],
        timeline=first.timeline(),
    )


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def report(pages: list[PageFigures], *, runs: int, verbose: bool = False) -> list[str]:
    """The figures as a table, then the targets with PASS or MISS (and each request)."""
    lines = [
        f"Chromium {VIEWPORT['width']}×{VIEWPORT['height']}, {CPU_SLOWDOWN}× CPU slowdown, Slow 4G "
        f"({SLOW_4G['latency']} ms, {SLOW_4G['downloadThroughput'] * 8 / 1e6:.1f} Mbit/s down); "
        f"map tiles blocked and not counted; times are medians of {runs} cold visits",
        "",
        f"{'page':<9} {'KB':>6} {'requests':>8} {'FCP':>8} {'1st result y':>12} "
        f"{'painted':>8} {'repeat: static fetched':>22}",
    ]
    for figures in pages:
        y = "-" if figures.result_y is None else f"{figures.result_y:.0f} px"
        lines.append(
            f"{figures.name:<9} {figures.bytes / 1024:>6.1f} {figures.requests:>8} "
            f"{milliseconds(figures.fcp_ms):>8} {y:>12} "
            f"{milliseconds(figures.result_painted_ms):>8} {len(figures.refetched):>22}"
        )
    for figures in pages:
        for url in figures.refetched:
            lines.append(f"  {figures.name}: fetched again on the repeat visit: {url}")
    if verbose:
        for figures in pages:
            lines += ["", f"{figures.name} ({figures.path}), first visit:", *figures.timeline]
    results = pages[0]
    painted = results.result_painted_ms
    on_first_screen = results.result_y is not None and results.result_y < VIEWPORT["height"]
    refetched = sum(len(figures.refetched) for figures in pages)
    lines += [
        "",
        f"results page ≤ {RESULTS_TARGET_BYTES // 1024} KB: {results.bytes / 1024:.1f} KB "
        f"{verdict(results.bytes <= RESULTS_TARGET_BYTES)}",
        f"first result painted on the first screen ≤ {FIRST_RESULT_TARGET_MS / 1000:.1f} s: "
        f"{milliseconds(painted)}"
        + ("" if on_first_screen else f" (but below the first {VIEWPORT['height']} px)")
        + " "
        + verdict(on_first_screen and painted is not None and painted <= FIRST_RESULT_TARGET_MS),
        f"repeat visits fetch no static file again: {refetched} fetched {verdict(refetched == 0)}",
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--postcode", default="0150", help="the results page's postcode (default 0150)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="list every request of each first visit"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="cold and repeat visits per page; times are their medians (default 3)",
    )
    parser.add_argument(
        "--block",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also block these URLs (e.g. '*designsystemet.*.css'), to see what a file costs",
    )
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium (default {CHROMIUM})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not Path(args.chromium).exists():
        sys.exit(f"No Chromium at {args.chromium}: `make browser` installs Debian's.")
    with tempfile.TemporaryDirectory(prefix="page-weight-") as workdir:
        env = demo_environment(Path(workdir))
        print("building the demo database …", file=sys.stderr, flush=True)
        build_demo_database(env)
        port = free_port()
        server_log = Path(workdir) / "gunicorn.log"
        server = start_server(env, port, server_log)
        base_url = f"http://127.0.0.1:{port}"
        try:
            options = {"runs": args.runs, "blocked": args.block, "server_log": server_log}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium)
                results = measure_page(
                    browser, base_url, "results", f"/find?postcode={args.postcode}", **options
                )
                if results.clinic_href is None:
                    sys.exit("The results page listed no clinic: nothing to measure.")
                pages = [
                    results,
                    measure_page(browser, base_url, "clinic", results.clinic_href, **options),
                    measure_page(browser, base_url, "contact", "/contact", **options),
                ]
                browser.close()
        finally:
            stop_server(server)
    print("\n".join(report(pages, runs=args.runs, verbose=args.verbose)))


if __name__ == "__main__":
    main()
