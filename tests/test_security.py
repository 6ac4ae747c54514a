"""Security properties, checked on every route the app has.

Routes are read from ``app.url_map`` when the tests are collected, so a new route is
covered by these tests the day it is added. docs/security.md says which threat each test
answers.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
from email.utils import getaddresses
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from flask import Flask, jsonify, request
from sqlalchemy import select, text

from clinic_finder import PROJECT_ROOT, create_app
from clinic_finder.extensions import db
from clinic_finder.mail import build_message, queue_email
from clinic_finder.models import OutboxMessage
from clinic_finder.staff import OPEN_ENDPOINTS

from .conftest import (
    FORMULA_PREFIXES,
    PRODUCTION_SECRET_KEY,
    config_for_tests,
    csrf_token_from,
    formula_cells,
    make_staff,
    post_form,
    sign_in,
)
from .factories import make_clinic
from .helpers import (
    ALL_GET,
    GOOD_ROW,
    ROUTES,
    assert_security_headers,
    csp,
    csv_text,
    make_object,
    page_response,
    rejected_rows_file,
    rules,
    url_for_rule,
)

# --- the routes ------------------------------------------------------------------------


# Admin-only areas; ordinary staff get 403 there and nowhere else under /staff.
ADMIN_ONLY = ("/staff/audit", "/staff/users", "/staff/privacy", "/staff/embed", "/staff/outbox")


def _is_admin_only(rule: str) -> bool:
    return any(rule == area or rule.startswith(area + "/") for area in ADMIN_ONLY)


def _endpoint(rule: str) -> str:
    return next(endpoint for _, route_rule, endpoint in ROUTES if route_rule == rule)


STAFF_GET = rules("GET", "/staff", open_pages=False)
STAFF_POST = rules("POST", "/staff", open_pages=False)

# A JSON-safe, CSV-safe and HTML-safe hostile name: formula, markup and quotes in one.
HOSTILE_NAME = '=HYPERLINK("http://evil.example","<b>click</b>")'
EMAIL_INJECTION = "Pia Pasient\r\nBcc: x@evil.example"


def test_route_enumeration_sees_every_area():
    rules = {rule for _, rule, _ in ROUTES}
    assert {"/", "/contact", "/staff/sign-in", "/staff/clinics", "/api/v1/clinics"} <= rules
    assert len(STAFF_GET) > 10 and len(STAFF_POST) > 10
    assert all(_is_admin_only(area) for area in ADMIN_ONLY)
    assert all(area in rules for area in ADMIN_ONLY)


# --- who may see what ------------------------------------------------------------------


@pytest.mark.parametrize("rule", [r for r in STAFF_GET if not r.startswith("/staff/api/")])
def test_staff_page_sends_anonymous_visitor_to_sign_in(app, client, rule):
    response = client.get(url_for_rule(app, rule))
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/staff/sign-in"


@pytest.mark.parametrize("rule", [r for r in STAFF_GET if r.startswith("/staff/api/")])
def test_staff_api_answers_anonymous_caller_401(app, client, rule):
    response = client.get(url_for_rule(app, rule))
    assert response.status_code == 401
    assert response.get_json()["error"] == "Unauthorized"


@pytest.mark.parametrize(
    "path", ["/staff/no-such-page", "/staff/clinics/1/no-such-action", "/staff/.env"]
)
def test_unknown_staff_page_answers_anonymous_visitor_as_a_real_one(client, path):
    """An anonymous visitor cannot tell the staff area's real routes from made-up ones."""
    real = client.get("/staff/clinics")
    unknown = client.get(path)
    assert unknown.status_code == real.status_code == 302
    assert urlsplit(unknown.headers["Location"]).path == "/staff/sign-in"


def test_unknown_staff_api_path_answers_anonymous_caller_401(client):
    response = client.get("/staff/api/no-such-thing")
    assert response.status_code == 401


def test_unknown_staff_page_is_not_found_for_staff(staff_client):
    assert staff_client.get("/staff/no-such-page").status_code == 404


@pytest.mark.parametrize("rule", STAFF_POST)
def test_staff_action_refuses_anonymous_visitor_even_with_csrf_token(app, client, rule):
    token = csrf_token_from(client, "/staff/sign-in")
    response = client.post(url_for_rule(app, rule), data={"csrf_token": token})
    if rule.startswith("/staff/api/"):
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/staff/sign-in"


@pytest.mark.parametrize("rule", [r for r in STAFF_GET if _is_admin_only(r)])
def test_admin_page_refuses_ordinary_staff(app, staff_client, rule):
    assert staff_client.get(url_for_rule(app, rule)).status_code == 403


@pytest.mark.parametrize("rule", [r for r in STAFF_POST if _is_admin_only(r)])
def test_admin_action_refuses_ordinary_staff(app, staff_client, rule):
    token = csrf_token_from(staff_client, "/staff/clinics/new")
    response = staff_client.post(url_for_rule(app, rule), data={"csrf_token": token})
    assert response.status_code == 403


@pytest.mark.parametrize("rule", [r for r in STAFF_GET if not _is_admin_only(r)])
def test_other_staff_page_opens_for_ordinary_staff(app, staff_client, rule):
    # A 403 here means a new admin-only page: add its area to ADMIN_ONLY (and the docs).
    assert staff_client.get(url_for_rule(app, rule)).status_code == 200


# --- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", rules("POST", "/staff", "/contact"))
def test_post_without_csrf_token_is_refused(app, request, rule):
    # Signed in as an admin wherever that is needed, so the token is the only thing missing.
    needs_account = rule.startswith("/staff") and _endpoint(rule) not in OPEN_ENDPOINTS
    client = request.getfixturevalue("admin_client" if needs_account else "client")
    response = client.post(url_for_rule(app, rule), data={"name": "x"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_csrf_token_of_another_session_is_refused(app, staff_client):
    stranger_token = csrf_token_from(app.test_client(), "/contact")
    response = staff_client.post(
        "/staff/clinics/new", data={"csrf_token": stranger_token, "name": "Planted"}
    )
    assert response.status_code == 400


# --- where sign-in may send people ----------------------------------------------------

NEXT_VARIANTS = [
    "//evil.example",
    "/\\evil.example",
    "https:evil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "\t//evil.example",
    "/\t/evil.example",
    " //evil.example",
    "///evil.example",
    "/%2F/evil.example",
    "http://localhost@evil.example/",
]


def _leaves_site(location: str) -> bool:
    """Whether a browser following this Location would end up on another site."""
    # Browsers drop tabs and line breaks anywhere, trim spaces and control characters at
    # the ends, and read a backslash as a slash (WHATWG URL parsing).
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("".join(map(chr, range(33))))
    target = urlsplit(urljoin("http://localhost/staff/sign-in", cleaned.replace("\\", "/")))
    return target.scheme not in ("http", "https") or target.netloc != "localhost"


@pytest.mark.parametrize("target", NEXT_VARIANTS)
def test_sign_in_next_never_leads_off_site(app, client, target):
    make_staff(app)
    response = sign_in(client, next_url=target)
    assert response.status_code == 302
    assert not _leaves_site(response.headers["Location"]), response.headers["Location"]


def test_leaves_site_recognises_off_site_locations():
    assert _leaves_site("//evil.example/")
    assert _leaves_site("/\\evil.example")
    assert _leaves_site("https://evil.example")
    assert _leaves_site("javascript:alert(1)")
    assert not _leaves_site("/staff/clinics?q=oslo")


# --- the session cookie -------------------------------------------------------------------


def _session_cookie(app: Flask, response) -> str:
    name = app.config["SESSION_COOKIE_NAME"]
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(name + "=")]
    assert cookies, "the sign-in set no session cookie"
    return cookies[-1]


def test_session_cookie_is_httponly_and_samesite_lax(app, client):
    make_staff(app)
    cookie = _session_cookie(app, sign_in(client))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_is_also_secure_in_production(app, database_url, monkeypatch):
    # `app` is not used, but its teardown empties the database this app writes to.
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET_KEY)
    monkeypatch.setenv("TRUSTED_HOSTS", "localhost")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://localhost")
    app = create_app({"GEOCODER": "none"})
    try:
        make_staff(app)
        client = app.test_client()
        response = sign_in(client)
        assert response.status_code == 302
        cookie = _session_cookie(app, response)
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
    finally:
        with app.app_context():
            db.engine.dispose()


# --- error responses reveal nothing ---------------------------------------------------

LEAKS = ("traceback", "sqlalchemy", "psycopg", "site-packages", "/work/", 'file "')


def _assert_reveals_nothing(response) -> None:
    body = response.get_data(as_text=True)
    folded = body.lower()
    for leak in (*LEAKS, str(PROJECT_ROOT).lower()):
        assert leak not in folded, f"{leak!r} in a {response.status_code} response"
    assert "SELECT " not in body


def _multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes):
    # Built by hand so the test client keeps the body in memory (no temporary file).
    parts = [
        f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--B\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    return {
        "data": b"".join(parts) + b"--B--\r\n",
        "content_type": "multipart/form-data; boundary=B",
    }


OVER_5_MB = b"a" * (5 * 1024 * 1024 + 1)


def _too_many_sign_ins(client):
    for _ in range(10):
        response = sign_in(client, email="nobody@clinic-finder.example")
        if response.status_code == 429:
            break
    return response


def _too_many_api_requests(client):
    # Only stored requests count toward the limit, so these are valid.
    body = {"name": "Pia", "phone": "+47 912 34 567", "postcode": "0150", "message": "Vondt"}
    for _ in range(10):
        response = client.post("/api/v1/contact-requests", json={**body, "consent": True})
        if response.status_code == 429:
            break
    return response


ERROR_CASES = {
    "404 page": ("client", 404, lambda c: c.get("/no-such-page")),
    "404 api": ("client", 404, lambda c: c.get("/api/v1/no-such-thing")),
    "404 staff object": ("staff_client", 404, lambda c: c.get("/staff/clinics/987654")),
    "404 staff api": ("staff_client", 404, lambda c: c.get("/staff/api/clinics/987654")),
    "405 page": ("client", 405, lambda c: c.put("/find")),
    "405 api": ("client", 405, lambda c: c.delete("/api/v1/clinics")),
    "400 search": ("client", 400, lambda c: c.get("/find?postcode=abc&radius=x&page=-1")),
    "400 api search": ("client", 400, lambda c: c.get("/api/v1/clinics?postcode=x&limit=y")),
    "400 api postcode": ("client", 400, lambda c: c.get("/api/v1/postcodes/abc")),
    "400 api body": (
        "client",
        400,
        lambda c: c.post("/api/v1/contact-requests", data="{", content_type="application/json"),
    ),
    "400 csrf": ("client", 400, lambda c: c.post("/contact", data={"name": "x"})),
    "401 staff api": ("client", 401, lambda c: c.get("/staff/api/clinics/1")),
    "403 admin page": ("staff_client", 403, lambda c: c.get("/staff/audit")),
    "413 upload": (
        "staff_client",
        413,
        lambda c: c.post(
            "/staff/import",
            **_multipart(
                {"csrf_token": csrf_token_from(c, "/staff/import")}, "file", "big.csv", OVER_5_MB
            ),
        ),
    ),
    "413 contact form": (
        "client",
        413,
        lambda c: c.post(
            "/contact",
            data=b"message=" + OVER_5_MB,
            content_type="application/x-www-form-urlencoded",
        ),
    ),
    "429 sign-in": ("client", 429, _too_many_sign_ins),
    "429 api": ("client", 429, _too_many_api_requests),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_response_reveals_no_internals(app, request, case):
    fixture, status, send = ERROR_CASES[case]
    response = send(request.getfixturevalue(fixture))
    assert response.status_code == status
    _assert_reveals_nothing(response)


INTERNALS = "SELECT password_hash FROM staff_user; Traceback at /work/main/site-packages"


@pytest.fixture
def failing_app(database_url):
    """An app like production (exceptions are not propagated) with views that fail."""
    app = create_app(config_for_tests(database_url, TESTING=False))

    def crash():
        raise RuntimeError(INTERNALS)

    def crash_json():
        raise RuntimeError(INTERNALS)

    def bad_sql():
        db.session.execute(text("SELECT secret_column FROM table_that_is_not_there"))
        return jsonify({})

    app.add_url_rule("/test-only/crash", view_func=crash)
    app.add_url_rule("/api/v1/test-only/crash", view_func=crash_json)
    app.add_url_rule("/test-only/bad-sql", view_func=bad_sql)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "path", ["/test-only/crash", "/api/v1/test-only/crash", "/test-only/bad-sql"]
)
def test_unexpected_exception_answers_without_internals(failing_app, path):
    response = failing_app.test_client().get(path)
    # SQLite reports a missing table as an OperationalError, which is answered as 503.
    assert response.status_code in (500, 503)
    _assert_reveals_nothing(response)
    body = response.get_data(as_text=True)
    assert "password_hash" not in body
    assert "table_that_is_not_there" not in body


# Values past a 64-bit integer used to reach the database as they were.
HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "fixture, path",
    [
        ("client", f"/contact?clinic={HUGE}"),
        ("staff_client", f"/staff/clinics/{HUGE}"),
        ("staff_client", f"/staff/clinics?page={HUGE}"),
    ],
)
def test_out_of_range_number_in_url_is_not_a_server_error(app, request, fixture, path):
    response = request.getfixturevalue(fixture).get(path)
    assert response.status_code < 500


def _contact_form_with_huge_clinic(app, request):
    client = request.getfixturevalue("client")
    fields = {"name": "Pia", "email": "pia@example.org", "postcode": "0150", "message": "Vondt"}
    return post_form(client, "/contact", consent="y", clinic_id=HUGE, **fields)


def _contact_api_with_huge_clinic(app, request):
    client = request.getfixturevalue("client")
    fields = {"name": "Pia", "email": "pia@example.org", "postcode": "0150", "message": "Vondt"}
    return client.post(
        "/api/v1/contact-requests", json={**fields, "consent": True, "clinic_id": int(HUGE)}
    )


def _referral_with_huge_clinic(app, request):
    client = request.getfixturevalue("staff_client")
    request_id = make_object(app, "request_id", "Pia")
    page = f"/staff/requests/{request_id}"
    return post_form(client, page, f"{page}/referral", clinic_id=HUGE)


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(_contact_form_with_huge_clinic, id="contact form"),
        pytest.param(_contact_api_with_huge_clinic, id="contact api"),
        pytest.param(_referral_with_huge_clinic, id="referral"),
    ],
)
def test_out_of_range_number_in_a_form_is_not_a_server_error(app, request, send):
    assert send(app, request).status_code < 500


# --- uploads ------------------------------------------------------------------------------


def _upload(client, content: bytes, filename: str = "clinics.csv"):
    token = csrf_token_from(client, "/staff/import")
    return client.post(
        "/staff/import", **_multipart({"csrf_token": token}, "file", filename, content)
    )


CSV_CONTENT = rejected_rows_file("Testklinikken").encode()


def test_upload_over_5_mb_is_refused_with_413(staff_client):
    response = _upload(staff_client, OVER_5_MB)
    assert response.status_code == 413
    assert "Request Entity Too Large" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "not a text file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        # UTF-16 is read (Excel's "Unicode text"), and then judged like any text.
        ("clinic_name,postcode\r\n".encode("utf-16"), "Required column(s) missing"),
        (b"\xff\xfe\x00\x00\x89PNG", "not a text file"),
        (b"", "The file is empty"),
        (b" \r\n\r\n", "The file is empty"),
    ],
    ids=["exe", "png", "utf-16", "utf-16-binary", "empty", "blank"],
)
def test_upload_that_is_not_a_clinic_list_gets_a_clear_error(staff_client, content, message):
    response = _upload(staff_client, content)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


def test_upload_is_judged_by_its_content_not_its_name(staff_client):
    # A CSV named .exe is read as the CSV it is: the file is parsed as text, never stored
    # under its name, run, or served back as a download with it.
    response = _upload(staff_client, CSV_CONTENT, "clinics.exe")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path.startswith("/staff/import/")


def test_upload_name_is_shown_as_text(staff_client):
    response = _upload(staff_client, CSV_CONTENT, "<img src=x onerror=alert(1)>.csv")
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "&lt;img src=x" in page
    assert "<img src=x" not in page


# --- CSV downloads neutralise formulas ----------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES, ids=repr)
@pytest.mark.parametrize("rule", [r for r in STAFF_GET if r.endswith(".csv")])
def test_csv_download_neutralises_formula_cells(app, staff_client, rule, prefix):
    payload = prefix + HOSTILE_NAME.lstrip("=")
    make_object(app, "clinic_id", payload)  # in the directory, for the export
    response = staff_client.get(url_for_rule(app, rule, name=payload))  # and in an import
    assert response.status_code == 200
    text = response.get_data(as_text=True).lstrip("\ufeff")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    # The importer trims a leading tab or CR, so look for the payload without them.
    assert any(payload.strip() in cell for cell in cells), "the payload is not in the file"
    assert formula_cells(text) == []


# --- email headers --------------------------------------------------------------------------


def _outbox_as_received(app: Flask) -> list[email.message.EmailMessage]:
    """Build every outbox message and parse it back as a mail server would read it."""
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        sender = app.config["MAIL_DEFAULT_SENDER"]
        return [
            email.message_from_bytes(
                build_message(row, sender).as_bytes(), policy=email.policy.default
            )
            for row in rows
        ]


# The headers build_message writes; an injected line would add another name.
EXPECTED_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


def _assert_one_recipient_and_no_injected_header(message) -> None:
    assert {name.lower() for name in message} <= EXPECTED_HEADERS, message.keys()
    assert message.get_all("Bcc") is None
    assert message.get_all("Cc") is None
    (to,) = message.get_all("To")
    (recipient,) = getaddresses([str(to)])
    assert not recipient[1].endswith("evil.example")


def _contact_by_form(client):
    return post_form(
        client,
        "/contact",
        name=EMAIL_INJECTION,
        email="pia@example.org",
        postcode="0150",
        message="Vondt i korsryggen",
        consent="y",
    )


def _contact_by_api(client):
    return client.post(
        "/api/v1/contact-requests",
        json={
            "name": EMAIL_INJECTION,
            "email": "pia@example.org",
            "postcode": "0150",
            "message": "Vondt i korsryggen",
            "consent": True,
        },
    )


@pytest.mark.parametrize("send", [_contact_by_form, _contact_by_api], ids=["form", "api"])
def test_contact_name_cannot_add_email_headers(app, client, send):
    assert send(client).status_code in (201, 302)
    messages = _outbox_as_received(app)
    assert len(messages) == 2  # staff notice and patient confirmation
    for message in messages:
        _assert_one_recipient_and_no_injected_header(message)


@pytest.mark.parametrize("channel", ["form", "api"])
def test_contact_email_address_with_a_line_break_is_refused(app, client, channel):
    address = "pia@example.org\r\nBcc: x@evil.example"
    fields = {"name": "Pia", "email": address, "postcode": "0150", "message": "Vondt"}
    if channel == "form":
        response = post_form(client, "/contact", consent="y", **fields)
    else:
        response = client.post("/api/v1/contact-requests", json={**fields, "consent": True})
    assert response.status_code == 400
    assert _outbox_as_received(app) == []


def test_referral_emails_carry_no_injected_headers(app, staff_client):
    request_id = make_object(app, "request_id", EMAIL_INJECTION)
    with app.app_context():
        clinic = make_clinic(db.session, name=EMAIL_INJECTION, email="post@klinikk.example")
        db.session.commit()
        clinic_id = clinic.id
    response = post_form(
        staff_client,
        f"/staff/requests/{request_id}",
        f"/staff/requests/{request_id}/referral",
        clinic_id=clinic_id,
        tell_patient="y",
    )
    assert response.status_code == 302
    messages = _outbox_as_received(app)
    assert len(messages) == 4  # the request's two, then the clinic's and the patient's
    for message in messages:
        _assert_one_recipient_and_no_injected_header(message)


def test_queue_email_folds_line_breaks_out_of_the_subject(app, session):
    queue_email(
        session,
        to="pia@example.org",
        subject=f"About {EMAIL_INJECTION}",
        body="Hello",
        kind="test",
    )
    session.commit()
    (message,) = _outbox_as_received(app)
    _assert_one_recipient_and_no_injected_header(message)
    assert message["Subject"] == "About Pia Pasient Bcc: x@evil.example"


# --- security headers: framing, CSP, HSTS ------------------------------------------------


@pytest.mark.parametrize("rule", [*ALL_GET, "/no-such-page", "/static/css/site.css"])
def test_every_response_carries_the_security_headers(app, request, rule):
    response = page_response(app, request, rule)
    response.close()  # a static file is streamed from disk
    assert response.status_code < 500
    assert_security_headers(response)


@pytest.mark.parametrize(
    "path", ["/test-only/crash", "/api/v1/test-only/crash", "/test-only/bad-sql"]
)
def test_error_responses_carry_the_security_headers(failing_app, path):
    assert_security_headers(failing_app.test_client().get(path))


# Names url_for reads as instructions, and the routes' own argument names.
URL_FOR_KEYWORDS = ("endpoint", "_anchor", "_method", "_scheme", "_external")
ROUTE_ARGUMENTS = (
    "clinic_id",
    "clinician_id",
    "practice_id",
    "slug",
    "batch_id",
    "request_id",
    "user_id",
    "code",
)


@pytest.mark.parametrize("rule", ALL_GET)
def test_url_for_keywords_in_the_query_break_no_page(app, request, rule):
    """?endpoint=x gave a bare 500 on every page (the language switch passed the query on)."""
    query = urlencode([(name, "5") for name in (*URL_FOR_KEYWORDS, *ROUTE_ARGUMENTS)])
    signed_in = rule.startswith("/staff") and rule != "/staff/sign-in"
    client = request.getfixturevalue("admin_client" if signed_in else "client")
    url = url_for_rule(app, rule)
    response = client.get(url + ("&" if "?" in url else "?") + query)
    assert response.status_code < 500
    assert_security_headers(response)


@pytest.mark.parametrize("name", [*URL_FOR_KEYWORDS, *ROUTE_ARGUMENTS])
def test_language_switch_keeps_the_search_and_only_the_search(client, name):
    response = client.get(f"/find?postcode=0150&{name}=javascript:alert(1)")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    switch = re.search(r'<a [^>]*lang="nb" hreflang="nb" href="([^"]+)"', page).group(1)
    assert urlsplit(switch.replace("&amp;", "&")).path == "/find"
    assert parse_qs(urlsplit(switch.replace("&amp;", "&")).query) == {
        "postcode": ["0150"],
        name: ["javascript:alert(1)"],
        "lang": ["nb"],
    }


def test_error_page_links_come_from_no_request_data(client):
    page = client.get("//evil.example/no-such-page").get_data(as_text=True)
    assert "evil.example" not in page


@pytest.fixture
def app_whose_pages_cannot_render(failing_app):
    """failing_app, where drawing any page fails (even the error page) while asked to."""

    @failing_app.context_processor
    def break_every_page():
        if request.args.get("break-pages"):
            raise RuntimeError(INTERNALS)
        return {}

    return failing_app


@pytest.mark.parametrize("path", ["/test-only/crash", "/find", "/no-such-page"])
def test_an_error_page_that_cannot_render_still_answers_safely(app_whose_pages_cannot_render, path):
    response = app_whose_pages_cannot_render.test_client().get(path + "?break-pages=1")
    assert response.status_code in (404, 500)
    assert_security_headers(response)
    assert response.headers["X-Request-ID"]
    _assert_reveals_nothing(response)
    assert "Finn klinikk" in response.get_data(as_text=True)


def test_map_script_runs_only_by_this_responses_nonce(client, session):
    make_clinic(session, postcode="0150")
    session.commit()
    nonces = []
    for _ in range(2):
        response = client.get("/find?postcode=0150")
        body = response.get_data(as_text=True)
        (nonce,) = [s[len("'nonce-") : -1] for s in csp(response)["script-src"][1:]]
        # Every inline script on the page carries the nonce; none runs without it.
        inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body)
        assert inline_scripts, "the results page should have its map script"
        assert all(f'nonce="{nonce}"' in attributes for attributes in inline_scripts)
        nonces.append(nonce)
    assert nonces[0] != nonces[1], "a nonce must never repeat"


def test_page_without_inline_script_grants_no_nonce(client):
    assert csp(client.get("/contact"))["script-src"] == ["'self'"]


def test_tiles_are_allowed_only_from_the_configured_tile_server(database_url):
    app = create_app(
        config_for_tests(database_url, MAP_TILES_URL="https://{s}.tiles.example.no/{z}/{x}/{y}.png")
    )
    try:
        response = app.test_client().get("/find")
        assert csp(response)["img-src"] == ["'self'", "data:", "https://*.tiles.example.no"]
    finally:
        with app.app_context():
            db.engine.dispose()


def test_hsts_is_sent_in_production_only(app, client, database_url, monkeypatch):
    assert "Strict-Transport-Security" not in client.get("/find").headers
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET_KEY)
    monkeypatch.setenv("TRUSTED_HOSTS", "localhost")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://localhost")
    production = create_app({"GEOCODER": "none"})
    try:
        response = production.test_client().get("/find")
        assert response.headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains"
        )
    finally:
        with production.app_context():
            db.engine.dispose()


# --- bidirectional controls never reach a stored name -------------------------------------

RLO_NAME = "Fysio\u202eakinilk\u202c Sentrum"  # shown as "Fysio klinikka Sentrum" when rendered


def test_import_stores_names_without_bidi_controls(session):
    from clinic_finder.importer import apply_import, plan_import
    from clinic_finder.models import Clinic, Clinician

    row = {
        **GOOD_ROW,
        "clinic_name": RLO_NAME,
        "clinician_name": "Ola \u2067Nordmann\u2069\u200f",
        "address": "Storgata\u202d 1",
        "city": "Oslo\u061c",
    }
    text = csv_text(row)
    apply_import(session, plan_import(session, text))
    session.commit()
    clinic = session.scalars(select(Clinic)).one()
    clinician = session.scalars(select(Clinician)).one()
    assert (clinic.name, clinic.address, clinic.city) == (
        "Fysioakinilk Sentrum",
        "Storgata 1",
        "Oslo",
    )
    assert clinician.name == "Ola Nordmann"
    # The same file again changes nothing: it reads as what it stored.
    assert plan_import(session, text).counts["unchanged"] == 1


def test_contact_request_name_is_stored_without_bidi_controls(app, client):
    from clinic_finder.models import ContactRequest

    response = post_form(
        client,
        "/contact",
        name="Kari \u202eNordmann",
        email="kari@example.org",
        postcode="0150",
        message="Vondt i ryggen",
        consent="y",
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(ContactRequest)).one().name == "Kari Nordmann"


def test_staff_clinic_form_stores_names_without_bidi_controls(app, staff_client):
    from clinic_finder.models import Clinic

    response = post_form(
        staff_client,
        "/staff/clinics/new",
        name=RLO_NAME,
        address="Storgata 1",
        postcode="0150",
        city="Oslo\u2066",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert (clinic.name, clinic.city) == ("Fysioakinilk Sentrum", "Oslo")
