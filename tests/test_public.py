"""The finder page: form, results list, fallback message, map, escaping."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from markupsafe import escape

from clinic_finder.clinic_pages import slugify
from clinic_finder.models import PostalCode, Profession

from .factories import make_clinic

XSS_NAME = "<script>alert(1)</script>"


def test_front_page_shows_empty_search_form(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'name="place"' in page
    assert "erikbolstad.no/postnummer" in page
    assert "leaflet" not in page.lower()


def test_search_lists_clinics_nearest_first_with_distance(client, session):
    origin = session.get(PostalCode, "0150")
    make_clinic(
        session,
        name="Second",
        latitude=origin.latitude + 0.05,
        longitude=origin.longitude,
        phone="+47 22 33 44 55",
        email="post@second.example",
        website="https://second.example/",
    )
    make_clinic(
        session,
        name="First",
        latitude=origin.latitude + 0.01,
        longitude=origin.longitude,
        helfo_agreement=True,
        accepts_new_patients=True,
    )
    session.commit()
    page = client.get("/find?postcode=0150&radius=10").get_data(as_text=True)
    assert "2 clinics within 10 km of 0150 Oslo" in page
    assert page.index("First") < page.index("Second")
    assert "1.1 km in a straight line" in page
    assert 'href="tel:+4722334455"' in page
    assert 'href="mailto:post@second.example"' in page
    assert 'href="https://second.example/"' in page
    assert "Yes, with First clinician 1 — you pay the public rate" in page


def test_deep_link_prefills_form_and_filters_profession(client, session):
    make_clinic(session, name="Physio only", professions=(Profession.PHYSIOTHERAPIST,))
    make_clinic(session, name="Chiro place", professions=(Profession.CHIROPRACTOR,))
    session.commit()
    page = client.get("/find?postcode=0150&profession=chiropractor&radius=10").get_data(
        as_text=True
    )
    assert "Chiro place" in page and "Physio only" not in page
    # The profession arrives ticked (the finder takes several at once) in the form
    # "Change search" fetches.
    form = client.get("/find/search-form?postcode=0150&profession=chiropractor&radius=10")
    form = form.get_data(as_text=True)
    (checkbox,) = re.findall(r'<input[^>]*value="chiropractor"[^>]*>', form)
    assert "checked" in checkbox and 'type="checkbox"' in checkbox
    assert 'value="0150"' in form


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("postcode=abcd", "A postcode is four digits"),
        ("postcode=", "Enter your postcode"),
        ("postcode=9999", "We do not know the postcode 9999"),
        ("postcode=0150&radius=7", "Choose one of: 5, 10, 25, 50, 100"),
        ("postcode=0150&profession=naprapat", "Choose one of: chiropractor"),
    ],
)
def test_bad_search_shows_form_with_error(client, query, message):
    response = client.get(f"/find?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert 'role="alert"' in page


def test_page_out_of_range_is_refused(client):
    response = client.get("/find?postcode=0150&page=0")
    assert response.status_code == 400
    assert "Page must be from 1 to 10000" in response.get_data(as_text=True)


def test_far_from_everything_shows_nearest_with_distance(client, session):
    make_clinic(session, name="Tromsø Fysio", postcode="9008")
    session.commit()
    page = client.get("/find?postcode=9171").get_data(as_text=True)
    assert "No clinics within 25 km of 9171 Longyearbyen" in page
    assert "The closest is" in page
    assert "Tromsø Fysio" in page


def test_results_page_has_one_marker_feature_per_clinic_and_local_leaflet(client, session):
    for step in range(3):
        make_clinic(session, name=f"Clinic {step}", latitude=59.9 + step * 0.01, longitude=10.75)
    session.commit()
    page = client.get("/find?postcode=0150").get_data(as_text=True)
    assert page.count('"type": "Feature"') == 3
    assert re.search(r"/static/vendor/leaflet/leaflet\.[0-9a-f]{12}\.js", page)
    assert "cdn" not in page.lower()
    assert "tile.openstreetmap.org" in page


def test_results_are_paginated(client, session):
    for step in range(23):
        make_clinic(
            session, name=f"Clinic {step:02d}", latitude=59.9 + step * 0.001, longitude=10.75
        )
    session.commit()
    first = client.get("/find?postcode=0150").get_data(as_text=True)
    assert first.count("data-clinic-id=") == 20
    assert "Page 1 of 2" in first
    second = client.get("/find?postcode=0150&page=2").get_data(as_text=True)
    assert second.count("data-clinic-id=") == 3
    assert 'start="21"' in second


def test_clinic_name_is_escaped_in_page_and_popup(client, session):
    make_clinic(session, name=XSS_NAME, address="<b>Gata</b> 1")
    session.commit()
    page = client.get("/find?postcode=0150").get_data(as_text=True)
    assert XSS_NAME not in page
    assert "<b>Gata</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # In the map script the popup HTML is escaped, then JSON-encoded with \u003c for <.
    assert "\\u0026lt;script\\u0026gt;alert(1)" in page


TEMPLATE_NAMES = ["Klinikk {{ 7*7 }}", "Klinikk {% raw %}", "Klinikk {# x", "Klinikk }}{{"]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_syntax_in_a_clinic_name_is_only_text(client, session, name):
    # The map's script goes through Jinja twice inside folium (maps.py): a brace from the
    # data must never reach it, or "{{ 7*7 }}" shows as 49 and worse runs on the server.
    clinic = make_clinic(session, name=name, address="Gata {{ 6*7 }}")
    session.commit()
    # The embed has no map: the results page, which has, comes last for the popup's check.
    for url in ("/embed?postcode=0150", f"/clinics/{clinic.id}", "/find?postcode=0150"):
        response = client.get(url, follow_redirects=True)
        assert response.status_code == 200, url
        page = response.get_data(as_text=True)
        assert "Klinikk 49" not in page and "Gata 42" not in page, url
        # The list shows the address as written.
        assert "Gata {{ 6*7 }}" in page, url
    # In the map's popup the braces are HTML entities (then JSON-encoded: & is \u0026).
    assert "Gata \\u0026#123;\\u0026#123; 6*7 \\u0026#125;\\u0026#125;" in page


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "We could not find that page" in response.get_data(as_text=True)


def test_responses_forbid_sniffing_and_framing(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_result_cards_link_to_the_clinic_and_the_contact_form_as_url_for_does(app, client, session):
    # The cards fill their links into a pattern built once a page (web/links.py).
    clinics = [make_clinic(session, name=name) for name in ("Fysio Ås & Sønn", "<b>Klinikk</b>")]
    session.commit()
    page = client.get("/find?postcode=0150&profession=physiotherapist&complaint=sciatica").get_data(
        as_text=True
    )
    with app.test_request_context():
        for clinic in clinics:
            clinic_page = url_for(
                "clinics.clinic", clinic_id=clinic.id, slug=slugify(clinic.name), **{"from": "0150"}
            )
            ask = url_for(
                "contact.contact",
                clinic=clinic.id,
                postcode="0150",
                profession="physiotherapist",
                complaint="sciatica",
            )
            assert f'href="{escape(clinic_page)}"' in page
            assert f'href="{escape(ask)}"' in page
