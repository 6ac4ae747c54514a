"""The embeddable finder, who may frame it, CORS for the article sites, and the snippet page."""

from __future__ import annotations

import html
import re

import pytest

from clinic_finder import create_app
from clinic_finder.clinic_pages import slugify
from clinic_finder.config import ConfigError, config_from_environment
from clinic_finder.extensions import db
from clinic_finder.models import PostalCode, Profession
from clinic_finder.origins import allowed_origins

from .conftest import config_for_tests
from .factories import make_clinic
from .helpers import ALL_GET, API_BODY, assert_security_headers, csp, page_response

ARTICLES = "https://artikler.example.no"
OLD_ARTICLES = "http://127.0.0.1:8123"
STRANGER = "https://evil.example"


@pytest.fixture
def app(app):
    """The usual test app, with two article sites allowed (one by the setting's old name).

    The origins are read per request, so setting them after start is the same as starting
    with them; test_configured_origins_are_checked_at_start covers the start itself.
    """
    app.config["EMBED_ALLOWED_ORIGINS"] = [ARTICLES]
    app.config["CONTACT_ALLOWED_ORIGINS"] = [OLD_ARTICLES]
    return app


def _body(response) -> str:
    return response.get_data(as_text=True)


# --- the page -------------------------------------------------------------------------------


def test_embed_lists_the_nearest_clinics_linking_out_in_new_tabs(client, session):
    near = make_clinic(
        session, name="Nær Fysio", accepts_new_patients=True, phone="+47 22 33 44 55"
    )
    make_clinic(session, name="Kiro Sentrum", professions=(Profession.CHIROPRACTOR,))
    session.commit()

    response = client.get("/embed?postcode=0150&profession=physiotherapist&radius=10")
    body = _body(response)
    assert response.status_code == 200
    assert "1 clinic within 10 km of 0150" in body
    assert "Kiro Sentrum" not in body
    # The card names the clinic, linking to its page in a new tab (top level), and then
    # leads with a call.
    card = body[body.index(f'id="clinic-{near.id}"') :]
    page = f"/clinics/{near.id}-{slugify(near.name)}?from=0150&amp;lang=en"
    assert f'<a class="ds-link" href="{page}" target="_blank" rel="noopener">Nær Fysio' in card
    assert re.search(r'<div class="embed-actions">\s*<a class="ds-button action-call"', card)
    assert '<a class="ds-button action-call" data-variant="primary" href="tel:+4722334455">' in card
    find = re.search(r'href="(/find\?[^"]*)" target="_blank" rel="noopener">All results', body)
    assert find and "place=0150" in find.group(1) and "radius=10" in find.group(1)
    contact = re.search(r'href="(/contact\?[^"]*)" target="_blank" rel="noopener">', body)
    assert contact and "postcode=0150" in contact.group(1)
    # No site header or footer, but a skip link, the page's language; no map to trap a finger.
    assert "site-header" not in body and "site-footer" not in body
    assert '<a class="skip-link" href="#main">' in body
    assert '<html lang="en">' in body
    assert "leaflet" not in body


def test_embed_offers_the_radius_and_the_location_button(client):
    body = _body(client.get("/embed?postcode=0150&radius=50"))
    assert re.search(r'<select[^>]*name="radius"', body)
    assert '<option selected value="50">50 km</option>' in body
    assert re.search(r"<button [^>]*hidden data-locate[^>]*>Use my location</button>", body, re.S)
    assert re.search(r'<script src="/static/js/locate\.[0-9a-f]{12}\.js"></script>', body)


def test_embed_reports_its_height_only_to_the_article_sites(client):
    body = _body(client.get("/embed"))
    (origins,) = re.findall(
        r'<script src="/static/js/embed-frame\.[0-9a-f]{12}\.js" data-parent-origins="([^"]*)">'
        r"</script>",
        body,
    )
    assert origins.split() == [ARTICLES, OLD_ARTICLES]


def test_embed_reports_its_height_to_nobody_when_no_site_may_frame_it(app, client):
    app.config["EMBED_ALLOWED_ORIGINS"] = []
    app.config["CONTACT_ALLOWED_ORIGINS"] = []
    assert "embed-frame.js" not in _body(client.get("/embed"))


def test_the_resize_scripts_are_served_as_javascript(client):
    for name in ("embed-frame.js", "embed-resize.js"):
        response = client.get(f"/static/js/{name}")
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
        response.close()


def test_embed_keeps_the_language_in_the_url_for_the_next_search(client, session):
    make_clinic(session)
    session.commit()
    body = _body(client.get("/embed?postcode=0150&lang=nb"))
    assert '<html lang="nb">' in body
    assert '<input type="hidden" name="lang" value="nb">' in body


def test_embed_without_a_postcode_is_a_prefilled_form_not_an_error(client):
    response = client.get("/embed?profession=chiropractor&complaint=low-back-pain")
    body = _body(response)
    assert response.status_code == 200
    assert "error-summary" not in body
    assert '<option selected value="chiropractor">' in body
    assert '<input type="hidden" name="complaint" value="low-back-pain">' in body
    assert "Clinicians who can help with: Low back pain" in body


def test_embed_ignores_a_complaint_it_does_not_know(client):
    response = client.get("/embed?complaint=korsrygg")
    assert response.status_code == 200
    assert 'name="complaint"' not in _body(response)


def test_embed_ranks_by_the_complaint_and_prefills_the_contact_link(client, session):
    origin = session.get(PostalCode, "0150")
    make_clinic(session, name="Nærmest", latitude=origin.latitude + 0.002, services=["massage"])
    make_clinic(
        session, name="Passer", latitude=origin.latitude + 0.010, services=["exercise-therapy"]
    )
    session.commit()
    body = _body(client.get("/embed?postcode=0150&complaint=sciatica"))
    assert body.index("Passer") < body.index("Nærmest")
    assert re.search(r'href="/contact\?[^"]*complaint=sciatica', body)


def test_embed_with_a_bad_postcode_says_why_and_stays_frameable(client):
    response = client.get("/embed?postcode=12ab")
    assert response.status_code == 400
    assert "A postcode is four digits" in _body(response)
    assert csp(response)["frame-ancestors"] == ["'self'", ARTICLES, OLD_ARTICLES]


def test_embed_escapes_hostile_clinic_names(client, session):
    make_clinic(session, name="<script>alert(1)</script>")
    session.commit()
    body = _body(client.get("/embed?postcode=0150"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- framing --------------------------------------------------------------------------------


def test_only_embed_may_be_framed_by_the_article_sites(client):
    response = client.get("/embed")
    assert_security_headers(response, frame_ancestors=("'self'", ARTICLES, OLD_ARTICLES))


@pytest.mark.parametrize("rule", [rule for rule in ALL_GET if rule != "/embed"])
def test_every_other_page_still_refuses_every_frame(app, request, rule):
    response = page_response(app, request, rule)
    response.close()
    assert response.status_code < 500
    assert_security_headers(response)


def test_without_article_sites_embed_refuses_every_frame_too(app, client):
    app.config["EMBED_ALLOWED_ORIGINS"] = []
    app.config["CONTACT_ALLOWED_ORIGINS"] = []
    assert_security_headers(client.get("/embed"))


@pytest.mark.parametrize(
    "origin",
    [
        "artikler.example.no",
        "https://artikler.example.no/",
        "https://artikler.example.no/sti",
        "https://artikler.example.no:443",
        "https://artikler.example.no:99999",
        "HTTPS://Artikler.example.no",
        "ftp://artikler.example.no",
        "https://user@artikler.example.no",
        "https://*.example.no",
        "https://artikler.example.no 'unsafe-inline'",
        "https://a.example;script-src *",
        "",
    ],
)
@pytest.mark.parametrize("setting", ["EMBED_ALLOWED_ORIGINS", "CONTACT_ALLOWED_ORIGINS"])
def test_malformed_origin_stops_the_app_at_start(database_url, setting, origin):
    with pytest.raises(ConfigError, match=setting):
        create_app(config_for_tests(database_url, **{setting: [ARTICLES, origin]}))


def test_configured_origins_are_checked_at_start(database_url):
    environ = {
        "EMBED_ALLOWED_ORIGINS": f" {ARTICLES} , http://[::1]:8080,",
        "CONTACT_ALLOWED_ORIGINS": f"{OLD_ARTICLES},{ARTICLES}",
    }
    config = config_from_environment(environ)
    assert config["EMBED_ALLOWED_ORIGINS"] == [ARTICLES, "http://[::1]:8080"]
    app = create_app({**config, **config_for_tests(database_url)})
    try:
        assert allowed_origins(app.config) == [ARTICLES, "http://[::1]:8080", OLD_ARTICLES]
        response = app.test_client().get("/embed")
        assert csp(response)["frame-ancestors"] == [
            "'self'",
            ARTICLES,
            "http://[::1]:8080",
            OLD_ARTICLES,
        ]
    finally:
        with app.app_context():
            db.engine.dispose()


# --- CORS on the API ------------------------------------------------------------------------

READS = ["/api/v1/clinics?postcode=0150", "/api/v1/postcodes/0150"]


@pytest.mark.parametrize("url", READS)
@pytest.mark.parametrize("origin", [ARTICLES, OLD_ARTICLES])
def test_api_reads_echo_an_allowed_origin(client, url, origin):
    response = client.get(url, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.vary
    assert response.headers["Access-Control-Expose-Headers"] == "ETag"
    again = client.get(url, headers={"Origin": origin, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("url", READS)
@pytest.mark.parametrize("origin", [STRANGER, "null", ARTICLES + ".evil.example", None])
def test_api_reads_give_other_origins_no_cors_header(client, url, origin):
    headers = {"Origin": origin} if origin else {}
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    # Cached answers differ by Origin, so every answer says so.
    assert "Origin" in response.vary


@pytest.mark.parametrize("url", READS)
def test_api_preflight_allows_get_for_an_allowed_origin(client, url):
    headers = {
        "Origin": ARTICLES,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match",
    }
    response = client.options(url, headers=headers)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ARTICLES
    assert response.headers["Access-Control-Allow-Methods"] == "GET"
    assert response.headers["Access-Control-Allow-Headers"] == "If-None-Match"
    assert "Origin" in response.vary


@pytest.mark.parametrize("url", READS)
def test_api_preflight_from_another_origin_gets_no_cors_header(client, url):
    headers = {"Origin": STRANGER, "Access-Control-Request-Method": "GET"}
    response = client.options(url, headers=headers)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_api_errors_are_readable_by_an_allowed_origin(client):
    response = client.get("/api/v1/postcodes/0000", headers={"Origin": ARTICLES})
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == ARTICLES


def test_contact_requests_accept_the_embed_origins_and_refuse_others(client):
    headers = {"Origin": ARTICLES, "Access-Control-Request-Method": "POST"}
    preflight = client.options("/api/v1/contact-requests", headers=headers)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ARTICLES
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
    sent = client.post("/api/v1/contact-requests", json=API_BODY, headers={"Origin": ARTICLES})
    assert sent.status_code == 201
    assert sent.headers["Access-Control-Allow-Origin"] == ARTICLES
    refused = client.post("/api/v1/contact-requests", json=API_BODY, headers={"Origin": STRANGER})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


# --- the snippet page for admins ------------------------------------------------------------


def test_snippet_page_refuses_ordinary_staff(staff_client):
    assert staff_client.get("/staff/embed").status_code == 403


def test_snippet_page_gives_admins_escaped_snippets(admin_client):
    response = admin_client.get(
        "/staff/embed?profession=chiropractor&language=nb&complaint=sciatica"
    )
    body = _body(response)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    (iframe,) = re.findall(r'<textarea id="snippet-iframe"[^>]*>(.*?)</textarea>', body, re.S)
    snippet = html.unescape(iframe)
    assert snippet.startswith('<iframe src="http://127.0.0.1:5000/embed?profession=chiropractor')
    assert "complaint=sciatica&amp;lang=nb" in snippet
    # A sensible height without the script; geolocation for "Use my location".
    assert 'height="900"' in snippet and 'allow="geolocation"' in snippet
    # In the snippet's language (English until the catalogue has the Norwegian).
    assert re.search(r'title="(Find a clinic near you|Finn en klinikk nær deg)"', snippet)
    # Our resize script, by an absolute address on the public site that never changes.
    assert snippet.endswith(
        '</iframe>\n<script src="http://127.0.0.1:5000/static/js/embed-resize.js" async></script>'
    )
    assert "the frame still works at a fixed height of 900 pixels" in body
    (button,) = re.findall(r'<textarea id="snippet-button"[^>]*>(.*?)</textarea>', body, re.S)
    assert html.unescape(button).startswith(
        '<a href="http://127.0.0.1:5000/find?profession=chiropractor'
    )
    (link,) = re.findall(r'<textarea id="snippet-link"[^>]*>(.*?)</textarea>', body, re.S)
    assert html.unescape(link).startswith('<a href="http://127.0.0.1:5000/find?')
    assert f"<code>{ARTICLES}</code>" in body and f"<code>{OLD_ARTICLES}</code>" in body
    assert "No site is allowed to embed" not in body


def test_snippet_script_is_on_the_configured_public_address(app, admin_client):
    app.config["PUBLIC_BASE_URL"] = "https://finnklinikk.example.no/"
    body = html.unescape(_body(admin_client.get("/staff/embed?language=nb")))
    assert '<script src="https://finnklinikk.example.no/static/js/embed-resize.js" async>' in body
    assert '<iframe src="https://finnklinikk.example.no/embed?lang=nb"' in body


def test_staff_menu_leads_admins_to_the_snippet_page(admin_client, staff_client):
    link = '<a href="/staff/embed">Finder in articles</a>'
    assert link in _body(admin_client.get("/staff/"))
    assert link not in _body(staff_client.get("/staff/"))


def test_snippet_page_refuses_a_complaint_not_in_the_catalogue(admin_client):
    response = admin_client.get(
        "/staff/embed?complaint=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&language=nb"
    )
    assert response.status_code == 400
    body = _body(response)
    assert "<script>alert(1)" not in body
    assert 'id="snippet-iframe"' not in body


def test_snippet_page_warns_when_no_site_may_embed(app, admin_client):
    app.config["EMBED_ALLOWED_ORIGINS"] = []
    app.config["CONTACT_ALLOWED_ORIGINS"] = []
    body = _body(admin_client.get("/staff/embed"))
    assert "No site is allowed to embed the finder yet" in body
    assert 'id="snippet-iframe"' in body  # the link and button still work anywhere


def test_snippet_page_refuses_a_language_we_do_not_have(admin_client):
    response = admin_client.get("/staff/embed?language=sv")
    assert response.status_code == 400
    assert 'id="snippet-iframe"' not in _body(response)


def test_embed_offers_the_choice_for_a_name_several_places_share(client):
    response = client.get("/embed?place=B%C3%B8&lang=nb&complaint=sciatica")
    body = _body(response)
    assert response.status_code == 200
    links = re.findall(r'href="(/embed\?[^"]*)"', body)
    assert len(links) == 2
    for link in links:
        assert "lang=nb" in link and "complaint=sciatica" in link and "place=B" in link
