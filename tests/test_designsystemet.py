"""Designsystemet's CSS: what we serve is the pinned version's, with its licence, and holds
every component our pages use."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from .conftest import PROJECT_ROOT

# The script `make designsystemet` runs, loaded from its file (scripts/ is no package).
_SPEC = importlib.util.spec_from_file_location(
    "designsystemet_subset", PROJECT_ROOT / "scripts" / "designsystemet_subset.py"
)
_SUBSET = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_SUBSET)
subset, top_level_blocks = _SUBSET.subset, _SUBSET.top_level_blocks

STATIC = PROJECT_ROOT / "clinic_finder" / "static" / "vendor" / "designsystemet"
PACKAGE = PROJECT_ROOT / "node_modules" / "@digdir" / "designsystemet-css"


def test_the_served_copy_is_the_pinned_version_with_its_licence():
    pinned = json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"]
    assert (STATIC / "VERSION").read_text().strip() == pinned["@digdir/designsystemet-css"]
    assert "Digitaliseringsdirektoratet" in (STATIC / "LICENSE").read_text()


def _components() -> set[str]:
    return set((STATIC / "COMPONENTS").read_text().split())


def test_the_served_copy_is_the_packages_css_for_our_components():
    if not PACKAGE.exists():
        pytest.skip("node_modules missing: run `npm ci` (make test does)")
    published = (PACKAGE / "dist" / "src" / "index.css").read_text(encoding="utf-8")
    served = (STATIC / "designsystemet.css").read_text(encoding="utf-8")
    assert served == subset(published, _components())
    # Byte for byte as published: every block we serve is in the package's file.
    assert all(text in published for _, text in top_level_blocks(served))
    assert len(served) < len(published) / 2
    assert (STATIC / "theme.css").read_bytes() == (
        PACKAGE / "dist" / "theme" / "designsystemet.css"
    ).read_bytes()


def test_every_component_our_templates_use_is_served():
    used = set()
    for template in (PROJECT_ROOT / "templates").rglob("*.html"):
        used |= set(re.findall(r'class="(?:[^"]* )?ds-([a-z-]+)', template.read_text()))
    served = (STATIC / "designsystemet.css").read_text(encoding="utf-8")
    missing = sorted(name for name in used if f".ds-{name}" not in served)
    assert missing == [], f"add them to {STATIC / 'COMPONENTS'} and run make designsystemet"


def test_every_page_loads_designsystemet_from_our_own_files(client):
    page = client.get("/find").get_data(as_text=True)
    assert re.search(r'href="/static/vendor/designsystemet/theme\.[0-9a-f]{12}\.css"', page)
    assert re.search(
        r'href="/static/vendor/designsystemet/designsystemet\.[0-9a-f]{12}\.css"', page
    )
    assert "//cdn" not in page and "unpkg" not in page
