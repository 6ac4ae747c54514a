"""Render the share image chat apps show for a link (clinic_finder/static/img/og-image.png).

A 1200×630 PNG, drawn from the HTML below in headless Chromium: the service's name and one
line, white on Designsystemet's accent colour. Run it again after changing the words:

    .venv/bin/python scripts/make_og_image.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

WIDTH, HEIGHT = 1200, 630
OUTPUT = Path(__file__).resolve().parent.parent / "clinic_finder/static/img/og-image.png"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# --ds-color-accent-base-default and its contrast colour in our Designsystemet theme.
ACCENT = "#0062ba"
ON_ACCENT = "#ffffff"

PAGE = f"""<!doctype html>
<html lang="nb"><head><meta charset="utf-8"><style>
  html, body {{ margin: 0; width: {WIDTH}px; height: {HEIGHT}px; }}
  body {{
    box-sizing: border-box; padding: 96px 104px; background: {ACCENT}; color: {ON_ACCENT};
    font-family: Inter, "Noto Sans", "DejaVu Sans", Arial, sans-serif;
    display: flex; flex-direction: column; justify-content: center; gap: 40px;
  }}
  svg {{ width: 120px; height: 120px; }}
  h1 {{ margin: 0; font-size: 120px; font-weight: 700; letter-spacing: -2px; }}
  p {{ margin: 0; font-size: 48px; line-height: 1.3; max-width: 960px; }}
</style></head><body>
  <svg viewBox="0 0 24 24" aria-hidden="true">
    <path fill="{ON_ACCENT}" d="M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7Zm-1
      3.5h2v2.5h2.5v2H13v2.5h-2V10H8.5V8H11Z"/>
  </svg>
  <h1>Finn klinikk</h1>
  <p>Kiropraktor, fysioterapeut og manuellterapeut nær deg</p>
</body></html>
"""


def main() -> int:
    """Draw the page in Chromium and save the screenshot."""
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.set_content(PAGE)
        page.screenshot(path=str(OUTPUT), type="png")
        browser.close()
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
