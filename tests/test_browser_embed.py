"""The embedded finder inside another site's page, and a clinic page, in a real browser.

The article site is a second loopback HTTP server on another port: another origin, as
far as the browser's frame-ancestors check is concerned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from clinic_finder.clinic_pages import slugify
from clinic_finder.models import Clinic

from .factories import make_clinic
from .helpers import all_csp_violations, record_csp_violations, serious_violations, watch

pytestmark = pytest.mark.browser

HOSTILE_NAME = "</script><script>alert(1)</script>"


class ArticleSite:
    """A page on another origin that frames our /embed."""

    def __init__(self) -> None:
        self.frame_src = "about:blank"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = (
                    '<!doctype html><html lang="en"><head><title>Article</title></head><body>'
                    "<h1>An article about back pain</h1>"
                    f'<iframe src="{site.frame_src}" title="Find a clinic" width="600" '
                    'height="700"></iframe></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def article_site() -> Iterator[ArticleSite]:
    site = ArticleSite()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def clinics_near_0150(session):
    for index in range(3):
        make_clinic(session, name=f"Fysio {index}")
    session.commit()


def _open_article(page, app, live_server, article_site, allowed: bool):
    # The live server runs this very app, and origins are read per request: allowing the
    # site here is the same as starting with EMBED_ALLOWED_ORIGINS=<its origin>.
    app.config["EMBED_ALLOWED_ORIGINS"] = [article_site.origin] if allowed else []
    article_site.frame_src = f"{live_server}/embed?postcode=0150"
    assert article_site.origin != live_server
    page.goto(article_site.origin + "/", wait_until="load")


def test_allowed_article_site_shows_the_finder_in_its_frame(
    sqlite_only, app, clinics_near_0150, live_server, article_site, page
):
    _, dialogs = watch(page)
    console_violations = record_csp_violations(page)
    _open_article(page, app, live_server, article_site, allowed=True)

    finder = page.frame_locator("iframe")
    finder.locator("li.clinic").first.wait_for()
    assert finder.locator("li.clinic").count() == 3
    assert finder.locator("h1").inner_text() == "Find a clinic near you"
    # The map was drawn by the nonce'd script inside the frame.
    finder.locator(".leaflet-marker-icon").first.wait_for()
    link = finder.locator("li.clinic h3 a").first
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener"
    (frame,) = [f for f in page.frames if f.url.startswith(live_server)]
    assert (
        all_csp_violations(page, console_violations) + frame.evaluate("window.__cspViolations")
        == []
    )
    assert dialogs == []


def test_article_site_not_allowed_gets_no_finder(
    sqlite_only, app, clinics_near_0150, live_server, article_site, page
):
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    _open_article(page, app, live_server, article_site, allowed=False)
    page.wait_for_timeout(500)

    assert page.frame_locator("iframe").locator("li.clinic").count() == 0
    assert any("frame-ancestors" in text and "'none'" in text for text in console), console


def test_a_site_left_off_the_list_gets_no_finder_while_others_may(
    sqlite_only, app, clinics_near_0150, live_server, article_site, page
):
    # The list names other article sites, not this one.
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    _open_article(page, app, live_server, article_site, allowed=False)
    app.config["EMBED_ALLOWED_ORIGINS"] = ["https://artikler.example.no"]
    page.reload(wait_until="load")
    page.wait_for_timeout(500)

    assert page.frame_locator("iframe").locator("li.clinic").count() == 0
    assert any(
        "frame-ancestors" in text and "https://artikler.example.no" in text for text in console
    ), console


def test_clinic_page_structured_data_is_inert_and_breaks_no_policy(
    sqlite_only, session, live_server, page
):
    clinic = make_clinic(session, name=HOSTILE_NAME, phone="+47 22 33 44 55")
    session.commit()
    _, dialogs = watch(page)
    console_violations = record_csp_violations(page)

    page.goto(f"{live_server}/clinics/{clinic.id}-{slugify(clinic.name)}?from=0150")
    page.locator(".leaflet-marker-icon").wait_for()
    data = page.evaluate(
        "JSON.parse(document.querySelector('script[type=\"application/ld+json\"]').textContent)"
    )
    assert data["name"] == HOSTILE_NAME
    assert page.locator("h1").inner_text() == HOSTILE_NAME
    page.locator(".leaflet-marker-icon").click()
    page.locator(".leaflet-popup-content").wait_for()
    assert page.locator(".leaflet-popup-content").inner_text().startswith(HOSTILE_NAME)
    page.wait_for_timeout(300)
    assert dialogs == []
    assert all_csp_violations(page, console_violations) == []


def test_clinic_page_fits_a_360_px_screen(sqlite_only, session, live_server, page):
    clinic = make_clinic(session, name="Fysioterapi og Manuellterapi Grünerløkka Sentrum AS")
    session.commit()
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server}/clinics/{clinic.id}-{slugify(clinic.name)}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.goto(f"{live_server}/embed?postcode=0150")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


@pytest.mark.parametrize("language", ["nb", "en"])
@pytest.mark.parametrize("kind", ["clinic page", "embed", "embed error"])
def test_new_pages_have_no_serious_accessibility_violation(
    sqlite_only, directory, session, live_server, audited_page, axe_source, kind, language
):
    clinic = session.scalars(select(Clinic).order_by(Clinic.id)).first()
    url = {
        "clinic page": f"/clinics/{clinic.id}-{slugify(clinic.name)}?from=0150",
        "embed": "/embed?postcode=0150",
        "embed error": "/embed?postcode=00",
    }[kind]
    audited_page.goto(f"{live_server}{url}&lang={language}")
    assert audited_page.get_attribute("html", "lang") == language
    assert serious_violations(audited_page, axe_source) == []
