"""Several app processes behave as one site: rate limits are shared through Redis.

Two gunicorn servers (think: two hosts behind a load balancer) serve the same database.
A patient's address may send only a few contact requests an hour, whichever server the
load balancer picks; with the default in-process storage each server would count alone.
Likewise two worker processes sharing a Redis take turns at the geocoder: one request a
second in all, where each alone would go at its own rate.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from .conftest import PROJECT_ROOT
from .helpers import (
    child_environment,
    contact_request_body,
    post_json,
    running_gunicorn,
    stop_process,
)
from .nominatim_server import NominatimServer, running_nominatim

# Database 15 of the local Redis, apart from anything else on it; keys get a fresh prefix.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
LIMIT = 3


def _redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not _redis_reachable(REDIS_URL):
        if "TEST_REDIS_URL" in os.environ:
            pytest.fail(f"TEST_REDIS_URL={REDIS_URL} is set but Redis does not answer there")
        pytest.skip(f"no Redis at {REDIS_URL}: start one, or set TEST_REDIS_URL")
    return REDIS_URL


def _send_alternately(servers, count: int) -> list[int]:
    """Send contact requests from one address, alternating between the servers."""
    statuses = []
    for number in range(count):
        server = servers[number % len(servers)]
        status, _ = post_json(
            server.base_url + "/api/v1/contact-requests", contact_request_body(number)
        )
        statuses.append(status)
    return statuses


def _two_servers(database_url, tmp_path, **environment):
    first = running_gunicorn(database_url, tmp_path, **environment)
    second = running_gunicorn(database_url, tmp_path, **environment)
    return first, second


@pytest.mark.slow
def test_two_servers_share_one_contact_rate_limit_through_redis(
    app, database_url, tmp_path, redis_url
):
    limits = {
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": f"test-{secrets.token_hex(6)}",
        "CONTACT_RATE_LIMIT": f"{LIMIT} per hour",
    }
    first, second = _two_servers(database_url, tmp_path, **limits)
    with first as server_a, second as server_b:
        statuses = _send_alternately([server_a, server_b], 2 * LIMIT)
    # Three requests in all, not three per server: the fourth is refused wherever it lands.
    assert statuses == [201] * LIMIT + [429] * LIMIT


@pytest.mark.slow
def test_without_redis_each_server_counts_alone(app, database_url, tmp_path):
    # The contrast that shows why production sets RATELIMIT_STORAGE_URI: in-process
    # storage lets an address send the limit to every server.
    first, second = _two_servers(
        database_url,
        tmp_path,
        RATELIMIT_STORAGE_URI="memory://",
        CONTACT_RATE_LIMIT=f"{LIMIT} per hour",
    )
    with first as server_a, second as server_b:
        statuses = _send_alternately([server_a, server_b], 2 * LIMIT)
    assert statuses == [201] * (2 * LIMIT)


# --- the geocoder's one request a second, for the whole site --------------------------------

# Redis keeps a moving window in whole seconds, so the shared interval is a second here.
SHARED_INTERVAL = 1.0
LOOKUPS_PER_PROCESS = 2
# A worker process: build the app from the environment, say so, wait for "go", geocode.
GEOCODING_WORKER = """
import sys
from wsgi import app
from clinic_finder.geocoding import current_geocoder
with app.app_context():
    geocoder = current_geocoder()
    print("ready", flush=True)
    sys.stdin.readline()
    for number in range(int(sys.argv[2])):
        geocoder.lookup(f"Gate {sys.argv[1]}-{number}, 0154 Oslo, Norway")
print("done", flush=True)
"""


def _geocode_in_two_processes(
    database_url: str, nominatim: NominatimServer, **environment: str
) -> list[float]:
    """Two worker processes geocode at the same moment; return the gaps the server saw."""
    settings = nominatim.config(GEOCODER_MIN_INTERVAL=SHARED_INTERVAL, GEOCODER_TIMEOUT=5)
    child_env = child_environment(
        database_url, **{name: str(value) for name, value in settings.items()}, **environment
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", GEOCODING_WORKER, str(number), str(LOOKUPS_PER_PROCESS)],
            cwd=PROJECT_ROOT,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for number in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # as close to the same moment as two writes get
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            assert worker.stdout.readline().strip() == "done"
            assert worker.wait(timeout=30) == 0
    finally:
        for worker in workers:
            stop_process(worker)
            worker.stdin.close()
            worker.stdout.close()
    times = sorted(request.at for request in nominatim.requests)
    assert len(times) == 2 * LOOKUPS_PER_PROCESS
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


@pytest.mark.slow
def test_two_processes_sharing_redis_geocode_at_most_once_per_interval(database_url, redis_url):
    with running_nominatim() as nominatim:
        gaps = _geocode_in_two_processes(
            database_url,
            nominatim,
            RATELIMIT_STORAGE_URI=redis_url,
            RATELIMIT_KEY_PREFIX=f"test-{secrets.token_hex(6)}",
        )
    # A turn is taken just before the request leaves: allow the milliseconds in between.
    assert min(gaps) >= SHARED_INTERVAL - 0.05, gaps


@pytest.mark.slow
def test_without_redis_each_process_geocodes_at_its_own_rate(database_url):
    # The contrast that shows the test above measures Redis: memory:// is per process.
    with running_nominatim() as nominatim:
        gaps = _geocode_in_two_processes(database_url, nominatim, RATELIMIT_STORAGE_URI="memory://")
    assert min(gaps) < SHARED_INTERVAL / 2, gaps


@pytest.mark.slow
def test_a_redis_that_stops_answering_does_not_hold_requests(database_url, tmp_path):
    # A server that takes connections and never answers: a Redis hung or cut off
    # mid-stream. Limits fall back to the process; the patient's request still goes in.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        storage = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with running_gunicorn(database_url, tmp_path, RATELIMIT_STORAGE_URI=storage) as server:
            started = time.monotonic()
            status, answer = post_json(
                server.base_url + "/api/v1/contact-requests", contact_request_body(1), timeout=30
            )
            waited = time.monotonic() - started
        assert status == 201, answer
        assert answer["reference"].startswith("KF-")
        # One second's socket timeout for the limit, one for the fallback's first probe.
        assert waited < 5, f"the request waited {waited:.1f} s on a silent Redis"
    finally:
        silent.close()
