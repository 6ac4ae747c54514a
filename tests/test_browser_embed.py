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
from clinic_finder.models import Clinic, PostalCode
from clinic_finder.staff.embed import build_snippets

from .factories import make_clinic
from .helpers import all_csp_violations, record_csp_violations, serious_violations, watch

pytestmark = pytest.mark.browser

HOSTILE_NAME = "</script><script>alert(1)</script>"


class ArticleSite:
    """A page on another origin that frames our /embed (or, when given, ``html``)."""

    def __init__(self) -> None:
        self.frame_src = "about:blank"
        self.html: str | None = None
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = (
                    site.html
                    or '<!doctype html><html lang="en"><head><title>Article</title></head><body>'
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


def _serve(site: ArticleSite) -> Iterator[ArticleSite]:
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def article_site() -> Iterator[ArticleSite]:
    yield from _serve(ArticleSite())


@pytest.fixture
def stranger_site() -> Iterator[ArticleSite]:
    """A third origin, not on the list, that tries to resize our frame."""
    yield from _serve(ArticleSite())


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
    # This older snippet has no allow="geolocation": no location button that cannot work.
    assert finder.locator("[data-locate]").is_hidden()
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


# --- the frame fits its content ------------------------------------------------------------

ARTICLE_WITH_SNIPPET = """<!doctype html><html lang="nb"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Vondt i ryggen</title>
</head><body><h1>Vondt i ryggen?</h1><p>Slik finner du hjelp.</p>
{snippet}
<p id="after">Resten av artikkelen.</p>{extra}</body></html>"""

# The stranger's page claims a height for every frame of its parent, as any page may.
STRANGER_PAGE = """<!doctype html><html lang="en"><head><title>Stranger</title></head><body>
<script>
setInterval(function () {
  window.parent.postMessage({type: "clinic-finder:height", height: 3333}, "*");
}, 50);
</script></body></html>"""


@pytest.fixture
def many_clinics_near_0150(session):
    origin = session.get(PostalCode, "0150")
    for index in range(8):
        make_clinic(
            session,
            name=f"Fysioterapi og manuellterapi Sentrum {index}",
            phone=f"+47 22 33 44 {index:02d}",
            latitude=origin.latitude + 0.001 * index,
        )
    session.commit()


def _article_with_snippet(app, live_server, article_site, extra=""):
    """The article site, allowed, pasting the snippet exactly as the staff page gives it."""
    app.config["EMBED_ALLOWED_ORIGINS"] = [article_site.origin]
    app.config["PUBLIC_BASE_URL"] = live_server
    with app.test_request_context():
        snippet = build_snippets("physiotherapist", "", "nb")["iframe"]
    assert 'height="900"' in snippet and "embed-resize.js" in snippet
    article_site.html = ARTICLE_WITH_SNIPPET.format(snippet=snippet, extra=extra)


def _frame_height(page) -> float:
    return page.locator("iframe").first.evaluate("frame => frame.getBoundingClientRect().height")


def _finder_frame(page, live_server):
    (frame,) = [f for f in page.frames if f.url.startswith(live_server)]
    return frame


def _search_inside(page, live_server):
    finder = page.frame_locator("iframe").first
    finder.get_by_label("Postnummer").fill("0150")
    finder.get_by_label("Innen").select_option("10")
    finder.get_by_role("button", name="Søk", exact=True).click()
    finder.locator("li.clinic").first.wait_for()
    # The frame reported its new height and the article's script applied it.
    page.wait_for_function(
        "() => document.querySelector('iframe').getBoundingClientRect().height > 900"
    )
    page.wait_for_timeout(300)  # later reports (fonts, layout) settle
    return finder


def test_embed_grows_to_fit_its_results_in_an_article_on_a_phone(
    sqlite_only, app, many_clinics_near_0150, live_server, article_site, page
):
    page.set_viewport_size({"width": 360, "height": 800})
    _article_with_snippet(app, live_server, article_site)
    page.goto(article_site.origin + "/", wait_until="load")
    # Before a search the frame fits the short form: smaller than the snippet's 900 px.
    page.wait_for_function(
        "() => document.querySelector('iframe').getBoundingClientRect().height < 900"
    )

    finder = _search_inside(page, live_server)
    frame = _finder_frame(page, live_server)
    assert "place=0150" in frame.url and "radius=10" in frame.url
    assert finder.locator("li.clinic").count() == 5
    height = _frame_height(page)
    content = frame.evaluate("document.documentElement.scrollHeight")
    # No scroll inside the scroll: all of the frame's page shows, with no empty tail.
    assert content <= height + 2
    assert frame.evaluate("document.documentElement.getBoundingClientRect().height") >= height - 2
    assert frame.evaluate("window.innerWidth") <= 360
    # Each card leads with a call; every button is a thumb's size.
    first_card = finder.locator("li.clinic").first
    call = first_card.locator("a.action-call")
    assert call.get_attribute("href") == "tel:+4722334400"
    assert call.inner_text().startswith("Ring")
    targets = "li.clinic h3 a, .embed-actions a, .embed-links a, .embed-buttons button:visible"
    for target in finder.locator(targets).all():
        assert target.bounding_box()["height"] >= 44
    # The rest of the article follows the frame, not hidden behind it.
    after = page.locator("#after").bounding_box()
    assert after["y"] >= page.locator("iframe").bounding_box()["y"] + height

    # Content that grows without a new page (a message, an opened detail) grows the frame.
    frame.evaluate(
        "() => { const more = document.createElement('div'); more.style.height = '400px';"
        " document.querySelector('main').append(more); }"
    )
    page.wait_for_function(
        "expected => document.querySelector('iframe').getBoundingClientRect().height >= expected",
        arg=height + 398,
    )


def test_embed_ignores_heights_from_other_origins(
    sqlite_only, app, many_clinics_near_0150, live_server, article_site, stranger_site, page
):
    page.set_viewport_size({"width": 360, "height": 800})
    stranger_site.html = STRANGER_PAGE
    _article_with_snippet(
        app,
        live_server,
        article_site,
        extra=f'<iframe src="{stranger_site.origin}/" title="Annonse" height="50"></iframe>',
    )
    page.goto(article_site.origin + "/", wait_until="load")
    _search_inside(page, live_server)
    fitted = _frame_height(page)
    assert fitted < 3000

    # The article page itself, and a frame from another site, claim a height: nothing moves.
    page.evaluate("window.postMessage({type: 'clinic-finder:height', height: 3333}, '*')")
    page.wait_for_timeout(300)
    assert _frame_height(page) == fitted

    # Even from inside our own frame's window, once it shows another origin's page.
    _finder_frame(page, live_server).goto(stranger_site.origin + "/")
    page.wait_for_timeout(400)
    assert _frame_height(page) == fitted


def test_use_my_location_searches_inside_the_article_frame(
    sqlite_only, app, session, many_clinics_near_0150, live_server, article_site, browser
):
    # The snippet's allow="geolocation" hands the article's permission on to our frame.
    origin = session.get(PostalCode, "0150")
    context = browser.new_context(
        viewport={"width": 360, "height": 800},
        geolocation={"latitude": origin.latitude, "longitude": origin.longitude},
        permissions=["geolocation"],
    )
    try:
        page = context.new_page()
        _article_with_snippet(app, live_server, article_site)
        page.goto(article_site.origin + "/", wait_until="load")
        finder = page.frame_locator("iframe").first
        finder.get_by_role("button", name="Bruk posisjonen min").click()
        finder.locator("li.clinic").first.wait_for()
        assert "place=0150" in _finder_frame(page, live_server).url
        page.wait_for_function(
            "() => document.querySelector('iframe').getBoundingClientRect().height > 900"
        )
    finally:
        context.close()
