"""The contact form on a 360×800 phone, in a real Chromium (see test_browser.py)."""

from __future__ import annotations

import pytest

from .conftest import PHONE
from .helpers import serious_violations

pytestmark = pytest.mark.browser

# Measured before issue 13 at 360×800 in Norwegian: the form was 2,611 px tall and the
# consent box started 3,107 px down the page, below ~900 px of privacy text.
FORM_HEIGHT_BEFORE = 2611
CONSENT_TOP_BEFORE = 3107


def _box(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def test_contact_form_is_short_on_a_phone_with_the_consent_box_beside_its_label(
    sqlite_only, live_server, phone
):
    phone.goto(f"{live_server}/contact?lang=nb")
    form = _box(phone, "form.contact-form")
    box = _box(phone, "#consent")
    label = _box(phone, "label[for=consent]")

    assert form["height"] < FORM_HEIGHT_BEFORE * 0.6, form
    assert box["y"] < CONSENT_TOP_BEFORE * 0.6, box
    # Beside: left of the label, level with its first line (not on a line of its own).
    assert box["x"] + box["width"] <= label["x"]
    assert label["y"] <= box["y"] and box["y"] + box["height"] <= label["y"] + 44
    # The label is the tap target: at least 44 px tall, and a tap on it ticks the box.
    assert label["height"] >= 44 and label["width"] >= 200
    phone.locator("label[for=consent]").scroll_into_view_if_needed()
    label = _box(phone, "label[for=consent]")  # where it is on the screen now
    phone.mouse.click(label["x"] + label["width"] / 2, label["y"] + label["height"] - 6)
    assert phone.locator("#consent").is_checked()
    # A normal font where the patient writes, not the browser's monospace.
    assert "monospace" not in phone.locator("#message").evaluate(
        "element => getComputedStyle(element).fontFamily"
    )


def test_missing_consent_is_shown_under_the_box_and_keeps_what_was_typed(
    sqlite_only, live_server, phone
):
    phone.goto(f"{live_server}/contact?lang=nb&complaint=sciatica")
    phone.fill("#name", "Kari Nordmann")
    phone.fill("#phone", "912 34 567")
    phone.fill("#postcode", "0150")
    phone.fill("#message", "Isjias: vondt ned i venstre bein.")
    phone.get_by_role("button", name="Send henvendelsen").click()
    phone.wait_for_load_state()

    error = phone.locator("#consent-error")
    assert error.inner_text() == "Du må samtykke for at vi kan behandle henvendelsen."
    assert _box(phone, "#consent-error")["x"] == _box(phone, "label[for=consent]")["x"]
    assert phone.locator("#message").input_value() == "Isjias: vondt ned i venstre bein."
    assert phone.locator("#name").input_value() == "Kari Nordmann"
    assert phone.locator(".urgent-care li").count() == 3  # the complaint came along


def test_full_privacy_notice_opens_with_one_tap_without_javascript(
    sqlite_only, live_server, browser
):
    expect = pytest.importorskip("playwright.sync_api").expect
    context = browser.new_context(viewport=PHONE, locale="nb-NO", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server}/contact?lang=nb")
    notice = page.get_by_text("Rettslig grunnlag:")
    assert not notice.is_visible()
    summary = page.locator(".privacy-summary summary")
    assert summary.bounding_box()["height"] >= 44
    summary.click()
    expect(notice).to_be_visible()  # once Designsystemet's unfolding has run
    # Followed from the keyboard: the fold-out's opening transition can move the link
    # under a pointer on a busy machine, and the test is about where the link leads.
    with page.expect_navigation(url="**/contact/privacy"):
        page.get_by_role("link", name="Personvernerklæringen som egen side").press("Enter")
    expect(page.get_by_text("Rettslig grunnlag:")).to_be_visible()
    context.close()


def test_urgent_line_calls_legevakt_and_113_from_the_phone(sqlite_only, live_server, phone):
    phone.goto(f"{live_server}/contact?lang=nb")
    alert = phone.locator(".urgent-care")
    assert alert.inner_text().strip() == (
        "Akutte plager? Ring legevakten på 116\xa0117. Er det livstruende, ring 113."
    )
    assert alert.locator("a").evaluate_all("links => links.map(link => link.href)") == [
        "tel:116117",
        "tel:113",
    ]
    assert _box(phone, ".urgent-care")["y"] < PHONE["height"]  # on the first screen


@pytest.mark.parametrize("language", ["nb", "en"])
@pytest.mark.parametrize(
    "url", ["/contact?complaint=sciatica", "/contact/privacy", "/contact/sent"]
)
def test_contact_pages_have_no_serious_accessibility_violation(
    sqlite_only, live_server, audited_page, axe_source, url, language
):
    if url == "/contact/sent":  # reached by sending a request, with a back complaint
        audited_page.goto(f"{live_server}/contact?lang={language}&complaint=sciatica")
        audited_page.fill("#name", "Kari Nordmann")
        audited_page.fill("#phone", "912 34 567")
        audited_page.fill("#postcode", "0150")
        audited_page.fill("#message", "Vondt i ryggen")
        audited_page.locator("label[for=consent]").click()
        audited_page.locator("button[type=submit]").click()
        audited_page.wait_for_url("**/contact/sent")
        assert audited_page.locator(".urgent-care li").count() == 3
    else:
        separator = "&" if "?" in url else "?"
        audited_page.goto(f"{live_server}{url}{separator}lang={language}")
    assert audited_page.get_attribute("html", "lang") == language
    audited_page.locator("details").evaluate_all("all => all.forEach(d => d.open = true)")
    assert serious_violations(audited_page, axe_source) == []
