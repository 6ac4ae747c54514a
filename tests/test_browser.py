"""The finder in a real browser: Debian's Chromium driven by Playwright.

Chromium comes from Debian (`make test` installs it with apt-get when it can); Playwright's
own browser download cannot work here. Without Chromium these tests skip with a message,
except in CI, where they must run.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from clinic_finder.extensions import db
from clinic_finder.models import OutboxMessage, PostalCode, Profession

from .conftest import STAFF_PASSWORD, current_code, deliver_due, make_staff, wait_for
from .factories import make_clinic
from .helpers import TILE_HOST, all_csp_violations, record_csp_violations, watch

XSS_NAME = "${alert(1)}`<img src=x onerror=alert(2)>"

pytestmark = pytest.mark.browser


def _clinics_on_map(page) -> int:
    """Clinics the map shows: single markers plus the numbers on clusters."""
    page.wait_for_timeout(500)  # let the cluster animation settle
    singles = page.locator(".leaflet-marker-icon:not(.marker-cluster)").count()
    clustered = sum(int(text) for text in page.locator(".marker-cluster span").all_inner_texts())
    return singles + clustered


def test_map_shows_one_marker_per_listed_clinic_and_loads_nothing_foreign(
    sqlite_only, session, live_server, page
):
    origin = session.get(PostalCode, "0150")
    for step in range(4):
        make_clinic(
            session,
            name=f"Clinic {step}",
            latitude=origin.latitude + 0.01 * step,
            longitude=origin.longitude + 0.01,
            professions=(Profession.CHIROPRACTOR,),
        )
    session.commit()
    requests, dialogs = watch(page)
    console_violations = record_csp_violations(page)

    page.goto(f"{live_server}/find?postcode=0150")
    page.wait_for_selector(".leaflet-marker-icon")
    # The map was built by the inline script the page's CSP admits by its nonce.
    assert "script-src 'self' 'nonce-" in page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )

    listed = page.locator("li.clinic").count()
    assert listed == 4
    assert _clinics_on_map(page) == listed
    foreign = [url for url in requests if urlsplit(url).hostname not in {"127.0.0.1", TILE_HOST}]
    assert foreign == []
    assert any(urlsplit(url).hostname == TILE_HOST for url in requests), "the map asked for tiles"
    assert dialogs == []
    page.locator(".leaflet-marker-icon").first.click()
    page.locator(".leaflet-popup-content").wait_for()
    page.locator(".leaflet-control-zoom-in").click()
    page.wait_for_timeout(300)
    assert all_csp_violations(page, console_violations) == []


def test_clinics_in_one_building_merge_into_a_cluster_that_opens(
    sqlite_only, session, live_server, page
):
    origin = session.get(PostalCode, "0150")
    for number in range(12):
        make_clinic(
            session,
            name=f"Legesenteret {number}",
            latitude=origin.latitude + 0.002,
            longitude=origin.longitude + 0.002,
        )
    make_clinic(session, name="Far away", latitude=origin.latitude + 0.05)
    session.commit()
    watch(page)
    page.goto(f"{live_server}/find?postcode=0150")
    page.wait_for_selector(".marker-cluster")
    # The map fits its bounds once drawn, and the cluster is drawn again: the old icon
    # fades out beside the new one for a moment. Wait for one (two for good would fail).
    page.wait_for_function("document.querySelectorAll('.marker-cluster').length === 1")
    assert page.locator(".marker-cluster span").all_inner_texts() == ["12"]
    assert _clinics_on_map(page) == page.locator("li.clinic").count() == 13
    page.locator(".marker-cluster").click()
    page.wait_for_timeout(800)
    assert page.locator(".leaflet-marker-icon:not(.marker-cluster)").count() == 13


@pytest.mark.parametrize("name", [XSS_NAME, "Klinikk {{ 7*7 }} {% raw %} ø%20"])
def test_hostile_clinic_name_runs_no_script_in_list_or_popup(
    sqlite_only, session, live_server, page, name
):
    make_clinic(session, name=name, address="<img src=x onerror=alert(3)>")
    session.commit()
    _, dialogs = watch(page)

    page.goto(f"{live_server}/find?postcode=0150")
    marker = page.locator(".leaflet-marker-icon").first
    # The marker's title is the name as text, whatever it holds.
    assert marker.get_attribute("title") == name
    marker.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()

    assert name in popup.inner_text()
    assert page.locator("li.clinic h2").first.inner_text() == name
    assert page.locator(".leaflet-popup-content img, li.clinic img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_search_form_submits_and_shows_error_for_unknown_postcode(sqlite_only, live_server, page):
    page.goto(f"{live_server}/")
    page.get_by_label("Postcode").fill("9999")
    page.get_by_role("button", name="Search").click()
    assert "We do not know the postcode 9999" in page.locator(".error-summary").inner_text()
    assert page.get_by_label("Postcode").get_attribute("aria-invalid") == "true"


def test_patient_sends_a_contact_request_from_the_results_page(
    sqlite_only, app, session, live_server, page
):
    make_clinic(session, name="Ryggsenteret")
    session.commit()
    watch(page)
    page.goto(f"{live_server}/find?postcode=0150&profession=physiotherapist")
    page.get_by_role("link", name="Ask us for help finding a clinician").click()
    assert page.get_by_label("Your postcode").input_value() == "0150"
    assert page.get_by_label("Who would you like to see?").input_value() == "physiotherapist"
    page.get_by_label("Your name").fill("Pia Pasient")
    page.get_by_label("Phone").fill("912 34 567")
    page.get_by_label("What is bothering you?").fill("Vondt i korsryggen")
    assert not page.locator("#website").is_visible()

    page.get_by_role("button", name="Send my request").click()
    summary = page.locator(".ds-error-summary").inner_text()
    assert summary.endswith("You must agree so that we can handle your request.")

    page.get_by_label("I agree that Finn klinikk may store").check()
    page.get_by_role("button", name="Send my request").click()
    reference = page.locator(".reference").inner_text()
    assert reference.startswith("KF-")
    assert "korsryggen" not in page.url and "Pia" not in page.url


def _all_mail_out(app, runner) -> None:
    """Wait until every queued email is sent, right after the answer or by the sender.

    `flask outbox send` takes only messages that are due and not claimed, so it never
    doubles a send the server is making; it covers werkzeug's test server skipping the
    after-the-answer send when the browser drops a redirect's connection early.
    """

    def all_sent() -> bool:
        with app.app_context():
            return all(message.sent_at for message in db.session.scalars(select(OutboxMessage)))

    assert runner.invoke(args=["outbox", "send"]).exit_code == 0
    wait_for(all_sent, 20, "every queued email to be sent")


def test_the_whole_referral_path_in_the_browser(
    sqlite_only, app, session, live_server, browser, runner, smtp
):
    """A patient asks from the results page; staff get the notice by email, find the
    request in their inbox, refer it; the clinic gets the referral by email."""
    make_clinic(session, name="Ryggsenteret", email="post@ryggsenteret.example")
    session.commit()
    make_staff(app)

    patient = browser.new_context().new_page()
    watch(patient)
    patient.goto(f"{live_server}/find?postcode=0150&profession=physiotherapist&lang=en")
    patient.get_by_role("link", name="Ask us for help finding a clinician").click()
    patient.get_by_label("Your name").fill("Pia Pasient")
    patient.get_by_label("Email").fill("pia@example.org")
    patient.get_by_label("What is bothering you?").fill("Vondt i nakken i tre uker")
    patient.get_by_label("I agree that Finn klinikk may store").check()
    patient.get_by_role("button", name="Send my request").click()
    reference = patient.locator(".reference").inner_text()
    assert reference.startswith("KF-")

    _all_mail_out(app, runner)
    notice = next(m for m in smtp.messages if m["To"] == "inbox@clinic-finder.example")
    assert reference in notice["Subject"] and "nakken" not in notice.get_content()
    link = re.search(r"https?://\S+(/staff/requests/\d+)", notice.get_content()).group(1)

    staff = browser.new_context().new_page()
    staff.goto(f"{live_server}{link}?lang=en")  # the link in the email: sign in first
    staff.get_by_label("Email").fill("staff@clinic-finder.example")
    staff.get_by_label("Password").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    staff.get_by_label("Code").fill(current_code(app, "staff@clinic-finder.example"))
    staff.get_by_role("button", name="Sign in").click()
    assert urlsplit(staff.url).path == link
    assert "Vondt i nakken i tre uker" in staff.locator("main").inner_text()
    staff.goto(f"{live_server}/staff/requests")
    assert reference in staff.locator("main").inner_text()
    staff.goto(f"{live_server}{link}")
    card = staff.locator("li.referral-candidate", has_text="Ryggsenteret")
    card.get_by_role("link", name="Preview referral").click()
    staff.get_by_role("button", name="Send referral").click()
    assert "Referred to Ryggsenteret" in staff.locator("main").inner_text()

    deliver_due(app, runner)  # the referral is held a few minutes, for undoing it
    [referral] = [m for m in smtp.messages if m["To"] == "post@ryggsenteret.example"]
    assert reference in referral["Subject"] and "Pia Pasient" in referral.get_content()
    told = [m for m in smtp.messages if m["To"] == "pia@example.org"]
    assert len(told) == 2 and "Ryggsenteret" in told[1].get_content()


def _sign_in_in_browser(page, app, email: str, password: str = STAFF_PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_admin_gives_a_set_up_link_and_the_newcomer_enrols_with_it(
    sqlite_only, app, live_server, browser
):
    """An admin creates an account and is shown its set-up link once; the newcomer opens
    it, signs in with the password and enrols an authenticator; the link then is spent."""
    make_staff(app, "admin@clinic-finder.example", admin=True)
    admin = browser.new_context().new_page()
    admin.goto(f"{live_server}/staff/users/new?lang=en")
    _sign_in_in_browser(admin, app, "admin@clinic-finder.example")
    admin.get_by_label("Code").fill(current_code(app, "admin@clinic-finder.example"))
    admin.get_by_role("button", name="Sign in").click()
    admin.get_by_label("Email").fill("new.colleague@clinic-finder.example")
    admin.get_by_label("Password").fill("a long enough password")
    admin.get_by_role("button", name="Create").click()
    assert "Set-up link for new.colleague@clinic-finder.example" in admin.locator("h1").inner_text()
    url = admin.locator(".one-time-link code").inner_text()
    link = urlsplit(url).path  # on PUBLIC_BASE_URL; here the live server stands in for it
    assert link.startswith("/staff/link/")

    newcomer_context = browser.new_context()
    newcomer = newcomer_context.new_page()
    referrers: list[str | None] = []
    newcomer.on("request", lambda request: referrers.append(request.headers.get("referer")))
    newcomer.goto(f"{live_server}{link}")
    assert urlsplit(newcomer.url).path == "/staff/sign-in"  # the token left the address bar
    assert "then you set up your authenticator app" in newcomer.locator("main").inner_text()
    _sign_in_in_browser(
        newcomer, app, "new.colleague@clinic-finder.example", "a long enough password"
    )
    assert urlsplit(newcomer.url).path == "/staff/sign-in/enrol"
    secret = newcomer.locator(".totp-secret").inner_text()
    newcomer.get_by_role("textbox", name="Code from your authenticator app").fill(
        pyotp.TOTP(secret).now()
    )
    newcomer.get_by_role("button", name="Confirm and sign in").click()
    assert "Save your recovery codes" in newcomer.locator("h1").inner_text()
    assert newcomer.locator(".recovery-codes code").count() == 10
    newcomer.get_by_role("link", name="I have saved them").click()
    assert urlsplit(newcomer.url).path == "/staff/"
    assert not any(referrer and "/staff/link/" in referrer for referrer in referrers), referrers

    # The link worked once: opened again, anywhere, it says so.
    again = browser.new_context().new_page()
    again.goto(f"{live_server}{link}?lang=en")
    assert "This link does not work" in again.locator("h1").inner_text()
    newcomer_context.close()


def test_import_page_follows_its_background_jobs_by_itself(
    sqlite_only, app, live_server, page, runner, tmp_path
):
    """The upload's page reloads itself (a meta refresh: no script) until the file is
    checked, and again until it is imported; staff never press reload."""
    app.config["JOBS_RUN_IN_PROCESS"] = False  # production's way: a worker runs the jobs
    make_staff(app)
    clinic_list = tmp_path / "klinikker.csv"
    # The physiotherapist has the agreement, the chiropractor none; the second row gives
    # the clinic another phone number, which the preview warns of (the first row's wins).
    clinic_list.write_text(
        "clinic_name,postcode,phone,clinician_name,profession,hpr_number,helfo_agreement,"
        "latitude,longitude\r\n"
        "Fjordklinikken,5003,55 12 34 56,Kari Nordmann,physiotherapist,9876543,yes,60.395,"
        "5.325\r\n"
        "Fjordklinikken,5003,55 00 00 00,Ola Nordmann,chiropractor,9876544,no,60.395,5.325\r\n",
        encoding="utf-8",
    )
    page.goto(f"{live_server}/staff/import?lang=en")
    page.get_by_label("Email").fill("staff@clinic-finder.example")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(current_code(app, "staff@clinic-finder.example"))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Clinic list (CSV)").set_input_files(str(clinic_list))
    page.get_by_role("button", name="Preview").click()
    assert "They are waiting to be checked" in page.locator("main").inner_text()

    assert "Ran 1 job(s)." in runner.invoke(args=["jobs", "work"]).output
    page.get_by_role("button", name="Import 2 rows").wait_for(timeout=10_000)
    checked = page.locator("main").inner_text()
    assert "1 accepted row has a warning" in checked
    assert "Warning: “phone” on line 3 differs from line 2 of the same clinic" in checked
    page.get_by_role("button", name="Import 2 rows").click()
    assert "waiting to be written" in page.locator("main").inner_text()

    assert "Ran 1 job(s)." in runner.invoke(args=["jobs", "work"]).output
    page.get_by_text("Imported ").wait_for(timeout=10_000)
    assert "2 new, 0 updated, 0 unchanged, 0 rejected" in page.locator("main").inner_text()
