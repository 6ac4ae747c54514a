"""Search by place on a phone (360×800) in Debian's Chromium: towns, districts, the two Bø.

"Majorstuen" is placed by the loopback Nominatim, which the app's geocoder talks real HTTP
to; the suggestions come from our own API while typing, and the geocoder is never asked
then.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from clinic_finder import geocoding

from .conftest import PHONE
from .factories import make_clinic
from .helpers import serious_violations, watch
from .nominatim_server import NominatimServer, running_nominatim

pytestmark = pytest.mark.browser

MAJORSTUEN = (59.9296, 10.7146)


@pytest.fixture
def nominatim() -> Iterator[NominatimServer]:
    with running_nominatim({"majorstuen": MAJORSTUEN}) as server:
        yield server


@pytest.fixture
def geocoding_app(app, nominatim):
    app.config.update(nominatim.config())
    geocoding.init_app(app)
    return app


@pytest.fixture
def clinics(session):
    make_clinic(session, name="Ishavsbyen Fysio", postcode="9008")
    make_clinic(session, name="Majorstua Manuellterapi", postcode="0367")
    make_clinic(session, name="Telemark Fysio", postcode="3800")
    make_clinic(session, name="Vesterålen Fysio", postcode="8470")
    session.commit()


@pytest.fixture
def phone(browser):
    # In English, unlike conftest's phone: these tests read the English pages.
    context = browser.new_context(viewport=PHONE)
    context.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    page = context.new_page()
    yield page
    context.close()


def search_for(page, base_url: str, text: str) -> None:
    page.goto(f"{base_url}/find")
    page.get_by_label("Postcode or place").fill(text)
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()


def listed(page) -> list[str]:
    return page.locator("li.clinic h2").all_inner_texts()


def test_tromso_finds_clinics_on_a_phone(sqlite_only, clinics, geocoding_app, live_server, phone):
    search_for(phone, live_server, "Tromsø")
    assert listed(phone) == ["Ishavsbyen Fysio"]
    # The form "Change search" fetches keeps what the patient typed.
    phone.locator(".change-search > summary").click()
    assert phone.get_by_label("Postcode or place").input_value() == "Tromsø"


def test_majorstuen_finds_clinics_through_the_geocoder(
    sqlite_only, clinics, geocoding_app, nominatim, live_server, phone
):
    search_for(phone, live_server, "Majorstuen")
    assert listed(phone)[0] == "Majorstua Manuellterapi"
    assert [request.params["q"] for request in nominatim.requests] == ["Majorstuen"]


def test_bo_offers_a_choice_that_searches_from_the_one_chosen(
    sqlite_only, clinics, geocoding_app, nominatim, live_server, phone
):
    search_for(phone, live_server, "Bø")
    choice = phone.locator(".place-choice")
    assert "Which Bø do you mean?" in choice.inner_text()
    options = choice.get_by_role("link")
    assert options.count() == 2
    for index in range(2):
        assert options.nth(index).bounding_box()["height"] >= 44  # a thumb can hit it
    choice.get_by_role("link", name="Bø i Telemark").click()
    phone.wait_for_load_state()
    assert listed(phone)[0] == "Telemark Fysio"
    assert nominatim.requests == []  # the register knew both


def test_suggestions_come_from_our_api_while_typing(
    sqlite_only, clinics, geocoding_app, nominatim, live_server, phone
):
    requests, _ = watch(phone)
    phone.goto(f"{live_server}/find")
    field = phone.get_by_label("Postcode or place")
    field.press_sequentially("trom", delay=60)
    phone.locator('#place-suggestions option[value="Tromsø"]').wait_for(state="attached")
    field.press_sequentially("sø, Majorstuen", delay=30)
    phone.wait_for_timeout(600)
    asked = [urlsplit(url) for url in requests if "/api/v1/places" in url]
    assert asked and all(url.hostname == "127.0.0.1" for url in asked)
    # Debounced: far fewer requests than keys pressed, and no geocoder while typing.
    assert len(asked) < 8
    assert nominatim.requests == []


def test_use_my_location_fills_the_place_field(sqlite_only, clinics, live_server, browser):
    context = browser.new_context(
        viewport=PHONE,
        geolocation={"latitude": 69.6513, "longitude": 18.9567},
        permissions=["geolocation"],
    )
    context.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    page = context.new_page()
    try:
        page.goto(f"{live_server}/find")
        page.get_by_role("button", name="Use my location").click()
        page.wait_for_url("**place=9008**")
        page.locator(".change-search > summary").click()
        assert page.get_by_label("Postcode or place").input_value() == "9008"
        assert listed(page) == ["Ishavsbyen Fysio"]
    finally:
        context.close()


@pytest.mark.parametrize("language", ["nb", "en"])
@pytest.mark.parametrize("query", ["place=Bø", "place=Tromsø", "place=Xyzzyqq"])
def test_place_pages_have_no_serious_accessibility_violation(
    sqlite_only, clinics, live_server, audited_page, axe_source, query, language
):
    audited_page.set_viewport_size(PHONE)
    audited_page.goto(f"{live_server}/find?{query}&lang={language}")
    assert serious_violations(audited_page, axe_source) == []
    if audited_page.locator("li.clinic").count() == 0:
        # (The results page's map is the lead's, redone in issue 13's results-first layout.)
        width = audited_page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the page scrolls sideways on a phone"
