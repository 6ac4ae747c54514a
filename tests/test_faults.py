"""Fault injection: the database away or failing, SMTP down, the geocoder misbehaving, and a
process killed mid-write — each with what must still hold afterwards.

The faults are real ones: a database nobody listens on, a trigger that refuses or slows a
write, a stopped SMTP server, a loopback Nominatim that stalls or answers HTML, and SIGKILL
sent to a gunicorn worker or a `flask clinics import` while its transaction is open.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, make_url, select, text
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from clinic_finder import create_app
from clinic_finder.extensions import db
from clinic_finder.imports import create_batch, plan_batch
from clinic_finder.jobs import request_apply
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    ImportBatch,
    ImportRow,
    ImportStatus,
    LocationSource,
    OutboxMessage,
    Practice,
    StaffUser,
)

from .conftest import (
    PROJECT_ROOT,
    STAFF_PASSWORD,
    config_for_tests,
    current_code,
    deliver_due,
    make_staff,
    sends_after_responses_tried,
    wait_for,
)
from .helpers import (
    CHILD_APPLICATION_NAME,
    child_environment,
    clinic_rows,
    contact_request_body,
    csv_text,
    post_json,
    running_gunicorn,
    stop_process,
    stored_requests,
    with_query,
)
from .nominatim_server import running_nominatim
from .smtp_server import free_port
from .vanishing_proxy import VanishingProxy

# Words that would mean internals leaked into an error page.
INTERNALS = ("Traceback", "sqlalchemy", "SELECT", "psycopg", "sqlite3", "OperationalError")


# --- helpers: watching and slowing the database -------------------------------------------


@contextmanager
def write_transaction_watch(database_url: str) -> Iterator[Callable[[], bool]]:
    """Yield a function telling whether a child process has a write transaction open."""
    if database_url.startswith("sqlite"):
        # Only one connection can hold SQLite's write lock: if we cannot take it, they have it.
        connection = sqlite3.connect(
            make_url(database_url).database, timeout=0, isolation_level=None
        )

        def writing() -> bool:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if "locked" in str(error):
                    return True
                raise
            connection.execute("ROLLBACK")
            return False

        try:
            yield writing
        finally:
            connection.close()
    else:
        engine = create_engine(database_url)

        def writing() -> bool:
            # PostgreSQL gives a transaction an id (backend_xid) at its first write.
            with engine.connect() as connection:
                return bool(
                    connection.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE application_name = :name AND backend_xid IS NOT NULL "
                            "AND datname = current_database()"
                        ),
                        {"name": CHILD_APPLICATION_NAME},
                    )
                )

        try:
            yield writing
        finally:
            engine.dispose()


@contextmanager
def slow_insert(app: Flask, table: str, column: str, value: str) -> Iterator[None]:
    """Make inserting the row with ``column = value`` into ``table`` take about a second.

    That holds the inserting transaction open long enough to kill its process inside it.
    """
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            # SQLite has no sleep; counting a 5,000 × 5,000 cross join takes a while instead.
            statements = [
                f"CREATE TRIGGER slow_insert BEFORE INSERT ON {table} "
                f"WHEN NEW.{column} = '{value}' "
                "BEGIN SELECT count(*) FROM postal_code a, postal_code b; END"
            ]
            cleanup = ["DROP TRIGGER slow_insert"]
        else:
            statements = [
                "CREATE FUNCTION slow_insert() RETURNS trigger AS $$ BEGIN "
                "PERFORM pg_sleep(1); RETURN NEW; END $$ LANGUAGE plpgsql",
                f"CREATE TRIGGER slow_insert BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN (NEW.{column} = '{value}') EXECUTE FUNCTION slow_insert()",
            ]
            cleanup = [f"DROP TRIGGER slow_insert ON {table}", "DROP FUNCTION slow_insert()"]
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context():
            for statement in cleanup:
                db.session.execute(text(statement))
            db.session.commit()


# --- helpers: what the database holds ------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text(csv_text(*rows), encoding="utf-8")
    return path


def directory_snapshot(app: Flask) -> list[tuple]:
    """Every practice with its clinician and clinic, as comparable tuples."""
    with app.app_context():
        return sorted(
            (
                p.clinician.hpr_number,
                p.clinician.name,
                p.profession.value,
                p.public_agreement,
                p.active,
                p.clinic.name,
                p.clinic.address,
                p.clinic.phone,
                p.clinic.latitude,
                p.clinic.longitude,
            )
            for p in db.session.scalars(select(Practice))
        )


def count_rows(app: Flask, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- the database unreachable --------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def unreachable_app(request, tmp_path) -> Iterator[Flask]:
    """An app whose database cannot be reached: a missing directory, or a closed port."""
    if request.param == "sqlite":
        config = config_for_tests(f"sqlite:///{tmp_path / 'missing' / 'clinic_finder.sqlite3'}")
    else:
        # Nobody listens on a free port: the connection is refused at once.
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
        config = config_for_tests(url)
    app = create_app(config)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_search_page_answers_503_with_a_friendly_page_when_database_is_unreachable(
    unreachable_app,
):
    response = unreachable_app.test_client().get("/find?postcode=0150")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    page = response.get_data(as_text=True)
    assert "temporarily unavailable" in page and "try again" in page
    assert not [word for word in INTERNALS if word.lower() in page.lower()]


def test_api_search_answers_503_json_when_database_is_unreachable(unreachable_app):
    response = unreachable_app.test_client().get("/api/v1/clinics?postcode=0150")
    assert response.status_code == 503
    assert response.is_json and response.json["error"] == "Service Unavailable"
    assert not [word for word in INTERNALS if word in response.get_data(as_text=True)]


def test_contact_request_api_answers_503_when_database_is_unreachable(unreachable_app):
    response = unreachable_app.test_client().post(
        "/api/v1/contact-requests", json=contact_request_body(1)
    )
    assert response.status_code == 503
    assert response.is_json


def test_readyz_answers_503_when_database_is_unreachable(unreachable_app):
    started = time.monotonic()
    response = unreachable_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "unreachable"}
    assert response.headers["Cache-Control"] == "no-store"
    assert time.monotonic() - started < 5


def test_healthz_answers_200_when_database_is_unreachable(unreachable_app):
    response = unreachable_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_answers_200_when_database_is_reachable(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready"}
    assert response.headers["Cache-Control"] == "no-store"


def test_sqlite_database_that_comes_back_is_used_again_without_a_restart(database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("moves the SQLite file away; PostgreSQL has its own test")
    # A copy of the migrated database, in a directory of its own that can go away.
    home = tmp_path / "data"
    home.mkdir()
    source = sqlite3.connect(make_url(database_url).database)
    copy = sqlite3.connect(home / "clinic_finder.sqlite3")
    with source, copy:
        source.backup(copy)
    source.close()
    copy.close()
    app = create_app(config_for_tests(f"sqlite:///{home / 'clinic_finder.sqlite3'}"))
    client = app.test_client()
    try:
        assert client.get("/find?postcode=0150").status_code == 200

        home.rename(tmp_path / "away")  # e.g. a network volume that went away
        with app.app_context():
            db.engine.dispose()  # open connections would still read the moved file
        assert client.get("/find?postcode=0150").status_code == 503
        assert client.get("/readyz").status_code == 503

        (tmp_path / "away").rename(home)
        assert client.get("/readyz").status_code == 200
        assert client.get("/find?postcode=0150").status_code == 200
        assert client.get("/api/v1/clinics?postcode=0150").status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def restartable_client(app, database_url) -> Iterator[tuple]:
    """(a client of an app on PostgreSQL, a function that cuts all its connections)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("cuts PostgreSQL connections; SQLite has its own test")
    name = "clinic_finder_restarted"
    restarted = create_app(config_for_tests(with_query(database_url, application_name=name)))

    def restart() -> None:
        # What a database restart or failover does to the pool: every connection cut.
        with app.app_context():
            cut = db.session.execute(
                # Waiting (up to 5 s) until each is gone, as a restart has them gone before
                # the app's next request: otherwise the race is this test's, not the app's.
                text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                ),
                {"name": name},
            ).all()
        assert cut, "the app had no connection to cut"

    yield restarted.test_client(), restart
    with restarted.app_context():
        db.engine.dispose()


def test_postgresql_restart_leaves_nothing_stuck(restartable_client):
    client, restart = restartable_client
    assert client.get("/find?postcode=0150").status_code == 200
    restart()
    statuses = [client.get("/find?postcode=0150").status_code for _ in range(3)]
    # The first request may meet a dead pooled connection (503); after that, all is well.
    assert statuses[0] in (200, 503) and statuses[1:] == [200, 200], statuses
    assert client.get("/readyz").status_code == 200


def test_postgresql_restart_costs_no_request(restartable_client):
    client, restart = restartable_client
    assert client.get("/find?postcode=0150").status_code == 200
    restart()
    assert client.get("/find?postcode=0150").status_code == 200


def test_postgresql_restart_costs_no_api_search_either(restartable_client):
    # The API searches without a transaction (autocommit): its connection is checked out
    # the same way, and a closed one replaced before the search's first statement.
    client, restart = restartable_client
    assert client.get("/api/v1/clinics?postcode=0150").status_code == 200
    restart()
    assert client.get("/api/v1/clinics?postcode=0150").status_code == 200
    restart()
    assert client.get("/find?postcode=0150").status_code == 200


@pytest.fixture
def vanishing_database(database_url) -> Iterator[tuple]:
    """(an app on PostgreSQL through a VanishingProxy, the proxy)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's connections, through a proxy")
    url = make_url(database_url)
    proxy = VanishingProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    vanishing = create_app(config_for_tests(proxied, DATABASE_PING_AFTER_IDLE_SECONDS=0.3))
    try:
        yield vanishing, proxy
    finally:
        with vanishing.app_context():
            db.engine.dispose()
        proxy.stop()


@pytest.mark.parametrize("path", ["/find?postcode=0150", "/api/v1/clinics?postcode=0150"])
def test_a_database_host_gone_silently_costs_no_request_after_a_pause(vanishing_database, path):
    # The host lost power, or the virtual address moved to a new primary: the pooled
    # connection's socket stays quiet, and only a packet sent on it meets a reset. A
    # connection idle longer than DATABASE_PING_AFTER_IDLE_SECONDS is pinged first.
    app, proxy = vanishing_database
    client = app.test_client()
    assert client.get(path).status_code == 200
    proxy.vanish()
    time.sleep(0.4)
    assert client.get(path).status_code == 200
    assert proxy.connections == 2  # the dead one was replaced, once


def test_a_database_host_gone_silently_under_load_costs_one_request(vanishing_database):
    # A connection used a moment ago is not pinged (the round trip would cost every
    # request under load): the request that meets the dead one is told to try again, and
    # the connection leaves the pool.
    app, proxy = vanishing_database
    client = app.test_client()
    assert client.get("/find?postcode=0150").status_code == 200
    proxy.vanish()
    statuses = [client.get("/find?postcode=0150").status_code for _ in range(3)]
    assert statuses == [503, 200, 200], statuses


def test_postgresql_pooled_connection_kept_while_the_server_keeps_it(app, database_url):
    # Checking a connection costs no round trip and gives up none that is alive: the same
    # server process answers request after request.
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's server processes")
    name = "clinic_finder_kept"
    kept = create_app(config_for_tests(with_query(database_url, application_name=name)))
    client = kept.test_client()
    try:
        pids = set()
        for _ in range(5):
            assert client.get("/api/v1/clinics?postcode=0150").status_code == 200
            with app.app_context():
                pids.update(
                    db.session.scalars(
                        text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                        {"name": name},
                    )
                )
        assert len(pids) == 1, pids
    finally:
        with kept.app_context():
            db.engine.dispose()


# --- the database failing mid-import --------------------------------------------------------


def test_cli_import_failing_mid_write_leaves_directory_unchanged(
    app, runner, tmp_path, refusing_database
):
    base = write_csv(tmp_path / "base.csv", clinic_rows(0, 6))
    assert runner.invoke(args=["clinics", "import", str(base)]).exit_code == 0
    before = directory_snapshot(app)
    batches, audits = count_rows(app, ImportBatch), count_rows(app, AuditEntry)

    rows = clinic_rows(0, 6, clinician_name="Renamed") + clinic_rows(6, 10)
    rows[-3] |= {"clinician_name": "Refused Writer"}
    changed = write_csv(tmp_path / "changed.csv", rows)
    result = runner.invoke(args=["clinics", "import", str(changed)])

    assert result.exit_code != 0
    assert result.exception is not None
    assert directory_snapshot(app) == before
    assert (count_rows(app, ImportBatch), count_rows(app, AuditEntry)) == (batches, audits)


def test_cli_import_after_a_failed_one_applies_completely(app, runner, tmp_path, refusing_database):
    rows = clinic_rows(0, 8)
    rows[5] |= {"clinician_name": "Refused Writer"}
    runner.invoke(args=["clinics", "import", str(write_csv(tmp_path / "bad.csv", rows))])
    assert count_rows(app, Clinician) == 0

    rows[5] |= {"clinician_name": "Accepted Writer"}
    result = runner.invoke(args=["clinics", "import", str(write_csv(tmp_path / "ok.csv", rows))])
    assert result.exit_code == 0, result.output
    assert count_rows(app, Clinician) == 8


# --- SMTP down during a burst of contact requests ------------------------------------------


def _submit_contact_forms(base_url: str, first: int, count: int) -> list[str]:
    """Fill in the contact form like a browser (cookies, CSRF token); return the references."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    references = []
    for number in range(first, first + count):
        with opener.open(f"{base_url}/contact?postcode=0150", timeout=30) as response:
            page = response.read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        form = {
            "csrf_token": token,
            "name": f"Pasient {number}",
            "email": f"p{number}@example.org",
            "postcode": "0150",
            "profession": "",
            "message": "Vondt i ryggen",
            "contact_time": "any",
            "consent": "y",
        }
        data = urllib.parse.urlencode(form).encode()
        # The form answers 302 to /contact/sent, which shows the reference.
        with opener.open(f"{base_url}/contact", data=data, timeout=30) as response:
            assert response.url.endswith("/contact/sent"), response.url
            references += re.findall(r"KF-[A-Z0-9]{8}", response.read().decode())[:1]
    return references


@pytest.mark.slow
def test_contact_form_burst_during_smtp_outage_is_delivered_exactly_once(
    app, live_server, runner, smtp
):
    app.config["CONTACT_RATE_LIMIT"] = "1000 per hour"
    smtp.stop()
    references: list[str] = []
    lock = threading.Lock()

    def patient(first: int) -> None:
        found = _submit_contact_forms(live_server, first, 3)
        with lock:
            references.extend(found)

    threads = [threading.Thread(target=patient, args=(3 * n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(references) == len(set(references)) == 30
    assert sorted(stored_requests(app)) == sorted(references)
    assert count_rows(app, OutboxMessage, OutboxMessage.sent_at.is_(None)) == 60
    assert smtp.messages == []
    # The server tries each request's emails once after answering; let those tries end, or
    # one could push its message back after _deliver_due has made everything due.
    wait_for(lambda: sends_after_responses_tried(app, 30), 30, "the tries right after each answer")

    smtp.start()
    deliver_due(app, runner)
    assert len(smtp.messages) == 60
    assert max(Counter(message["Message-ID"] for message in smtp.messages).values()) == 1
    recipients = Counter(message["To"] for message in smtp.messages)
    assert recipients.pop("inbox@clinic-finder.example") == 30
    assert recipients == Counter({f"p{number}@example.org": 1 for number in range(30)})
    assert "Sent 0" in deliver_due(app, runner)
    assert len(smtp.messages) == 60


# --- the geocoder timing out or answering garbage ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["slow", "garbage"])
def test_cli_import_with_geocoder_misbehaving_places_rows_at_postcode_promptly(
    app, database_url, tmp_path, mode
):
    rows = clinic_rows(0, 20, latitude="", longitude="")
    path = write_csv(tmp_path / "no-coordinates.csv", rows)
    with running_nominatim({"strandgata": (60.3951, 5.3251)}) as server:
        server.fail(mode)
        geo_app = create_app(config_for_tests(database_url, **server.config()))
        try:
            started = time.monotonic()
            result = geo_app.test_cli_runner().invoke(args=["clinics", "import", str(path)])
            elapsed = time.monotonic() - started
        finally:
            with geo_app.app_context():
                db.engine.dispose()
        asked = len(server.requests)

    assert result.exit_code == 0, result.output
    assert "20 new" in result.output and "could not be reached" in result.output
    with app.app_context():
        sources = set(db.session.scalars(select(Clinic.location_source)))
    assert sources == {LocationSource.POSTCODE}
    # After the first address fails (with its retry), nobody waits for the geocoder again.
    assert asked <= 2
    assert elapsed < 5


# --- a process killed mid-write -------------------------------------------------------------


@pytest.mark.slow
def test_worker_killed_mid_contact_request_stores_none_of_it(app, database_url, tmp_path):
    with running_gunicorn(database_url, tmp_path) as server:
        [worker] = server.worker_pids()
        outcome: dict[str, object] = {}

        def submit() -> None:
            try:
                outcome["status"] = post_json(
                    f"{server.base_url}/api/v1/contact-requests", contact_request_body(1)
                )[0]
            except (OSError, http.client.HTTPException) as error:
                outcome["error"] = error

        with (
            write_transaction_watch(database_url) as writing,
            slow_insert(app, "outbox_message", "kind", "request.confirmation"),
        ):
            thread = threading.Thread(target=submit)
            thread.start()
            try:
                # The request and its staff email are written; the confirmation is on its way.
                wait_for(writing, 20, "the worker's write transaction")
                os.kill(worker, signal.SIGKILL)
            finally:
                thread.join(timeout=30)
            assert not thread.is_alive(), "the killed worker's client is still waiting"
            wait_for(lambda: not writing(), 10, "the killed worker's transaction to end")
        assert "status" not in outcome, "the request was answered before the kill"

        assert stored_requests(app) == {}, "a half-written request was kept"
        assert count_rows(app, OutboxMessage) == 0

        # Nothing stuck: gunicorn's new worker serves, and the patient's retry is stored whole.
        wait_for(lambda: server.worker_pids() not in ([], [worker]), 30, "a new worker")
        wait_for(server.serves, 30, "the new worker")
        status, answer = post_json(
            f"{server.base_url}/api/v1/contact-requests", contact_request_body(1)
        )
    assert status == 201
    assert stored_requests(app) == {answer["reference"]: ["request.confirmation", "request.staff"]}


@pytest.mark.slow
def test_import_killed_mid_transaction_applies_nothing_and_runs_again(
    app, runner, database_url, tmp_path
):
    base = write_csv(tmp_path / "base.csv", clinic_rows(0, 40))
    assert runner.invoke(args=["clinics", "import", str(base)]).exit_code == 0
    before = directory_snapshot(app)
    batches, audits = count_rows(app, ImportBatch), count_rows(app, AuditEntry)
    rows = clinic_rows(0, 40, phone="22 33 44 55") + clinic_rows(40, 200)
    rows[-1] |= {"clinician_name": "Slow Writer"}  # the last clinician inserted
    path = write_csv(tmp_path / "changed.csv", rows)

    with (
        write_transaction_watch(database_url) as writing,
        slow_insert(app, "clinician", "name", "Slow Writer"),
        (tmp_path / "import.log").open("wb") as log,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "clinics", "import", str(path)],
            cwd=PROJECT_ROOT,
            env=child_environment(database_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: writing() or process.poll() is not None, 30, "the import to write")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            stop_process(process)
        wait_for(lambda: not writing(), 10, "the killed import's transaction to end")
    assert process.returncode == -signal.SIGKILL, (tmp_path / "import.log").read_text()

    assert directory_snapshot(app) == before
    assert (count_rows(app, ImportBatch), count_rows(app, AuditEntry)) == (batches, audits)

    again = runner.invoke(args=["clinics", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert "200 new, 40 updated" in again.output
    assert count_rows(app, Clinician) == 240


# --- import jobs: a job worker killed, and a file bigger than a request's time ----------------


def flask_worker(database_url: str, log: Path, **environment: str) -> subprocess.Popen:
    """`flask jobs work --loop`, as production runs it beside gunicorn."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "work", "--loop"]
            + ["--interval", "0.2"],
            cwd=PROJECT_ROOT,
            env=child_environment(database_url, **environment),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def batch_state(app: Flask, batch_id: int) -> tuple[ImportStatus, int, int]:
    """(status, rows checked, attempts) of an import, as committed."""
    with app.app_context():
        batch = db.session.get(ImportBatch, batch_id)
        return batch.status, batch.rows_done, batch.attempts


def queue_import(app: Flask, rows: list[dict[str, str]], *, planned: bool = False) -> int:
    """Queue a file as an upload would (planned already, if asked); return its batch id."""
    with app.app_context():
        batch = create_batch(db.session, "clinics.csv", csv_text(*rows).encode())
        if planned:
            plan_batch(db.session, batch)
        db.session.commit()
        return batch.id


@pytest.mark.slow
def test_job_worker_killed_mid_check_is_replaced_and_the_plan_is_whole(app, database_url, tmp_path):
    batch_id = queue_import(app, clinic_rows(0, 10_000))
    log = tmp_path / "worker.log"
    first = flask_worker(database_url, log, JOBS_LEASE_SECONDS="2")
    try:
        wait_for(lambda: batch_state(app, batch_id)[1] >= 500, 60, "the first stored chunk")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop_process(first)
    status, done, attempts = batch_state(app, batch_id)
    assert (status, attempts) == (ImportStatus.PLANNING, 1), log.read_text()
    assert 500 <= done < 10_000

    second = flask_worker(database_url, log, JOBS_LEASE_SECONDS="2")
    try:
        wait_for(lambda: batch_state(app, batch_id)[0] is ImportStatus.PLANNED, 120, "the plan")
    finally:
        stop_process(second)
    assert batch_state(app, batch_id) == (ImportStatus.PLANNED, 10_000, 2)
    assert count_rows(app, ImportRow) == 10_000  # one stored row per line: no leftovers


@pytest.mark.slow
def test_job_worker_killed_mid_import_writes_nothing_and_the_next_writes_it_once(
    app, database_url, tmp_path
):
    rows = clinic_rows(0, 200)
    rows[-1] |= {"clinician_name": "Slow Writer"}  # the last clinician inserted
    batch_id = queue_import(app, rows, planned=True)
    staff_id = make_staff(app)
    with app.app_context():
        staff = db.session.get(StaffUser, staff_id)
        assert request_apply(db.session, db.session.get(ImportBatch, batch_id), staff)
        db.session.commit()
    log = tmp_path / "worker.log"
    with (
        write_transaction_watch(database_url) as writing,
        slow_insert(app, "clinician", "name", "Slow Writer"),
    ):
        first = flask_worker(database_url, log, JOBS_LEASE_SECONDS="2")
        try:
            wait_for(
                lambda: batch_state(app, batch_id)[0] is ImportStatus.APPLYING and writing(),
                30,
                "the import's write transaction",
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            stop_process(first)
        wait_for(lambda: not writing(), 10, "the killed worker's transaction to end")
    assert count_rows(app, Clinician) == 0, log.read_text()
    assert count_rows(app, AuditEntry, AuditEntry.action == "import.apply") == 0

    second = flask_worker(database_url, log, JOBS_LEASE_SECONDS="2")
    try:
        wait_for(lambda: batch_state(app, batch_id)[0] is ImportStatus.APPLIED, 60, "the import")
    finally:
        stop_process(second)
    assert count_rows(app, Clinician) == 200
    assert count_rows(app, AuditEntry, AuditEntry.action == "import.apply") == 1


def _sign_in_as_staff(base_url: str, app: Flask, email: str) -> urllib.request.OpenerDirector:
    """Sign in through the real forms (password, then the authenticator's code)."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )

    def post(path: str, fields: dict[str, str]) -> str:
        with opener.open(base_url + path, timeout=30) as response:
            token = re.search(
                r'name="csrf_token" type="hidden" value="([^"]+)"', response.read().decode()
            ).group(1)
        data = urllib.parse.urlencode({**fields, "csrf_token": token}).encode()
        with opener.open(base_url + path, data=data, timeout=30) as response:
            return response.url

    opener.open(base_url + "/staff/sign-in?lang=en", timeout=30).close()  # pages in English
    post("/staff/sign-in", {"email": email, "password": STAFF_PASSWORD})
    assert post("/staff/sign-in/code", {"code": current_code(app, email)}).endswith("/staff/")
    return opener


@pytest.mark.slow
def test_file_taking_longer_than_the_worker_timeout_imports_completely(app, database_url, tmp_path):
    """A file that takes longer than gunicorn's timeout to check and write (15,000 rows
    against 2 s here; 40,000 against the default 30 s in bench/import_web_bench.py)."""
    make_staff(app, "import@clinic-finder.example")
    rows = clinic_rows(0, 15_000)
    path = write_csv(tmp_path / "big.csv", rows)
    settings = {"JOBS_RUN_IN_PROCESS": "false", "GUNICORN_TIMEOUT": "2"}
    worker = flask_worker(database_url, tmp_path / "worker.log", **settings)
    try:
        with running_gunicorn(database_url, tmp_path, config_file=True, **settings) as server:
            opener = _sign_in_as_staff(server.base_url, app, "import@clinic-finder.example")
            with opener.open(server.base_url + "/staff/import", timeout=30) as response:
                token = re.search(
                    r'name="csrf_token" type="hidden" value="([^"]+)"', response.read().decode()
                ).group(1)
            boundary, body = encode_multipart(
                {"csrf_token": token, "file": FileStorage(io.BytesIO(path.read_bytes()), "big.csv")}
            )
            upload = urllib.request.Request(
                server.base_url + "/staff/import",
                data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            with opener.open(upload, timeout=30) as response:
                batch_url = response.url
            batch_id = int(batch_url.rsplit("/", 1)[1])
            wait_for(lambda: batch_state(app, batch_id)[0] is ImportStatus.PLANNED, 120, "check")
            with opener.open(batch_url, timeout=30) as response:
                page = response.read().decode()
            assert "Import 15000 rows" in page
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            apply = urllib.parse.urlencode({"csrf_token": token}).encode()
            with opener.open(batch_url + "/apply", data=apply, timeout=30) as response:
                assert "The import has started" in response.read().decode()
            wait_for(lambda: batch_state(app, batch_id)[0] is ImportStatus.APPLIED, 120, "import")
            log = server.log()
    finally:
        stop_process(worker)
    assert count_rows(app, Clinician) == 15_000
    assert "WORKER TIMEOUT" not in log
