"""Static files under content-hashed names: cached for a year, never stale, and a repeat
visit fetches none of them again."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest
from flask import request
from xstatic.pkg import leaflet as xstatic_leaflet

from clinic_finder.static_files import IMMUTABLE

from .factories import make_clinic

STATIC = Path(__file__).resolve().parent.parent / "clinic_finder" / "static"
HASHED_STATIC_URL = re.compile(r"/static/[\w./-]+\.([0-9a-f]{12})\.\w+")


def short_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def linked(page: str, name: str) -> str:
    """The one URL the page links for a static file of this name (e.g. 'site', 'css')."""
    stem, ext = name.rsplit(".", 1)
    (url,) = set(re.findall(rf"/static/[\w./-]*?{re.escape(stem)}\.[0-9a-f]{{12}}\.{ext}", page))
    return url


@pytest.fixture
def results_page(client, session) -> str:
    make_clinic(session, name="Frogner Fysio")
    session.commit()
    return client.get("/find?postcode=0150").get_data(as_text=True)


def test_pages_link_every_static_file_by_its_contents_hash(results_page):
    assert "/static/css/site.css" not in results_page
    assert (
        linked(results_page, "site.css")
        == f"/static/css/site.{short_hash(STATIC / 'css/site.css')}.css"
    )
    design = STATIC / "vendor/designsystemet/designsystemet.css"
    assert linked(results_page, "designsystemet.css").endswith(
        f"designsystemet.{short_hash(design)}.css"
    )
    leaflet_js = Path(xstatic_leaflet.BASE_DIR) / "leaflet.js"
    assert linked(results_page, "leaflet.js") == (
        f"/static/vendor/leaflet/leaflet.{short_hash(leaflet_js)}.js"
    )
    # Leaflet's marker images too, which it would otherwise look for beside leaflet.css.
    assert linked(results_page, "marker-icon.png").startswith("/static/vendor/leaflet/images/")


@pytest.mark.parametrize(
    "name",
    [
        "site.css",
        "designsystemet.css",
        "leaflet.js",
        "leaflet.markercluster.js",
        "marker-shadow.png",
    ],
)
def test_hashed_file_is_cached_for_a_year_as_immutable(client, results_page, name):
    response = client.get(linked(results_page, name))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.headers.get("Content-Encoding") is None  # the client asked for none
    assert (
        hashlib.sha256(response.data)
        .hexdigest()
        .startswith(HASHED_STATIC_URL.search(linked(results_page, name)).group(1))
    )


def test_unhashed_name_still_works_and_is_revalidated(client):
    response = client.get("/static/css/site.css")
    assert response.status_code == 200
    assert response.data == (STATIC / "css/site.css").read_bytes()
    assert response.headers["Cache-Control"] == "no-cache"
    response.close()
    vendor = client.get("/static/vendor/leaflet/leaflet.css")
    assert vendor.status_code == 200 and vendor.headers["Cache-Control"] == "no-cache"
    vendor.close()


def test_wrong_hash_gets_todays_file_revalidated_never_immutable(client):
    response = client.get("/static/css/site.0123456789ab.css")
    assert response.status_code == 200
    assert response.data == (STATIC / "css/site.css").read_bytes()
    assert response.headers["Cache-Control"] == "no-cache"
    response.close()


@pytest.mark.parametrize(
    "url",
    [
        "/static/css/nothing.0123456789ab.css",
        "/static/vendor/leaflet/images/none.0123456789ab.png",
        "/static/css/../../__init__.0123456789ab.py",
        "/static/css/%2e%2e/%2e%2e/__init__.0123456789ab.py",
    ],
)
def test_hashed_name_of_no_static_file_is_not_found(client, url):
    assert client.get(url).status_code == 404


def test_changed_file_gets_a_new_url_and_the_old_one_is_not_pinned(app, client, tmp_path):
    stylesheet = tmp_path / "css" / "site.css"
    stylesheet.parent.mkdir()
    stylesheet.write_text("body { color: #111; }\n")
    app.static_folder = str(tmp_path)
    app.config["STATIC_LINK_RECHECK_SECONDS"] = 0  # every link looks at the file

    before = linked(client.get("/").get_data(as_text=True), "site.css")
    assert client.get(before).headers["Cache-Control"] == IMMUTABLE

    stylesheet.write_text("body { color: #222; }\n")
    # A clock that does not move between the two writes must not hide the change.
    stat = stylesheet.stat()
    os.utime(stylesheet, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = linked(client.get("/").get_data(as_text=True), "site.css")
    assert after != before
    fresh = client.get(after)
    assert fresh.headers["Cache-Control"] == IMMUTABLE
    assert fresh.data == b"body { color: #222; }\n"
    # A page from before the change still gets a style sheet, today's, revalidated.
    old = client.get(before)
    assert old.status_code == 200
    assert old.data == b"body { color: #222; }\n"
    assert old.headers["Cache-Control"] == "no-cache"
    old.close()


def test_links_trust_a_file_for_the_recheck_interval_then_show_its_edit(app, client, tmp_path):
    stylesheet = tmp_path / "css" / "site.css"
    stylesheet.parent.mkdir()
    stylesheet.write_text("body { color: #111; }\n")
    app.static_folder = str(tmp_path)
    app.config["STATIC_LINK_RECHECK_SECONDS"] = 0.5
    before = linked(client.get("/").get_data(as_text=True), "site.css")
    edited = b"body { color: #222222; }\n"
    stylesheet.write_bytes(edited)
    # Within the interval the page links the name it knew...
    assert linked(client.get("/").get_data(as_text=True), "site.css") == before
    # ...whose URL answers with the file as it is now, never pinned for a year.
    stale = client.get(before)
    assert (stale.data, stale.headers["Cache-Control"]) == (
        b"body { color: #222222; }\n",
        "no-cache",
    )
    stale.close()
    time.sleep(0.6)
    after = linked(client.get("/").get_data(as_text=True), "site.css")
    assert after != before
    fresh = client.get(after)
    assert (fresh.data, fresh.headers["Cache-Control"]) == (
        b"body { color: #222222; }\n",
        IMMUTABLE,
    )
    fresh.close()


def test_file_changed_behind_the_manifests_back_is_not_served_as_immutable(app, client, tmp_path):
    stylesheet = tmp_path / "css" / "site.css"
    stylesheet.parent.mkdir()
    stylesheet.write_text("body { color: #111; }\n")
    app.static_folder = str(tmp_path)
    url = linked(client.get("/").get_data(as_text=True), "site.css")
    stat = stylesheet.stat()
    # Same size, same modification time, other bytes: only reading them tells.
    stylesheet.write_text("body { color: #999; }\n")
    os.utime(stylesheet, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    response = client.get(url)
    assert response.data == b"body { color: #999; }\n"
    assert response.headers["Cache-Control"] == "no-cache"
    response.close()


@pytest.mark.browser
def test_repeat_visit_fetches_no_static_file_and_the_map_still_draws(
    app, session, live_server, browser, sqlite_only
):
    for step in range(3):
        make_clinic(session, name=f"Klinikk {step}", latitude=59.91 + step * 0.01, longitude=10.75)
    session.commit()
    context = browser.new_context(viewport={"width": 360, "height": 800})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    # Tiles blocked here: Playwright's own routing would switch the HTTP cache off.
    cdp.send("Network.setBlockedURLs", {"urls": ["*tile.openstreetmap.org*"]})
    static_urls: dict[str, str] = {}
    from_cache: set[str] = set()

    def sent(event):
        if "/static/" in event["request"]["url"]:
            static_urls[event["requestId"]] = event["request"]["url"]

    def received(event):
        if event["response"].get("fromDiskCache") or event["response"].get("fromMemoryCache"):
            from_cache.add(event["requestId"])

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceived", received)
    cdp.on("Network.requestServedFromCache", lambda event: from_cache.add(event["requestId"]))
    # What the server itself was asked for: DevTools reports no cache hit for a worker's
    # script (the tile probe), so the server's side is the one that settles it.
    served: list[str] = []

    @app.before_request
    def note_static_request():
        if request.path.startswith("/static/"):
            served.append(request.path)

    page.goto(live_server + "/find?postcode=0150")
    page.locator("[data-map-toggle]").click()  # on a phone the map opens on request
    page.wait_for_selector(".leaflet-marker-icon")
    page.wait_for_load_state("networkidle")  # the marker images too
    first_visit = set(static_urls.values())
    assert any("leaflet.markercluster" in url for url in first_visit)
    assert all(HASHED_STATIC_URL.search(url) for url in first_visit), first_visit

    static_urls.clear()
    from_cache.clear()
    served.clear()
    page.goto("about:blank")
    page.goto(live_server + "/find?postcode=0150")
    page.locator("[data-map-toggle]").click()  # on a phone the map opens on request
    page.wait_for_selector(".leaflet-marker-icon")
    page.wait_for_load_state("networkidle")
    assert static_urls, "the repeat visit used its static files"
    assert served == [], "the repeat visit fetched these again"
    # DevTools agrees for every file but the worker's script, which it can't tell about.
    fetched_again = [
        url
        for request_id, url in static_urls.items()
        if request_id not in from_cache and "tile-probe" not in url
    ]
    assert fetched_again == []
    context.close()


def test_static_files_carry_no_session_cookie_and_do_not_vary_on_it(staff_client):
    # A signed-in staff member's session is stamped on every page they open ...
    page = staff_client.get("/staff/")
    assert "session=" in page.headers.get("Set-Cookie", "")
    # ... but not on a static file, which a shared cache could otherwise hand on.
    for url in ("/static/css/site.css", linked(page.get_data(as_text=True), "site.css")):
        response = staff_client.get(url)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers, url
        assert "Cookie" not in response.headers.get("Vary", ""), url
        response.close()
