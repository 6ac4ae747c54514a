"""Staff sign-in: who gets in, for how long, and where they are sent afterwards."""

from __future__ import annotations

import re
import time
from datetime import UTC, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clinic_finder import create_app
from clinic_finder.auth import ACCOUNT_WIDE, create_staff_account
from clinic_finder.extensions import db
from clinic_finder.models import AuditEntry, SignInPause, StaffUser, now_utc

from .conftest import (
    PRODUCTION_SECRET_KEY,
    STAFF_PASSWORD,
    config_for_tests,
    csrf_token_from,
    current_code,
    make_staff,
    post_form,
    set_up_link,
    shown_link,
    sign_in,
)


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
        assert "did not match an active staff account" in response.get_data(as_text=True)
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
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET_KEY)
    monkeypatch.setenv("TRUSTED_HOSTS", "localhost")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://localhost")
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
    assert response.status_code == 200
    assert "Created new.person@clinic-finder.example" in response.get_data(as_text=True)
    link = shown_link(response)
    new_client = app.test_client()
    first = sign_in(
        new_client, "new.person@clinic-finder.example", "a long enough password", link=link
    )
    assert "Save your recovery codes" in first.get_data(as_text=True)
    assert new_client.get("/staff/").status_code == 200


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


def test_a_real_site_hashes_at_full_scrypt_cost(database_url):
    # The tests' own config asks for a cheaper cost; a site configured from the
    # environment never can.
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x" * 40})
    with app.app_context():
        account = create_staff_account(db.session, "real@clinic-finder.example", STAFF_PASSWORD)
        # werkzeug writes the cost into the hash: N = 2**15, r = 8, p = 1.
        assert account.password_hash.startswith("scrypt:32768:8:1$")
        db.session.rollback()
        db.engine.dispose()


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


# --- the second factor, pausing, and the password policy --------------------------------


def _password_step(client, email="staff@clinic-finder.example", password=STAFF_PASSWORD):
    token = csrf_token_from(client, "/staff/sign-in")
    return client.post(
        "/staff/sign-in", data={"email": email, "password": password, "csrf_token": token}
    )


def _code_step(client, code):
    token = csrf_token_from(client, "/staff/sign-in/code")
    return client.post("/staff/sign-in/code", data={"code": code, "csrf_token": token})


def test_password_alone_does_not_sign_in(app, client):
    make_staff(app)
    response = _password_step(client)
    assert response.headers["Location"] == "/staff/sign-in/code"
    assert client.get("/staff/").status_code == 302


def test_wrong_code_is_refused(app, client):
    make_staff(app)
    _password_step(client)
    assert _code_step(client, "000000").status_code == 200
    assert client.get("/staff/").status_code == 302


def test_a_code_works_only_once(app, client):
    make_staff(app)
    _password_step(client)
    code = current_code(app, "staff@clinic-finder.example")
    assert _code_step(client, code).status_code == 302
    other = app.test_client()
    _password_step(other)
    assert _code_step(other, code).status_code == 200


def test_first_sign_in_enrols_authenticator_with_local_qr_code(app, client):
    make_staff(app, enrolled=False)
    client.get(set_up_link(app))
    assert _password_step(client).headers["Location"] == "/staff/sign-in/enrol"
    page = client.get("/staff/sign-in/enrol")
    text = page.get_data(as_text=True)
    assert "<svg" in text and "http" not in text.split("<svg", 1)[1].split("</svg>")[0].replace(
        "http://www.w3.org", ""
    )
    assert page.headers["Cache-Control"] == "no-store"
    token = csrf_token_from(client, "/staff/sign-in/enrol")
    done = client.post(
        "/staff/sign-in/enrol",
        data={"code": current_code(app, "staff@clinic-finder.example"), "csrf_token": token},
    )
    codes = re.findall(r"<code>([0-9a-z]{5}-[0-9a-z]{5})</code>", done.get_data(as_text=True))
    assert len(codes) == 10
    assert client.get("/staff/").status_code == 200


def test_recovery_code_signs_in_once(app, client):
    make_staff(app, enrolled=False)
    client.get(set_up_link(app))
    _password_step(client)
    token = csrf_token_from(client, "/staff/sign-in/enrol")
    done = client.post(
        "/staff/sign-in/enrol",
        data={"code": current_code(app, "staff@clinic-finder.example"), "csrf_token": token},
    )
    recovery = re.findall(r"<code>([0-9a-z]{5}-[0-9a-z]{5})</code>", done.get_data(as_text=True))[0]
    for attempt, expected in ((1, 302), (2, 200)):
        device = app.test_client()
        _password_step(device)
        assert _code_step(device, recovery).status_code == expected, attempt


def _pauses(app, account_id) -> list[SignInPause]:
    """The account's per-client pause rows (not the account-wide one)."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(SignInPause).where(
                    SignInPause.user_id == account_id, SignInPause.client_key != ACCOUNT_WIDE
                )
            )
        )


def _account_pause(app, account_id) -> SignInPause | None:
    """The row counting the account's failures from every client together."""
    with app.app_context():
        return db.session.scalar(
            select(SignInPause).where(
                SignInPause.user_id == account_id, SignInPause.client_key == ACCOUNT_WIDE
            )
        )


def _flashes(response) -> list[str]:
    return re.findall(
        r'<p class="[^"]*\bflash\b[^"]*"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S
    )


def _sign_in_from(client, address: str, email: str, password: str):
    """The password step as sent from another client address."""
    token = csrf_token_from(client, "/staff/sign-in")
    return client.post(
        "/staff/sign-in",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_repeated_failures_pause_that_client_but_not_forever(app, client):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"  # this is about the account, not the IP
    account_id = make_staff(app)
    for _ in range(5):
        _password_step(client, password="wrong password here")
    (pause,) = _pauses(app, account_id)
    assert pause.failures == 5 and pause.paused_until is not None
    assert len(pause.client_key) == 32 and "127.0.0.1" not in pause.client_key
    assert sign_in(app.test_client()).status_code == 200  # paused, even with the right password
    with app.app_context():
        db.session.get(SignInPause, pause.id).paused_until = now_utc() - timedelta(seconds=1)
        db.session.commit()
    assert sign_in(app.test_client()).status_code == 302  # the pause ran out
    assert _pauses(app, account_id) == []  # and a full sign-in forgets the failures


def test_failures_from_elsewhere_do_not_keep_the_staff_member_out(app):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    make_staff(app)
    attacker = app.test_client()
    for _ in range(8):
        token = csrf_token_from(attacker, "/staff/sign-in")
        attacker.post(
            "/staff/sign-in",
            data={"email": "staff@clinic-finder.example", "password": "guess", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        )
    assert sign_in(app.test_client()).status_code == 302


@pytest.fixture
def second_worker(app, database_url):
    """Another app on the same database, as a second gunicorn worker would be."""
    other = create_app(config_for_tests(database_url))
    other.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    yield other
    with other.app_context():
        db.engine.dispose()


def test_failures_spread_over_many_addresses_pause_the_account(app, second_worker):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    account_id = make_staff(app)
    workers = [app.test_client(), second_worker.test_client()]
    for number in range(1, 20):
        guess = _sign_in_from(
            workers[number % 2], f"198.51.100.{number}", "staff@clinic-finder.example", "guess"
        )
        assert guess.status_code == 200
    # 19 in a row, one per address: no address is paused, nor yet the account.
    assert all(
        pause.failures == 1 and pause.paused_until is None for pause in _pauses(app, account_id)
    )
    assert len(_pauses(app, account_id)) == 19
    assert _account_pause(app, account_id).failures == 19
    assert _account_pause(app, account_id).paused_until is None

    _sign_in_from(workers[0], "198.51.100.20", "staff@clinic-finder.example", "guess")
    account = _account_pause(app, account_id)
    assert account.failures == 20
    assert account.paused_until - account.last_failure_at == timedelta(minutes=1)
    # Now the right password is refused too, from an address that never failed, on either
    # worker, with the very words an unknown email gets.
    refused = _sign_in_from(
        workers[1], "203.0.113.50", "staff@clinic-finder.example", STAFF_PASSWORD
    )
    unknown = _sign_in_from(
        workers[0], "203.0.113.51", "nobody@clinic-finder.example", STAFF_PASSWORD
    )
    assert refused.status_code == unknown.status_code == 200
    assert _flashes(refused) == _flashes(unknown)
    assert "did not match an active staff account" in _flashes(refused)[0]
    assert _account_pause(app, account_id).failures == 20  # refusals while paused don't count


def test_account_pause_runs_out_and_a_sign_in_clears_it(app, client):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    account_id = make_staff(app)
    for number in range(20):
        _sign_in_from(client, f"198.51.100.{number}", "staff@clinic-finder.example", "guess")
    assert sign_in(app.test_client()).status_code == 200  # paused for every address
    with app.app_context():
        pause = db.session.get(SignInPause, _account_pause(app, account_id).id)
        pause.paused_until = now_utc() - timedelta(seconds=1)
        db.session.commit()
    assert sign_in(app.test_client()).status_code == 302  # the pause ran out
    assert _account_pause(app, account_id) is None  # and a full sign-in forgets the count
    assert len(_pauses(app, account_id)) == 20  # other addresses' own counts stay


def test_account_pause_grows_but_is_capped_and_forgotten_after_an_hour(app):
    from clinic_finder.auth import register_failure

    account_id = make_staff(app)
    start = now_utc()
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        lengths = []
        for number in range(30):
            register_failure(db.session, account, f"client {number}", start)
            lengths.append(_pause_length(_pause_row(account_id, ACCOUNT_WIDE), start))
        assert lengths[:19] == [None] * 19
        assert lengths[19:23] == [timedelta(minutes=minutes) for minutes in (1, 2, 4, 8)]
        assert set(lengths[23:]) == {timedelta(minutes=15)}
        register_failure(db.session, account, "client 0", start + timedelta(minutes=59))
        assert _pause_row(account_id, ACCOUNT_WIDE).failures == 31
        register_failure(db.session, account, "client 0", start + timedelta(minutes=121))
        assert _pause_row(account_id, ACCOUNT_WIDE).failures == 1
        db.session.rollback()


def _pause_length(pause: SignInPause, start) -> timedelta | None:
    """How long after ``start`` the pause ends (SQLite gives the time back without its zone)."""
    if pause.paused_until is None:
        return None
    until = pause.paused_until
    return (until if until.tzinfo else until.replace(tzinfo=UTC)) - start


def _pause_row(account_id: int, client: str) -> SignInPause:
    return db.session.scalar(
        select(SignInPause)
        .where(SignInPause.user_id == account_id, SignInPause.client_key == client)
        .execution_options(populate_existing=True)
    )


def test_pause_grows_but_is_capped_and_old_failures_are_forgotten(app):
    from clinic_finder.auth import register_failure

    account_id = make_staff(app)
    start = now_utc()
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        pauses = []
        for _ in range(12):
            pauses.append(
                _pause_length(register_failure(db.session, account, "client", start), start)
            )
        assert pauses[:4] == [None] * 4
        assert pauses[4] == timedelta(minutes=1) and pauses[5] == timedelta(minutes=2)
        assert max(pauses[4:]) == timedelta(minutes=15)
        later = register_failure(db.session, account, "client", start + timedelta(minutes=31))
        assert later.failures == 1
        db.session.rollback()


def test_admin_resets_lost_authenticator(app, staff_client, admin_client):
    with app.app_context():
        staff_id = db.session.scalar(
            select(StaffUser.id).where(StaffUser.email == "staff@clinic-finder.example")
        )
    response = post_form(
        admin_client, "/staff/users", f"/staff/users/{staff_id}/reset-second-factor"
    )
    assert staff_client.get("/staff/").status_code == 302  # their sessions ended
    # The password alone no longer enrols; with the link the admin was shown, it does.
    assert _password_step(app.test_client()).status_code == 200
    with_link = app.test_client()
    with_link.get(shown_link(response))
    assert _password_step(with_link).headers["Location"] == "/staff/sign-in/enrol"


def test_sign_ins_are_audited(app, client):
    make_staff(app)
    sign_in(client, password="wrong password here")
    sign_in(app.test_client())
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert "auth.sign_in_failed" in actions and "auth.sign_in" in actions


@pytest.mark.parametrize(
    "password", ["password2024", "qwertyuiopas", "aaaaaaaaaaaaaaaa", "staff-member-2026"]
)
def test_common_or_derived_passwords_are_refused(app, password):
    from clinic_finder.auth import AccountError, create_staff_account

    with app.app_context(), pytest.raises(AccountError):
        create_staff_account(db.session, "staff-member@clinic-finder.example", password)


def test_staff_changes_own_password_and_other_sessions_end(app, staff_client):
    other_device = app.test_client()
    assert sign_in(other_device).status_code == 302
    response = post_form(
        staff_client,
        "/staff/password",
        current_password=STAFF_PASSWORD,
        new_password="a brand new long passphrase",
        repeat_password="a brand new long passphrase",
    )
    assert response.status_code == 302
    assert staff_client.get("/staff/").status_code == 200
    assert other_device.get("/staff/").status_code == 302
    new_password_step = _password_step(app.test_client(), password="a brand new long passphrase")
    assert new_password_step.headers["Location"] == "/staff/sign-in/code"


@pytest.mark.parametrize(
    ("current", "new", "repeat", "message"),
    [
        (
            "wrong current password",
            "a brand new long passphrase",
            "a brand new long passphrase",
            "current password is not right",
        ),
        (STAFF_PASSWORD, "password2024", "password2024", "too common"),
        (STAFF_PASSWORD, "a brand new long passphrase", "something else entirely", "differ"),
    ],
)
def test_password_change_is_refused_with_reason(staff_client, current, new, repeat, message):
    response = post_form(
        staff_client,
        "/staff/password",
        current_password=current,
        new_password=new,
        repeat_password=repeat,
    )
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


# --- changing the password is guarded like signing in (hardening round two, item 8) ------


def _change_password(client, current, new="a brand new long passphrase", repeat=None):
    return post_form(
        client,
        "/staff/password",
        current_password=current,
        new_password=new,
        repeat_password=new if repeat is None else repeat,
    )


def _staff_id(app, email="staff@clinic-finder.example") -> int:
    with app.app_context():
        return db.session.scalar(select(StaffUser.id).where(StaffUser.email == email))


def test_password_change_attempts_are_rate_limited(staff_client):
    # The form's own refusal (the repeat differs) checks no password: only the limit counts.
    statuses = [
        _change_password(staff_client, STAFF_PASSWORD, repeat="something else").status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]


def test_wrong_current_password_counts_towards_the_sign_in_pause(app, staff_client):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    account_id = _staff_id(app)
    _change_password(staff_client, "not my password at all")
    (pause,) = _pauses(app, account_id)
    assert pause.failures == 1
    assert _account_pause(app, account_id).failures == 1


def test_password_change_is_refused_while_sign_ins_pause(app, staff_client):
    account_id = _staff_id(app)
    with app.app_context():
        db.session.add(
            SignInPause(
                user_id=account_id,
                client_key=ACCOUNT_WIDE,
                failures=20,
                last_failure_at=now_utc(),
                paused_until=now_utc() + timedelta(minutes=5),
            )
        )
        db.session.commit()
        old_hash = db.session.get(StaffUser, account_id).password_hash
    response = _change_password(staff_client, STAFF_PASSWORD)
    assert response.status_code == 200
    assert "try again in a few minutes" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(StaffUser, account_id).password_hash == old_hash


def test_wrong_current_password_is_audited_without_what_was_typed(app, staff_client):
    _change_password(staff_client, "my secret guess 4711")
    with app.app_context():
        (entry,) = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "auth.change_password_failed")
        )
        assert entry.object_id == _staff_id(app)
        assert "4711" not in entry.summary + repr(entry.changes)


def test_five_wrong_current_passwords_in_a_row_end_the_session(app, staff_client):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    other_device = app.test_client()
    assert sign_in(other_device).status_code == 302
    for attempt in range(4):
        assert _change_password(staff_client, f"wrong guess {attempt}").status_code == 200
    assert staff_client.get("/staff/").status_code == 200
    fifth = _change_password(staff_client, "wrong guess 4")
    assert fifth.status_code == 302
    assert urlsplit(fifth.headers["Location"]).path == "/staff/sign-in"
    assert "signed out" in " ".join(_flashes(staff_client.get("/staff/sign-in")))
    assert staff_client.get("/staff/").status_code == 302
    assert other_device.get("/staff/").status_code == 302  # a stolen copy of it ends too
    # And this client's sign-ins pause, as after five wrong passwords at sign-in.
    assert sign_in(app.test_client()).status_code == 200
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action)))
    assert actions.count("auth.change_password_failed") == 5
    assert "auth.signed_out_after_failures" in actions


def test_a_right_current_password_starts_the_count_again(app, staff_client):
    app.config["SIGN_IN_RATE_LIMIT"] = "100 per minute"
    for attempt in range(4):
        _change_password(staff_client, f"wrong guess {attempt}")
    # Right, but the new password is refused: the run of wrong ones is over all the same.
    assert _change_password(staff_client, STAFF_PASSWORD, new="password2024").status_code == 200
    for attempt in range(4):
        _change_password(staff_client, f"wrong again {attempt}")
    assert staff_client.get("/staff/").status_code == 200


# --- recovery codes (item 16) ----------------------------------------------------------


def test_recovery_codes_carry_at_least_50_random_bits(app):
    from clinic_finder import auth

    account_id = make_staff(app)
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        codes = [code for _ in range(10) for code in auth.issue_recovery_codes(db.session, account)]
        db.session.rollback()
    alphabet = auth.RECOVERY_CODE_ALPHABET
    assert len(set(alphabet)) == len(alphabet) == 32
    assert not set("ilou") & set(alphabet)  # no look-alikes of 1, 0 or v
    assert len(alphabet) ** auth.RECOVERY_CODE_LENGTH >= 2**50
    pattern = re.compile(f"[{alphabet}]{{5}}-[{alphabet}]{{5}}")
    assert all(pattern.fullmatch(code) for code in codes), codes[:3]
    assert len(set(codes)) == 100
    # Drawn from the whole alphabet (hex digits would show at most 16 different ones).
    assert len(set("".join(codes).replace("-", ""))) == 32


def test_recovery_code_is_read_forgivingly(app):
    from clinic_finder import auth

    account_id = make_staff(app)
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        code = auth.issue_recovery_codes(db.session, account)[0]
        typed = " ".join(code.upper().replace("-", "")).replace("0", "O").replace("1", "l")
        assert auth.use_recovery_code(account, typed)
        assert not auth.use_recovery_code(account, code)
        db.session.rollback()


def test_recovery_codes_issued_before_still_work(app):
    # Codes were 10 hex digits (40 bits) before; they are not taken away from anyone.
    import hashlib

    from clinic_finder import auth
    from clinic_finder.models import RecoveryCode

    account_id = make_staff(app)
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        old_hash = hashlib.sha256(b"3fa9c01be2").hexdigest()
        account.recovery_codes.append(RecoveryCode(code_hash=old_hash))
        assert auth.use_recovery_code(account, "3fa9c-01be2")
        db.session.rollback()


# --- sign-in pause rows are forgotten once spent (item 16) -------------------------------


def _all_pause_keys(app, account_id) -> set[str]:
    with app.app_context():
        return set(
            db.session.scalars(
                select(SignInPause.client_key).where(SignInPause.user_id == account_id)
            )
        )


def test_purge_command_deletes_only_spent_pauses(app, runner):
    account_id = make_staff(app)
    other_id = make_staff(app, "other@clinic-finder.example")
    now = now_utc()
    with app.app_context():
        for user_id, key, failures, last, until in [
            # paused and forgotten long ago
            (account_id, "old", 6, now - timedelta(hours=3), now - timedelta(hours=2, minutes=58)),
            # the count is forgotten after 15 minutes
            (account_id, "twenty minutes", 1, now - timedelta(minutes=20), None),
            # still remembered, and paused
            (account_id, "recent", 5, now - timedelta(minutes=1), now + timedelta(minutes=1)),
            # an account's count from every client is remembered for an hour
            (account_id, ACCOUNT_WIDE, 12, now - timedelta(minutes=30), None),
            (other_id, ACCOUNT_WIDE, 20, now - timedelta(minutes=61), now - timedelta(minutes=60)),
        ]:
            db.session.add(
                SignInPause(
                    user_id=user_id,
                    client_key=key,
                    failures=failures,
                    last_failure_at=last,
                    paused_until=until,
                )
            )
        db.session.commit()
    result = runner.invoke(args=["staff", "purge-expired"])
    assert result.exit_code == 0, result.output
    assert "3 sign-in pause(s) and 0 used or expired link(s) deleted" in result.output
    assert _all_pause_keys(app, account_id) == {"recent", ACCOUNT_WIDE}
    assert _all_pause_keys(app, other_id) == set()


def test_a_failure_forgets_the_accounts_spent_pauses(app):
    from clinic_finder.auth import register_failure

    account_id = make_staff(app)
    now = now_utc()
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        for number in range(3):
            register_failure(db.session, account, f"old {number}", now - timedelta(hours=2))
        db.session.commit()
        register_failure(db.session, account, "new", now)
        db.session.commit()
    assert _all_pause_keys(app, account_id) == {"new", ACCOUNT_WIDE}


def test_a_sign_in_forgets_the_accounts_spent_pauses(app):
    from clinic_finder.auth import register_failure

    account_id = make_staff(app)
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        register_failure(db.session, account, "old", now_utc() - timedelta(hours=2))
        db.session.commit()
    assert sign_in(app.test_client()).status_code == 302
    assert _all_pause_keys(app, account_id) == set()


# --- one-time links from an admin: enrolment and a new password (item 16) ---------------


def _enrols(client, email="staff@clinic-finder.example", **kwargs) -> bool:
    """Sign in and enrol with a set-up link; whether that ended signed in."""
    done = sign_in(client, email, **kwargs)
    return "Save your recovery codes" in done.get_data(as_text=True) and (
        client.get("/staff/").status_code == 200
    )


def _main_text(response) -> str:
    """The page's main content as text, without what changes per response."""
    main = response.get_data(as_text=True).split('<main id="main"', 1)[1].split("</main>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


def test_password_alone_does_not_reach_enrolment(app, client):
    # Before, the first to sign in with the password set up the authenticator: anyone who
    # learnt a new account's first password before its owner signed in kept the account.
    make_staff(app, enrolled=False)
    response = _password_step(client)
    assert response.status_code == 200
    assert "Ask an admin for a set-up link" in " ".join(_flashes(response))
    assert client.get("/staff/sign-in/enrol").headers["Location"] == "/staff/sign-in"
    with app.app_context():
        assert db.session.scalar(select(StaffUser.totp_secret)) is None
        summaries = list(
            db.session.scalars(
                select(AuditEntry.summary).where(AuditEntry.action == "auth.sign_in_failed")
            )
        )
    assert summaries == ["no set-up link"]


def test_link_moves_its_token_into_the_session_and_out_of_the_address(app, client):
    make_staff(app, enrolled=False)
    link = set_up_link(app)
    response = client.get(link)
    assert response.status_code == 303
    assert response.headers["Location"] == "/staff/sign-in"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    token = link.rsplit("/", 1)[1]
    page = client.get("/staff/sign-in")
    assert "Sign in with your password" in page.get_data(as_text=True)
    assert token not in page.get_data(as_text=True)
    with client.session_transaction() as session:
        assert token not in repr(dict(session))  # only its hash


def test_link_is_stored_only_as_a_hash_and_carries_256_random_bits(app):
    import hashlib

    from clinic_finder.models import OneTimeLink

    make_staff(app, enrolled=False)
    token = set_up_link(app).rsplit("/", 1)[1]
    assert len(token) == 43  # 32 random bytes, URL-safe base64
    with app.app_context():
        (stored,) = db.session.scalars(select(OneTimeLink))
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in repr({column: getattr(stored, column) for column in ("token_hash",)})


def test_set_up_link_works_once(app):
    make_staff(app, enrolled=False)
    link = set_up_link(app)
    assert _enrols(app.test_client(), link=link)
    again = app.test_client().get(link)
    assert again.status_code == 404
    assert "This link does not work" in again.get_data(as_text=True)


def test_set_up_link_expires_after_the_configured_hours(app, admin_client):
    from clinic_finder.models import OneTimeLink

    app.config["STAFF_LINK_VALID_HOURS"] = 2
    response = post_form(
        admin_client,
        "/staff/users/new",
        email="new@clinic-finder.example",
        password="a long enough password",
    )
    link = shown_link(response)
    with app.app_context():
        stored = db.session.scalar(select(OneTimeLink))
        lifetime = stored.expires_at - stored.created_at
        assert timedelta(hours=2) - timedelta(seconds=5) < lifetime <= timedelta(hours=2)
        stored.expires_at = now_utc() - timedelta(seconds=1)
        db.session.commit()
    assert app.test_client().get(link).status_code == 404


def test_link_lifetime_is_set_by_its_environment_variable():
    from clinic_finder.config import config_from_environment

    assert config_from_environment({})["STAFF_LINK_VALID_HOURS"] == 24
    assert (
        config_from_environment({"STAFF_LINK_VALID_HOURS": "2.5"})["STAFF_LINK_VALID_HOURS"] == 2.5
    )


def test_unknown_used_and_expired_links_get_one_and_the_same_page(app):
    from clinic_finder.models import OneTimeLink

    make_staff(app, enrolled=False)
    used = set_up_link(app)
    sign_in(app.test_client(), link=used)
    make_staff(app, "late@clinic-finder.example", enrolled=False)
    expired = set_up_link(app, "late@clinic-finder.example")
    with app.app_context():
        for stored in db.session.scalars(select(OneTimeLink).where(OneTimeLink.used_at.is_(None))):
            stored.expires_at = now_utc() - timedelta(minutes=1)
        db.session.commit()
    unknown = "/staff/link/" + "A" * 43
    answers = [app.test_client().get(path) for path in (unknown, used, expired)]
    assert {answer.status_code for answer in answers} == {404}
    assert len({_main_text(answer) for answer in answers}) == 1
    assert "Ask an admin for a new link" in _main_text(answers[0])
    assert all(answer.headers["Referrer-Policy"] == "no-referrer" for answer in answers)


def test_a_set_up_link_is_for_its_own_account_only(app, client):
    make_staff(app, enrolled=False)
    make_staff(app, "other@clinic-finder.example", enrolled=False)
    client.get(set_up_link(app, "other@clinic-finder.example"))
    response = _password_step(client)  # staff@…, with other@…'s link
    assert response.status_code == 200
    assert "Ask an admin for a set-up link" in " ".join(_flashes(response))


def test_a_new_set_up_link_replaces_the_one_before(app):
    make_staff(app, enrolled=False)
    first = set_up_link(app)
    second = set_up_link(app)
    assert app.test_client().get(first).status_code == 404
    assert _enrols(app.test_client(), link=second)


def test_deactivating_an_account_revokes_its_links(app, admin_client):
    account_id = make_staff(app, enrolled=False)
    link = set_up_link(app)
    post_form(admin_client, "/staff/users", f"/staff/users/{account_id}/deactivate")
    post_form(admin_client, "/staff/users", f"/staff/users/{account_id}/reactivate")
    assert app.test_client().get(link).status_code == 404


def test_enrolment_with_a_link_is_audited(app):
    make_staff(app, enrolled=False)
    sign_in(app.test_client(), link=set_up_link(app))
    with app.app_context():
        entries = {entry.action: entry for entry in db.session.scalars(select(AuditEntry))}
    assert entries["staff.issue_link"].changes["purpose"] == "enrol"
    assert entries["staff.use_link"].changes == {"purpose": "enrol"}
    assert "staff.enrol_second_factor" in entries


def _password_link(app, admin_client, account_id: int):
    response = post_form(admin_client, "/staff/users", f"/staff/users/{account_id}/reset-password")
    assert response.status_code == 200
    assert "Password link for" in response.get_data(as_text=True)
    return shown_link(response)


def _set_new_password(client, password: str, repeat: str | None = None):
    return post_form(
        client,
        "/staff/reset-password",
        new_password=password,
        repeat_password=password if repeat is None else repeat,
    )


def test_forgotten_password_is_reset_with_a_link_from_an_admin(app, staff_client, admin_client):
    account_id = _staff_id(app)
    with app.app_context():
        old_hash = db.session.get(StaffUser, account_id).password_hash
    link = _password_link(app, admin_client, account_id)
    assert staff_client.get("/staff/").status_code == 200  # issuing ends nothing yet
    person = app.test_client()
    opened = person.get(link)
    assert opened.status_code == 303 and opened.headers["Location"] == "/staff/reset-password"
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    form = person.get("/staff/reset-password")
    assert "staff@clinic-finder.example" in form.get_data(as_text=True)
    done = _set_new_password(person, "my own new passphrase")
    assert done.status_code == 302 and done.headers["Location"] == "/staff/sign-in"
    assert staff_client.get("/staff/").status_code == 302  # every session ended
    # The new password works, and the second factor is still asked for; the old one is gone.
    assert _password_step(app.test_client(), password=STAFF_PASSWORD).status_code == 200
    step = _password_step(app.test_client(), password="my own new passphrase")
    assert step.headers["Location"] == "/staff/sign-in/code"
    assert person.get(link).status_code == 404  # once only
    with app.app_context():
        account = db.session.get(StaffUser, account_id)
        assert account.password_hash != old_hash and account.has_second_factor
        actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[actions.index("staff.issue_link") :] == [
        "staff.issue_link",
        "staff.use_link",
        "staff.reset_password",
        "auth.sign_in_failed",  # the old password, refused
    ]


def test_admin_never_sees_or_sets_the_password(app, admin_client):
    account_id = make_staff(app, "colleague@clinic-finder.example")
    with app.app_context():
        old_hash = db.session.get(StaffUser, account_id).password_hash
    # A password sent along with the action is ignored; the page shows a link, no password.
    response = post_form(
        admin_client,
        "/staff/users",
        f"/staff/users/{account_id}/reset-password",
        password="chosen by the admin",
        new_password="chosen by the admin",
    )
    page = response.get_data(as_text=True)
    assert shown_link(response).startswith("/staff/link/")
    assert 'type="password"' not in page and "scrypt" not in page
    with app.app_context():
        assert db.session.get(StaffUser, account_id).password_hash == old_hash


def test_password_link_refuses_a_weak_password_and_still_works(app, admin_client):
    account_id = make_staff(app, "colleague@clinic-finder.example")
    link = _password_link(app, admin_client, account_id)
    person = app.test_client()
    person.get(link)
    weak = _set_new_password(person, "password2024")
    assert weak.status_code == 200 and "too common" in weak.get_data(as_text=True)
    differ = _set_new_password(person, "my own new passphrase", "something else entirely")
    assert "differ" in differ.get_data(as_text=True)
    assert _set_new_password(person, "my own new passphrase").status_code == 302


def test_password_page_without_a_link_is_the_not_working_page(client):
    response = client.get("/staff/reset-password")
    assert response.status_code == 404
    assert "This link does not work" in response.get_data(as_text=True)


def test_a_password_link_does_not_enrol(app, admin_client):
    account_id = make_staff(app, "colleague@clinic-finder.example", enrolled=False)
    link = _password_link(app, admin_client, account_id)
    client = app.test_client()
    client.get(link)
    response = _password_step(client, "colleague@clinic-finder.example")
    assert "Ask an admin for a set-up link" in " ".join(_flashes(response))


def test_admin_issues_no_link_for_own_or_deactivated_accounts(app, admin_client):
    own_id = _staff_id(app, "admin@clinic-finder.example")
    gone_id = make_staff(app, "gone@clinic-finder.example")
    post_form(admin_client, "/staff/users", f"/staff/users/{gone_id}/deactivate")
    for account_id in (own_id, gone_id):
        for action in ("reset-password", "reset-second-factor"):
            response = post_form(
                admin_client, "/staff/users", f"/staff/users/{account_id}/{action}"
            )
            assert response.status_code == 302
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action)))
    assert "staff.issue_link" not in actions


def test_cli_create_prints_a_set_up_link_on_the_public_address(app, runner):
    app.config["PUBLIC_BASE_URL"] = "https://finnklinikk.example"
    result = runner.invoke(
        args=["staff", "create", "new@clinic-finder.example"],
        input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    (url,) = re.findall(r"https://finnklinikk\.example/staff/link/\S+", result.output)
    assert _enrols(app.test_client(), "new@clinic-finder.example", link=urlsplit(url).path)


def test_cli_resets_second_factor_and_password_with_links(app, runner):
    make_staff(app)
    reset = runner.invoke(args=["staff", "reset-second-factor", "STAFF@clinic-finder.example"])
    assert reset.exit_code == 0, reset.output
    (enrol,) = re.findall(r"/staff/link/\S+", reset.output)
    with app.app_context():
        assert not db.session.scalar(select(StaffUser)).has_second_factor
    password = runner.invoke(args=["staff", "reset-password", "staff@clinic-finder.example"])
    assert password.exit_code == 0, password.output
    (reset_link,) = re.findall(r"/staff/link/\S+", password.output)
    person = app.test_client()
    assert person.get(reset_link).headers["Location"] == "/staff/reset-password"
    assert _set_new_password(person, "my own new passphrase").status_code == 302
    assert _enrols(app.test_client(), password="my own new passphrase", link=enrol)
    missing = runner.invoke(args=["staff", "reset-password", "nobody@clinic-finder.example"])
    assert missing.exit_code == 1 and "No staff account" in missing.output


def test_purge_command_deletes_used_and_expired_links(app, runner):
    from clinic_finder.models import OneTimeLink

    for email in (
        "used@clinic-finder.example",
        "late@clinic-finder.example",
        "fresh@clinic-finder.example",
    ):
        make_staff(app, email, enrolled=False)
    sign_in(
        app.test_client(),
        "used@clinic-finder.example",
        link=set_up_link(app, "used@clinic-finder.example"),
    )
    set_up_link(app, "late@clinic-finder.example")
    fresh = set_up_link(app, "fresh@clinic-finder.example")
    with app.app_context():
        late = db.session.scalar(
            select(OneTimeLink).join(OneTimeLink.user).where(StaffUser.email.startswith("late"))
        )
        late.expires_at = now_utc() - timedelta(minutes=1)
        db.session.commit()
    result = runner.invoke(args=["staff", "purge-expired"])
    assert "and 2 used or expired link(s) deleted" in result.output
    assert app.test_client().get(fresh).status_code == 303
