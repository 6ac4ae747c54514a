"""The inbox in a real browser, on a phone, in Norwegian: take a request, find it under «Mine»."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import make_staff, sign_in_in_browser
from .factories import make_contact_request
from .helpers import serious_violations, watch

pytestmark = pytest.mark.browser


def sign_in_on(page, app, live_server: str) -> None:
    """Sign in as the ordinary staff member through the real pages, in Norwegian."""
    sign_in_in_browser(page, app, f"{live_server}/staff/sign-in?lang=nb")
    page.wait_for_url(f"{live_server}/staff/")


def test_staff_take_a_request_from_the_inbox_and_find_it_under_mine(
    sqlite_only, app, session, live_server, phone
):
    make_staff(app)
    make_staff(app, "kollega@clinic-finder.example")
    english = make_contact_request(
        session, name="John Smith", message="Stiff neck", language="en", age=timedelta(days=14)
    )
    other = make_contact_request(session, name="Kari Nordmann", age=timedelta(hours=1))
    session.commit()
    watch(phone)
    sign_in_on(phone, app, live_server)
    # The staff home counts it as new and overdue, and the count leads to it.
    phone.get_by_role("link", name="1 forsinket").click()
    assert phone.url.endswith("/staff/requests?overdue=y")
    phone.get_by_role("link", name="Åpne").click()

    # On a phone the filters are folded away; the requests come first.
    assert not phone.locator("details.inbox-filters").evaluate("d => d.open")
    row = phone.locator("tr", has_text=english.reference)
    assert "Engelsk" in row.inner_text() and "John" in row.inner_text()
    assert "Smith" not in row.inner_text()
    row.get_by_role("button", name="Ta saken").click()

    assert f"Du har tatt {english.reference}." in phone.locator(".flashes").inner_text()
    phone.get_by_role("link", name="Mine").click()
    assert phone.url.endswith("/staff/requests?owner=me")
    rows = phone.locator("tbody tr")
    assert rows.count() == 1
    assert english.reference in rows.first.inner_text() and "Deg" in rows.first.inner_text()
    assert other.reference not in phone.locator("main").inner_text()
    # … and on the request's own page, with the button to let it go.
    phone.get_by_role("link", name=english.reference).click()
    assert "Ansvarlig: Deg" in phone.locator(".request-owner").inner_text()
    assert phone.get_by_role("button", name="Slipp saken").is_visible()


def test_the_inbox_with_its_owner_buttons_passes_axe(
    sqlite_only, app, session, live_server, audited_page, axe_source
):
    make_staff(app)
    make_contact_request(session, language="en", age=timedelta(days=14))
    session.commit()
    sign_in_on(audited_page, app, live_server)
    audited_page.goto(f"{live_server}/staff/requests")
    assert serious_violations(audited_page, axe_source) == []
