"""The patient's page on a phone, in a real browser (Debian's Chromium, 360 × 800).

What a patient arriving from an article on a phone should meet: the first clinic on the
first screen, the ways to act on it (Call, Book, Directions) as big buttons, and a map that
opens on request with pins numbered like the list.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from clinic_finder.models import PostalCode

from .conftest import PHONE
from .factories import make_clinic

pytestmark = pytest.mark.browser

ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)


def _directory(session, count: int = 22) -> None:
    origin = session.get(PostalCode, "0150")
    for step in range(count):
        make_clinic(
            session,
            name=f"Klinikk {step:02d}",
            latitude=origin.latitude + 0.004 * step,
            longitude=origin.longitude + 0.002 * (step % 3),
            phone=f"+47 22 33 44 {step:02d}",
            booking_url="https://booking.example/klinikk" if step == 0 else None,
            email=f"post{step}@klinikk.example",
            website="https://klinikk.example/",
        )
    session.commit()


def test_the_first_result_is_on_the_first_screen_of_a_phone(
    sqlite_only, session, live_server, phone
):
    _directory(session)
    phone.goto(f"{live_server}/find?postcode=0150")
    first = phone.locator("li.clinic").first.bounding_box()
    assert first is not None and first["y"] < PHONE["height"]
    # The search is folded away under its summary until the patient wants to change it.
    assert "0150 Oslo" in phone.locator(".summary-line").inner_text()
    assert not phone.locator(".search-form [name=place]").is_visible()
    phone.locator(".change-search > summary", has_text="Endre søk").click()
    expect(phone.locator(".search-form [name=place]")).to_be_visible()


def test_each_card_leads_with_call_book_and_directions_big_enough_for_a_thumb(
    sqlite_only, session, live_server, phone
):
    _directory(session, count=3)
    phone.goto(f"{live_server}/find?postcode=0150")
    card = phone.locator("li.clinic").first
    actions = card.locator(".clinic-actions a")
    assert [text.split()[0] for text in actions.all_inner_texts()] == [
        "Ring",
        "Bestill",
        "Veibeskrivelse",
    ]
    assert actions.nth(0).get_attribute("href") == "tel:+4722334400"
    assert actions.nth(1).get_attribute("href") == "https://booking.example/klinikk"
    for index in range(3):
        box = actions.nth(index).bounding_box()
        assert box is not None and box["height"] >= 44, actions.nth(index).inner_text()
    # On a computer, directions open OpenStreetMap; the distance says how it was measured.
    assert (
        actions.nth(2).get_attribute("href").startswith("https://www.openstreetmap.org/directions?")
    )
    assert "i luftlinje" in card.locator(".distance").inner_text()
    # A clinic without online booking offers no "Bestill time".
    second = phone.locator("li.clinic").nth(1).locator(".clinic-actions a").all_inner_texts()
    assert [text.split()[0] for text in second] == ["Ring", "Veibeskrivelse"]


def test_directions_open_the_phones_maps_app_on_android(sqlite_only, session, live_server, browser):
    _directory(session, count=1)
    context = browser.new_context(
        viewport=PHONE, user_agent=ANDROID, is_mobile=True, locale="nb-NO"
    )
    page = context.new_page()
    page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    try:
        page.goto(f"{live_server}/find?postcode=0150")
        directions = page.locator(".clinic-actions a", has_text="Veibeskrivelse").first
        assert directions.get_attribute("href").startswith("geo:")
        # The clinic page too.
        page.locator("li.clinic h2 a").first.click()
        page.wait_for_load_state()
        directions = page.locator(".clinic-actions a", has_text="Veibeskrivelse").first
        assert directions.get_attribute("href").startswith("geo:")
    finally:
        context.close()


def test_the_map_opens_on_request_with_pins_numbered_like_the_list(
    sqlite_only, session, live_server, phone
):
    _directory(session, count=5)
    phone.goto(f"{live_server}/find?postcode=0150")
    assert not phone.locator(".results-map").is_visible()
    phone.get_by_role("button", name="Vis kart").click()
    phone.locator(".clinic-pin").first.wait_for()
    phone.wait_for_timeout(500)  # clusters settle after the map fits its pins
    numbers = sorted(int(text) for text in phone.locator(".clinic-pin span").all_inner_texts())
    assert numbers == [1, 2, 3, 4, 5]

    # Tapping a card lights up its pin …
    phone.locator("li.clinic").nth(2).locator(".address").click()
    phone.wait_for_timeout(500)
    assert phone.locator(".clinic-pin.is-active span").inner_text() == "3"
    # … and tapping a pin brings its card forward.
    phone.locator(".clinic-pin", has_text="5").click()
    phone.wait_for_timeout(300)
    assert phone.locator("li.clinic.is-active .pin-number").inner_text() == "5"

    phone.get_by_role("button", name="Skjul kart").click()
    assert not phone.locator(".results-map").is_visible()


def test_the_map_sits_beside_the_list_on_a_wide_screen(sqlite_only, session, live_server, browser):
    _directory(session, count=3)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    try:
        page.goto(f"{live_server}/find?postcode=0150&lang=en")
        page.locator(".clinic-pin").first.wait_for()
        listing = page.locator(".results-list").bounding_box()
        shown = page.locator(".results-map").bounding_box()
        assert shown["x"] > listing["x"] + listing["width"] - 1
        assert not page.locator("[data-map-toggle]").is_visible()
        # The scale speaks kilometres and metres, never miles.
        scale = " ".join(page.locator(".leaflet-control-scale-line").all_inner_texts())
        assert "km" in scale or " m" in scale
        assert "mi" not in scale and "ft" not in scale
    finally:
        context.close()


def test_a_complaint_landing_says_who_can_help_before_the_form(
    sqlite_only, session, live_server, phone
):
    phone.goto(f"{live_server}/find?complaint=sciatica")
    assert phone.locator("h1").inner_text() == "Isjias"
    helps = phone.locator(".complaint-landing").bounding_box()
    form = phone.locator(".search-form").bounding_box()
    assert helps["y"] < form["y"]
    assert phone.locator(".complaint-landing dt").count() >= 2


CONTROLS_TOO_SMALL = """() => [...document.querySelectorAll(
    'main button, main .ds-button, main select, main input:not([type=hidden]):not([type=checkbox]),'
    + ' main summary, main .ds-field:has(input[type=checkbox]) label')]
  .filter(element => element.getClientRects().length > 0)
  .filter(element => element.getBoundingClientRect().height < 44)
  .map(element => element.tagName + ' '
       + (element.textContent || element.name).trim().slice(0, 40))"""


@pytest.mark.parametrize("path", ["/find", "/find?postcode=0150", "/find?complaint=sciatica"])
def test_every_control_on_the_patients_pages_is_big_enough_for_a_thumb(
    sqlite_only, session, live_server, phone, path
):
    _directory(session, count=3)
    phone.goto(f"{live_server}{path}")
    for details in phone.locator("main details").all():
        details.evaluate("element => element.open = true")
    assert phone.evaluate(CONTROLS_TOO_SMALL) == []


# The selects whose chosen option's text is wider than the room the select gives it
# (measured in the select's own font): a prompt cut to "Velg om …" says nothing.
SELECTS_CUT = """() => [...document.querySelectorAll('.search-form select')].filter(select => {
  const style = getComputedStyle(select);
  const context = document.createElement('canvas').getContext('2d');
  context.font = style.font;
  const room = select.clientWidth - parseFloat(style.paddingLeft)
    - parseFloat(style.paddingRight);
  return context.measureText(select.options[select.selectedIndex].text).width > room;
}).map(select => select.name + ': ' + select.options[select.selectedIndex].text)"""


@pytest.mark.parametrize("language", ["nb", "en"])
def test_the_search_forms_selects_show_their_prompt_whole_on_a_phone(
    sqlite_only, session, live_server, phone, language
):
    phone.goto(f"{live_server}/find?lang={language}")
    assert phone.locator(".search-form select[name=complaint]").is_visible()
    assert phone.evaluate(SELECTS_CUT) == []


def test_every_control_on_a_clinic_page_is_big_enough_for_a_thumb(
    sqlite_only, session, live_server, phone
):
    _directory(session, count=1)
    phone.goto(f"{live_server}/find?postcode=0150")
    phone.locator("li.clinic h2 a").first.click()
    phone.wait_for_load_state()
    assert phone.locator("h1").inner_text() == "Klinikk 00"
    assert phone.evaluate(CONTROLS_TOO_SMALL) == []


def test_the_results_say_where_to_turn_when_it_cannot_wait(
    sqlite_only, session, live_server, phone
):
    _directory(session, count=2)
    phone.goto(f"{live_server}/find?postcode=0150")
    urgent = phone.locator(".urgent-care")
    assert "Akutte plager? Ring legevakten på 116\xa0117" in urgent.inner_text()
    assert urgent.locator("a[href='tel:116117']").count() == 1
    assert urgent.locator("a[href='tel:113']").count() == 1
    assert "nummen" not in urgent.inner_text()  # no back complaint: no warning signs
    # With a back complaint, the signs that need a doctor the same day, and the first
    # clinic still on the first screen.
    phone.goto(f"{live_server}/find?postcode=0150&complaint=sciatica")
    assert "blir nummen i skrittet" in phone.locator(".urgent-care").inner_text()
    first = phone.locator("li.clinic").first.bounding_box()
    assert first is not None and first["y"] < PHONE["height"]
