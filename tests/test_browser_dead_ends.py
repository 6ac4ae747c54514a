"""No dead ends on a phone: an empty result offers the way back, in real Chromium."""

from __future__ import annotations

import pytest

from clinic_finder.models import PostalCode

from .factories import make_clinic

pytestmark = pytest.mark.browser


def test_an_empty_filter_offers_the_way_back_on_a_phone(sqlite_only, session, live_server, page):
    origin = session.get(PostalCode, "0150")
    make_clinic(session, name="Snakker norsk", latitude=origin.latitude + 0.005, languages=["nb"])
    session.commit()
    page.set_viewport_size({"width": 360, "height": 800})

    page.goto(f"{live_server}/find?postcode=0150")
    # After a search the form is folded under "Change search".
    page.locator(".change-search > summary").click()
    page.locator("summary", has_text="More choices").click()
    # Nobody near speaks Tigrinya: the choice says (0) and cannot be made.
    tigrinya = page.locator('#language option[value="ti"]')
    assert tigrinya.text_content().strip() == "Tigrinya (0)"
    assert tigrinya.is_disabled()
    assert page.locator("#open_now").is_disabled()

    # An old article link asks for it anyway: the page says why it is empty and how back.
    page.goto(f"{live_server}/find?postcode=0150&language=ti")
    assert page.locator("#results-heading").inner_text() == "No clinics found"
    assert page.get_by_text("Email a link to this list").count() == 0
    way_back = page.get_by_role(
        "link", name="Search without “Language the clinician speaks: Tigrinya”"
    )
    box = way_back.bounding_box()
    assert box["height"] >= 44
    way_back.click()
    page.wait_for_url("**/find?postcode=0150&radius=25")
    assert page.locator("li.clinic h2").all_inner_texts() == ["Snakker norsk"]
