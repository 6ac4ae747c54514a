"""Fixtures: an app per database backend, a client, a CLI runner, a live server, loopback
SMTP and HPR servers, and Chromium with its pages and axe-core for the browser tests.

Every database test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set
(`.ci/run` sets it). The schema is built once per backend by the real migrations and the
real postcode register is loaded once; each test then starts from an empty directory.
"""

from __future__ import annotations

import csv
import io
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyotp
import pytest
from flask import Flask
from flask_migrate import upgrade
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine, delete, func, make_url, select, text, update
from werkzeug.serving import make_server

from clinic_finder import create_app, jobs, mail
from clinic_finder.config import normalise_database_url
from clinic_finder.extensions import db
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    ContactRequest,
    GeocodeCacheEntry,
    ImportBatch,
    ImportRow,
    ImportStatus,
    OneTimeLink,
    OpeningHours,
    OutboxMessage,
    Practice,
    Profession,
    RecoveryCode,
    Referral,
    RequestEvent,
    SignInPause,
    StaffUser,
    now_utc,
)
from clinic_finder.postcodes import load_postcodes

from .factories import make_clinic

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POSTCODE_FILE = PROJECT_ROOT / "data" / "postnummer-koordinatar.tsv"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")

# A production-grade key for tests of production settings (random, fixed for the tests).
PRODUCTION_SECRET_KEY = "3f9c1a7e5b2d8046f1e9a3c7b5d2084e6a1c9f3b7d5e2a8046c1f9e3a7b5d208"

BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def worker_database_url(url: str) -> str:
    """The PostgreSQL database this test process uses: under pytest-xdist, one per worker.

    ``make test`` runs the suite on several workers at once; each gets TEST_DATABASE_URL's
    database name with its worker id (``test_gw0``, ``test_gw1``), created if missing, so
    no worker ever sees another's rows.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    server = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def config_for_tests(database_url: str, **overrides) -> dict:
    """Config for an app under test on the given database."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        # No test may reach the internet; geocoding tests point at a loopback server.
        "GEOCODER": "none",
        # The tests read the pages in English; test_i18n.py checks the Norwegian default.
        "DEFAULT_LOCALE": "en",
        # A 32 times cheaper scrypt: hundreds of sign-ins would otherwise take minutes.
        # test_auth.py checks the real cost.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        **overrides,
    }


def reset_postgres_schema(url: str) -> None:
    """Drop everything in the test database's public schema."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def engines_made() -> Iterator[list]:
    """Every engine an app makes during the run, so that a test's can be closed after it.

    Many tests make an app of their own and drop it. Its engine's pool then holds open
    psycopg connections until the garbage collector happens to reach them, which may be
    during any later test: psycopg warns (ResourceWarning) from `__del__`, and with
    warnings as errors that later, innocent test errors. Holding the engines here keeps
    them from the collector until `close_engines_a_test_made` disposes of them.
    """
    made: list = []
    make_engine = SQLAlchemy._make_engine

    def recording(self, bind_key, options, app):
        engine = make_engine(self, bind_key, options, app)
        made.append(engine)
        return engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SQLAlchemy, "_make_engine", recording)
        yield made


@pytest.fixture(autouse=True)
def close_engines_a_test_made(engines_made: list) -> Iterator[None]:
    """Close the pooled connections of every engine made during the test (and its fixtures)."""
    first = len(engines_made)
    yield
    for engine in engines_made[first:]:
        engine.dispose()
    del engines_made[first:]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A migrated database with the postcode register loaded, one per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        url = worker_database_url(normalise_database_url(POSTGRES_URL))
        reset_postgres_schema(url)
    app = create_app(config_for_tests(url))
    with app.app_context():
        upgrade()
        load_postcodes(db.session, POSTCODE_FILE)
        db.session.commit()
        db.engine.dispose()
    yield url


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """An app on a database with postcodes and no clinics."""
    app = create_app(config_for_tests(database_url))
    yield app
    # A job a test left running (this app's or another's) finishes before the tables empty.
    assert jobs.wait_for_in_process_workers(timeout=120), "a job thread is still running"
    with app.app_context():
        db.session.rollback()
        # Children before parents; postcodes stay loaded for the whole session.
        for model in (
            OutboxMessage,
            RequestEvent,
            Referral,
            ContactRequest,
            AuditEntry,
            ImportRow,
            ImportBatch,
            GeocodeCacheEntry,
            OpeningHours,
            Practice,
            Clinician,
            Clinic,
            RecoveryCode,
            SignInPause,
            OneTimeLink,
            StaffUser,
        ):
            db.session.execute(delete(model))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask):
    """The app's database session, inside an app context."""
    with app.app_context():
        yield db.session


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """Serve the app on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


STAFF_PASSWORD = "correct horse battery staple"


def make_staff(
    app: Flask, email: str = "staff@clinic-finder.example", admin: bool = False, enrolled=True
):
    """Create a staff account with STAFF_PASSWORD (and an authenticator); return its id.

    Without one (``enrolled=False``) the account needs :func:`set_up_link` to enrol.
    """
    from clinic_finder.auth import create_staff_account

    with app.app_context():
        account = create_staff_account(db.session, email, STAFF_PASSWORD, is_admin=admin)
        if enrolled:
            account.totp_secret = pyotp.random_base32()
            account.totp_confirmed_at = now_utc()
        db.session.commit()
        return account.id


def set_up_link(app: Flask, email: str = "staff@clinic-finder.example") -> str:
    """Issue a set-up link for the account as an admin would; return its path."""
    from clinic_finder.auth import issue_enrolment_link, link_url

    with app.app_context():
        account = db.session.scalar(select(StaffUser).where(StaffUser.email == email.lower()))
        issued = issue_enrolment_link(db.session, account, "test", timedelta(hours=24))
        db.session.commit()
        return urlsplit(link_url(issued.token)).path


def shown_link(response) -> str:
    """The path of the one-time link on the page an admin sees after issuing it."""
    page = response.get_data(as_text=True)
    match = re.search(r'<p class="one-time-link"><code>([^<]+)</code>', page)
    assert match, f"no one-time link on the page: {page}"
    return urlsplit(match.group(1)).path


def csrf_token_from(client, url: str) -> str:
    """Fetch a page and return the CSRF token of its form."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def current_code(app: Flask, email: str) -> str:
    """The authenticator code a staff member's phone would show now (never one used before)."""
    with app.app_context():
        account = db.session.scalar(select(StaffUser).where(StaffUser.email == email.lower()))
        totp = pyotp.TOTP(account.totp_secret)
        counter = totp.timecode(datetime.now())
        if account.totp_last_counter is not None and account.totp_last_counter >= counter:
            counter = account.totp_last_counter + 1  # still inside the accepted window
        return totp.generate_otp(counter)


def sign_in(
    client,
    email: str = "staff@clinic-finder.example",
    password: str = STAFF_PASSWORD,
    next_url: str | None = None,
    link: str | None = None,
):
    """Sign in through the real forms, both steps; return the last response (not followed).

    An account without an authenticator enrols one: give the path of its set-up ``link``.
    """
    if link is not None:
        client.get(link)
    token = csrf_token_from(client, "/staff/sign-in")
    url = "/staff/sign-in" + (f"?next={quote(next_url, safe='')}" if next_url else "")
    response = client.post(url, data={"email": email, "password": password, "csrf_token": token})
    step = response.headers.get("Location", "") if response.status_code == 302 else ""
    if step not in ("/staff/sign-in/code", "/staff/sign-in/enrol"):
        return response
    token = csrf_token_from(client, step)  # the enrolment page creates the secret
    code = current_code(client.application, email)
    return client.post(step, data={"code": code, "csrf_token": token})


def sign_in_in_browser(
    page, app: Flask, url: str, email: str = "staff@clinic-finder.example"
) -> None:
    """Open ``url`` (a staff page, or the sign-in page) and sign in through the real
    Norwegian pages: password, then the authenticator's code; the page goes on to ``url``."""
    page.goto(url)
    page.get_by_label("E-post").fill(email)
    page.get_by_label("Passord").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Logg inn").click()
    page.get_by_label("Kode").fill(current_code(app, email))
    page.get_by_role("button", name="Logg inn").click()


@pytest.fixture
def staff_client(app: Flask, client):
    """A client signed in as an ordinary staff member."""
    make_staff(app)
    response = sign_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def admin_client(app: Flask):
    """A client signed in as an admin."""
    make_staff(app, "admin@clinic-finder.example", admin=True)
    client = app.test_client()
    assert sign_in(client, "admin@clinic-finder.example").status_code == 302
    return client


def post_form(client, page_url: str, action_url: str | None = None, **data):
    """Submit a form the way a browser would: fetch its CSRF token first."""
    data.setdefault("csrf_token", csrf_token_from(client, page_url))
    return client.post(action_url or page_url, data=data)


@pytest.fixture
def smtp(app):
    """A loopback SMTP server, with the app's mailer pointed at it."""
    from clinic_finder import mail

    from .smtp_server import running_smtp

    with running_smtp() as server:
        app.config.update(server.config(), STAFF_INBOX_EMAIL="inbox@clinic-finder.example")
        mail.init_app(app)
        yield server


@pytest.fixture
def hpr_server():
    """A loopback HPR (tests/hpr_server.py) with an empty register; tests fill ``register``."""
    from .hpr_server import running_hpr

    with running_hpr() as server:
        yield server


@pytest.fixture
def hpr_client(hpr_server):
    """An HPR client pointed at the loopback HPR, built from settings as the app builds it."""
    from clinic_finder.hpr import build_client

    return build_client(hpr_server.config())


@pytest.fixture
def hpr_app(app, hpr_server):
    """The app with HPR_URL pointing at the loopback HPR: licence checks on."""
    from clinic_finder import hpr

    app.config.update(hpr_server.config())
    hpr.init_app(app)
    return app


def deliver_due(app: Flask, runner) -> str:
    """Let time pass so every queued email is due, then run `flask outbox send`."""
    with app.app_context():
        db.session.execute(update(OutboxMessage).values(next_attempt_at=now_utc()))
        db.session.commit()
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    return result.output


@contextmanager
def refusing_inserts(app: Flask, table: str) -> Iterator[None]:
    """Make the real database refuse to store a row of ``table`` named 'Refused Writer'."""
    function = f"refuse_{table}_writer"
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            statements = [
                f"CREATE TRIGGER {function} BEFORE INSERT ON {table} "
                "WHEN NEW.name = 'Refused Writer' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ]
            cleanup = [f"DROP TRIGGER {function}"]
        else:
            statements = [
                f"CREATE FUNCTION {function}() RETURNS trigger AS $$ BEGIN "
                "IF NEW.name = 'Refused Writer' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql",
                f"CREATE TRIGGER {function} BEFORE INSERT ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION {function}()",
            ]
            cleanup = [f"DROP TRIGGER {function} ON {table}", f"DROP FUNCTION {function}()"]
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()
    yield
    with app.app_context():
        for statement in cleanup:
            db.session.execute(text(statement))
        db.session.commit()


@pytest.fixture
def refusing_database(app):
    """Make the real database refuse to store a clinician named 'Refused Writer'."""
    with refusing_inserts(app, "clinician"):
        yield


@pytest.fixture
def refusing_contact_requests(app):
    """Make the real database refuse to store a contact request from 'Refused Writer'."""
    with refusing_inserts(app, "contact_request"):
        yield


# What a spreadsheet may run as a formula when a cell starts with it (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def formula_cells(text: str) -> list[tuple[str, str]]:
    """(delimiter, cell) for every cell of a CSV text a spreadsheet may run as a formula.

    Spreadsheets split a .csv on ``,``, ``;`` or a tab, by locale, with or without honouring
    quotes, and drop spaces and quotes before a cell's content; a plain number such as
    ``-8.65`` is a number, not a formula.
    """
    found = []
    for delimiter in (",", ";", "\t"):
        cells = [
            cell
            for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            for cell in row
        ]
        cells += [cell for line in text.splitlines() for cell in line.split(delimiter)]
        for cell in cells:
            content = cell.lstrip(' "')
            if content.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(
                content.rstrip(' "')
            ):
                found.append((delimiter, cell))
    return found


def import_status(app: Flask, batch_id: int) -> ImportStatus:
    """Where an uploaded file's import is now, read afresh from the database."""
    with app.app_context():
        return db.session.scalar(select(ImportBatch.status).where(ImportBatch.id == batch_id))


def wait_for_import(app: Flask, batch_id: int, timeout: float = 60) -> ImportStatus:
    """Wait until no job is waiting for or working on the batch; return where it ended."""
    deadline = time.monotonic() + timeout
    while (status := import_status(app, batch_id)).is_working:
        if time.monotonic() > deadline:
            raise AssertionError(f"import {batch_id} still {status.value} after {timeout} s")
        time.sleep(0.02)
    return status


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def sends_after_responses_tried(app: Flask, requests: int) -> bool:
    """Whether each request's send-after-the-response was tried, and none is still going."""
    with app.app_context():
        # A claim holds a message CLAIM_LEASE (10 min) ahead; a failed try only 1 min.
        claimed = db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.next_attempt_at > now_utc() + 2 * mail.RETRY_FIRST_DELAY)
        )
        tried = db.session.scalar(
            select(func.count(func.distinct(OutboxMessage.request_id))).where(
                OutboxMessage.attempts > 0
            )
        )
    return claimed == 0 and tried == requests


# --- a real browser: Debian's Chromium driven by Playwright (the browser-marked modules) ----

CHROMIUM = Path("/usr/bin/chromium")
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = "Chromium is missing: install it with `apt-get install chromium` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def sqlite_only(database_url):
    # One backend is enough to exercise the browser; the live server shares the test DB.
    if not database_url.startswith("sqlite"):
        pytest.skip("browser tests run against the SQLite backend")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        message = "axe-core is missing: run `npm ci` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


# A phone as most patients hold one: 360×800 CSS pixels, in Norwegian.
PHONE = {"width": 360, "height": 800}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, locale="nb-NO")
    page = context.new_page()
    # Map tiles are on the internet, which tests can't reach: refuse them at once.
    page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    yield page
    context.close()


@pytest.fixture
def audited_page(browser):
    # bypass_csp only lets the test's own axe script in; the page is served unchanged.
    context = browser.new_context(bypass_csp=True)
    context.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def directory(session):
    """Two clinics near 0150, one with every detail, so results and cards are realistic."""
    make_clinic(
        session,
        name="Gamlebyen Fysioterapi",
        professions=(Profession.PHYSIOTHERAPIST, Profession.MANUAL_THERAPIST),
        phone="+4722334455",
        email="post@gamlebyen.example",
        website="https://gamlebyen.example/",
        helfo_agreement=True,
        accepts_new_patients=True,
    )
    make_clinic(session, name="Kvadraturen Kiropraktikk", professions=(Profession.CHIROPRACTOR,))
    session.commit()
