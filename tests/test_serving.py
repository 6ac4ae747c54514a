"""Production serving as `make serve` runs it: gunicorn.conf.py, its workers and its logs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from .conftest import PROJECT_ROOT, make_staff, set_up_link
from .helpers import PRODUCTION_ENVIRONMENT, child_environment, post_json, running_gunicorn

pytestmark = pytest.mark.slow


def _get(url: str, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.status, dict(response.headers)


def _access_lines(log: str) -> list[dict]:
    lines = []
    for line in log.splitlines():
        if line.startswith("{") and '"gunicorn.access"' in line:
            lines.append(json.loads(line))
    return lines


def test_gunicorn_conf_serves_with_the_workers_asked_for(database_url, tmp_path, app):
    with running_gunicorn(database_url, tmp_path, workers=3, config_file=True) as server:
        assert len(server.worker_pids()) == 3
        status, _ = _get(server.base_url + "/readyz")
        assert status == 200


def test_access_log_is_json_without_query_strings(database_url, tmp_path, app):
    with running_gunicorn(database_url, tmp_path, workers=1, config_file=True) as server:
        status, headers = _get(
            server.base_url + "/find?postcode=0150&profession=chiropractor",
            headers={"X-Request-ID": "lb-request-000123"},
        )
        assert status == 200
        post_json(
            server.base_url + "/api/v1/contact-requests",
            {
                "name": "Pia",
                "email": "pia@example.org",
                "postcode": "0150",
                "message": "Isjias etter fødsel",
                "consent": True,
            },
        )
        log = server.log()
    (find_line,) = [line for line in _access_lines(log) if line["http_path"] == "/find"]
    assert find_line["http_method"] == "GET"
    assert find_line["status"] == 200
    assert find_line["request_id"] == "lb-request-000123" == headers["X-Request-ID"]
    assert isinstance(find_line["duration_ms"], int)
    # Neither what the patient searched for nor what they wrote, nor where they are.
    assert "0150" not in log
    assert "chiropractor" not in log
    assert "Isjias" not in log
    assert "127.0.0.1 -" not in log


def test_access_log_holds_no_one_time_links_token(database_url, tmp_path, app):
    make_staff(app, enrolled=False)
    link = set_up_link(app)
    with running_gunicorn(database_url, tmp_path, workers=1, config_file=True) as server:
        status, _ = _get(server.base_url + link)  # followed on to the sign-in page
        assert status == 200
        log = server.log()
    paths = [line["http_path"] for line in _access_lines(log)]
    assert "/staff/link/[hidden]" in paths
    assert link.rsplit("/", 1)[1] not in log


def _gunicorn_conf_result(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Start gunicorn as `make serve` does; it is expected to refuse at once."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_with_the_default_secret_key_does_not_start(database_url, tmp_path):
    environment = child_environment(
        database_url, **PRODUCTION_ENVIRONMENT, GUNICORN_BIND="127.0.0.1:0"
    )
    environment.pop("SECRET_KEY")
    result = _gunicorn_conf_result(environment)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("app_env", [None, "", "prod", "development"])
def test_make_serve_refuses_to_start_unless_app_env_is_production(database_url, app_env):
    """The review forged a staff session on `make serve` started without APP_ENV."""
    environment = child_environment(
        database_url, **PRODUCTION_ENVIRONMENT, GUNICORN_BIND="127.0.0.1:0"
    )
    environment.pop("APP_ENV")
    if app_env is not None:
        environment["APP_ENV"] = app_env
    result = _gunicorn_conf_result(environment)
    assert result.returncode != 0
    assert "APP_ENV=production" in result.stderr


def test_slow_clients_do_not_starve_the_workers(database_url, tmp_path, app):
    """Four half-sent requests held both sync workers; /healthz then timed out after 12 s.

    A threaded worker reads each request on a thread of its own: even with all four slow
    clients on one worker, it has threads left (more slow clients are the proxy's job).
    """
    import socket
    import time

    with running_gunicorn(database_url, tmp_path, workers=2, config_file=True) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        slow = []
        try:
            for _ in range(4):
                connection = socket.create_connection((host, int(port)), timeout=5)
                # The request line and one header, then nothing: a slowloris client.
                connection.sendall(b"GET /find?postcode=0150 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                slow.append(connection)
            time.sleep(0.5)
            started = time.monotonic()
            status, _ = _get(server.base_url + "/healthz")
            assert status == 200
            # Sync workers held it until their 30 s timeout; threads answer at once (5 s: a
            # loaded CI machine).
            assert time.monotonic() - started < 5
        finally:
            for connection in slow:
                connection.close()
