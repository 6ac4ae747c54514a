"""Pages, JSON and static files are compressed when the browser asks, except where BREACH
could read a secret out of the sizes: the staff area and any page with a CSRF token."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest

from .factories import make_clinic

DECOMPRESS = {"br": brotli.decompress, "gzip": gzip.decompress}


def body_as_sent(response) -> bytes:
    """The body as the browser reads it, decompressed as its Content-Encoding says."""
    encoding = response.headers.get("Content-Encoding")
    return DECOMPRESS[encoding](response.data) if encoding else response.data


@pytest.fixture
def clinic(session):
    clinic = make_clinic(session, name="Frogner Fysio")
    session.commit()
    return clinic


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_results_page_is_compressed_when_asked(client, clinic, encoding):
    response = client.get(
        "/find?postcode=0150", headers={"Accept-Encoding": f"{encoding}, deflate"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    page = body_as_sent(response).decode()
    assert "Frogner Fysio" in page
    # At least three times smaller: what a patient on a slow phone line waits for.
    assert len(response.data) * 3 < len(page.encode())


@pytest.mark.parametrize("accept", [None, "identity", "br;q=0, gzip;q=0"])
def test_nothing_is_compressed_when_not_asked(client, clinic, accept):
    headers = {"Accept-Encoding": accept} if accept else {}
    response = client.get("/find?postcode=0150", headers=headers)
    assert "Content-Encoding" not in response.headers
    assert "Frogner Fysio" in response.get_data(as_text=True)


def test_clinic_page_and_api_json_are_compressed(client, clinic):
    page = client.get(
        f"/clinics/{clinic.id}", headers={"Accept-Encoding": "br"}, follow_redirects=True
    )
    assert page.headers["Content-Encoding"] == "br"
    assert b"Frogner Fysio" in body_as_sent(page)
    api = client.get("/api/v1/clinics?postcode=0150", headers={"Accept-Encoding": "gzip"})
    assert api.headers["Content-Encoding"] == "gzip"
    assert b"Frogner Fysio" in body_as_sent(api)


@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize(
    "name", ["css/site.css", "vendor/designsystemet/designsystemet.css", "js/locate.js"]
)
def test_hashed_css_and_js_are_sent_compressed(app, client, name, encoding):
    with app.test_request_context():
        from flask import url_for

        url = url_for("static", filename=name)
    plain = client.get(f"/static/{name}")
    original = plain.data
    plain.close()
    response = client.get(url, headers={"Accept-Encoding": encoding})
    assert response.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    assert body_as_sent(response) == original
    assert len(response.data) < len(original)
    # Each encoding has a validator of its own, so caches never mix the two.
    assert response.headers["ETag"].endswith(f'-{encoding}"')


def test_leaflet_is_sent_compressed(app, client):
    with app.test_request_context():
        from flask import url_for

        url = url_for("leaflet.static", filename="leaflet.js")
    response = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.headers["Content-Encoding"] == "br"
    assert body_as_sent(response).startswith(b"/* @preserve")
    assert len(response.data) < 45_000


def test_contact_page_with_its_csrf_token_is_never_compressed(client):
    response = client.get("/contact", headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert re.search(r'name="csrf_token"[^>]*value="[^"]+"', response.get_data(as_text=True))


def test_staff_sign_in_page_is_never_compressed(client):
    response = client.get("/staff/sign-in", headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers


@pytest.mark.parametrize("url", ["/staff/", "/staff/requests", "/staff/clinics?q=Frogner"])
def test_staff_pages_are_never_compressed(staff_client, url):
    # A search term the page echoes beside health data and the CSRF token: BREACH's case.
    response = staff_client.get(url, headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
