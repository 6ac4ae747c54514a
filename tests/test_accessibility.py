"""WCAG 2.1 AA in a real browser: axe-core on every patient-facing page, in both languages,
and the layout at a phone's width.

axe-core comes from the npm registry (`package.json`; `make test` runs `npm ci`). It is
evaluated into each page through the browser's DevTools protocol in a context that lets
it past our Content-Security-Policy (which, rightly, refuses any script we did not
serve); the pages themselves are exactly what patients get.
"""

from __future__ import annotations

import pytest

from .helpers import serious_violations

PHONE = {"width": 360, "height": 740}

pytestmark = pytest.mark.browser


PAGES = {
    "search": "/find",
    "results": "/find?postcode=0150",
    "search error": "/find?postcode=0000",
    "complaint landing": "/find?complaint=sciatica",
    "complaint results": "/find?postcode=0150&complaint=sciatica",
    "empty result": "/find?postcode=0150&language=ti",
    "change search (no JavaScript)": "/find/change-search?postcode=0150",
    "contact form": "/contact?postcode=0150",
}


@pytest.mark.parametrize("language", ["nb", "en"])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_serious_accessibility_violation(
    sqlite_only, directory, live_server, audited_page, axe_source, name, language
):
    separator = "&" if "?" in PAGES[name] else "?"
    audited_page.goto(f"{live_server}{PAGES[name]}{separator}lang={language}")
    assert audited_page.get_attribute("html", "lang") == language
    assert serious_violations(audited_page, axe_source) == []


@pytest.mark.parametrize("language", ["nb", "en"])
def test_clinic_page_has_no_serious_accessibility_violation(
    sqlite_only, directory, live_server, audited_page, axe_source, language
):
    audited_page.goto(f"{live_server}/find?postcode=0150&lang={language}")
    audited_page.locator("li.clinic h2 a").first.click()
    audited_page.wait_for_load_state()
    assert "/clinics/" in audited_page.url
    assert serious_violations(audited_page, axe_source) == []


def test_contact_form_errors_are_accessible_too(sqlite_only, live_server, audited_page, axe_source):
    audited_page.goto(f"{live_server}/contact?lang=nb")
    audited_page.get_by_role("button").last.click()
    audited_page.wait_for_load_state()
    # Every error is tied to its field, so a screen reader reads it with the field.
    invalid = audited_page.locator("[aria-invalid=true]")
    assert invalid.count() > 0
    for index in range(invalid.count()):
        assert invalid.nth(index).get_attribute("aria-describedby")
    assert serious_violations(audited_page, axe_source) == []


@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_a_phone_without_sideways_scrolling(
    sqlite_only,
    directory,
    live_server,
    browser,
    name,
):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    page = context.new_page()
    try:
        page.goto(f"{live_server}{PAGES[name]}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a 360px phone"
    finally:
        context.close()


def test_results_list_works_without_javascript(sqlite_only, directory, live_server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/find?postcode=0150&lang=en")
        names = page.locator("li.clinic h2").all_inner_texts()
        assert names == ["Gamlebyen Fysioterapi", "Kvadraturen Kiropraktikk"]
    finally:
        context.close()


def _contrast(rgb_a: tuple[int, ...], rgb_b: tuple[int, ...]) -> float:
    """WCAG's contrast ratio between two sRGB colours."""

    def luminance(rgb):
        channels = [c / 255 for c in rgb[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(rgb_a), luminance(rgb_b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("path", ["/find?lang=nb", "/find?postcode=0150&lang=nb"])
def test_keyboard_focus_is_visible_against_the_page(
    sqlite_only, directory, live_server, browser, path
):
    page = browser.new_page()
    try:
        page.goto(f"{live_server}{path}")
        seen = set()
        # The skip link, the language switch, the form's fields and buttons (folded under
        # "Change search" after a search), the results and their buttons.
        for _ in range(12):
            page.keyboard.press("Tab")
            outline = page.evaluate(
                """() => {
                    const style = getComputedStyle(document.activeElement);
                    return [document.activeElement.tagName, style.outlineStyle,
                            parseFloat(style.outlineWidth), style.outlineColor];
                }"""
            )
            tag, style, width, colour = outline
            seen.add(tag)
            assert style != "none" and width >= 2, f"{tag} shows no focus outline"
            rgb = tuple(int(part) for part in colour[colour.index("(") + 1 : -1].split(",")[:3])
            # WCAG 1.4.11: the focus indicator needs 3:1 against the white page.
            assert _contrast(rgb, (255, 255, 255)) >= 3, f"{tag} focus is {colour}"
        assert {"A", "INPUT"} <= seen if "postcode" not in path else {"A", "SUMMARY"} <= seen
    finally:
        page.close()


def test_a_printed_list_leaves_out_the_controls(sqlite_only, directory, live_server, browser):
    page = browser.new_page()
    try:
        page.goto(f"{live_server}/find?postcode=0150&lang=en")
        page.emulate_media(media="print")
        assert not page.locator("form.search-form").is_visible()
        assert not page.locator(".results-map").is_visible()
        assert page.locator("li.clinic h2").all_inner_texts() == [
            "Gamlebyen Fysioterapi",
            "Kvadraturen Kiropraktikk",
        ]
        # On paper a link's address is all there is of it.
        website = page.locator("li.clinic a[href^='https://gamlebyen']")
        assert "gamlebyen.example" in website.evaluate(
            "link => getComputedStyle(link, '::after').content"
        )
    finally:
        page.close()
