""" "Endre søk" on a phone, in real Chromium: the results page comes without its search form,
opening the panel fetches it with its counts, and the patient changes the search from it;
without JavaScript the panel's link opens the same form on a page of its own (issue 16)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clinic_finder.models import PostalCode, Profession

from .factories import make_clinic
from .helpers import serious_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 800}
KM = 1 / 111.2  # degrees of latitude in a kilometre


@pytest.fixture
def near_and_far(session):
    """Two physiotherapists within 5 km of 0150 and a chiropractor 15 km away."""
    origin = session.get(PostalCode, "0150")
    for name, km, profession in (
        ("Nær Fysio", 1, Profession.PHYSIOTHERAPIST),
        ("Nær Fysio to", 2, Profession.PHYSIOTHERAPIST),
        ("Langt unna Kiro", 15, Profession.CHIROPRACTOR),
    ):
        make_clinic(
            session, name=name, latitude=origin.latitude + km * KM, professions=(profession,)
        )
    session.commit()
    return origin


def _listed(page) -> list[str]:
    return page.locator("li.clinic h2").all_inner_texts()


def _search_within_25_km(page, form) -> None:
    """Change the radius in the form, search, and find the three clinics within 25 km."""
    form.locator("select[name=radius]").select_option("25")
    form.get_by_role("button", name="Søk").click()
    page.wait_for_url(re.compile(r".*/find\?.*radius=25"))
    assert _listed(page) == ["Nær Fysio", "Nær Fysio to", "Langt unna Kiro"]


def _phone(browser, **options):
    context = browser.new_context(viewport=PHONE, locale="nb-NO", **options)
    # Map tiles are on the internet, which tests can't reach: refuse them at once.
    context.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    return context


def test_endre_sok_fetches_the_form_with_counts_and_searches_again(
    sqlite_only, near_and_far, live_server, browser
):
    context = _phone(browser)
    page = context.new_page()
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        page.goto(f"{live_server}/find?postcode=0150&radius=5")
        assert _listed(page) == ["Nær Fysio", "Nær Fysio to"]
        # The page came without the form; nothing was fetched for it yet.
        assert page.locator("form.search-form").count() == 0
        assert not [url for url in fetched if "/find/search-form" in url]

        page.locator(".change-search > summary", has_text="Endre søk").click()
        form = page.locator(".change-search form.search-form")
        expect(form).to_be_visible()
        expect(page.locator("[data-search-form-body]")).not_to_have_attribute("aria-busy", "true")
        expect(page.locator("[data-search-form-status]")).to_have_text("")
        asked = [url for url in fetched if "/find/search-form" in url]
        assert len(asked) == 1 and "postcode=0150" in asked[0] and "radius=5" in asked[0]
        # The counts within 5 km beside each profession, as the form always showed them.
        labels = form.locator(".professions-choice label").all_inner_texts()
        assert labels == ["Kiropraktor (0)", "Fysioterapeut (2)", "Manuellterapeut (0)"]
        assert form.locator("#place").input_value() == "0150"
        # The scripts bound to the form work on the one put in: place suggestions, and
        # "use my location" shown (it stays hidden until locate.js takes it up).
        expect(form.locator("[data-locate]")).to_be_visible()
        assert form.locator("#place").get_attribute("list") == "place-suggestions"
        # Closing and opening again keeps the form; it is fetched once.
        page.locator(".change-search > summary").click()
        page.locator(".change-search > summary").click()
        assert len([url for url in fetched if "/find/search-form" in url]) == 1

        _search_within_25_km(page, form)
    finally:
        context.close()


def test_the_inserted_form_fills_in_my_location(sqlite_only, near_and_far, live_server, browser):
    context = _phone(
        browser,
        geolocation={"latitude": near_and_far.latitude, "longitude": near_and_far.longitude},
        permissions=["geolocation"],
    )
    page = context.new_page()
    try:
        page.goto(f"{live_server}/find?postcode=0150&radius=5")
        page.locator(".change-search > summary").click()
        page.locator(".change-search").get_by_role("button", name="Bruk posisjonen min").click()
        page.wait_for_url(re.compile(r".*/find\?.*place=\d{4}"))
        assert _listed(page)[:2] == ["Nær Fysio", "Nær Fysio to"]
    finally:
        context.close()


def test_a_failed_fetch_leaves_the_link_and_says_so(
    sqlite_only, near_and_far, live_server, browser
):
    context = _phone(browser)
    context.route("**/find/search-form?**", lambda route: route.fulfill(status=503, body=""))
    page = context.new_page()
    try:
        page.goto(f"{live_server}/find?postcode=0150&radius=5")
        page.locator(".change-search > summary").click()
        status = page.locator("[data-search-form-status]")
        expect(status).to_have_text("Vi fikk ikke hentet søkeskjemaet. Åpne det med lenken.")
        link = page.get_by_role("link", name="Åpne søkeskjemaet")
        expect(link).to_be_visible()
        link.click()
        page.wait_for_url("**/find/change-search?**")
        expect(page.locator("form.search-form")).to_be_visible()
    finally:
        context.close()


def test_without_javascript_the_link_opens_the_form_with_counts(
    sqlite_only, near_and_far, live_server, browser
):
    context = _phone(browser, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/find?postcode=0150&radius=5")
        page.locator(".change-search > summary", has_text="Endre søk").click()
        page.get_by_role("link", name="Åpne søkeskjemaet").click()
        page.wait_for_url("**/find/change-search?**")
        assert page.locator("h1").inner_text() == "Endre søk"
        form = page.locator("form.search-form")
        labels = form.locator(".professions-choice label").all_inner_texts()
        assert labels == ["Kiropraktor (0)", "Fysioterapeut (2)", "Manuellterapeut (0)"]
        assert form.locator("#place").input_value() == "0150"
        _search_within_25_km(page, form)
    finally:
        context.close()


@pytest.mark.parametrize("language", ["nb", "en"])
def test_the_opened_panel_and_its_page_are_accessible(
    sqlite_only, near_and_far, live_server, audited_page, axe_source, language
):
    audited_page.goto(f"{live_server}/find?postcode=0150&radius=5&lang={language}")
    audited_page.locator(".change-search > summary").click()
    expect(audited_page.locator(".change-search form.search-form")).to_be_visible()
    assert serious_violations(audited_page, axe_source) == []
    audited_page.goto(f"{live_server}/find/change-search?postcode=0150&radius=5&lang={language}")
    assert serious_violations(audited_page, axe_source) == []
