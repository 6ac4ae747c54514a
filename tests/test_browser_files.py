"""The files browsers ask for by themselves: the favicon and the web app manifest.

A browser asks for /favicon.ico and for the manifest a page links; a 404 for either is an
error in the console of every fresh page. Both come from our static files, with
scripts/make_icons.py's icons and Designsystemet's accent colour.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from lxml import html

from .factories import make_clinic

STATIC = Path(__file__).resolve().parent.parent / "clinic_finder" / "static"
THEME = STATIC / "vendor" / "designsystemet" / "theme.css"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _get(client, path: str, **kwargs):
    """GET a path and close the response (a file's response holds the file open)."""
    response = client.get(path, **kwargs)
    response.get_data()
    response.close()
    return response


def _accent_colour() -> str:
    """Designsystemet's accent base colour (light scheme), as its theme file defines it."""
    found = re.search(r"--ds-color-accent-base-default:(#[0-9a-f]+)", THEME.read_text())
    return found.group(1)


def test_favicon_is_an_icon_at_the_path_browsers_ask_for(client):
    response = _get(client, "/favicon.ico")

    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    reserved, kind, count = struct.unpack("<HHH", response.data[:6])
    assert (reserved, kind) == (0, 1) and count >= 1
    width, height, *_rest, size, offset = struct.unpack("<BBBBHHII", response.data[6:22])
    assert (width, height) == (16, 16)
    assert response.data[offset : offset + 8] == PNG_SIGNATURE
    assert "max-age=86400" in response.headers["Cache-Control"]
    assert "Cookie" not in response.headers.get("Vary", "")


def test_favicon_is_revalidated_without_sending_it_again(client):
    etag = _get(client, "/favicon.ico").headers["ETag"]

    assert _get(client, "/favicon.ico", headers={"If-None-Match": etag}).status_code == 304


def test_manifest_names_the_finder_in_designsystemet_colours(client):
    response = _get(client, "/manifest.webmanifest")

    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["name"] == "Finn klinikk"
    assert manifest["short_name"]
    assert manifest["start_url"] == "/find"
    assert manifest["display"] in {"browser", "standalone"}
    assert manifest["theme_color"] == _accent_colour() == "#0062ba"
    assert manifest["background_color"] in {"#fff", "#ffffff"}
    assert "max-age=86400" in response.headers["Cache-Control"]


@pytest.mark.parametrize("size", [192, 512])
def test_manifest_icons_are_pngs_of_their_size(client, size):
    manifest = _get(client, "/manifest.webmanifest").get_json(force=True)
    (src,) = {icon["src"] for icon in manifest["icons"] if icon["sizes"] == f"{size}x{size}"}

    png = _get(client, src)

    assert png.status_code == 200
    assert png.mimetype == "image/png"
    assert png.data[:8] == PNG_SIGNATURE
    assert struct.unpack(">II", png.data[16:24]) == (size, size)


@pytest.mark.parametrize("page", ["/find", "/find?postcode=0150", "/contact", "clinic"])
def test_every_patient_page_links_its_icons_and_manifest(client, session, page):
    if page == "clinic":
        clinic = make_clinic(session, name="Gamlebyen Fysioterapi")
        session.commit()
        page = f"/clinics/{clinic.id}"
    response = _get(client, page, follow_redirects=True)
    head = html.fromstring(response.data).head

    links = {(link.get("rel"), link.get("type")): link.get("href") for link in head.iter("link")}
    assert links[("icon", None)] == "/favicon.ico"
    assert links[("manifest", None)] == "/manifest.webmanifest"
    for rel, kind, mimetype, size in [
        ("icon", "image/svg+xml", "image/svg+xml", None),
        ("apple-touch-icon", None, "image/png", 180),
    ]:
        icon = _get(client, links[(rel, kind)])
        assert icon.status_code == 200, rel
        assert icon.mimetype == mimetype
        assert "immutable" in icon.headers["Cache-Control"], "a hashed static name"
        if size:
            assert struct.unpack(">II", icon.data[16:24]) == (size, size)
