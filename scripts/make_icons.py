"""Render the favicon set and write the web app manifest, from our one SVG icon.

Reads ``clinic_finder/static/icons/icon.svg`` and Designsystemet's theme
(``clinic_finder/static/vendor/designsystemet/theme.css``), then writes, beside the SVG:

- ``apple-touch-icon.png`` (180×180), ``icon-192.png`` and ``icon-512.png``, rendered by
  headless Chromium (Playwright, /usr/bin/chromium);
- ``favicon.ico``: the 16, 32 and 48 px renderings as PNGs inside an ICO file (every
  browser since Windows Vista's reads those);
- ``clinic_finder/static/manifest.webmanifest``: name "Finn klinikk", start_url /find, the
  theme colour from the accent token and the background from the accent background token.

Run it after changing the SVG or Designsystemet's theme (``make icons``); commit the output.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATIC = PROJECT_ROOT / "clinic_finder" / "static"
ICONS = STATIC / "icons"
SOURCE = ICONS / "icon.svg"
THEME = STATIC / "vendor" / "designsystemet" / "theme.css"
MANIFEST = STATIC / "manifest.webmanifest"
CHROMIUM = "/usr/bin/chromium"
PNG_SIZES = {"apple-touch-icon.png": 180, "icon-192.png": 192, "icon-512.png": 512}
ICO_SIZES = (16, 32, 48)


def theme_colour(token: str, theme_css: str) -> str:
    """The light colour scheme's value of a Designsystemet token, e.g. ``#0062ba``."""
    match = re.search(rf"--{re.escape(token)}:(#[0-9a-fA-F]{{3,8}})", theme_css)
    if match is None:
        raise ValueError(f"{token} is not in Designsystemet's theme")
    return match.group(1).lower()


def manifest(theme_css: str) -> dict:
    """The web app manifest: what a browser shows when the finder is saved to a home screen."""
    icon = "/static/icons/"
    return {
        "name": "Finn klinikk",
        "short_name": "Finn klinikk",
        "description": "Finn kiropraktor, fysioterapeut eller manuellterapeut i nærheten.",
        "lang": "nb",
        "start_url": "/find",
        "scope": "/",
        "display": "browser",
        "theme_color": theme_colour("ds-color-accent-base-default", theme_css),
        "background_color": theme_colour("ds-color-accent-background-default", theme_css),
        "icons": [
            {"src": icon + "icon.svg", "sizes": "any", "type": "image/svg+xml"},
            {"src": icon + "icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": icon + "icon-512.png", "sizes": "512x512", "type": "image/png"},
            {
                "src": icon + "icon-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }


def ico(pngs: dict[int, bytes]) -> bytes:
    """An ICO file holding each PNG as it is (size → PNG bytes)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, images = b"", b""
    for size, png in sorted(pngs.items()):
        # Width and height 0 mean 256; colour count 0, one plane, 32 bits a pixel.
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + entries + images


def render(svg: str, sizes: Sequence[int], chromium: str) -> dict[int, bytes]:
    """The SVG as PNGs of these sizes (square), rendered by headless Chromium."""
    from playwright.sync_api import sync_playwright

    page_html = (
        "<!doctype html><style>html,body{margin:0}svg{display:block;width:100vw;"
        "height:100vh}</style>" + svg
    )
    pngs = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        for size in sizes:
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(page_html)
            pngs[size] = page.screenshot(omit_background=True)
            page.close()
        browser.close()
    return pngs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium (default {CHROMIUM})")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        sys.exit(f"No Chromium at {args.chromium}: `make browser` installs Debian's.")
    svg = SOURCE.read_text(encoding="utf-8")
    pngs = render(svg, sorted({*PNG_SIZES.values(), *ICO_SIZES}), args.chromium)
    for name, size in PNG_SIZES.items():
        (ICONS / name).write_bytes(pngs[size])
    (ICONS / "favicon.ico").write_bytes(ico({size: pngs[size] for size in ICO_SIZES}))
    text = json.dumps(manifest(THEME.read_text(encoding="utf-8")), ensure_ascii=False, indent=2)
    MANIFEST.write_text(text + "\n", encoding="utf-8")
    for path in [*(ICONS / name for name in [*PNG_SIZES, "favicon.ico"]), MANIFEST]:
        print(f"{path.relative_to(PROJECT_ROOT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
