"""The finder as patients use it: complaints, several professions, filters, counts, guide."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from clinic_finder.finder import DeadEnd, FinderQuery, find
from clinic_finder.hours import is_open_at
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import NORWAY as OSLO
from clinic_finder.models import Clinic, OpeningHours, PostalCode, Profession, now_utc
from clinic_finder.search import ClinicHit, distance_km
from clinic_finder.web.catalogues import complaint_catalogue

from .factories import make_clinic
from .helpers import rank_for_complaint, result_names

KM = 1 / 111.2  # degrees of latitude in a kilometre


def _clinic_north(session, name: str, km: float, *, services=(), languages=("nb",), **fields):
    origin = session.get(PostalCode, "0150")
    return make_clinic(
        session,
        name=name,
        latitude=origin.latitude + km * KM,
        services=list(services),
        languages=list(languages),
        **fields,
    )


def _profession_counts(page: str) -> dict[str, str]:
    return dict(
        re.findall(
            r'name="profession" type="checkbox" value="(\w+)">\s*'
            r'<label[^>]*>[^<]*<span class="count">\((\d+\+?)\)',
            page,
        )
    )


def _names(page: str) -> list[str]:
    return result_names(page)


def _search_form(client, query: str) -> str:
    """The search form with its counts, as the results page's "Change search" fetches it."""
    response = client.get(f"/find/search-form?{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_complaint_puts_suitable_clinics_first_among_near_ones(client, session):
    _clinic_north(session, "Nærmest, bare massasje", 0.3, services=["massage"])
    _clinic_north(session, "Trening mot isjias", 1.6, services=["exercise-therapy"])
    _clinic_north(session, "Litt lenger, massasje", 2.5, services=["massage"])
    _clinic_north(session, "Langt unna, manuellterapi", 7.0, services=["manual-therapy"])
    session.commit()

    plain = client.get("/find?postcode=0150").get_data(as_text=True)
    assert _names(plain) == [
        "Nærmest, bare massasje",
        "Trening mot isjias",
        "Litt lenger, massasje",
        "Langt unna, manuellterapi",
    ]
    page = client.get("/find?postcode=0150&complaint=sciatica").get_data(as_text=True)
    # Within 0–2 km the suitable one comes first; the far suitable one never jumps a ring.
    assert _names(page) == [
        "Trening mot isjias",
        "Nærmest, bare massasje",
        "Litt lenger, massasje",
        "Langt unna, manuellterapi",
    ]
    assert "Offers for sciatica: Exercise therapy" in page
    assert "come first among those at a similar distance" in page


def test_complaint_pages_follow_each_other_without_gaps(app, client, session):
    app.config["SEARCH_PAGE_SIZE"] = 2
    for number, services in enumerate([[], ["exercise-therapy"], [], ["manual-therapy"], []]):
        _clinic_north(session, f"Klinikk {number}", 0.2 + 0.3 * number, services=services)
    session.commit()
    seen = []
    for page in (1, 2, 3):
        seen += _names(
            client.get(f"/find?postcode=0150&complaint=sciatica&page={page}").get_data(as_text=True)
        )
    assert seen == ["Klinikk 1", "Klinikk 3", "Klinikk 0", "Klinikk 2", "Klinikk 4"]


def test_a_complaint_deep_link_in_norwegian(app, client, session):
    _clinic_north(session, "Ryggsenteret", 0.5, services=["exercise-therapy"])
    session.commit()
    page = client.get(
        "/find?postcode=0150&complaint=sciatica", headers={"Accept-Language": "nb-NO,nb;q=0.9"}
    ).get_data(as_text=True)
    assert '<html lang="nb">' in page
    assert "Hvem kan hjelpe med isjias" in page
    assert "Tilbud for isjias: Treningsterapi" in page  # the service in Norwegian too
    assert "Du trenger ikke henvisning fra lege" in page
    # What each profession does for it, in plain words.
    assert "kan henvise til bildediagnostikk eller spesialist" in page
    english = client.get("/find?postcode=0150&complaint=sciatica&lang=en").get_data(as_text=True)
    assert "Sciatica" in english and "referral for any of the three" in english


def test_the_contact_form_arrives_prefilled_from_a_complaint_search(client, session):
    clinic = _clinic_north(session, "Ryggsenteret", 0.5)
    session.commit()
    page = client.get("/find?postcode=0150&complaint=sciatica").get_data(as_text=True)
    links = re.findall(r'href="(/contact\?[^"]+)"', page)
    assert any(f"clinic={clinic.id}" in link for link in links)
    ask_us = next(link for link in links if "clinic=" not in link)
    form = client.get(ask_us.replace("&amp;", "&")).get_data(as_text=True)
    assert 'value="0150"' in form
    assert re.search(r"<textarea[^>]*>\s*Sciatica: </textarea>", form)


def test_several_professions_at_once(client, session):
    _clinic_north(session, "Kiro", 0.5, professions=(Profession.CHIROPRACTOR,))
    _clinic_north(session, "Fysio", 0.6, professions=(Profession.PHYSIOTHERAPIST,))
    _clinic_north(session, "Manuell", 0.7, professions=(Profession.MANUAL_THERAPIST,))
    session.commit()
    page = client.get(
        "/find?postcode=0150&profession=chiropractor&profession=manual_therapist"
    ).get_data(as_text=True)
    assert _names(page) == ["Kiro", "Manuell"]
    # The counts say what each choice finds, whatever is ticked now.
    form = _search_form(client, "postcode=0150&profession=chiropractor&profession=manual_therapist")
    assert _profession_counts(form) == {
        "chiropractor": "1",
        "physiotherapist": "1",
        "manual_therapist": "1",
    }


def test_filters_helfo_new_patients_and_language(client, session):
    _clinic_north(session, "Med avtale", 0.5, helfo_agreement=True)
    _clinic_north(session, "Uten avtale", 0.6, helfo_agreement=False)
    stale = _clinic_north(session, "Gammelt svar", 0.7, accepts_new_patients=True)
    stale.practices[0].accepts_new_patients_confirmed_at = now_utc() - timedelta(days=120)
    _clinic_north(session, "Tar imot", 0.8, accepts_new_patients=True)
    _clinic_north(session, "Snakker polsk", 0.9, languages=("nb", "pl"))
    session.commit()

    def names(query: str) -> list[str]:
        return _names(client.get(f"/find?postcode=0150&{query}").get_data(as_text=True))

    assert names("helfo=y") == ["Med avtale"]
    # An answer older than 90 days is unknown, so it does not pass.
    assert names("new_patients=y") == ["Tar imot"]
    assert names("language=pl") == ["Snakker polsk"]


def test_open_now_uses_the_opening_hours(client, session):
    always = _clinic_north(session, "Alltid åpen", 0.5)
    always.opening_hours = [
        OpeningHours(weekday=day, opens=time(0, 0), closes=time(23, 59)) for day in range(7)
    ]
    _clinic_north(session, "Ingen åpningstider", 0.6)
    session.commit()
    page = client.get("/find?postcode=0150").get_data(as_text=True)
    # Only the clinic with hours says whether it is open; the other says nothing.
    assert len(re.findall(r'<span class="ds-tag open-now is-open"[^>]*>Open now</span>', page)) == 1
    assert "is-closed" not in page
    filtered = client.get("/find?postcode=0150&open_now=y").get_data(as_text=True)
    assert _names(filtered) == ["Alltid åpen"]


def test_filters_that_nothing_near_passes_fall_back_to_the_nearest_that_do(client, session):
    _clinic_north(session, "Nær, uten avtale", 0.5)
    _clinic_north(session, "Langt unna med avtale", 40, helfo_agreement=True)
    session.commit()
    page = client.get("/find?postcode=0150&radius=5&helfo=y").get_data(as_text=True)
    assert "No clinics within 5 km" in page
    assert _names(page) == ["Langt unna med avtale"]


def test_api_takes_a_complaint_and_says_what_suits_it(client, session):
    _clinic_north(session, "Nærmest", 0.3, services=["massage"])
    _clinic_north(session, "Trening", 1.6, services=["exercise-therapy"])
    session.commit()
    body = client.get("/api/v1/clinics?postcode=0150&complaint=sciatica").get_json()
    assert [hit["name"] for hit in body["results"]] == ["Trening", "Nærmest"]
    assert body["results"][0]["complaint_services"] == ["Exercise therapy"]
    assert body["results"][0]["complaint_service_keys"] == ["exercise-therapy"]
    assert body["complaint"]["name"] == {"nb": "Isjias", "en": "Sciatica"}
    assert client.get("/api/v1/clinics?postcode=0150").get_json()["complaint"] is None


@pytest.mark.parametrize("query", ["complaint=gout", "language=klingon", "profession=naprapat"])
def test_api_refuses_unknown_choices_naming_the_field(client, query):
    response = client.get(f"/api/v1/clinics?postcode=0150&{query}")
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {query.split("=")[0]}


def test_a_complaint_alone_prefills_the_search_form(client):
    page = client.get("/find?complaint=neck-pain").get_data(as_text=True)
    assert re.search(r'<option selected value="neck-pain">', page)
    assert "error-summary" not in page


# The filters are conditions in the index query; the pages show them through the Python
# definitions on a loaded clinic. These tests hold the two to the same answer.

# A Wednesday, 10:30 in Oslo.
MOMENT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
LANGUAGES = ("nb", "en", "pl", "ti")


def _random_directory(session, rng: random.Random, count: int = 80) -> None:
    """Clinics around 0150 with every filter's edge cases: 90-day-old answers, hours that
    open or close at this very minute, closures ending today, clinicians who left."""
    origin = session.get(PostalCode, "0150")
    today = MOMENT.astimezone(OSLO).date()
    for number in range(count):
        clinic = make_clinic(
            session,
            name=f"Klinikk {number}",
            latitude=origin.latitude + rng.uniform(-0.15, 0.15),
            longitude=origin.longitude + rng.uniform(-0.3, 0.3),
            professions=tuple(rng.sample(list(Profession), rng.randint(1, 3))),
            closed_until=rng.choice((None, None, today, today + timedelta(days=1))),
            step_free_access=rng.choice((True, False, None)),
        )
        for practice in clinic.practices:
            _randomise_practice(rng, practice)
        for weekday in rng.sample(range(7), rng.randint(0, 3)):
            opens, closes = rng.choice(
                ((time(8), time(16)), (time(10, 30), time(12)), (time(8), time(10, 30)))
            )
            clinic.opening_hours.append(OpeningHours(weekday=weekday, opens=opens, closes=closes))
    session.commit()


def _randomise_practice(rng: random.Random, practice) -> None:
    """Each clinician's own agreement (never a chiropractor's), answer, languages, services,
    and now and then one who left or whose licence failed."""
    practice.public_agreement = (
        practice.profession is not Profession.CHIROPRACTOR and rng.random() < 0.5
    )
    practice.accepts_new_patients = rng.choice((True, False, None))
    if practice.accepts_new_patients is not None:
        age = rng.choice((timedelta(days=1), timedelta(days=90), timedelta(days=90, seconds=1)))
        practice.accepts_new_patients_confirmed_at = MOMENT - age
    practice.services = rng.sample(["exercise-therapy", "massage", "manual-therapy"], 1)
    practice.active = rng.random() < 0.85
    clinician = practice.clinician
    clinician.languages = rng.sample(LANGUAGES, rng.randint(0, 2))
    clinician.licence_status = rng.choice(
        [LicenceStatus.UNCHECKED] * 4 + [LicenceStatus.VALID] * 4 + [LicenceStatus.SUSPENDED]
    )


def _passes(clinic, query: FinderQuery) -> bool:
    """What the filters mean, on a loaded clinic: the agreement, new patients and language
    belong to one listed clinician of a chosen profession."""
    if query.professions and not set(clinic.professions) & query.professions:
        return False
    if query.helfo_only and not clinic.has_public_agreement(query.professions):
        return False
    if query.open_now and is_open_at(clinic, MOMENT) is not True:
        return False
    if query.step_free_only and clinic.step_free_access is not True:
        return False
    if not (query.new_patients_only or query.language):
        return True
    return any(
        (not query.professions or practice.profession in query.professions)
        and (not query.new_patients_only or practice.accepts_new_patients_as_of(MOMENT) is True)
        and (not query.language or query.language in practice.clinician.languages)
        for practice in clinic.listed_practices
    )


FILTER_CHOICES = [
    FinderQuery(10, helfo_only=True),
    FinderQuery(10, new_patients_only=True),
    FinderQuery(10, open_now=True),
    FinderQuery(10, language="ti"),
    FinderQuery(10, step_free_only=True),
    FinderQuery(
        25,
        professions=frozenset([Profession.CHIROPRACTOR, Profession.MANUAL_THERAPIST]),
        helfo_only=True,
    ),
    FinderQuery(25, new_patients_only=True, language="en"),
    FinderQuery(10, professions=frozenset([Profession.CHIROPRACTOR, Profession.MANUAL_THERAPIST])),
    FinderQuery(
        25,
        professions=frozenset([Profession.PHYSIOTHERAPIST]),
        helfo_only=True,
        language="en",
    ),
    FinderQuery(25, helfo_only=True, open_now=True, step_free_only=True),
]


@pytest.mark.parametrize("query", FILTER_CHOICES)
def test_filters_in_the_database_mean_what_the_page_shows(session, query):
    _random_directory(session, random.Random(7))
    origin = session.get(PostalCode, "0150")
    found = find(session, origin, query, limit=500, offset=0, now=MOMENT, with_counts=True)

    listed = [
        hit
        for hit in (
            ClinicHit(
                clinic,
                distance_km(
                    (origin.latitude, origin.longitude), (clinic.latitude, clinic.longitude)
                ),
            )
            for clinic in session.scalars(select(Clinic))
            if clinic.listed_practices
        )
        if hit.distance_km <= query.radius_km and _passes(hit.clinic, query)
    ]
    expected = sorted(listed, key=lambda hit: (hit.distance_km, hit.clinic.id))
    assert expected, "the random directory should give every filter something to find"
    assert found.search.within_radius
    assert [hit.clinic.id for hit in found.search.hits] == [hit.clinic.id for hit in expected]
    # Each count applies the other choices with that one profession.
    everyone = FinderQuery(**{**query.__dict__, "professions": frozenset()})
    for profession in Profession:
        alone = FinderQuery(**{**everyone.__dict__, "professions": frozenset([profession])})
        assert found.profession_counts[profession] == sum(
            1
            for clinic in session.scalars(select(Clinic))
            if clinic.listed_practices
            and distance_km(
                (origin.latitude, origin.longitude), (clinic.latitude, clinic.longitude)
            )
            <= query.radius_km
            and _passes(clinic, alone)
        )


def test_no_search_finds_a_chiropractor_with_a_public_agreement(session):
    """Chiropractors never hold one: a chiropractor-only HELFO search finds nothing, though
    half the physiotherapists beside them have an agreement."""
    _random_directory(session, random.Random(7))
    origin = session.get(PostalCode, "0150")
    query = FinderQuery(50, professions=frozenset([Profession.CHIROPRACTOR]), helfo_only=True)
    found = find(session, origin, query, limit=50, offset=0, now=MOMENT, with_counts=True)
    assert found.search.hits == []
    assert found.profession_counts[Profession.CHIROPRACTOR] == 0
    assert found.profession_counts[Profession.PHYSIOTHERAPIST] > 0


def test_complaint_pages_follow_the_ring_rule_over_the_whole_list(app, session):
    _random_directory(session, random.Random(11), count=120)
    origin = session.get(PostalCode, "0150")
    with app.test_request_context():
        sciatica = complaint_catalogue()["sciatica"]
    query = FinderQuery(25, complaint=sciatica, helfo_only=True)
    point = (origin.latitude, origin.longitude)
    everything = [
        (clinic, distance_km(point, (clinic.latitude, clinic.longitude)))
        for clinic in session.scalars(select(Clinic))
        if clinic.listed_practices
        and distance_km(point, (clinic.latitude, clinic.longitude)) <= 25
        and _passes(clinic, query)
    ]
    expected = [clinic.id for clinic, _ in rank_for_complaint(everything, sciatica)]
    pages = []
    for offset in range(0, len(expected) + 7, 7):
        found = find(session, origin, query, limit=7, offset=offset, now=MOMENT)
        assert found.search.total == len(expected)
        pages += [hit.clinic.id for hit in found.search.hits]
    assert pages == expected


def test_a_complaint_search_with_nothing_near_ranks_the_nearest_by_the_rule(app, session):
    far = 40.5  # both in the 40–42 km ring
    _clinic_north(session, "Nærmest, massasje", far, services=["massage"], helfo_agreement=True)
    _clinic_north(
        session,
        "Litt lenger, trening",
        far + 1.0,
        services=["exercise-therapy"],
        helfo_agreement=True,
    )
    _clinic_north(session, "Uten avtale", 1, services=["exercise-therapy"])
    session.commit()
    with app.test_request_context():
        sciatica = complaint_catalogue()["sciatica"]
    origin = session.get(PostalCode, "0150")
    found = find(
        session,
        origin,
        FinderQuery(5, complaint=sciatica, helfo_only=True),
        limit=20,
        offset=0,
        now=MOMENT,
    )
    assert not found.search.within_radius
    assert [hit.clinic.name for hit in found.search.hits] == [
        "Litt lenger, trening",
        "Nærmest, massasje",
    ]


def test_a_filter_nobody_anywhere_passes_says_so(client, session):
    _clinic_north(session, "Snakker norsk", 0.5, languages=("nb",))
    session.commit()
    page = client.get("/find?postcode=0150&language=ti").get_data(as_text=True)
    assert "No clinics found" in page
    assert _names(page) == []


def test_the_plain_finder_page_counts_each_profession(client, session):
    _clinic_north(
        session,
        "Kiro og fysio",
        0.5,
        professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST),
    )
    _clinic_north(session, "Fysio", 0.6, professions=(Profession.PHYSIOTHERAPIST,))
    _clinic_north(session, "Langt unna", 80, professions=(Profession.MANUAL_THERAPIST,))
    session.commit()
    page = _search_form(client, "postcode=0150")
    assert _profession_counts(page) == {
        "chiropractor": "1",
        "physiotherapist": "2",
        "manual_therapist": "0",
    }


def test_search_errors_are_in_norwegian_on_norwegian_pages(client):
    page = client.get("/find?postcode=0150&radius=7&lang=nb").get_data(as_text=True)
    assert "Velg en av: 5, 10, 25, 50, 100." in page
    # The API always answers in English, whatever the browser says.
    body = client.get(
        "/api/v1/clinics?postcode=0150&radius=7", headers={"Accept-Language": "nb"}
    ).get_json()
    assert body["errors"]["radius"] == ["Choose one of: 5, 10, 25, 50, 100."]


def test_an_unknown_complaint_in_a_link_still_searches(client, session):
    _clinic_north(session, "Ryggsenteret", 0.5)
    session.commit()
    response = client.get("/find?postcode=0150&complaint=korsrygg")
    assert response.status_code == 200
    assert _names(response.get_data(as_text=True)) == ["Ryggsenteret"]


def _within(session, origin, radius_km: float):
    point = (origin.latitude, origin.longitude)
    return [
        clinic
        for clinic in session.scalars(select(Clinic))
        if clinic.listed_practices
        and distance_km(point, (clinic.latitude, clinic.longitude)) <= radius_km
    ]


COUNTED_CHOICES = [
    *FILTER_CHOICES,
    FinderQuery(25),
    FinderQuery(25, new_patients_only=True, language="pl", step_free_only=True),
    FinderQuery(
        10,
        professions=frozenset([Profession.MANUAL_THERAPIST]),
        new_patients_only=True,
        open_now=True,
    ),
]


@pytest.mark.parametrize(
    ("query", "sample_rows"),
    [(query, None) for query in COUNTED_CHOICES] + [(query, 30) for query in COUNTED_CHOICES[-5:]],
)
def test_each_filter_counts_what_ticking_it_finds(session, monkeypatch, query, sample_rows):
    # A first read of 30 clinics (of up to 80) with a cap of 5: the counts it settles, and
    # those counted over the whole circle after it, come out as the brute force says.
    cap = 5 if sample_rows else 200
    if sample_rows:
        monkeypatch.setattr("clinic_finder.search.FILTER_SAMPLE_ROWS", sample_rows)
        monkeypatch.setattr("clinic_finder.finder.TOTAL_COUNT_CAP", cap)
    _random_directory(session, random.Random(7))
    origin = session.get(PostalCode, "0150")
    found = find(
        session,
        origin,
        query,
        limit=20,
        offset=0,
        now=MOMENT,
        with_counts=True,
        count_languages=(*LANGUAGES, "so"),
    )
    near = _within(session, origin, query.radius_km)

    def finds(choice: FinderQuery) -> int:
        return sum(1 for clinic in near if _passes(clinic, choice))

    switched_on = {
        "helfo": FinderQuery(**{**query.__dict__, "helfo_only": True}),
        "new_patients": FinderQuery(**{**query.__dict__, "new_patients_only": True}),
        "open_now": FinderQuery(**{**query.__dict__, "open_now": True}),
        "step_free": FinderQuery(**{**query.__dict__, "step_free_only": True}),
    }
    expected = {name: finds(choice) for name, choice in switched_on.items()}
    expected_languages = {
        code: finds(FinderQuery(**{**query.__dict__, "language": code}))
        for code in (*LANGUAGES, "so")
    }
    assert found.filter_counts == {name: min(count, cap) for name, count in expected.items()}
    assert found.language_counts == {
        code: min(count, cap) for code, count in expected_languages.items()
    }
    assert found.language_counts["so"] == 0  # nobody speaks it: the count says so
    assert found.filters_capped == {
        key for key, count in (*expected.items(), *expected_languages.items()) if count > cap
    }
    if sample_rows is None:
        assert found.filters_capped == frozenset()
    # A filter that is on counts what the search finds now.
    for name in query.filters_on:
        if name != "language":
            assert expected[name] == finds(query)


def test_filter_counts_over_the_cap_are_capped(session, monkeypatch):
    monkeypatch.setattr("clinic_finder.finder.TOTAL_COUNT_CAP", 5)
    _random_directory(session, random.Random(7))
    origin = session.get(PostalCode, "0150")
    found = find(
        session,
        origin,
        FinderQuery(25),
        limit=20,
        offset=0,
        now=MOMENT,
        with_counts=True,
        count_languages=("nb", "so"),
    )
    assert found.language_counts == {"nb": 5, "so": 0}
    assert "nb" in found.filters_capped and "so" not in found.filters_capped
    assert found.filter_counts["helfo"] == 5 and "helfo" in found.filters_capped


def test_a_search_nothing_anywhere_passes_names_the_filter_that_emptied_it(session):
    _clinic_north(session, "Snakker norsk, med avtale", 0.5, helfo_agreement=True)
    _clinic_north(session, "Trinnfri", 30, step_free_access=True)
    session.commit()
    origin = session.get(PostalCode, "0150")

    def dead_end(query: FinderQuery):
        return find(session, origin, query, limit=20, offset=0, now=MOMENT).dead_end

    assert dead_end(FinderQuery(25, helfo_only=True)) is None
    only_tigrinya = dead_end(FinderQuery(25, helfo_only=True, language="ti"))
    assert only_tigrinya.filters == ("helfo", "language")
    assert only_tigrinya.emptied_by == ("language",)
    assert only_tigrinya.found_without_filters
    # Each of the two finds a clinic alone, but no clinic passes both: only together.
    together = dead_end(FinderQuery(5, helfo_only=True, step_free_only=True))
    assert together.emptied_by == ("helfo", "step_free")
    # No chiropractor is listed: no filter is to blame, and none is offered.
    chiropractors = frozenset([Profession.CHIROPRACTOR])
    assert dead_end(FinderQuery(25, professions=chiropractors)) == DeadEnd((), (), False)
    assert dead_end(FinderQuery(25, professions=chiropractors, helfo_only=True)) == DeadEnd(
        ("helfo",), (), False
    )


def _filter_input(page: str, name: str) -> str:
    return re.search(rf'<input [^>]*\bname="{name}"[^>]*>', page).group(0)


def _filter_label(page: str, name: str) -> str:
    return re.search(rf'<label class="ds-label"[^>]*\bfor="{name}">(.*?)</label>', page).group(1)


def test_a_filter_that_would_leave_none_shows_zero_and_cannot_be_ticked(client, session):
    _clinic_north(session, "Trinnfri", 0.5, step_free_access=True, languages=("nb", "pl"))
    _clinic_north(session, "Med trapp", 0.6, step_free_access=False)
    _clinic_north(session, "Langt unna, trinnfri, avtale", 40, helfo_agreement=True)
    session.commit()
    page = _search_form(client, "postcode=0150&radius=25")
    assert _filter_label(page, "step_free").endswith('<span class="count">(1)</span>')
    assert " disabled" not in _filter_input(page, "step_free")
    # The only clinic with an agreement is 40 km away: none within 25 km.
    assert _filter_label(page, "helfo").endswith('<span class="count">(0)</span>')
    assert " disabled" in _filter_input(page, "helfo")
    assert '<option value="pl">Polish (1)</option>' in page
    assert '<option value="ti" disabled>Tigrinya (0)</option>' in page
    # The other counts apply the filters that are on: step-free and Polish is one clinic.
    page = _search_form(client, "postcode=0150&radius=25&step_free=y")
    assert '<option value="pl">Polish (1)</option>' in page
    assert '<option value="nb">Norwegian Bokmål (1)</option>' in page


def test_a_filter_that_is_on_stays_untickable_off_even_at_zero(client, session):
    _clinic_north(session, "Nær, uten avtale", 0.5)
    _clinic_north(session, "Langt unna med avtale", 40, helfo_agreement=True)
    session.commit()
    page = client.get("/find?postcode=0150&radius=5&helfo=y").get_data(as_text=True)
    assert _names(page) == ["Langt unna med avtale"]  # the circle widened
    page = _search_form(client, "postcode=0150&radius=5&helfo=y")
    helfo = _filter_input(page, "helfo")
    assert "checked" in helfo and " disabled" not in helfo
    assert _filter_label(page, "helfo").endswith('<span class="count">(0)</span>')


def test_filter_counts_over_two_hundred_read_200_plus(client, session):
    for number in range(201):
        _clinic_north(session, f"Klinikk {number}", 0.01 * number, languages=("nb", "en"))
    session.commit()
    page = _search_form(client, "postcode=0150")
    assert '<option value="en">English (200+)</option>' in page
    assert '<option value="pl" disabled>Polish (0)</option>' in page


def test_an_empty_result_names_the_filter_and_links_to_the_search_without_it(client, session):
    _clinic_north(session, "Snakker norsk", 0.5, languages=("nb",), helfo_agreement=True)
    session.commit()
    page = client.get("/find?postcode=0150&helfo=y&language=ti").get_data(as_text=True)
    assert "No clinics found" in page
    assert (
        "No clinic anywhere in the directory passes “Language the clinician speaks: Tigrinya”"
        in page
    )
    links = {
        text: href.replace("&amp;", "&")
        for href, text in re.findall(r'<a class="ds-button"[^>]* href="([^"]+)">([^<]+)</a>', page)
    }
    assert links == {
        "Search without “Language the clinician speaks: Tigrinya”": (
            "/find?postcode=0150&radius=25&helfo=true"
        ),
        "Search without any filters": "/find?postcode=0150&radius=25",
    }
    for href in links.values():
        assert _names(client.get(href).get_data(as_text=True)) == ["Snakker norsk"]


def test_an_empty_result_in_norwegian_names_the_filter_in_norwegian(client, session):
    _clinic_north(session, "Snakker norsk", 0.5, languages=("nb",))
    session.commit()
    page = client.get("/find?postcode=0150&language=ti&lang=nb").get_data(as_text=True)
    assert "Søk uten «Språk behandleren snakker: Tigrinja»" in page


def test_share_print_and_email_are_only_offered_for_a_list(client, session):
    _clinic_north(session, "Snakker norsk", 0.5, languages=("nb",))
    session.commit()
    listed = client.get("/find?postcode=0150").get_data(as_text=True)
    assert "Email a link to this list" in listed and "data-share" in listed
    assert "data-print" in listed
    empty = client.get("/find?postcode=0150&language=ti").get_data(as_text=True)
    assert "No clinics found" in empty
    for offer in ("Email a link to this list", "data-share", "data-print", "share-links"):
        assert offer not in empty


# After a search the results page leaves the search form out (issue 16): "Change search"
# fetches it (/find/search-form), or opens it on a page of its own without JavaScript.


def _form_html(page: str) -> str:
    return re.search(r'<form class="search-form".*?</form>', page, re.S).group(0)


def test_a_results_page_holds_no_search_form_and_counts_nothing(client, session, monkeypatch):
    _clinic_north(session, "Trinnfri", 0.5, step_free_access=True)
    session.commit()
    counted = []
    monkeypatch.setattr(
        "clinic_finder.finder._count_filters",
        lambda *args: counted.append(args) or ({}, {}, frozenset()),
    )
    monkeypatch.setattr(
        "clinic_finder.finder._count_professions",
        lambda *args: counted.append(args) or ({}, frozenset()),
    )
    response = client.get("/find?postcode=0150&radius=25&step_free=y&lang=en")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and _names(page) == ["Trinnfri"]
    assert counted == []
    assert '<form class="search-form"' not in page and 'class="count"' not in page
    panel = re.search(r'<details class="ds-details change-search".*?</details>', page, re.S)
    assert 'data-search-form="/find/search-form?lang=en&amp;postcode=0150&amp;radius=25' in (
        panel.group(0)
    )
    assert "&amp;step_free=true" in panel.group(0)
    link = re.search(r'<a class="ds-link" href="([^"]+)">Open the search form</a>', panel.group(0))
    assert link.group(1).startswith("/find/change-search?lang=en&amp;postcode=0150&amp;radius=25")


def test_the_search_form_fragment_is_the_form_with_its_counts(client, session):
    _clinic_north(session, "Trinnfri", 0.5, step_free_access=True)
    _clinic_north(session, "Med trapp", 0.6, step_free_access=False)
    session.commit()
    response = client.get("/find/search-form?postcode=0150&radius=25&step_free=true&lang=nb")
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert "<html" not in fragment and "<main" not in fragment
    assert fragment.strip().startswith('<form class="search-form"')
    assert 'name="place" spellcheck="false" type="text" value="0150"' in fragment
    assert " checked " in _filter_input(fragment, "step_free")
    assert _filter_label(fragment, "step_free").endswith('<span class="count">(1)</span>')
    assert "Klinikker innen 25 km" not in fragment  # no results
    assert 'id="place"' in fragment and "data-locate" in fragment and "data-places=" in fragment


def test_the_change_search_page_shows_the_same_form_open(client, session):
    _clinic_north(session, "Trinnfri", 0.5, step_free_access=True, languages=("nb", "pl"))
    session.commit()
    query = "postcode=0150&radius=10&language=pl&lang=en"
    response = client.get(f"/find/change-search?{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["X-Robots-Tag"] == "noindex"
    assert "<h1 " in page and ">Change search</h1>" in page
    back = "/find?postcode=0150&amp;radius=10&amp;language=pl&amp;lang=en"
    assert f'<a class="ds-link" href="{back}">Back to the results</a>' in page
    # Not folded: the form is in the page as it is, with the counts.
    assert '<details class="ds-details change-search"' not in page
    assert _form_html(page) == _form_html(_search_form(client, query))
    assert '<option value="pl" selected>Polish (1)</option>' in page
    assert "/static/js/locate." in page and "/static/js/places." in page


@pytest.mark.parametrize(
    "crafted", ["endpoint=x", "_anchor=x", "_method=POST", "_external=1&_scheme=javascript"]
)
@pytest.mark.parametrize(
    "path", ["/find/change-search?postcode=0150", "/find/search-form?place=Bø", "/find?place=Bø"]
)
def test_links_that_keep_the_query_ignore_names_url_for_takes_for_itself(client, path, crafted):
    # "Back to the results" and a shared place name's choices keep the page's arguments;
    # an argument named as url_for's own (endpoint, _external …) was a 500, or an
    # absolute link built from the Host header.
    response = client.get(f"{path}&{crafted}&lang=en")
    page = response.get_data(as_text=True)
    assert response.status_code in (200, 400)
    links = re.findall(
        r'(?:back-to-results"><a class="ds-link"|data-variant="secondary") href="([^"]*)"', page
    )
    assert links, "the page links back to a search"
    for link in links:
        assert link.startswith("/find?"), link
        assert "endpoint=" not in link and "_external" not in link and "_scheme" not in link


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("postcode=99x", "four digits"),
        ("postcode=0150&radius=7", "Choose one of: 5, 10"),
        ("postcode=0150&language=xx", "Choose one of: nb, nn"),
    ],
)
@pytest.mark.parametrize("path", ["/find/search-form", "/find/change-search"])
def test_the_search_form_with_bad_input_is_a_400_with_its_errors_and_no_counts(
    client, session, path, query, message
):
    _clinic_north(session, "Nær", 0.5)
    session.commit()
    response = client.get(f"{path}?{query}&lang=en")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert "Please check your search" in page and message in page
    assert 'class="count"' not in page


def test_the_search_form_without_a_search_counts_nothing(client):
    response = client.get("/find/search-form?profession=chiropractor&lang=en")
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert 'class="count"' not in fragment and "Please check your search" not in fragment
    assert re.search(r'<input [^>]*\bchecked [^>]*value="chiropractor"', fragment)


def test_before_a_search_and_with_errors_the_form_is_in_the_page(client):
    page = client.get("/find?lang=en").get_data(as_text=True)
    assert '<form class="search-form"' in page and "change-search" not in page
    response = client.get("/find?postcode=99x&lang=en")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<form class="search-form"' in page and "Please check your search" in page
    assert "change-search" not in page and "change-search.js" not in page


def test_a_place_several_places_share_offers_each_as_a_search(client):
    response = client.get("/find/search-form?place=B%C3%B8&lang=en")
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and "Which Bø do you mean?" in fragment
    # Each choice runs the search (the results page), never this fragment on its own.
    choices = re.findall(r'<a class="ds-button" data-variant="secondary" href="([^"]+)"', fragment)
    assert len(choices) == 2 and all(link.startswith("/find?") for link in choices)
    assert 'class="count"' not in fragment
