"""Clinic pages, their structured data, the sitemap and robots.txt."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest

from clinic_finder.clinic_pages import SITEMAP_NAMESPACE, slugify
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import PostalCode, Profession, now_utc, today

from .factories import make_clinic, make_practice, new_clinician

HOSTILE_NAME = "</script><script>alert(1)</script>"


def _page_url(clinic) -> str:
    return f"/clinics/{clinic.id}-{slugify(clinic.name)}"


def _structured_data(body: str) -> dict:
    (block,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', body, re.S)
    return json.loads(block)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Fysio Ås & Sønn", "fysio-as-sonn"),
        ("ÆRLIG KIROPRAKTIKK", "aerlig-kiropraktikk"),
        ("Bryn Manuellterapi AS", "bryn-manuellterapi-as"),
        ("  Café  Helse--Huset ", "cafe-helse-huset"),
        (HOSTILE_NAME, "script-script-alert-1-script"),
        ("理学療法", "clinic"),
        ("a" * 200, "a" * 80),
    ],
)
def test_slugify_makes_lowercase_ascii_with_hyphens(name, slug):
    assert slugify(name) == slug


def test_clinic_page_shows_the_clinic_and_its_active_clinicians(client, session):
    clinic = make_clinic(
        session,
        name="Fysio Ås",
        professions=(Profession.PHYSIOTHERAPIST, Profession.CHIROPRACTOR),
        phone="+47 22 33 44 55",
        email="post@fysio.example",
        website="https://fysio.example/",
        helfo_agreement=True,
        accepts_new_patients=True,
    )
    physio = clinic.practices[0]
    physio.clinician.languages = ["nb", "en"]
    physio.services = ["dry-needling"]
    make_practice(
        session, clinic, new_clinician("Gone Away"), Profession.CHIROPRACTOR, active=False
    )
    make_practice(
        session,
        clinic,
        new_clinician("Struck Off", licence_status=LicenceStatus.SUSPENDED),
        Profession.CHIROPRACTOR,
    )
    session.commit()

    response = client.get(_page_url(clinic))
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r"<h1[^>]*>Fysio Ås</h1>", body)
    for practice in clinic.listed_practices:
        assert practice.clinician.name in body
        assert f"HPR number {practice.clinician.hpr_number}" in body
    assert "Gone Away" not in body
    assert "Struck Off" not in body
    assert "Chiropractor" in body and "Physiotherapist" in body
    assert "Dry needling" in body
    assert "Norwegian Bokmål, English" in body
    assert 'href="tel:+4722334455"' in body
    assert 'href="mailto:post@fysio.example"' in body
    assert 'href="https://fysio.example/"' in body
    # The agreement is the physiotherapist's, not the chiropractor's beside them.
    assert "Yes, with Fysio Ås clinician 1 — you pay the public rate" in body
    assert body.count("Public agreement with Oslo — you pay the public rate") == 1
    assert body.count("No public agreement — you pay the full price") == 1
    assert body.count("Authorisation not yet checked against the Health Personnel Register") == 2
    assert f'href="/contact?clinic={clinic.id}"' in body
    assert 'rel="canonical" href="http://127.0.0.1:5000' + _page_url(clinic) + '"' in body


def test_clinic_page_in_norwegian_names_languages_in_norwegian(client, session):
    clinic = make_clinic(session, name="Fysio Ås")
    clinic.practices[0].clinician.languages = ["en"]
    session.commit()
    body = client.get(_page_url(clinic) + "?lang=nb").get_data(as_text=True)
    assert '<html lang="nb">' in body
    assert "engelsk" in body


def test_clinic_page_names_services_in_the_pages_language(client, session):
    clinic = make_clinic(session, name="Fysio Ås", services=["dry-needling", "exercise-therapy"])
    session.commit()
    norwegian = client.get(_page_url(clinic) + "?lang=nb").get_data(as_text=True)
    assert "Tørrnåling, Treningsterapi" in norwegian
    assert "Dry needling" not in norwegian and "dry-needling" not in norwegian
    english = client.get(_page_url(clinic) + "?lang=en").get_data(as_text=True)
    assert "Dry needling, Exercise therapy" in english


def test_website_that_is_not_http_gets_no_link(client, session):
    clinic = make_clinic(session, website="javascript:alert(1)")
    session.commit()
    body = client.get(_page_url(clinic)).get_data(as_text=True)
    assert "javascript:" not in body


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"accepts_new_patients": True}, "<dd>Yes</dd>"),
        ({"accepts_new_patients": False}, "<dd>No</dd>"),
        ({}, "Unknown — ask the clinic"),
        (
            {"accepts_new_patients": True, "stale": True},
            "Unknown — ask the clinic",
        ),
    ],
)
def test_accepts_new_patients_is_unknown_once_stale(client, session, fields, shown):
    fields = dict(fields)
    stale = fields.pop("stale", False)
    clinic = make_clinic(session, **fields)
    if stale:
        clinic.practices[0].accepts_new_patients_confirmed_at = now_utc() - timedelta(days=91)
    session.commit()
    body = client.get(_page_url(clinic)).get_data(as_text=True)
    facts = body[body.index("<dt>Taking new patients") :]
    assert shown in facts[:200]


def test_temporarily_closed_clinic_says_when_it_reopens(client, session):
    clinic = make_clinic(session, closed_until=today() + timedelta(days=10))
    session.commit()
    body = client.get(_page_url(clinic)).get_data(as_text=True)
    assert "Temporarily closed — reopens" in body


@pytest.mark.parametrize("kind", ["inactive", "no active clinician", "unknown"])
def test_clinic_page_is_404_for_a_clinic_patients_cannot_find(client, session, kind):
    clinic = make_clinic(session, active=kind != "inactive")
    if kind == "no active clinician":
        for practice in clinic.practices:
            practice.active = False
    session.commit()
    clinic_id = clinic.id + (1000 if kind == "unknown" else 0)
    assert client.get(f"/clinics/{clinic_id}-{slugify(clinic.name)}").status_code == 404
    assert client.get(f"/clinics/{clinic_id}").status_code == 404


@pytest.mark.parametrize("path", ["{id}", "{id}-old-name", "{id}-TESTKLINIKKEN"])
def test_bare_id_or_wrong_slug_redirects_for_good_keeping_the_query(client, session, path):
    clinic = make_clinic(session, name="Testklinikken")
    session.commit()
    response = client.get("/clinics/" + path.format(id=clinic.id) + "?from=0150")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/clinics/{clinic.id}-testklinikken?from=0150"


def test_directions_link_starts_at_the_searched_postcode(client, session):
    clinic = make_clinic(session, postcode="0150", latitude=59.91, longitude=10.75)
    session.commit()
    start = session.get(PostalCode, "5003")
    body = client.get(_page_url(clinic) + "?from=5003").get_data(as_text=True)
    (href,) = re.findall(r'href="(https://www\.openstreetmap\.org/directions[^"]+)"', body)
    query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
    assert query["engine"] == ["fossgis_osrm_car"]
    assert query["route"] == [f"{start.latitude:.5f},{start.longitude:.5f};59.91000,10.75000"]
    assert "%2C" in href and "%3B" in href
    assert f"in a straight line from 5003 {start.place}" in body
    # The contact link carries the postcode on to the form.
    assert f"/contact?clinic={clinic.id}&amp;postcode=5003" in body


@pytest.mark.parametrize("given", ["", "?from=abcd", "?from=0000", "?from=%EF%BC%90150"])
def test_without_a_known_postcode_directions_start_wherever_the_patient_types(
    client, session, given
):
    clinic = make_clinic(session, latitude=59.91, longitude=10.75)
    session.commit()
    response = client.get(_page_url(clinic) + given)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    (href,) = re.findall(r'href="(https://www\.openstreetmap\.org/directions[^"]+)"', body)
    query = parse_qs(urlsplit(href.replace("&amp;", "&")).query, keep_blank_values=True)
    assert query["route"] == [";59.91000,10.75000"]
    assert "in a straight line" not in body
    assert (
        'href="https://www.openstreetmap.org/?mlat=59.91000&amp;mlon=10.75000'
        '#map=17/59.91000/10.75000"' in body
    )


def test_clinic_page_map_runs_by_this_responses_nonce(client, session):
    clinic = make_clinic(session)
    session.commit()
    response = client.get(_page_url(clinic))
    body = response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body)
    executable = [attrs for attrs in scripts if "application/ld+json" not in attrs]
    assert executable == [f' nonce="{nonce}"']
    assert "L.geoJson(" in body and "$(" not in body
    assert re.search(r"/static/vendor/leaflet/leaflet\.[0-9a-f]{12}\.js", body)


def test_structured_data_describes_the_clinic(client, session):
    clinic = make_clinic(
        session,
        name="Bryn Kiropraktikk",
        professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST),
        address="Brynsveien 1",
        phone="+47 22 33 44 55",
        email="post@bryn.example",
        website="https://bryn.example/",
        latitude=59.91,
        longitude=10.75,
    )
    session.commit()
    data = _structured_data(client.get(_page_url(clinic)).get_data(as_text=True))
    url = "http://127.0.0.1:5000" + _page_url(clinic)
    assert data == {
        "@context": "https://schema.org",
        "@type": "MedicalClinic",
        "@id": url + "#clinic",
        "name": "Bryn Kiropraktikk",
        "url": url,
        "address": {
            "@type": "PostalAddress",
            "streetAddress": "Brynsveien 1",
            "postalCode": "0150",
            "addressLocality": clinic.city,
            "addressCountry": "NO",
        },
        "geo": {"@type": "GeoCoordinates", "latitude": 59.91, "longitude": 10.75},
        "telephone": "+47 22 33 44 55",
        "email": "post@bryn.example",
        "sameAs": "https://bryn.example/",
    }


@pytest.mark.parametrize(
    ("professions", "kind"),
    [
        ((Profession.PHYSIOTHERAPIST,), "Physiotherapy"),
        ((Profession.PHYSIOTHERAPIST, Profession.MANUAL_THERAPIST), "Physiotherapy"),
        ((Profession.CHIROPRACTOR,), "MedicalClinic"),
        ((Profession.MANUAL_THERAPIST, Profession.CHIROPRACTOR), "MedicalClinic"),
    ],
)
def test_structured_data_type_follows_the_professions(client, session, professions, kind):
    clinic = make_clinic(session, professions=professions)
    session.commit()
    data = _structured_data(client.get(_page_url(clinic)).get_data(as_text=True))
    assert data["@type"] == kind


def test_structured_data_cannot_close_its_script_element(client, session):
    clinic = make_clinic(session, name=HOSTILE_NAME, address="'&'<b>", website="javascript:x")
    session.commit()
    body = client.get(_page_url(clinic)).get_data(as_text=True)
    (block,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', body, re.S)
    assert "<" not in block and ">" not in block and "&" not in block and "'" not in block
    data = json.loads(block)
    assert data["name"] == HOSTILE_NAME
    assert data["address"]["streetAddress"] == "'&'<b>"
    assert "sameAs" not in data
    assert "<script>alert(1)" not in body


def test_sitemap_lists_the_finder_and_exactly_the_listed_clinics(client, session):
    shown = [make_clinic(session, name="Fysio <Øst> & Vest"), make_clinic(session, name="B")]
    hidden = make_clinic(session, name="Closed down", active=False)
    empty = make_clinic(session, name="Nobody works here")
    for practice in empty.practices:
        practice.active = False
    session.commit()

    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == f"{{{SITEMAP_NAMESPACE}}}urlset"
    locations = [loc.text for loc in root.iter(f"{{{SITEMAP_NAMESPACE}}}loc")]
    base = "http://127.0.0.1:5000"
    assert locations == [base + "/find"] + [base + _page_url(clinic) for clinic in shown]
    assert hidden.name not in response.get_data(as_text=True)


def test_sitemap_urls_come_from_public_base_url_and_are_escaped(app, client, session):
    app.config["PUBLIC_BASE_URL"] = "https://finn.example/?a=1&b=<2>"
    make_clinic(session)
    session.commit()
    text = client.get("/sitemap.xml").get_data(as_text=True)
    assert "<loc>https://finn.example/?a=1&amp;b=&lt;2&gt;/find</loc>" in text
    ElementTree.fromstring(text.encode())


def test_robots_txt_points_to_the_sitemap_and_keeps_crawlers_out_of_staff(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    assert "User-agent: *" in lines
    assert "Disallow: /staff" in lines
    assert "Disallow: /api/v1/contact-requests" in lines
    assert "Sitemap: http://127.0.0.1:5000/sitemap.xml" in lines


def test_any_template_can_build_a_clinic_link_with_the_slug_filter(app):
    with app.test_request_context():
        template = app.jinja_env.from_string(
            "{{ url_for('clinics.clinic', clinic_id=7, slug=name | slug, **{'from': '0150'}) }}"
        )
        assert template.render(name="Fysio Ås") == "/clinics/7-fysio-as?from=0150"


def test_a_verified_licence_says_when_it_was_checked(client, session):
    clinic = make_clinic(session, name="Fysio Ås", licence_status=LicenceStatus.VALID)
    clinic.practices[0].clinician.licence_checked_at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    session.commit()
    body = client.get(_page_url(clinic)).get_data(as_text=True)
    assert "Authorised physiotherapist — checked against the Health Personnel Register" in body
    norwegian = client.get(_page_url(clinic) + "?lang=nb").get_data(as_text=True)
    assert "Autorisert fysioterapeut – kontrollert mot Helsepersonellregisteret 3. des. 2026" in (
        norwegian
    )


def test_booking_link_and_access_facts_are_shown_as_told(client, session):
    clinic = make_clinic(
        session,
        booking_url="https://booking.example/fysio-as",
        step_free_access=True,
        accessible_toilet=False,
    )
    session.commit()
    body = client.get(_page_url(clinic)).get_data(as_text=True)
    assert 'href="https://booking.example/fysio-as"' in body
    facts = body[body.index("Step-free entrance") :]
    assert "<dd>Yes</dd>" in facts[:80]
    assert "<dd>No</dd>" in body[body.index("Accessible toilet") :][:80]
    # Parking was never told: unknown, not "no".
    assert "Unknown — ask the clinic" in body[body.index("<dt>Parking") :][:120]
