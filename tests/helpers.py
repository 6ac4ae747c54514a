"""Helpers shared by several test modules: plain functions and constants.

Fixtures shared by several modules live in conftest.py, where pytest finds them without
an import; a helper only one module uses stays in that module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import make_url, select

from clinic_finder import create_app
from clinic_finder.clinic_pages import slugify
from clinic_finder.complaints import COMPLAINT_RING_KM, complaint_order_key
from clinic_finder.contact_requests import ContactDetails, create_contact_request
from clinic_finder.extensions import db
from clinic_finder.import_format import CANONICAL_COLUMNS
from clinic_finder.importer import apply_import, plan_import
from clinic_finder.imports import create_batch, plan_batch
from clinic_finder.models import ContactRequest, OutboxMessage, Profession, StaffUser
from clinic_finder.staff import OPEN_ENDPOINTS

from .conftest import (
    PRODUCTION_SECRET_KEY,
    PROJECT_ROOT,
    config_for_tests,
    make_staff,
    set_up_link,
    wait_for,
)
from .factories import make_clinic, make_contact_request
from .smtp_server import free_port

# --- clinic lists in the import format ----------------------------------------------------


DEMO_FILE = PROJECT_ROOT / "data" / "clinics.csv"
HEADER = ",".join(CANONICAL_COLUMNS)
GOOD_ROW = {
    "clinic_name": "Fjordklinikken",
    "org_number": "",
    "address": "Strandgata 4",
    "postcode": "5003",
    "city": "Bergen",
    "phone": "55 12 34 56",
    "email": "post@fjordklinikken.example",
    "website": "https://fjordklinikken.example/",
    "clinician_name": "Kari Nordmann",
    "profession": "physiotherapist",
    "hpr_number": "9876543",
    "helfo_agreement": "yes",
    "accepts_new_patients": "no",
    "languages": "nb;en",
    "services": "exercise therapy;dry needling",
    "latitude": "60.3950",
    "longitude": "5.3250",
    # The columns added with practices, empty (unknown) unless a test says otherwise; here
    # so that whatever goes through every column of a row (the fuzz sweep) reaches them.
    "booking_url": "",
    "step_free_access": "",
    "accessible_toilet": "",
    "parking": "",
    "municipality_agreement": "",
    "opening_hours": "",
}


def csv_text(*rows: dict[str, str], header: str = HEADER, delimiter: str = ",") -> str:
    """Write rows in the import format (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header.split(","))
    for row in rows:
        writer.writerow([row.get(column, "") for column in CANONICAL_COLUMNS])
    return buffer.getvalue()


def partial_csv_text(columns: list[str], *rows: dict[str, str]) -> str:
    """Write rows in the import format with only these columns (a partial clinic list)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return buffer.getvalue()


def import_text(session, text: str):
    report = plan_import(session, text)
    apply_import(session, report)
    session.commit()
    return report


def clinic_rows(first: int, count: int, **changes: str) -> list[dict[str, str]]:
    """Rows for clinicians ``first``…, two per clinic, all valid, HPR 91000xx."""
    return [
        GOOD_ROW
        | {
            "clinic_name": f"Klinikk {number // 2}",
            "address": f"Strandgata {number // 2}",
            "clinician_name": f"Behandler {number}",
            "hpr_number": str(9_100_000 + number),
        }
        | changes
        for number in range(first, first + count)
    ]


# --- the app in a child process: gunicorn, and HTTP to it ---------------------------------


SECRET_KEY = "fault-injection-secret-key-0123456789"
# What gunicorn.conf.py (`make serve`) needs to start: production, on plain loopback HTTP.
PRODUCTION_ENVIRONMENT = {
    "APP_ENV": "production",
    "SECRET_KEY": PRODUCTION_SECRET_KEY,
    "TRUSTED_HOSTS": "127.0.0.1,localhost",
    "RATELIMIT_STORAGE_URI": "memory://",
    "PUBLIC_BASE_URL": "https://finnklinikk.example",
    "SESSION_COOKIE_SECURE": "false",
}
# PostgreSQL connections of the child processes carry this name, so tests can watch them.
CHILD_APPLICATION_NAME = "clinic_finder_faults"


def with_query(database_url: str, **query: str) -> str:
    """The URL with connection parameters added (engine options stay the app's own)."""
    return make_url(database_url).update_query_dict(query).render_as_string(hide_password=False)


def child_environment(database_url: str, **overrides: str) -> dict[str, str]:
    """Environment for the app in a child process: this database, nothing on the network."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "APP_ENV", "DATABASE_URL", "MAIL_", "GEOCODER"))
    }
    if database_url.startswith("postgresql"):
        database_url = with_query(database_url, application_name=CHILD_APPLICATION_NAME)
    environment.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        GEOCODER="none",
        # A port nobody listens on: every email waits in the outbox.
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(free_port()),
        MAIL_USE_TLS="false",
        MAIL_TIMEOUT="2",
        CONTACT_RATE_LIMIT="10000 per hour",
        PYTHONUNBUFFERED="1",
    )
    environment.update(overrides)
    return environment


def stop_process(
    process: subprocess.Popen, timeout: float = 10, how: signal.Signals = signal.SIGTERM
) -> None:
    """Ask a child process to stop; kill it if it has not within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def child_pids(parent: int) -> list[int]:
    """PIDs of the processes whose parent is ``parent`` (read from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (command) state ppid …"; the command may contain spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def http_get(url: str, timeout: float = 10) -> int:
    """GET a URL; return the status (any status, not only 2xx)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def post_json(url: str, body: dict, timeout: float = 30) -> tuple[int, dict]:
    """POST a JSON body; return (status, decoded JSON answer)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"{}")


@dataclass
class GunicornServer:
    """The app served by gunicorn in a child process."""

    process: subprocess.Popen
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def serves(self) -> bool:
        """Whether it answers /healthz; fail at once if gunicorn has exited."""
        assert self.process.poll() is None, f"gunicorn exited:\n{self.log()}"
        try:
            return http_get(self.base_url + "/healthz", timeout=2) == 200
        except OSError:
            return False


@contextmanager
def running_gunicorn(
    database_url: str,
    log_dir: Path,
    *,
    workers: int = 1,
    config_file: bool = False,
    **environment: str,
) -> Iterator[GunicornServer]:
    """Serve wsgi:app with gunicorn's sync workers on a free loopback port.

    With ``config_file``, gunicorn runs as `make serve` runs it (gunicorn.conf.py, told
    the port and worker count through its GUNICORN_* variables).
    """
    port = free_port()
    log_path = log_dir / f"gunicorn-{port}.log"
    if config_file:
        arguments = ["-c", "gunicorn.conf.py"]
        environment = {
            **PRODUCTION_ENVIRONMENT,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_GRACEFUL_TIMEOUT": "3",
            **environment,
        }
    else:
        arguments = [
            # Not ./gunicorn.conf.py, which gunicorn would read by itself: that is
            # production's (it refuses to start outside APP_ENV=production).
            "--config",
            os.devnull,
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            # One import of the app, then fork: workers start (and restart) at once.
            "--preload",
            "--graceful-timeout",
            "3",
        ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *arguments, "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=child_environment(database_url, **environment),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = GunicornServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_for(server.serves, 30, "gunicorn to answer /healthz")
        wait_for(lambda: len(server.worker_pids()) == workers, 30, "gunicorn's workers")
        yield server
    finally:
        stop_process(process, how=signal.SIGINT)  # gunicorn's quick shutdown


# --- contact requests ---------------------------------------------------------------------


API_BODY = {
    "name": "Ola Nordmann",
    "email": "ola@example.org",
    "phone": None,
    "postcode": "5003",
    "profession": None,
    "message": "Nakkesmerter",
    "consent": True,
    "clinic_id": None,
}


def contact_request_body(number: int) -> dict:
    """A valid contact request for the JSON API (with an email: two notifications)."""
    return {
        "name": f"Pasient {number}",
        "email": f"p{number}@example.org",
        "postcode": "0150",
        "profession": None,
        "message": "Vondt i ryggen",
        "consent": True,
    }


def stored_requests(app: Flask) -> dict[str, list[str]]:
    """Each stored contact request's reference → the kinds of its queued emails."""
    with app.app_context():
        requests = {r.id: r.reference for r in db.session.scalars(select(ContactRequest))}
        kinds: dict[str, list[str]] = {reference: [] for reference in requests.values()}
        for message in db.session.scalars(select(OutboxMessage)):
            assert message.request_id in requests, "an email for a request that is not stored"
            kinds[requests[message.request_id]].append(message.kind)
        return {reference: sorted(found) for reference, found in kinds.items()}


# --- the app's routes, read when the tests are collected ----------------------------------


def _routes() -> list[tuple[str, str, str]]:
    """Return (method, rule, endpoint) for every route of a freshly built app."""
    app = create_app(config_for_tests("sqlite://"))
    with app.app_context():
        db.engine.dispose()
    routes = []
    for rule in app.url_map.iter_rules():
        # Static files are served by Werkzeug from disk; nothing of ours runs there.
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, rule.endpoint))
    return sorted(routes, key=lambda route: (route[1], route[0]))


ROUTES = _routes()


def rules(method: str, *prefixes: str, open_pages: bool = True) -> list[str]:
    """Rules for ``method`` under ``prefixes``; staff pages open before sign-in only if asked."""
    return [
        rule
        for route_method, rule, endpoint in ROUTES
        if route_method == method
        and rule.startswith(prefixes)
        and (open_pages or endpoint not in OPEN_ENDPOINTS)
    ]


ALL_GET = rules("GET", "/")

_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<options>[^)]*)\))?:)?(?P<name>\w+)>")


def rejected_rows_file(name: str) -> str:
    """A clinic list with one row that is rejected (postcode 0000 is not in the register)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["clinic_name", "postcode", "clinician_name", "profession", "hpr_number"])
    writer.writerow([name, "0000", name, "chiropractor", "1234567"])
    return buffer.getvalue()


def make_object(app: Flask, argument: str, name: str) -> int | str:
    """Create one object of the kind a URL argument names; return its id (or token)."""
    with app.app_context():
        session = db.session
        if argument in ("clinic_id", "clinician_id", "practice_id"):
            clinic = make_clinic(session, name=name, email="post@klinikk.example")
            practice = clinic.practices[0]
            object_id = {
                "clinic_id": clinic.id,
                "clinician_id": practice.clinician_id,
                "practice_id": practice.id,
            }[argument]
        elif argument == "batch_id":
            batch = create_batch(session, "clinics.csv", rejected_rows_file(name).encode())
            plan_batch(session, batch)  # as its background job would
            object_id = batch.id
        elif argument == "request_id":
            contact_request, _ = create_contact_request(
                session,
                ContactDetails(
                    name=name,
                    email="pia@example.org",
                    phone=None,
                    postcode="0150",
                    profession=Profession.PHYSIOTHERAPIST,
                    message="Vondt i korsryggen",
                ),
                staff_inbox="staff-inbox@clinic-finder.example",
                base_url="https://finnklinikk.example",
            )
            object_id = contact_request.id
        elif argument == "referral_id":  # a referral still held in the outbox
            from clinic_finder.referrals import refer

            staff = session.get(StaffUser, make_staff(app, "referrer@clinic-finder.example"))
            clinic = make_clinic(session, name=name, email="post@klinikk.example")
            contact_request = make_contact_request(session, name=name)
            referral, _ = refer(session, staff, contact_request, clinic, tell_patient=True)
            object_id = referral.id
        elif argument == "user_id":
            return make_staff(app, "colleague@clinic-finder.example")
        elif argument == "token":  # a one-time link's: a real one, so its page runs
            make_staff(app, "newcomer@clinic-finder.example", enrolled=False)
            return set_up_link(app, "newcomer@clinic-finder.example").rsplit("/", 1)[1]
        else:
            raise LookupError(argument)
        session.commit()
        return object_id


def url_for_rule(app: Flask, rule: str, name: str = "Testklinikken") -> str:
    """Fill a rule's arguments with objects that exist, so the view itself runs."""

    def fill(match: re.Match) -> str:
        argument = match.group("name")
        if match.group("converter") == "any":
            return match.group("options").split(",")[0].strip().strip("'\"")
        if argument == "code":
            return "0150"
        if argument == "slug":  # a clinic page's slug; the clinic is made by <clinic_id>
            return slugify(name)
        try:
            return str(make_object(app, argument, name))
        except LookupError:
            raise AssertionError(
                f"url_for_rule cannot fill <{argument}> in {rule}: teach make_object how"
            ) from None

    return _ARGUMENT.sub(fill, rule)


# --- security headers ---------------------------------------------------------------------


def csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: [sources]}; {} when there is none."""
    policy = response.headers.get("Content-Security-Policy")
    if policy is None:
        return {}
    directives = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        directives[name.lower()] = sources
    return directives


def assert_security_headers(response, frame_ancestors=("'none'",)) -> None:
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    # A one-time link's token is in its address: no page after it may be told the address.
    secret_address = response.request.path.startswith("/staff/link/")
    assert response.headers.get("Referrer-Policy") == (
        "no-referrer" if secret_address else "strict-origin-when-cross-origin"
    )
    directives = csp(response)
    # Nobody may frame us, except article sites framing /embed (test_embed.py checks that
    # with EMBED_ALLOWED_ORIGINS set; these apps have none, so /embed refuses too).
    assert directives["frame-ancestors"] == list(frame_ancestors)
    if frame_ancestors == ("'none'",):
        assert response.headers.get("X-Frame-Options") == "DENY"
    else:
        assert "X-Frame-Options" not in response.headers
    # Scripts only from our own origin, plus at most this response's nonce: never inline
    # script in general, never eval, never another host.
    script_sources = directives["script-src"]
    assert script_sources[0] == "'self'"
    assert all(source.startswith("'nonce-") for source in script_sources[1:])
    assert directives["object-src"] == ["'none'"]
    assert response.headers.get("Permissions-Policy") == (
        "camera=(), microphone=(), geolocation=(self), payment=()"
    )
    assert directives["style-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:", "https://tile.openstreetmap.org"]


def page_response(app, request, rule):
    signed_in = rule.startswith("/staff") and rule != "/staff/sign-in"
    client = request.getfixturevalue("admin_client" if signed_in else "client")
    return client.get(url_for_rule(app, rule))


# --- distances ----------------------------------------------------------------------------


EARTH_RADIUS_KM = 6371.009


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance computed independently of the app (haversine formula)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


# --- pages in a real browser --------------------------------------------------------------


TILE_HOST = "tile.openstreetmap.org"


def watch(page):
    """Record every request and dialog; keep tiles off the real network."""
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.route(f"https://{TILE_HOST}/**", lambda route: route.abort())
    return requests, dialogs


def record_csp_violations(page) -> list[str]:
    """Collect every Content-Security-Policy violation the page reports, in any form."""
    violations: list[str] = []
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def all_csp_violations(page, console_violations: list[str]) -> list[str]:
    return console_violations + page.evaluate("window.__cspViolations")


WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def serious_violations(page, axe_source: str) -> list[str]:
    page.evaluate(axe_source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


# --- the complaint rule, over a whole list --------------------------------------------------


def rank_for_complaint(hits, complaint, ring_km: float = COMPLAINT_RING_KM):
    """The ring rule applied to a whole list of (clinic, km) pairs or search hits: the
    oracle the finder's page-by-page order is checked against."""

    def key(hit) -> tuple:
        clinic, km = (hit[0], hit[1]) if isinstance(hit, tuple) else (hit.clinic, hit.distance_km)
        return complaint_order_key(km, complaint.suits(clinic), clinic.id, ring_km)

    return sorted(hits, key=key)


def result_names(page: str) -> list[str]:
    """The clinics' names on a result list, in the list's order."""
    return re.findall(
        r'<li class="clinic[^"]*"[^>]*data-clinic-id="\d+"[^>]*>.*?<h2[^>]*><a [^>]*>([^<]+)</a>',
        page,
        flags=re.DOTALL,
    )


_PREVIEW_LINE = re.compile(r"<tr>\s*<td[^>]*>(\d+)</td>")


def table_lines(page: str) -> list[str]:
    """The file lines of an import preview's table rows, in the order shown."""
    return _PREVIEW_LINE.findall(page)


def assert_as_recorded(answers: dict, recording: Path, write_variable: str) -> None:
    """Assert the answers are those recorded in the JSON file, query by query.

    With ``write_variable`` set in the environment the file is first written from these
    answers: run so once on the code before a change, never to make a failing test pass.
    """
    if os.environ.get(write_variable):
        recording.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    before = json.loads(recording.read_text())
    assert answers.keys() == before.keys()
    for query, expected in before.items():
        assert answers[query] == expected, query
