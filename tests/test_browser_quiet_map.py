"""A map whose tiles cannot load, in a real browser: a quiet console and a word on the map.

The tile server is blocked, as it is when a patient has no internet for it or it is down.
A fresh page must then log no console error (one per failed tile would hide real ones)
and say over the map, in the page's language, that it cannot be shown.
"""

from __future__ import annotations

import pytest

from clinic_finder.clinic_pages import slugify
from clinic_finder.models import Profession

from .factories import make_clinic
from .helpers import TILE_HOST

pytestmark = pytest.mark.browser


def _console_errors(page) -> list[str]:
    """Everything the page logs as an error or throws, from now on."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _block_tiles(page) -> list[str]:
    """Fail every request to the tile server; return the list of those asked for."""
    asked: list[str] = []

    def abort(route):
        asked.append(route.request.url)
        route.abort()

    page.context.route(f"https://{TILE_HOST}/**", abort)
    return asked


@pytest.fixture
def clinic_near_0150(session):
    clinic = make_clinic(
        session, name="Gamlebyen Fysioterapi", professions=(Profession.PHYSIOTHERAPIST,)
    )
    session.commit()
    return clinic


@pytest.mark.parametrize(
    ("lang", "message"),
    [("nb", "Kartet kan ikke vises akkurat nå"), ("en", "The map cannot be shown just now")],
)
def test_results_map_without_tiles_logs_no_error_and_says_so(
    sqlite_only, clinic_near_0150, live_server, page, lang, message
):
    errors = _console_errors(page)
    asked = _block_tiles(page)

    page.goto(f"{live_server}/find?postcode=0150&lang={lang}")
    notice = page.locator(".results-map .map-unavailable")
    notice.wait_for()

    assert notice.inner_text() == message
    assert page.locator(".results-map .leaflet-marker-icon").count() == 1
    assert len(asked) == 1, "one probe for the whole map, no tile images"
    page.wait_for_timeout(500)
    assert errors == []


def test_clinic_map_without_tiles_logs_no_error_and_says_so(
    sqlite_only, clinic_near_0150, live_server, page
):
    errors = _console_errors(page)
    _block_tiles(page)

    path = f"/clinics/{clinic_near_0150.id}-{slugify(clinic_near_0150.name)}?lang=nb"
    page.goto(live_server + path)
    notice = page.locator(".clinic-map .map-unavailable")
    notice.wait_for()

    assert notice.inner_text() == "Kartet kan ikke vises akkurat nå"
    page.wait_for_timeout(500)
    assert errors == []


def test_map_with_tiles_loads_them_as_images_and_says_nothing(
    sqlite_only, clinic_near_0150, live_server, page
):
    errors = _console_errors(page)
    # A tile server that answers: a 1×1 PNG for every tile.
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d4944415478da63f8cfc0f01f0005000201e2d5c2a00000000049454e44ae426082"
    )
    page.context.route(
        f"https://{TILE_HOST}/**",
        lambda route: route.fulfill(status=200, content_type="image/png", body=png),
    )

    page.goto(f"{live_server}/clinics/{clinic_near_0150.id}-{slugify(clinic_near_0150.name)}")
    page.locator(".clinic-map img.leaflet-tile-loaded").first.wait_for()

    assert page.locator(".map-unavailable").count() == 0
    assert errors == []
