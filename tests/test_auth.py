"""Staff sign-in: who gets in, for how long, and where they are sent afterwards."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clinic_finder.extensions import db
from clinic_finder.models import StaffUser

from .conftest import STAFF_PASSWORD, csrf_token_from, make_staff, post_form, sign_in


def test_anonymous_staff_page_redirects_to_sign_in_with_next(client):
    response = client.get("/staff/clinics?q=oslo")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/sign-in?next=")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["next"] == ["/staff/clinics?q=oslo"]


def test_anonymous_staff_api_call_gets_401_json(client):
    response = client.get("/staff/api/clinics/1")
    assert response.status_code == 401
    assert response.get_json()["error"] == "Unauthorized"


def test_sign_in_goes_to_next_page(app, client):
    make_staff(app)
    response = sign_in(client, next_url="/staff/clinics?q=oslo")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/clinics?q=oslo"
    assert client.get("/staff/clinics").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example",
        "https:evil.example",
        "https://evil.example/staff",
        "javascript:alert(1)",
        "/\t/evil.example",
        "staff/clinics",
    ],
)
def test_sign_in_never_redirects_off_site(app, client, target):
    make_staff(app)
    response = sign_in(client, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


def test_wrong_password_is_refused_with_one_message(app, client):
    make_staff(app)
    wrong = sign_in(client, password="not the password at all")
    unknown = sign_in(client, email="nobody@clinic-finder.example")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "do not match an active staff account" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_sign_in_without_csrf_token_is_refused(app, client):
    make_staff(app)
    response = client.post(
        "/staff/sign-in",
        data={"email": "staff@clinic-finder.example", "password": STAFF_PASSWORD},
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_sign_in_attempts_are_rate_limited(app, client):
    make_staff(app)
    statuses = [sign_in(client, password=f"wrong password {n}").status_code for n in range(6)]
    assert statuses[:5] == [200] * 5
    assert statuses[5] == 429


def test_deactivated_account_cannot_sign_in(app, client):
    account_id = make_staff(app)
    with app.app_context():
        db.session.get(StaffUser, account_id).active = False
        db.session.commit()
    assert sign_in(client).status_code == 200
    assert client.get("/staff/").status_code == 302


def test_sign_in_starts_a_fresh_session(app, client):
    make_staff(app)
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    sign_in(client)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert "_user_id" in session


def test_session_cookie_is_httponly_and_samesite_lax(app, client):
    make_staff(app)
    response = sign_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_is_secure_in_production(database_url, monkeypatch):
    from clinic_finder import create_app

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    monkeypatch.setenv("TRUSTED_HOSTS", "localhost")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["TRUSTED_HOSTS"] == ["localhost"]


def test_idle_session_ends_after_30_minutes(staff_client):
    with staff_client.session_transaction() as session:
        session["last_seen_at"] = time.time() - 31 * 60
    response = staff_client.get("/staff/clinics")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/sign-in")


def test_session_ends_after_12_hours_even_when_active(staff_client):
    with staff_client.session_transaction() as session:
        session["signed_in_at"] = time.time() - 12 * 3600 - 60
    assert staff_client.get("/staff/clinics").status_code == 302


def test_activity_keeps_session_alive(staff_client):
    with staff_client.session_transaction() as session:
        session["last_seen_at"] = time.time() - 29 * 60
    assert staff_client.get("/staff/clinics").status_code == 200
    assert staff_client.get("/staff/clinics").status_code == 200


def test_sign_out_ends_sessions_on_every_device(app, staff_client):
    other_device = app.test_client()
    assert sign_in(other_device).status_code == 302
    response = post_form(staff_client, "/staff/", "/staff/sign-out")
    assert response.status_code == 302
    assert staff_client.get("/staff/").status_code == 302
    assert other_device.get("/staff/").status_code == 302


def test_deactivating_account_ends_its_sessions(app, staff_client, admin_client):
    with app.app_context():
        staff_id = db.session.scalar(
            select(StaffUser.id).where(StaffUser.email == "staff@clinic-finder.example")
        )
    response = post_form(admin_client, "/staff/users", f"/staff/users/{staff_id}/deactivate")
    assert response.status_code == 302
    assert staff_client.get("/staff/").status_code == 302
    assert sign_in(staff_client).status_code == 200


@pytest.mark.parametrize("url", ["/staff/audit", "/staff/users", "/staff/users/new"])
def test_admin_pages_refuse_ordinary_staff(staff_client, url):
    assert staff_client.get(url).status_code == 403


@pytest.mark.parametrize("url", ["/staff/audit", "/staff/users", "/staff/users/new"])
def test_admin_pages_open_for_admins(admin_client, url):
    assert admin_client.get(url).status_code == 200


def test_admin_creates_staff_account_that_can_sign_in(app, admin_client):
    response = post_form(
        admin_client,
        "/staff/users/new",
        email="New.Person@clinic-finder.example",
        password="a long enough password",
    )
    assert response.status_code == 302
    new_client = app.test_client()
    assert (
        sign_in(
            new_client, "new.person@clinic-finder.example", "a long enough password"
        ).status_code
        == 302
    )


def test_short_password_is_refused(admin_client):
    response = post_form(
        admin_client, "/staff/users/new", email="x@clinic-finder.example", password="short"
    )
    assert response.status_code == 200
    assert "at least 12" in response.get_data(as_text=True)


def test_password_is_stored_as_scrypt_hash(app):
    account_id = make_staff(app)
    with app.app_context():
        stored = db.session.get(StaffUser, account_id).password_hash
    assert stored.startswith("scrypt:")
    assert STAFF_PASSWORD not in stored


def test_cli_creates_admin_with_prompted_password(app, runner):
    result = runner.invoke(
        args=["staff", "create", "Boss@clinic-finder.example", "--admin"],
        input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert STAFF_PASSWORD not in result.output
    with app.app_context():
        account = db.session.scalar(select(StaffUser))
        assert account.email == "boss@clinic-finder.example" and account.is_admin


def test_cli_refuses_short_password(app, runner):
    result = runner.invoke(
        args=["staff", "create", "a@clinic-finder.example"], input="short\nshort\n"
    )
    assert result.exit_code != 0
    assert "at least 12" in result.output


def test_csrf_token_is_on_sign_in_form(client):
    assert csrf_token_from(client, "/staff/sign-in")
