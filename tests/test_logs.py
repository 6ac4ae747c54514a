"""Structured logs: one JSON object per line, tagged with the request's id, no query strings."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest

from clinic_finder import create_app
from clinic_finder.extensions import db

from .conftest import config_for_tests, make_staff, set_up_link


@pytest.fixture
def json_logging_app(database_url):
    """An app that logs JSON and answers errors as production does, with a view that fails."""
    app = create_app(config_for_tests(database_url, TESTING=False, LOG_FORMAT="json"))

    def crash():
        raise RuntimeError("the search index is on fire")

    app.add_url_rule("/test-only/crash", view_func=crash)
    yield app
    with app.app_context():
        db.engine.dispose()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_response_has_its_own_request_id(client):
    first = client.get("/find").headers["X-Request-ID"]
    second = client.get("/api/v1/postcodes/0150").headers["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_a_proxys_request_id_is_kept(client):
    response = client.get("/find", headers={"X-Request-ID": "lb-2f6c1e0a-77"})
    assert response.headers["X-Request-ID"] == "lb-2f6c1e0a-77"


@pytest.mark.parametrize(
    "incoming", ["short", "x" * 65, "abc def ghi", "tab\tseparated-request", "<script>1</script>"]
)
def test_an_unsafe_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/find", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 32


def test_an_error_is_logged_as_json_with_the_request_id_and_no_query(json_logging_app, capfd):
    response = json_logging_app.test_client().get(
        "/test-only/crash?postcode=0150&message=vondt+i+ryggen"
    )
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    # The patient can quote the reference; staff find the log line by it.
    assert request_id in response.get_data(as_text=True)

    err = capfd.readouterr().err
    (entry,) = [e for e in _json_lines(err) if e["level"] == "ERROR"]
    assert entry["request_id"] == request_id
    assert entry["http_method"] == "GET"
    assert entry["http_path"] == "/test-only/crash"
    assert "the search index is on fire" in entry["exception"]
    assert "vondt" not in err
    assert "postcode=0150" not in err


def test_text_logs_in_development_carry_the_request_id(database_url, capfd):
    app = create_app(config_for_tests(database_url, TESTING=False, LOG_FORMAT="text"))
    try:

        def crash():
            raise RuntimeError("boom")

        app.add_url_rule("/test-only/crash", view_func=crash)
        response = app.test_client().get("/test-only/crash")
        err = capfd.readouterr().err
        assert f"ERROR clinic_finder [{response.headers['X-Request-ID']}]" in err
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_development_server_logs_no_query_strings(app, live_server, caplog):
    # werkzeug's server (make run) logs every request line; the query says where a
    # patient lives and what hurts.
    caplog.set_level(logging.INFO, logger="werkzeug")
    with urllib.request.urlopen(  # noqa: S310 - loopback
        f"{live_server}/find?postcode=0150&complaint=sciatica", timeout=10
    ) as response:
        response.read()
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("GET /find HTTP/1.1" in line for line in lines), lines
    assert not any("postcode" in line or "sciatica" in line for line in lines), lines


def test_gunicorn_error_lines_carry_no_query_strings(capfd):
    """gunicorn logs "Error handling request /find?…" when a request fails past the app."""
    from gunicorn.config import Config

    from clinic_finder.serving import AccessLogger

    logger = AccessLogger(Config())
    try:
        raise RuntimeError("a failure outside the app")
    except RuntimeError:
        logger.exception("Error handling request %s", "/find?postcode=0150&complaint=sciatica")
    logger.error("Error handling request %s %s", "GET", "/contact?clinic=12")
    logger.warning("Is the worker alive?")
    errors = capfd.readouterr().err
    assert "Error handling request /find" in errors
    assert "Error handling request GET /contact" in errors
    assert "Is the worker alive?" in errors
    assert "0150" not in errors
    assert "sciatica" not in errors
    assert "clinic=12" not in errors


def test_our_log_holds_no_one_time_links_token(app, json_logging_app, capfd):
    # The token sets up an account or a new password while unused: it is a secret. (`app`
    # comes first so that it cleans up, and json_logging_app's handler is the one in use.)
    make_staff(json_logging_app, enrolled=False)
    link = set_up_link(json_logging_app)
    assert json_logging_app.test_client().get(link).status_code == 303
    err = capfd.readouterr().err
    (opened,) = [entry for entry in _json_lines(err) if "link opened" in entry["message"]]
    assert opened["http_path"] == "/staff/link/[hidden]"
    assert link.rsplit("/", 1)[1] not in err


def test_the_development_server_logs_no_one_time_links_token(app, live_server, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    make_staff(app, enrolled=False)
    link = set_up_link(app)
    with urllib.request.urlopen(f"{live_server}{link}", timeout=10) as response:  # noqa: S310
        response.read()
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("GET /staff/link/[hidden] HTTP/1.1" in line for line in lines), lines
    assert not any(link.rsplit("/", 1)[1] in line for line in lines), lines
