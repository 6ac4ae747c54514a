"""Benchmark the staff import as production runs it: 39,999 rows into 80,000 clinics.

The script builds a PostgreSQL directory of 80,000 clinics (``search_bench.insert_clinics``,
the clinics the server benchmark searches), then serves it as ``make serve`` does in
production — gunicorn with ``gunicorn.conf.py`` and its default 30 s timeout,
``APP_ENV=production``, rate limits and the geocoder's turns in Redis — with the job
worker beside it (``flask jobs work --loop``), as docs/deploy.md says to run it. It
creates a staff account with ``flask staff create``, signs in through the forms (password,
then the authenticator step, with a code computed by pyotp from the key the enrolment page
shows), uploads a clinic list of 39,999 rows and about 4.9 MB (the size that timed out in
issue 6) through the real form, follows the progress page until the file is checked,
presses Import, follows the page until it is imported, and prints:

* the upload's response time (the request only queues the check);
* how long checking (planning) took, and applying, as the staff member saw them (from
  the response to the first page saying it is done; the page is polled every second)
  and as the job recorded them (its start and end times in the database);
* the size of the largest preview page (the preview of every row, page by page, 50 rows
  a page) and the slowest one's time;
* whether every row of the file was imported, and whether gunicorn killed a worker.

Every row of the file is valid and new (HPR numbers from 910,000,000, clinic names the
directory does not have) and carries coordinates, so nothing is geocoded. The database
(``--database-url``, default ``bench_import_web`` on the local server) is created if
missing and its public schema DROPPED and recreated. A run takes about five minutes::

    python bench/import_web_bench.py [--clinics 80000] [--rows 39999]
"""

from __future__ import annotations

import argparse
import csv
import http.client
import http.cookiejar
import io
import itertools
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyotp
from benchdb import CLINIC_KINDS, FIRST_NAMES, POSTCODE_FILE, STREETS, SURNAMES, create_bench_app
from import_bench import phone_number, places_in_use, scatter
from search_bench import analyze, insert_clinics
from search_bench import places_in_use as populated_places
from sqlalchemy import create_engine, func, select, text
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from clinic_finder.config import normalise_database_url
from clinic_finder.extensions import db
from clinic_finder.models import Clinic, Clinician

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_import_web"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
FIRST_FILE_HPR = 910_000_000
STAFF_EMAIL = "bench@clinic-finder.example"
STAFF_PASSWORD = "radene sjekkes i bakgrunnen 2026"  # noqa: S105 - a throwaway local account
UPLOAD_LIMIT = 5 * 1024 * 1024  # MAX_CONTENT_LENGTH
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SERVICES = ("trening", "massasje", "dry needling", "manuell terapi", "")
LANGUAGES = ("nb", "nb;en", "nb;pl", "nn;en")
PROFESSIONS = ("fysioterapeut", "kiropraktor", "manuellterapeut")
COLUMNS = (
    "clinic_name",
    "address",
    "postcode",
    "phone",
    "clinician_name",
    "profession",
    "hpr_number",
    "helfo_agreement",
    "accepts_new_patients",
    "languages",
    "services",
    "latitude",
    "longitude",
)


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the figures."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- the file ----------------------------------------------------------------------------


def clinic_list(rng: random.Random, rows: int) -> bytes:
    """A clinic list of ``rows`` valid, new rows, one to three clinicians a clinic, as CSV.

    Only the columns such a list usually fills (the city comes from the postcode), so that
    39,999 rows come to about 4.9 MB, the size of the file in issue 6.
    """
    places = places_in_use(POSTCODE_FILE)
    hpr_numbers = itertools.count(FIRST_FILE_HPR)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    written = 0
    for number in itertools.count(1):
        place = rng.choice(places)
        latitude, longitude = scatter(rng, place)
        clinic = {
            "clinic_name": f"{rng.choice(CLINIC_KINDS)} nr. {number}",
            "address": f"{rng.choice(STREETS)} {rng.randint(1, 150)}",
            "postcode": place.postcode,
            "phone": phone_number(rng).replace(" ", "").removeprefix("+47").removeprefix("0047"),
            "latitude": f"{latitude:.5f}",
            "longitude": f"{longitude:.5f}",
        }
        for _ in range(rng.randint(1, 3)):
            profession = rng.choice(PROFESSIONS)
            # Each clinician's own agreement; a chiropractor never has one.
            agreement = profession != "kiropraktor" and rng.random() < 0.5
            writer.writerow(
                clinic
                | {
                    "clinician_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
                    "profession": profession,
                    "hpr_number": str(next(hpr_numbers)),
                    "helfo_agreement": "ja" if agreement else "nei",
                    "accepts_new_patients": rng.choice(("ja", "nei", "")),
                    "languages": rng.choice(LANGUAGES),
                    "services": rng.choice(SERVICES),
                }
            )
            written += 1
            if written == rows:
                return buffer.getvalue().encode("utf-8")
    raise AssertionError("unreachable")


# --- the servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_environment(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    """What docs/deploy.md asks for, on loopback: plain http, so the cookie is not Secure."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "GUNICORN_", "JOBS_", "GEOCODER", "MAIL_"))
    }
    environment.update(
        APP_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        DATABASE_URL=database_url,
        TRUSTED_HOSTS="127.0.0.1",
        RATELIMIT_STORAGE_URI=redis_url,
        RATELIMIT_KEY_PREFIX=f"bench-{secrets.token_hex(4)}",
        PUBLIC_BASE_URL="https://finnklinikk.example",
        SESSION_COOKIE_SECURE="false",
        GEOCODER="none",  # no network here; every row has coordinates anyway
        GUNICORN_BIND=f"127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
    )
    return environment


def start(arguments: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", *arguments],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


# --- a staff member's browser ------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None  # a 302 comes back as it is: its own time, its Location


class Browser:
    """Cookies, CSRF tokens and timings, over plain HTTP to the local gunicorn."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(
        self, path: str, data: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, str, bytes, float]:
        """(status, Location, body, seconds) of one request, redirects not followed."""
        headers = {"Content-Type": content_type} if content_type else {}
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=120) as response:
                body = response.read()
                status, location = response.status, ""
        except urllib.error.HTTPError as error:
            with error:
                body = error.read()
                status, location = error.code, error.headers.get("Location", "")
        return status, location, body, time.perf_counter() - started

    def page(self, path: str) -> str:
        status, location, body, _ = self.request(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {location}")
        return body.decode()

    def post_form(
        self, path: str, fields: dict[str, str], form_page: str | None = None
    ) -> tuple[int, str, float]:
        """POST a form with the CSRF token of the page it is on (by default, ``path``)."""
        fields = {"csrf_token": TOKEN.search(self.page(form_page or path)).group(1), **fields}
        data = urllib.parse.urlencode(fields).encode()
        status, location, _, seconds = self.request(path, data, "application/x-www-form-urlencoded")
        return status, location, seconds


def sign_in(browser: Browser) -> None:
    """Password, then enrol the authenticator (its key is on the page) with pyotp's code."""
    browser.page("/staff/sign-in?lang=en")  # English pages, remembered in a cookie
    status, location, _ = browser.post_form(
        "/staff/sign-in", {"email": STAFF_EMAIL, "password": STAFF_PASSWORD}
    )
    assert status == 302 and location.endswith("/staff/sign-in/enrol"), (status, location)
    key = re.search(r'<code class="totp-secret">([A-Z2-7]+)</code>', browser.page(location))
    status, location, _ = browser.post_form(
        "/staff/sign-in/enrol", {"code": pyotp.TOTP(key.group(1)).now()}
    )
    assert status == 200, status  # the recovery codes page: signed in


def wait_until(browser: Browser, path: str, done: str, timeout: float) -> tuple[float, int]:
    """Poll a page every second until it says ``done``; (seconds, largest page seen)."""
    started = time.perf_counter()
    largest = 0
    while True:
        page = browser.page(path)
        largest = max(largest, len(page.encode()))
        if done in page:
            return time.perf_counter() - started, largest
        if "could not be checked" in page or "Importing failed" in page:
            raise RuntimeError(f"the import failed: {path}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{path} did not say {done!r} within {timeout:.0f} s")
        time.sleep(1)


# --- the run -----------------------------------------------------------------------------


def build_directory(database_url: str, clinics: int, seed: int) -> None:
    progress("migrating and loading postcodes …")
    app = create_bench_app(database_url)
    with app.app_context():
        progress(f"inserting {clinics} clinics …")
        insert_clinics(db.session, random.Random(seed), populated_places(POSTCODE_FILE), clinics)
        analyze(db.session)
        db.engine.dispose()


def directory_counts(database_url: str) -> tuple[int, int]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        clinics = connection.scalar(select(func.count()).select_from(Clinic.__table__))
        clinicians = connection.scalar(select(func.count()).select_from(Clinician.__table__))
    engine.dispose()
    return clinics, clinicians


def job_seconds(database_url: str, batch_id: int, start_column: str, end_column: str) -> float:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        start, end = connection.execute(
            text(f"SELECT {start_column}, {end_column} FROM import_batch WHERE id = :id"),  # noqa: S608 - our column names
            {"id": batch_id},
        ).one()
    engine.dispose()
    return (end - start).total_seconds()


def run(args: argparse.Namespace, workdir: Path) -> list[str]:
    database_url = normalise_database_url(args.database_url)
    build_directory(database_url, args.clinics, args.seed)
    data = clinic_list(random.Random(args.seed + 1), args.rows)
    progress(f"file: {args.rows} rows, {len(data):,} bytes")
    before = directory_counts(database_url)

    port = free_port()
    environment = production_environment(database_url, args.redis_url, port)
    created = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "staff", "create", STAFF_EMAIL],
        cwd=PROJECT_ROOT,
        env=environment,
        input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
        text=True,
        capture_output=True,
        check=False,
    )
    if created.returncode != 0:
        raise SystemExit(f"flask staff create failed:\n{created.stdout}{created.stderr}")
    gunicorn_log, worker_log = workdir / "gunicorn.log", workdir / "worker.log"
    server = start(["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], environment, gunicorn_log)
    worker = start(["flask", "--app", "wsgi", "jobs", "work", "--loop"], environment, worker_log)
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        for _ in range(120):
            try:
                if browser.request("/healthz")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.5)
        sign_in(browser)
        progress("uploading …")
        token = TOKEN.search(browser.page("/staff/import")).group(1)
        boundary, body = encode_multipart(
            {"csrf_token": token, "file": FileStorage(io.BytesIO(data), "klinikker.csv")}
        )
        if len(body) > UPLOAD_LIMIT:
            raise SystemExit(f"the upload is {len(body):,} bytes, over the 5 MB limit")
        status, location, _, upload_seconds = browser.request(
            "/staff/import", body, f"multipart/form-data; boundary={boundary}"
        )
        assert status == 302, status
        batch_path = urllib.parse.urlsplit(location).path
        batch_id = int(batch_path.rsplit("/", 1)[1])
        progress("checking …")
        plan_seen, progress_largest = wait_until(
            browser, batch_path, f"Import {args.rows} rows", timeout=1800
        )
        plan_job = job_seconds(database_url, batch_id, "step_started_at", "planned_at")

        progress("reading every preview page …")
        pages = (args.rows + 49) // 50
        sizes, times = [], []
        for number in range(1, pages + 1):
            status, _, page, seconds = browser.request(f"{batch_path}?page={number}")
            assert status == 200, status
            sizes.append(len(page))
            times.append(seconds)
        assert f"Page {pages} of {pages}" in page.decode()

        progress("importing …")
        status, _, apply_seconds = browser.post_form(f"{batch_path}/apply", {}, batch_path)
        assert status == 302, status
        applied_seen, applying_largest = wait_until(browser, batch_path, "Imported ", 1800)
        apply_job = job_seconds(database_url, batch_id, "step_started_at", "applied_at")
    finally:
        stop(worker)
        stop(server)
    after = directory_counts(database_url)
    added = after[1] - before[1]
    log = gunicorn_log.read_text(errors="replace")
    timeouts = log.count("WORKER TIMEOUT")
    return [
        f"directory: {before[0]:,} clinics, {before[1]:,} clinicians (PostgreSQL); "
        f"file: {args.rows:,} rows, {len(data):,} bytes ({len(body):,} as uploaded)",
        "gunicorn: production settings, gunicorn.conf.py defaults (timeout 30 s, "
        f"{os.cpu_count() * 2 + 1} workers); `flask jobs work --loop` beside it",
        f"upload response: {upload_seconds:.2f} s (the file is read and queued; checked later)",
        f"check (plan): {plan_seen:.0f} s until the page said so; the job: {plan_job:.1f} s",
        f"import (apply): {applied_seen:.0f} s until the page said so "
        f"(the Import press answered in {apply_seconds:.2f} s); the job: {apply_job:.1f} s",
        f"preview: {pages} pages of 50 rows; largest {max(sizes):,} bytes, median "
        f"{statistics.median(sizes):,.0f}; slowest {max(times) * 1000:.0f} ms, median "
        f"{statistics.median(times) * 1000:.0f} ms; progress pages at most "
        f"{max(progress_largest, applying_largest):,} bytes",
        f"every row imported: {'YES' if added == args.rows else 'NO'} "
        f"({added:,} clinicians added of {args.rows:,}; {after[0] - before[0]:,} clinics)",
        f"gunicorn worker timeouts: {timeouts}",
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="wiped; PostgreSQL")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="rate limits' storage")
    parser.add_argument("--clinics", type=int, default=80_000, help="clinics in the directory")
    parser.add_argument("--rows", type=int, default=39_999, help="rows in the uploaded file")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgres://", "postgresql")):
        parser.error("--database-url must be PostgreSQL: production runs on it")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="import-web-bench-") as name:
        lines = run(args, Path(name))
    print("\n".join(lines))
    if "NO" in lines[-2] or not lines[-1].endswith(": 0"):
        sys.exit(1)


if __name__ == "__main__":
    main()
