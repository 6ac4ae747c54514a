"""JSON API v1: search, postcodes, and 400s that name each bad field."""

from __future__ import annotations

import pytest

from clinic_finder.models import PostalCode, Profession

from .factories import make_clinic


def test_search_returns_documented_shape(client, session):
    origin = session.get(PostalCode, "0150")
    clinic = make_clinic(
        session,
        name="Sentrum Helse",
        latitude=origin.latitude + 0.01,
        longitude=origin.longitude,
        professions=(Profession.CHIROPRACTOR, Profession.MANUAL_THERAPIST),
        phone="+47 22 33 44 55",
        email="post@sentrum.example",
        website="https://sentrum.example/",
        helfo_agreement=True,
        accepts_new_patients=True,
    )
    session.commit()
    response = client.get("/api/v1/clinics?postcode=0150&radius=10")
    assert response.status_code == 200
    body = response.get_json()
    assert body["origin"] == {
        "postcode": "0150",
        "place": "Oslo",
        "municipality": "Oslo",
        "county": "Oslo",
        "latitude": origin.latitude,
        "longitude": origin.longitude,
        "in_use": True,
        "label": "0150 Oslo",
        "query": "0150",
        "kind": "postcode",
    }
    assert body["radius_km"] == 10 and body["within_radius"] is True and body["total"] == 1
    (result,) = body["results"]
    assert result["id"] == clinic.id
    assert result["name"] == "Sentrum Helse"
    assert result["distance_km"] == pytest.approx(1.112, abs=0.01)
    assert result["professions"] == ["chiropractor", "manual_therapist"]
    assert {c["profession"] for c in result["clinicians"]} == {"chiropractor", "manual_therapist"}
    assert all(c["name"] for c in result["clinicians"])
    for key in (
        "address",
        "postcode",
        "city",
        "latitude",
        "longitude",
        "phone",
        "email",
        "website",
    ):
        assert key in result
    assert result["helfo_agreement"] is True and result["accepts_new_patients"] is True
    # The agreement is each clinician's: the manual therapist has it, the chiropractor never.
    agreements = {c["profession"]: c["public_agreement"] for c in result["clinicians"]}
    assert agreements == {"chiropractor": False, "manual_therapist": True}
    assert all(
        c["licence"] == {"status": "unchecked", "checked_at": None, "categories": []}
        for c in result["clinicians"]
    )
    assert result["booking_url"] is None and result["step_free_access"] is None


def test_svalbard_gets_nearest_clinics_outside_radius(client, session):
    make_clinic(session, name="Tromsø Fysio", postcode="9008")
    session.commit()
    body = client.get("/api/v1/clinics?postcode=9171").get_json()
    assert body["within_radius"] is False
    assert body["results"][0]["name"] == "Tromsø Fysio"
    assert body["results"][0]["distance_km"] > 900


def test_limit_caps_results(client, session):
    for step in range(5):
        make_clinic(session, name=f"Clinic {step}", latitude=59.9 + step * 0.001, longitude=10.75)
    session.commit()
    body = client.get("/api/v1/clinics?postcode=0150&limit=2").get_json()
    assert len(body["results"]) == 2 and body["total"] == 5


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("postcode=abcd", {"postcode"}),
        ("", {"place"}),  # neither place nor postcode: place is the one to give
        ("postcode=", {"postcode"}),
        ("place=Xyzzyqq", {"place"}),
        ("place=Tromsø&postcode=abcd", set()),  # place wins; postcode is not read
        ("postcode=0000", {"postcode"}),
        ("postcode=0150&radius=abc", {"radius"}),
        ("postcode=0150&profession=naprapat", {"profession"}),
        ("postcode=0150&limit=0", {"limit"}),
        ("postcode=0150&limit=many", {"limit"}),
        (
            "postcode=x&radius=3&profession=y&limit=500",
            {"postcode", "radius", "profession", "limit"},
        ),
    ],
)
def test_bad_parameters_give_400_naming_each_field(client, query, fields):
    response = client.get(f"/api/v1/clinics?{query}")
    assert response.status_code == (400 if fields else 200)
    assert response.is_json
    assert set(response.get_json().get("errors", ())) == fields


def test_postcode_lookup(client):
    body = client.get("/api/v1/postcodes/9990").get_json()
    assert body["postcode"] == "9990" and body["place"] == "Båtsfjord"


def test_unknown_postcode_is_404_json(client):
    response = client.get("/api/v1/postcodes/0000")
    assert response.status_code == 404
    assert response.is_json and "0000" in response.get_json()["message"]


def test_malformed_postcode_is_400_json(client):
    response = client.get("/api/v1/postcodes/abcd")
    assert response.status_code == 400
    assert "postcode" in response.get_json()["errors"]


def test_unknown_api_path_is_404_json(client):
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404 and response.is_json


def test_markup_in_names_never_appears_raw_in_json(client, session):
    make_clinic(session, name="<script>alert(1)</script>")
    session.commit()
    response = client.get("/api/v1/clinics?postcode=0150")
    assert b"<script>" not in response.data
    assert response.get_json()["results"][0]["name"] == "<script>alert(1)</script>"
    assert response.headers["Content-Type"] == "application/json"


# --- caching: Cache-Control, ETag and 304 -------------------------------------------------

SEARCH = "/api/v1/clinics?postcode=0150&radius=25"


def test_search_may_be_cached_for_a_minute_and_revalidated(client, session):
    make_clinic(session, name="Ryggklinikken")
    session.commit()
    response = client.get(SEARCH)
    assert response.status_code == 200
    assert response.cache_control.public
    assert response.cache_control.max_age == 60
    etag = response.headers["ETag"]

    again = client.get(SEARCH, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag


def test_etag_changes_when_the_directory_changes(client, session):
    clinic = make_clinic(session, name="Ryggklinikken")
    make_clinic(session, name="Nakkeklinikken")
    session.commit()
    etag = client.get(SEARCH).headers["ETag"]

    clinic.active = False  # staff deactivate a clinic in the answer
    session.commit()
    response = client.get(SEARCH, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert [hit["name"] for hit in response.get_json()["results"]] == ["Nakkeklinikken"]
    assert response.headers["ETag"] != etag


def test_another_search_has_another_etag(client, session):
    make_clinic(session, name="Ryggklinikken")
    session.commit()
    first = client.get(SEARCH).headers["ETag"]
    assert client.get(SEARCH + "&profession=chiropractor").headers["ETag"] != first


def test_errors_are_not_cached(client):
    response = client.get("/api/v1/clinics?postcode=abcd")
    assert response.status_code == 400
    assert "ETag" not in response.headers
    assert not response.cache_control.public


def test_postcode_answer_is_cached_and_revalidated(client):
    response = client.get("/api/v1/postcodes/0150")
    again = client.get(
        "/api/v1/postcodes/0150", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


def test_reloading_the_register_is_seen_at_once_by_this_process(app, client, tmp_path):
    from clinic_finder.extensions import db
    from clinic_finder.postcodes import load_postcodes

    register = (app.config["DATA_DIR"] / "postnummer-koordinatar.tsv").read_text(encoding="utf-8")
    header, *rows = register.splitlines()
    (row_0150,) = [row for row in rows if row.startswith("0150\t")]
    renamed = tmp_path / "register.tsv"
    renamed.write_text(header + "\n" + row_0150.replace("\tOslo\t", "\tGamlebyen\t", 1) + "\n")
    assert client.get("/api/v1/postcodes/0150").get_json()["place"] == "Oslo"  # now cached
    try:
        with app.app_context():
            load_postcodes(db.session, renamed)
            db.session.commit()
        assert client.get("/api/v1/postcodes/0150").get_json()["place"] == "Gamlebyen"
    finally:
        with app.app_context():
            load_postcodes(db.session, app.config["DATA_DIR"] / "postnummer-koordinatar.tsv")
            db.session.commit()
    assert client.get("/api/v1/postcodes/0150").get_json()["place"] == "Oslo"


# --- "use my location": the nearest postcode to a point ------------------------------------


def test_nearest_postcode_to_a_point_in_oslo(client):
    # A point about 100 m from postcode 0150's centre (59.8906, 10.7128).
    response = client.get("/api/v1/postcodes/nearest?latitude=59.891&longitude=10.714")
    assert response.status_code == 200
    assert response.get_json()["postcode"] == "0150"


def test_nearest_postcode_in_the_far_north(client):
    response = client.get("/api/v1/postcodes/nearest?latitude=69.649&longitude=18.956")
    assert response.status_code == 200
    assert response.get_json()["municipality"] == "Tromsø"


@pytest.mark.parametrize(
    "query, fields",
    [
        ("latitude=abc&longitude=10.7", {"latitude"}),
        ("latitude=59.9", {"longitude"}),
        ("latitude=nan&longitude=inf", {"latitude", "longitude"}),
        ("latitude=48.85&longitude=2.35", {"latitude", "longitude"}),  # Paris
    ],
)
def test_nearest_postcode_refuses_bad_points_naming_the_field(client, query, fields):
    response = client.get(f"/api/v1/postcodes/nearest?{query}")
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == fields


def test_lists_stored_before_the_caps_are_cut_to_them_in_answers(client, session):
    # Written straight to the table, as a clinic imported before the caps may be.
    clinic = make_clinic(session)
    clinic.practices[0].services = [f"behandling {n}" for n in range(10_000)]
    clinic.practices[0].clinician.languages = ["nb", "x" * 500]
    session.commit()
    response = client.get("/api/v1/clinics?postcode=0150")
    (clinician,) = response.get_json()["results"][0]["clinicians"]
    assert clinician["services"] == [f"behandling {n}" for n in range(30)]
    assert clinician["languages"] == ["nb", "x" * 80]
    assert len(response.data) < 10_000


def test_services_come_as_english_names_with_their_stable_keys(client, session):
    make_clinic(session, services=["dry-needling", "exercise-therapy"])
    session.commit()
    for language in ("nb", "en"):  # the API answers in English whatever the caller reads
        body = client.get(f"/api/v1/clinics?postcode=0150&lang={language}").get_json()
        (clinician,) = body["results"][0]["clinicians"]
        assert clinician["services"] == ["Dry needling", "Exercise therapy"]
        assert clinician["service_keys"] == ["dry-needling", "exercise-therapy"]


def test_the_service_vocabulary_names_each_key_in_both_languages(client):
    response = client.get("/api/v1/services")
    assert response.status_code == 200 and response.headers["ETag"]
    services = {entry["key"]: entry["name"] for entry in response.get_json()["services"]}
    assert services["dry-needling"] == {"nb": "Tørrnåling", "en": "Dry needling"}
    assert services["exercise-therapy"] == {"nb": "Treningsterapi", "en": "Exercise therapy"}
