"""Every staff page in a real browser: reachable from the menu, no sideways scrolling on a
360 px phone, and no serious or critical axe-core violation, with rows in every table.

Signed in as an admin (who sees every page), in Norwegian, the staff's language.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from clinic_finder import audit
from clinic_finder.contact_requests import ContactDetails, create_contact_request
from clinic_finder.extensions import db
from clinic_finder.hours import parse_day, set_opening_hours
from clinic_finder.hpr import LicenceStatus
from clinic_finder.imports import create_batch, plan_batch
from clinic_finder.mail import queue_email
from clinic_finder.models import (
    AuditEntry,
    LocationSource,
    OutboxMessage,
    Profession,
    StaffUser,
    now_utc,
)

from .conftest import (
    PHONE,
    STAFF_PASSWORD,
    make_staff,
    set_up_link,
    sign_in_in_browser,
)
from .factories import make_clinic
from .helpers import ROUTES, rejected_rows_file, serious_violations
from .smtp_server import running_smtp

pytestmark = pytest.mark.browser

ADMIN = "administrator.med.langt.navn@clinic-finder.example"
LONG_NAME = "Fysioterapi- og Kiropraktorsenteret Nedre Gamlebyen og Omegn AS"


def fill_staff_pages(app) -> dict[str, int]:
    """Put rows in every staff table (clinics, clinicians, requests, uploads, accounts, the
    audit log, licences, the outbox), with long names and addresses; return the ids used."""
    make_staff(app, ADMIN, admin=True)
    make_staff(app, "kollega@clinic-finder.example")
    with app.app_context():
        session = db.session
        admin = session.scalar(select(StaffUser).where(StaffUser.email == ADMIN))
        clinic = make_clinic(
            session,
            name=LONG_NAME,
            address="Dronning Eufemias gate 16, inngang fra bakgården",
            professions=(Profession.PHYSIOTHERAPIST, Profession.CHIROPRACTOR),
            helfo_agreement=True,
            accepts_new_patients=True,
            services=["exercise-therapy", "dry-needling"],
            languages=["nb", "en", "pl"],
            email="post.resepsjon@fysioterapi-og-kiropraktorsenteret.example",
            website="https://www.fysioterapi-og-kiropraktorsenteret-nedre-gamlebyen.example/",
            phone="+47 22 33 44 55",
        )
        make_clinic(
            session,
            name="Kvadraturen Kiropraktikk",
            professions=(Profession.CHIROPRACTOR,),
            location_source=LocationSource.POSTCODE,
            licence_status=LicenceStatus.NOT_FOUND,
        )
        set_opening_hours(session, admin, clinic, {0: parse_day("08–16"), 2: parse_day("08–20")})
        audit.record(
            session,
            admin,
            "clinic.update",
            "clinic",
            clinic.id,
            {"email": ["gammel.adresse@eksempel.example", clinic.email]},
            summary=clinic.name,
        )
        contact_request, _ = create_contact_request(
            session,
            ContactDetails(
                name="Pia Pasient-Kristiansen",
                email="pia.pasient.kristiansen@example.org",
                phone="+47 912 34 567",
                postcode="0150",
                profession=Profession.PHYSIOTHERAPIST,
                message="Vondt i korsryggen i tre uker, verst om morgenen.",
                clinic_id=clinic.id,
            ),
            staff_inbox="innboks@clinic-finder.example",
            base_url="https://finnklinikk.example",
        )
        queue_email(
            session,
            to="post@kvadraturen.example",
            subject="Ny henvisning",
            body="…",
            kind="referral.clinic",
        ).attempts = 2
        batch = create_batch(
            session, "klinikker-fra-regionen.csv", rejected_rows_file("X").encode()
        )
        plan_batch(session, batch)
        session.commit()
        return {
            "clinic": clinic.id,
            "clinician": clinic.practices[0].clinician_id,
            "practice": clinic.practices[0].id,
            "request": contact_request.id,
            "batch": batch.id,
        }


# Every staff page a browser gets, as the path to visit; {…} are filled from fill_staff_pages.
SIGNED_IN_PAGES = {
    "home": "/staff/",
    "clinics": "/staff/clinics",
    "clinic": "/staff/clinics/{clinic}",
    "edit clinic": "/staff/clinics/{clinic}/edit",
    "new clinic": "/staff/clinics/new",
    "opening hours": "/staff/clinics/{clinic}/hours",
    "new clinician": "/staff/clinics/{clinic}/clinicians/new",
    "clinician": "/staff/clinicians/{clinician}",
    "edit clinician": "/staff/clinicians/{clinician}/edit",
    "edit practice": "/staff/practices/{practice}/edit",
    "postcode-only locations": "/staff/locations/postcode-only",
    "licences": "/staff/licences",
    "users": "/staff/users",
    "new user": "/staff/users/new",
    "audit log": "/staff/audit",
    "personal data": "/staff/privacy",
    "embed snippets": "/staff/embed?profession=physiotherapist",
    "outbox": "/staff/outbox",
    "help": "/staff/help",
    "change password": "/staff/password",
    "requests": "/staff/requests",
    "request": "/staff/requests/{request}",
    "referral preview": "/staff/requests/{request}/referral/{clinic}",
    "import": "/staff/import",
    "import preview": "/staff/import/{batch}",
}
# Pages before sign-in; a name for each way there (signed_out_page below).
SIGNED_OUT_PAGES = ["sign in", "second step", "enrol", "link invalid", "reset password"]
# GET routes that are not pages: files, JSON, and the one-time link (it redirects at once).
NOT_PAGES = {
    "/staff/export.csv",
    "/staff/import/<int:batch_id>/rejected.csv",
    "/staff/import/<int:batch_id>/progress",
    "/staff/api/clinics/<int:clinic_id>",
    "/staff/link/<token>",
}


def _rule_pattern(rule: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"<[^>]+>", "[^/]+", rule) + "$")


def test_every_staff_page_is_in_these_tests():
    """A staff page added later is added here too, or this fails."""
    paths = [urlsplit(path).path for path in SIGNED_IN_PAGES.values()]
    paths += ["/staff/sign-in", "/staff/sign-in/code", "/staff/sign-in/enrol"]
    paths += ["/staff/reset-password"]
    staff_rules = {
        rule for method, rule, _ in ROUTES if method == "GET" and rule.startswith("/staff")
    }
    missing = [
        rule
        for rule in staff_rules - NOT_PAGES
        if not any(_rule_pattern(rule).match(path) for path in paths)
    ]
    assert missing == []


def _sign_in(app, page, base: str, email: str = ADMIN) -> None:
    sign_in_in_browser(page, app, f"{base}/staff/sign-in", email)
    page.wait_for_url(f"{base}/staff/")


@pytest.fixture(scope="module")
def staff_site(browser, tmp_path_factory):
    """One app, database and signed-in admin phone for the module (signing in per page would
    spend the authenticator's codes), with rows in every table."""
    import threading

    from werkzeug.serving import make_server

    from clinic_finder import create_app
    from clinic_finder.postcodes import load_postcodes

    from .conftest import POSTCODE_FILE, config_for_tests

    url = f"sqlite:///{tmp_path_factory.mktemp('staff-pages') / 'staff.sqlite3'}"
    smtp = running_smtp()
    smtp_server = smtp.__enter__()
    app = create_app(config_for_tests(url, DEFAULT_LOCALE="nb", **smtp_server.config()))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        load_postcodes(db.session, POSTCODE_FILE)
        db.session.commit()
    ids = fill_staff_pages(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    # bypass_csp only lets the test's own axe script in; the pages are served unchanged.
    context = browser.new_context(viewport=PHONE, locale="nb-NO", bypass_csp=True)
    page = context.new_page()
    _sign_in(app, page, base)
    yield app, base, ids, page, smtp_server
    context.close()
    smtp.__exit__(None, None, None)
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        db.engine.dispose()


# What sticks out past the screen's right edge, to say in a failure.
STICKING_OUT = """() => [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > innerWidth + 1 || el.scrollWidth > innerWidth)
    .slice(-5).map(el => `${el.tagName}.${el.className}: ${el.textContent.trim().slice(0, 30)}`)"""


def _assert_fits_and_passes_axe(page, axe_source: str, name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (
        f"{name} is {width} px wide at {PHONE['width']} px: {page.evaluate(STICKING_OUT)}"
    )
    assert serious_violations(page, axe_source) == [], name


def _visit(staff_site, path: str):
    app, base, ids, page, _ = staff_site
    page.goto(base + path.format(**ids))
    assert urlsplit(page.url).path == urlsplit(path.format(**ids)).path, "redirected"
    return page


@pytest.mark.parametrize("name", list(SIGNED_IN_PAGES))
def test_staff_page_fits_a_phone_and_passes_axe(staff_site, axe_source, name):
    page = _visit(staff_site, SIGNED_IN_PAGES[name])
    if page.locator("table").count():
        assert page.locator("table tbody tr").count() > 0, f"{name} has an empty table"
    _assert_fits_and_passes_axe(page, axe_source, name)


def _signed_out_page(browser, app, base: str, name: str):
    context = browser.new_context(viewport=PHONE, locale="nb-NO", bypass_csp=True)
    page = context.new_page()
    if name == "sign in":
        page.goto(f"{base}/staff/sign-in")
    elif name == "second step":
        page.goto(f"{base}/staff/sign-in")
        page.get_by_label("E-post").fill("kollega@clinic-finder.example")
        page.get_by_label("Passord").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Logg inn").click()
        page.wait_for_url("**/staff/sign-in/code")
    elif name == "enrol":
        make_staff(app, "nykommer@clinic-finder.example", enrolled=False)
        page.goto(base + set_up_link(app, "nykommer@clinic-finder.example"))
        page.get_by_label("E-post").fill("nykommer@clinic-finder.example")
        page.get_by_label("Passord").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Logg inn").click()
        page.wait_for_url("**/staff/sign-in/enrol")
    elif name == "link invalid":
        page.goto(f"{base}/staff/link/not-a-real-token")
    elif name == "reset password":
        # The page a password link opens (an admin's «Password link» on the accounts page).
        from clinic_finder.auth import issue_link, link_url
        from clinic_finder.models import LinkPurpose

        with app.app_context():
            account = db.session.scalar(
                select(StaffUser).where(StaffUser.email == "kollega@clinic-finder.example")
            )
            issued = issue_link(
                db.session, account, LinkPurpose.RESET_PASSWORD, "test", timedelta(hours=1)
            )
            db.session.commit()
            page.goto(base + urlsplit(link_url(issued.token)).path)
        page.wait_for_url("**/staff/reset-password")
    return context, page


@pytest.mark.parametrize("name", SIGNED_OUT_PAGES)
def test_sign_in_page_fits_a_phone_and_passes_axe(staff_site, browser, axe_source, name):
    app, base, _, _, _ = staff_site
    context, page = _signed_out_page(browser, app, base, name)
    try:
        _assert_fits_and_passes_axe(page, axe_source, name)
    finally:
        context.close()


# The menu


def _menu(nav) -> dict[str, str]:
    """The menu's visible links: {text: address}."""
    links = nav.get_by_role("link")
    return {
        links.nth(i).inner_text(): links.nth(i).get_attribute("href") for i in range(links.count())
    }


# Every page staff go to on purpose, as the menu names it (Norwegian); the admin's part last.
MENU = {
    "Startside for ansatte": "/staff/",
    "Henvendelser": "/staff/requests",
    "Hjelp": "/staff/help",
    "Klinikker": "/staff/clinics",
    "Ny klinikk": "/staff/clinics/new",
    "Import": "/staff/import",
    "Eksporter CSV": "/staff/export.csv",
    "Plassert etter postnummer": "/staff/locations/postcode-only",
    "Autorisasjoner å se på": "/staff/licences",
    "Bytt passord": "/staff/password",
}
ADMIN_MENU = {
    "Brukerkontoer": "/staff/users",
    "Aktivitetslogg": "/staff/audit",
    "Personopplysninger": "/staff/privacy",
    "Klinikksøk i artikler": "/staff/embed",
    "Utgående e-post": "/staff/outbox",
}


def test_phone_menu_is_one_closed_disclosure_that_opens_to_every_page(staff_site):
    page = _visit(staff_site, "/staff/clinics")
    nav = page.get_by_role("navigation", name="Ansatte")
    links = nav.get_by_role("link")
    assert links.count() == 0  # closed: the page starts right under «Meny»
    nav.get_by_text("Meny").click()
    nav.get_by_role("link", name="Klinikker").wait_for()
    assert _menu(nav) == MENU | ADMIN_MENU
    assert nav.get_by_role("link", name="Klinikker").get_attribute("aria-current") == "page"
    assert nav.get_by_role("button", name="Logg ut").is_visible()


def test_wide_screen_menu_shows_every_page_at_once(staff_site, browser):
    app, base, _, phone, _ = staff_site
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="nb-NO")
    context.add_cookies(phone.context.cookies())
    page = context.new_page()
    try:
        page.goto(f"{base}/staff/")
        nav = page.get_by_role("navigation", name="Ansatte")
        assert not nav.get_by_text("Meny").is_visible()
        assert _menu(nav) == MENU | ADMIN_MENU
    finally:
        context.close()


def test_menu_without_javascript_opens_and_leaves_out_admin_pages_for_staff(staff_site, browser):
    app, base, _, _, _ = staff_site
    context = browser.new_context(viewport=PHONE, locale="nb-NO", java_script_enabled=False)
    page = context.new_page()
    try:
        _sign_in(app, page, base, "kollega@clinic-finder.example")
        nav = page.get_by_role("navigation", name="Ansatte")
        nav.get_by_text("Meny").click()
        nav.get_by_role("link", name="Klinikker").wait_for()
        assert _menu(nav) == MENU
        nav.get_by_role("link", name="Klinikker").click()
        assert urlsplit(page.url).path == "/staff/clinics"
    finally:
        context.close()


def test_clinic_page_links_to_its_opening_hours(staff_site):
    page = _visit(staff_site, "/staff/clinics/{clinic}")
    page.get_by_role("link", name="Åpningstider").click()
    assert page.locator("h1").inner_text().startswith("Åpningstider")


# The outbox panel


def test_admin_sends_every_waiting_email_now_from_the_staff_home(staff_site):
    app, _, _, _, smtp_server = staff_site
    with app.app_context():
        waiting = db.session.scalars(select(OutboxMessage.to_address)).all()
        # All failed once and wait out a back-off, as after a mail outage.
        db.session.execute(
            update(OutboxMessage).values(
                attempts=1,
                last_error="ConnectionRefusedError",
                next_attempt_at=now_utc() + timedelta(minutes=30),
            )
        )
        db.session.commit()
    assert len(waiting) >= 3  # the patient's receipt, the inbox's notice, the referral
    page = _visit(staff_site, "/staff/")
    panel = page.get_by_role("region", name="Utgående e-post")
    assert f"Venter på å bli sendt {len(waiting)}" in " ".join(panel.inner_text().split())
    panel.get_by_role("button", name="Send alle nå").click()
    flash = page.locator(".flashes").inner_text()
    assert f"{len(waiting)} e-poster sendt, 0 feilet, 0 venter fortsatt." in flash
    assert sorted(message["To"] for message in smtp_server.messages) == sorted(waiting)
    # Nothing waits now, so the staff home shows no panel; the outbox page still does.
    assert page.get_by_role("region", name="Utgående e-post").count() == 0
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "outbox.send_now"))
        assert (entry.actor_label, entry.changes["sent"]) == (ADMIN, len(waiting))
