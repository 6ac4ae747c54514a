"""Designsystemet's CSS: the copy we serve is the version package.json pins, with its licence."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import PROJECT_ROOT

STATIC = PROJECT_ROOT / "clinic_finder" / "static" / "vendor" / "designsystemet"
PACKAGE = PROJECT_ROOT / "node_modules" / "@digdir" / "designsystemet-css"


def test_the_served_copy_is_the_pinned_version_with_its_licence():
    pinned = json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"]
    assert (STATIC / "VERSION").read_text().strip() == pinned["@digdir/designsystemet-css"]
    assert "Digitaliseringsdirektoratet" in (STATIC / "LICENSE").read_text()


def test_the_served_copy_is_byte_for_byte_the_packages():
    if not PACKAGE.exists():
        pytest.skip("node_modules missing: run `npm ci` (make test does)")
    assert (STATIC / "designsystemet.css").read_bytes() == (
        PACKAGE / "dist" / "src" / "index.css"
    ).read_bytes()
    assert (STATIC / "theme.css").read_bytes() == (
        PACKAGE / "dist" / "theme" / "designsystemet.css"
    ).read_bytes()


def test_every_page_loads_designsystemet_from_our_own_files(client):
    page = client.get("/find").get_data(as_text=True)
    assert re.search(r'href="/static/vendor/designsystemet/theme\.[0-9a-f]{12}\.css"', page)
    assert re.search(
        r'href="/static/vendor/designsystemet/designsystemet\.[0-9a-f]{12}\.css"', page
    )
    assert "//cdn" not in page and "unpkg" not in page
