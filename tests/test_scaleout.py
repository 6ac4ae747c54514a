"""Several app processes behave as one site: rate limits are shared through Redis.

Two gunicorn servers (think: two hosts behind a load balancer) serve the same database.
A patient's address may send only a few contact requests an hour, whichever server the
load balancer picks; with the default in-process storage each server would count alone.
"""

from __future__ import annotations

import os
import secrets
import socket
from urllib.parse import urlsplit

import pytest

from .test_faults import contact_request_body, post_json, running_gunicorn

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
