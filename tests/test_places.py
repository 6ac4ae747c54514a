"""Search by place: postcodes, post towns, municipalities, and addresses through the geocoder.

The register is the real one (data/postnummer-koordinatar.tsv); addresses and districts go
to the loopback Nominatim, which geopy talks real HTTP to.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from clinic_finder import geocoding
from clinic_finder.geocoding import current_geocoder
from clinic_finder.models import GeocodeCacheEntry, Profession
from clinic_finder.places import PlaceKind, fold, resolve_place, suggest_places

from .factories import make_clinic
from .nominatim_server import NominatimServer, running_nominatim

MAJORSTUEN = (59.9296, 10.7146)
STORGATA_TROMSO = (69.6489, 18.9551)
COPENHAGEN = (55.6786, 12.5783)
ADDRESSES = {
    "majorstuen": MAJORSTUEN,
    "storgata 1, tromsø": STORGATA_TROMSO,
    "strøget": COPENHAGEN,  # a street in Denmark: never an origin
}


@pytest.fixture
def nominatim() -> Iterator[NominatimServer]:
    with running_nominatim(ADDRESSES) as server:
        yield server


@pytest.fixture
def geocoding_app(app, nominatim):
    """The app with its geocoder pointed at the loopback Nominatim."""
    app.config.update(nominatim.config())
    geocoding.init_app(app)
    return app


@pytest.fixture
def geocoding_client(geocoding_app):
    return geocoding_app.test_client()


def resolve(session, text: str):
    return resolve_place(session, text, current_geocoder())


# --- the register ---------------------------------------------------------------------


def test_fold_reads_names_as_typed_on_any_keyboard():
    assert fold("Tromsø") == fold("tromso") == fold("TROMSØ")
    assert fold("Ålesund") == fold("Aalesund") == fold("alesund")
    assert fold("Bærum") == fold("baerum")
    assert fold("Kárášjohka") == "karasjohka"


def test_a_postcode_resolves_to_itself_named_with_its_town(session):
    answer = resolve(session, "0150")
    assert answer.place.kind is PlaceKind.POSTCODE
    assert (answer.place.postcode, answer.place.label, answer.place.query) == (
        "0150",
        "0150 Oslo",
        "0150",
    )


def test_a_postcode_with_its_town_as_suggestions_show_it_is_the_postcode(session):
    assert resolve(session, "0150 Oslo").place.postcode == "0150"


@pytest.mark.parametrize("typed", ["Tromsø", "tromsø", "TROMSØ", "tromso", " Tromsø  "])
def test_a_post_town_is_found_however_it_is_typed(session, typed):
    place = resolve(session, typed).place
    assert place.kind is PlaceKind.POST_TOWN
    assert place.label == "Tromsø" and place.query == "Tromsø"
    # Its point is the town (its street-address postcodes), and its postcode one of them.
    assert place.postcode.startswith("90")
    assert 69.6 < place.latitude < 69.7 and 18.9 < place.longitude < 19.0


def test_a_municipality_without_a_post_town_of_its_name_is_found(session):
    place = resolve(session, "baerum").place
    assert place.kind is PlaceKind.MUNICIPALITY
    assert place.label == "Bærum" and place.municipality == "Bærum"
    assert 59.8 < place.latitude < 60.0


def test_a_place_point_and_postcode_come_from_street_address_postcodes(session):
    # Bø i Telemark has P.O.-box postcode 3833 as well; the place is one people live at.
    answer = resolve(session, "Bø i Telemark")
    assert answer.place.label == "Bø i Telemark"
    assert answer.place.postcode in {"3800", "3801", "3802", "3803", "3804", "3805"}


def test_bo_offers_both_bo_of_the_register(session):
    answer = resolve(session, "Bø")
    assert answer.place is None
    choices = {(choice.label, choice.municipality, choice.county) for choice in answer.choices}
    assert choices == {
        ("Bø i Telemark", "Midt-Telemark", "Vestfold og Telemark"),
        ("Bø i Vesterålen", "Bø", "Nordland"),
    }
    # Each choice's query finds exactly that place.
    for choice in answer.choices:
        assert resolve(session, choice.query).place == choice


def test_bo_typed_without_the_o_slash_offers_the_same_choice(session):
    assert {c.label for c in resolve(session, "bo").choices} == {
        "Bø i Telemark",
        "Bø i Vesterålen",
    }


def test_namesake_municipalities_are_told_apart_by_county(session):
    answer = resolve(session, "Herøy")
    assert sorted(choice.county for choice in answer.choices) == ["Møre og Romsdal", "Nordland"]
    assert sorted(choice.query for choice in answer.choices) == [
        "Herøy, Møre og Romsdal",
        "Herøy, Nordland",
    ]
    assert resolve(session, "Herøy, Nordland").place.county == "Nordland"


def test_an_exact_spelling_wins_over_a_folded_one(session):
    # Ørnes (Nordland) and Ornes (Vestland) fold alike; each is found as written.
    assert resolve(session, "Ørnes").place.county == "Nordland"
    assert resolve(session, "Ornes").place.county == "Vestland"


def test_an_unknown_postcode_is_not_found_and_the_geocoder_is_not_asked(
    geocoding_app, session, nominatim
):
    answer = resolve(session, "9999")
    assert answer.place is None and not answer.choices and not answer.geocoder_unavailable
    assert nominatim.requests == []


# --- the geocoder ---------------------------------------------------------------------


def test_a_district_goes_to_the_geocoder_and_is_named_with_its_town(
    geocoding_app, session, nominatim
):
    place = resolve(session, "Majorstuen").place
    assert place.kind is PlaceKind.ADDRESS
    assert (place.latitude, place.longitude) == pytest.approx(MAJORSTUEN)
    assert place.label == "Majorstuen, Oslo"
    assert place.postcode.startswith("0")  # a street-address postcode in Oslo, for links
    (request,) = nominatim.requests
    assert request.params["q"] == "Majorstuen" and request.params["countrycodes"] == "no"


def test_an_address_is_asked_once_then_answered_from_the_cache(geocoding_app, session, nominatim):
    first = resolve(session, "Storgata 1, Tromsø").place
    session.commit()
    again = resolve(session, "storgata 1,  TROMSØ").place
    assert len(nominatim.requests) == 1
    assert (again.latitude, again.longitude) == (first.latitude, first.longitude)
    assert first.label == "Storgata 1, Tromsø"  # the town is named already
    # The cache keeps what was placed, not the address a patient may have typed as theirs.
    keys = session.scalars(select(GeocodeCacheEntry.query)).all()
    assert keys and all("storgata" not in key for key in keys)


def test_a_place_nobody_knows_is_not_found_and_the_miss_is_cached(
    geocoding_app, session, nominatim
):
    assert resolve(session, "Ukjentbyen").place is None
    assert resolve(session, "Ukjentbyen").place is None
    assert len(nominatim.requests) == 1


def test_a_point_outside_norway_is_not_an_origin(geocoding_app, session, nominatim):
    answer = resolve(session, "Strøget")
    assert answer.place is None and not answer.geocoder_unavailable


def test_a_geocoder_outage_is_said_and_the_register_still_answers(
    geocoding_app, session, nominatim
):
    nominatim.fail("down")
    answer = resolve(session, "Majorstuen")
    assert answer.place is None and answer.geocoder_unavailable
    assert resolve(session, "Tromsø").place.label == "Tromsø"
    assert session.scalar(select(func.count()).select_from(GeocodeCacheEntry)) == 0


def test_without_a_geocoder_an_address_is_unavailable_not_unknown(session):
    answer = resolve(session, "Majorstuen")  # the tests' app has GEOCODER=none
    assert answer.place is None and answer.geocoder_unavailable


# --- suggestions ----------------------------------------------------------------------


def test_suggestions_put_the_places_a_name_means_first(session):
    labels = [place.label for place in suggest_places(session, "bø")]
    assert labels[:2] == ["Bø i Telemark", "Bø i Vesterålen"]
    assert len(labels) == 10


def test_suggestions_for_digits_are_postcodes(session):
    places = suggest_places(session, "015")
    assert places[0].label == "0150 Oslo" and all(p.postcode.startswith("015") for p in places)


# --- the finder page ------------------------------------------------------------------


def _clinic_in(session, name: str, postcode: str, **fields):
    clinic = make_clinic(session, name=name, postcode=postcode, **fields)
    session.commit()
    return clinic


def test_finder_finds_clinics_near_a_town(client, session):
    _clinic_in(session, "Ishavsbyen Fysio", "9008")
    _clinic_in(session, "Sentrum Kiropraktikk", "0150")
    response = client.get("/find?place=Tromsø")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ishavsbyen Fysio" in page and "Sentrum Kiropraktikk" not in page
    # "Change search" opens the field with what was searched.
    form = client.get("/find/search-form?place=Tromsø").get_data(as_text=True)
    assert 'value="Tromsø"' in form


def test_finder_links_keep_a_postcode_for_the_clinic_page_and_contact(client, session):
    clinic = _clinic_in(session, "Ishavsbyen Fysio", "9008")
    page = client.get("/find?place=tromso").get_data(as_text=True)
    assert f"/clinics/{clinic.id}-" in page and "from=90" in page
    assert "/contact?clinic=" in page and "postcode=90" in page
    assert "place=Troms%C3%B8" in page  # the share link finds the place again


def test_finder_offers_a_choice_for_bo_as_links_that_search(client, session):
    _clinic_in(session, "Telemark Fysio", "3800")
    response = client.get("/find?place=Bø&radius=50&profession=physiotherapist")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Which Bø do you mean?" in page
    assert "Telemark Fysio" not in page
    assert "place=B%C3%B8+i+Telemark" in page and "radius=50" in page
    chosen = client.get("/find?place=B%C3%B8+i+Telemark&radius=50&profession=physiotherapist")
    assert chosen.status_code == 200 and "Telemark Fysio" in chosen.get_data(as_text=True)


def test_finder_says_when_a_place_is_unknown(client):
    response = client.get("/find?place=Xyzzyqq")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    # The tests' app has no geocoder: the patient is told to type a postcode or a town.
    assert "We cannot look up addresses just now" in page
    assert 'aria-invalid="true"' in page


def test_finder_finds_clinics_near_a_district_through_the_geocoder(geocoding_client, session):
    _clinic_in(session, "Majorstua Manuellterapi", "0367")
    response = geocoding_client.get("/find?place=Majorstuen")
    assert response.status_code == 200
    assert "Majorstua Manuellterapi" in response.get_data(as_text=True)


def test_api_finds_clinics_near_a_district_through_the_geocoder_and_caches_it(
    geocoding_client, session, nominatim
):
    _clinic_in(session, "Majorstua Manuellterapi", "0367")
    # The search starts with no transaction open, as in production: the API then reads in
    # autocommit, and the geocoder's answer must still be stored (PostgreSQL refuses a
    # savepoint outside a transaction).
    assert not session().in_transaction()
    for _ in range(2):
        response = geocoding_client.get("/api/v1/clinics?place=Majorstuen")
        assert response.status_code == 200
        body = response.get_json()
        assert body["origin"]["label"] == "Majorstuen, Oslo"
        assert [clinic["name"] for clinic in body["results"]] == ["Majorstua Manuellterapi"]
    assert len(nominatim.requests) == 1  # the second answer came from the cache
    session.rollback()
    cached = session.scalars(select(GeocodeCacheEntry.query)).all()
    assert len(cached) == 1 and cached[0].startswith("place-")


def test_finder_shows_a_geocoder_outage_on_the_form_not_a_500(geocoding_client, nominatim, session):
    nominatim.fail("down")
    response = geocoding_client.get("/find?place=Majorstuen")
    assert response.status_code == 400
    assert "We cannot look up addresses just now" in response.get_data(as_text=True)


def test_an_old_postcode_link_still_searches_and_fills_the_field(client, session):
    _clinic_in(session, "Sentrum Kiropraktikk", "0150")
    page = client.get("/find?postcode=0150").get_data(as_text=True)
    assert "Sentrum Kiropraktikk" in page
    assert "postcode=0150" in page  # shares and pages keep the link's own shape
    form = client.get("/find/search-form?postcode=0150").get_data(as_text=True)
    assert 'name="place"' in form and 'value="0150"' in form


def test_the_embed_searches_by_place_too(client, session):
    _clinic_in(session, "Ishavsbyen Fysio", "9008")
    response = client.get("/embed?place=Tromsø")
    assert response.status_code == 200
    assert "Ishavsbyen Fysio" in response.get_data(as_text=True)


# --- the API --------------------------------------------------------------------------


def test_api_places_suggests_from_the_register(client):
    response = client.get("/api/v1/places?q=troms")
    assert response.status_code == 200
    places = response.get_json()["places"]
    assert places[0]["label"] == "Tromsø" and places[0]["query"] == "Tromsø"
    assert places[0]["kind"] == "post_town" and places[0]["postcode"].startswith("90")
    assert response.headers["Cache-Control"].startswith("public")


def test_api_places_never_asks_the_geocoder(geocoding_client, nominatim):
    assert geocoding_client.get("/api/v1/places?q=Majorstuen").get_json() == {"places": []}
    assert nominatim.requests == []


@pytest.mark.parametrize("query", ["", "q=", "q=%20%20", "q=" + "a" * 201])
def test_api_places_refuses_a_bad_q_naming_it(client, query):
    response = client.get(f"/api/v1/places?{query}")
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["q"]


def test_api_clinics_by_place(client, session):
    _clinic_in(session, "Ishavsbyen Fysio", "9008")
    body = client.get("/api/v1/clinics?place=Tromsø").get_json()
    assert body["origin"]["label"] == "Tromsø" and body["origin"]["kind"] == "post_town"
    assert body["origin"]["postcode"].startswith("90")
    assert [hit["name"] for hit in body["results"]] == ["Ishavsbyen Fysio"]


def test_api_clinics_with_an_ambiguous_place_lists_the_choices(client):
    response = client.get("/api/v1/clinics?place=Bø")
    assert response.status_code == 400
    body = response.get_json()
    assert list(body["errors"]) == ["place"]
    assert {choice["query"] for choice in body["choices"]} == {"Bø i Telemark", "Bø i Vesterålen"}


def test_api_clinics_without_place_or_postcode_names_place(client):
    response = client.get("/api/v1/clinics?profession=chiropractor")
    assert response.status_code == 400
    assert "place" in response.get_json()["errors"]


def test_api_clinics_by_postcode_answers_as_before(client, session):
    _clinic_in(session, "Sentrum Kiropraktikk", "0150", professions=(Profession.CHIROPRACTOR,))
    body = client.get("/api/v1/clinics?postcode=0150").get_json()
    assert body["origin"]["postcode"] == "0150" and body["origin"]["label"] == "0150 Oslo"
    bad = client.get("/api/v1/clinics?postcode=abc").get_json()
    assert list(bad["errors"]) == ["postcode"]


def test_one_client_places_only_so_many_new_addresses(geocoding_client, nominatim):
    for number in range(20):
        response = geocoding_client.get(f"/find?place=Ukjentveien+{number}")
        assert "We could not find" in response.get_data(as_text=True)
    response = geocoding_client.get("/find?place=Majorstuen")
    assert "We cannot look up addresses just now" in response.get_data(as_text=True)
    assert len(nominatim.requests) == 20
    # Texts already placed still answer from the cache, and so does the register.
    assert "We could not find" in geocoding_client.get("/find?place=Ukjentveien+3").get_data(
        as_text=True
    )
    assert geocoding_client.get("/find?place=Tromsø").status_code == 200
