"""The search index (listed_clinic): triggers keep it in step with every change to the
directory, and the search through it gives exactly the brute-force answer."""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import date, datetime, time

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from clinic_finder import search
from clinic_finder.directory import set_clinic_active
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import (
    INDEXED_LANGUAGES,
    LANGUAGE_BIT_SLOTS,
    LISTED_LICENCE_STATUSES,
    PROFESSION_BITS,
    PROFESSION_INDEX,
    Clinic,
    Clinician,
    ListedClinic,
    OpeningHours,
    PostalCode,
    Practice,
    Profession,
    as_utc,
)
from clinic_finder.search import (
    add_sqlite_math_functions,
    distance_km,
    find_clinics_near,
    latitude_band,
)

from .conftest import make_staff
from .factories import make_clinic, make_practice, new_clinician
from .helpers import haversine_km

# Postcode 0150's neighbourhood, and a point about 40 km north of it.
OSLO = "0150"
NORTH_OFFSET = 0.36


def expected_index(session) -> dict[int, tuple]:
    """What listed_clinic must hold, worked out from clinics, practices and licences in Python:
    professions, agreements, place and band, then the filters' facts (see filter_facts)."""
    professions: dict[int, int] = {}
    agreements: dict[int, int] = {}
    languages: dict[int, int] = {}
    new_patients: dict[tuple[int, Profession], datetime] = {}
    for practice in session.scalars(select(Practice)):
        if not (practice.active and practice.clinician.licence_status in LISTED_LICENCE_STATUSES):
            continue
        bit = PROFESSION_BITS[practice.profession]
        professions[practice.clinic_id] = professions.get(practice.clinic_id, 0) | bit
        if practice.public_agreement:
            agreements[practice.clinic_id] = agreements.get(practice.clinic_id, 0) | bit
        for code in practice.clinician.languages:
            if code in INDEXED_LANGUAGES:
                place = LANGUAGE_BIT_SLOTS * PROFESSION_INDEX[practice.profession]
                languages[practice.clinic_id] = languages.get(practice.clinic_id, 0) | (
                    1 << (place + INDEXED_LANGUAGES.index(code))
                )
        confirmed = practice.accepts_new_patients_confirmed_at
        if practice.accepts_new_patients and confirmed is not None:
            key = (practice.clinic_id, practice.profession)
            new_patients[key] = max(as_utc(confirmed), new_patients.get(key, as_utc(confirmed)))
    with_hours = set(session.scalars(select(OpeningHours.clinic_id)))
    return {
        clinic.id: (
            professions[clinic.id],
            agreements.get(clinic.id, 0),
            clinic.latitude,
            clinic.longitude,
            latitude_band(clinic.latitude),
            languages.get(clinic.id, 0),
            bool(clinic.step_free_access),
            clinic.id in with_hours,
            clinic.closed_until,
            *(new_patients.get((clinic.id, profession)) for profession in PROFESSION_INDEX),
        )
        for clinic in session.scalars(select(Clinic).where(Clinic.active.is_(True)))
        if professions.get(clinic.id)
    }


def stored_index(session) -> dict[int, tuple]:
    def moment(value):
        return None if value is None else as_utc(value)

    return {
        row.clinic_id: (
            row.professions,
            row.agreement_professions,
            row.latitude,
            row.longitude,
            row.latitude_band,
            row.language_bits,
            row.step_free,
            row.has_hours,
            row.closed_until,
            moment(row.new_patients_chiropractor_at),
            moment(row.new_patients_physiotherapist_at),
            moment(row.new_patients_manual_therapist_at),
        )
        for row in session.scalars(select(ListedClinic))
    }


def found_ids(session, radius_km=25, profession=None, postcode=OSLO, limit=20) -> list[int]:
    origin = session.get(PostalCode, postcode)
    result = find_clinics_near(session, origin, radius_km, profession, limit=limit)
    return [hit.clinic.id for hit in result.hits] if result.within_radius else []


@pytest.fixture
def actor(app, session):
    from clinic_finder.models import StaffUser

    return session.get(StaffUser, make_staff(app))


def test_index_lists_a_new_clinic_with_its_professions(session):
    clinic = make_clinic(
        session, professions=(Profession.CHIROPRACTOR, Profession.MANUAL_THERAPIST)
    )
    session.commit()
    assert stored_index(session) == expected_index(session)
    assert stored_index(session)[clinic.id][0] == 1 | 4


def test_deactivated_clinic_leaves_search_and_comes_back(session, actor):
    clinic = make_clinic(session)
    session.commit()
    set_clinic_active(session, actor, clinic, False)
    session.commit()
    assert found_ids(session) == []
    assert stored_index(session) == {}
    set_clinic_active(session, actor, clinic, True)
    session.commit()
    assert found_ids(session) == [clinic.id]


def test_moved_clinic_is_found_where_it_is_now(session):
    origin = session.get(PostalCode, OSLO)
    clinic = make_clinic(session)
    session.commit()
    clinic.latitude = origin.latitude + NORTH_OFFSET
    session.commit()
    assert found_ids(session, radius_km=25) == []
    assert found_ids(session, radius_km=50) == [clinic.id]
    assert stored_index(session) == expected_index(session)


def test_clinic_whose_last_clinician_left_is_not_found(session):
    clinic = make_clinic(session, professions=(Profession.PHYSIOTHERAPIST, Profession.CHIROPRACTOR))
    session.commit()
    physio, chiro = sorted(clinic.practices, key=lambda p: p.profession.value, reverse=True)
    chiro.active = False
    session.commit()
    assert found_ids(session, profession=Profession.CHIROPRACTOR) == []
    assert found_ids(session, profession=Profession.PHYSIOTHERAPIST) == [clinic.id]
    physio.active = False
    session.commit()
    assert found_ids(session) == []
    assert stored_index(session) == {}


def test_profession_change_moves_the_clinic_between_filters(session):
    clinic = make_clinic(session, professions=(Profession.PHYSIOTHERAPIST,))
    session.commit()
    clinic.practices[0].profession = Profession.MANUAL_THERAPIST
    session.commit()
    assert found_ids(session, profession=Profession.PHYSIOTHERAPIST) == []
    assert found_ids(session, profession=Profession.MANUAL_THERAPIST) == [clinic.id]


def test_clinician_moving_to_another_clinic_updates_both(session):
    first = make_clinic(session, name="First", professions=(Profession.CHIROPRACTOR,))
    second = make_clinic(session, name="Second", professions=())
    session.commit()
    assert found_ids(session) == [first.id]
    first.practices[0].clinic = second
    session.commit()
    assert found_ids(session) == [second.id]
    assert stored_index(session) == expected_index(session)


def test_a_clinician_at_two_clinics_is_found_at_both(session):
    """One person, two practices: each clinic lists them, with its own agreement."""
    first = make_clinic(session, name="First", professions=())
    second = make_clinic(session, name="Second", postcode="0560", professions=())
    person = new_clinician("Kari Nordmann")
    make_practice(session, first, person, public_agreement=True)
    make_practice(session, second, person, public_agreement=False)
    session.commit()
    assert sorted(found_ids(session)) == sorted([first.id, second.id])
    helfo = search.Listing(helfo_only=True)
    assert found_ids(session, profession=helfo) == [first.id]
    assert stored_index(session) == expected_index(session)


@pytest.mark.parametrize(
    "status",
    [
        LicenceStatus.NOT_FOUND,
        LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION,
        LicenceStatus.SUSPENDED,
        LicenceStatus.EXPIRED,
    ],
)
def test_a_licence_that_fails_hides_the_clinician_at_every_clinic_at_once(session, status):
    first = make_clinic(session, name="First", professions=(Profession.CHIROPRACTOR,))
    second = make_clinic(session, name="Second", postcode="0560", professions=())
    colleague = make_clinic(session, name="Colleague", postcode="0560")
    chiropractor = first.practices[0].clinician
    make_practice(session, second, chiropractor, Profession.CHIROPRACTOR)
    session.commit()
    assert len(found_ids(session, profession=Profession.CHIROPRACTOR)) == 2
    # One UPDATE of the person, as the licence check writes it: both clinics drop out.
    session.execute(
        update(Clinician).where(Clinician.id == chiropractor.id).values(licence_status=status)
    )
    session.commit()
    assert found_ids(session, profession=Profession.CHIROPRACTOR) == []
    assert found_ids(session) == [colleague.id]
    assert stored_index(session) == expected_index(session)
    chiropractor.licence_status = LicenceStatus.VALID
    session.commit()
    assert len(found_ids(session, profession=Profession.CHIROPRACTOR)) == 2


def test_the_helfo_filter_means_a_clinician_of_the_chosen_profession_with_an_agreement(session):
    """The wrong price the issue found: a chiropractor-only search must not return a clinic
    because a physiotherapist there has the agreement."""
    shared = make_clinic(
        session,
        name="Shared",
        professions=(Profession.PHYSIOTHERAPIST, Profession.CHIROPRACTOR),
        helfo_agreement=True,
    )
    session.commit()
    chiropractors_with_agreement = search.Listing(
        frozenset([Profession.CHIROPRACTOR]), helfo_only=True
    )
    physiotherapists_with_agreement = search.Listing(
        frozenset([Profession.PHYSIOTHERAPIST]), helfo_only=True
    )
    assert found_ids(session, profession=chiropractors_with_agreement) == []
    assert found_ids(session, profession=physiotherapists_with_agreement) == [shared.id]
    assert stored_index(session)[shared.id][:2] == (1 | 2, 2)


def test_the_database_refuses_a_chiropractor_with_a_public_agreement(session):
    clinic = make_clinic(session, professions=(Profession.CHIROPRACTOR,))
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(
            update(Practice).where(Practice.clinic_id == clinic.id).values(public_agreement=True)
        )
    session.rollback()


def test_deleted_clinician_and_clinic_leave_the_index(session):
    clinic = make_clinic(session)
    session.commit()
    session.execute(delete(Practice).where(Practice.clinic_id == clinic.id))
    session.commit()
    assert found_ids(session) == []
    session.execute(delete(Clinic).where(Clinic.id == clinic.id))
    session.commit()
    assert stored_index(session) == {}


def test_bulk_statements_that_bypass_the_orm_keep_the_index_in_step(session):
    """Core and hand-written SQL change rows the ORM never sees; triggers still follow."""
    clinics = [make_clinic(session, name=f"Clinic {n}") for n in range(6)]
    session.commit()
    session.execute(
        update(Clinic).where(Clinic.id.in_([c.id for c in clinics[:2]])).values(active=False)
    )
    session.execute(
        update(Practice).where(Practice.clinic_id == clinics[2].id).values(active=False)
    )
    session.execute(
        text("UPDATE clinic SET latitude = latitude + 1 WHERE id = :id"), {"id": clinics[3].id}
    )
    session.commit()
    assert stored_index(session) == expected_index(session)
    assert sorted(found_ids(session)) == sorted(c.id for c in clinics[4:])


def scatter_far(
    session,
    rng: random.Random,
    count: int,
    latitudes: tuple[float, float],
    longitudes: tuple[float, float],
) -> None:
    """Put `count` clinics of one profession each anywhere in the given ranges."""
    for number in range(count):
        make_clinic(
            session,
            name=f"Far {number}",
            latitude=rng.uniform(*latitudes),
            longitude=rng.uniform(*longitudes),
            professions=(rng.choice(list(Profession)),),
        )


def scatter_dense_city(session, rng: random.Random, count: int) -> None:
    """Put `count` clinics within about 6 km of 0150, with mixed and departed clinicians."""
    origin = session.get(PostalCode, OSLO)
    professions = list(Profession)
    for number in range(count):
        clinic = make_clinic(
            session,
            name=f"Dense {number}",
            latitude=origin.latitude + rng.uniform(-0.05, 0.05),
            longitude=origin.longitude + rng.uniform(-0.1, 0.1),
            professions=tuple(rng.sample(professions, rng.randint(1, 2))),
            active=rng.random() > 0.1,
        )
        if rng.random() < 0.15:
            clinic.practices[0].active = False
        elif rng.random() < 0.05:
            clinic.practices[0].clinician.licence_status = LicenceStatus.SUSPENDED
    # Some clinics on one spot, so equal distances are ordered by id.
    for number in range(4):
        make_clinic(session, name=f"Same spot {number}", latitude=origin.latitude + 0.01)
    session.commit()


def listed_snapshot(session) -> list[tuple[int, tuple[float, float], set[Profession]]]:
    """Every clinic patients may find, with the professions of its listed practices."""
    return [
        (
            clinic.id,
            (clinic.latitude, clinic.longitude),
            {practice.profession for practice in clinic.practices if practice.is_listed},
        )
        for clinic in session.scalars(select(Clinic).where(Clinic.active.is_(True)))
    ]


def brute_force(snapshot, origin, radius_km, profession, limit, offset):
    """The page and total find_clinics_near must give, from every clinic's distance."""
    point = (origin.latitude, origin.longitude)
    ranked = sorted(
        (haversine_km(point, location), clinic_id)
        for clinic_id, location, professions in snapshot
        if professions and (profession is None or profession in professions)
    )
    within = [(km, clinic_id) for km, clinic_id in ranked if km <= radius_km]
    if within:
        return within[offset : offset + limit], len(within)
    return ranked[:limit], len(ranked[:limit])


def test_dense_city_search_matches_brute_force(session):
    rng = random.Random(6)
    scatter_dense_city(session, rng, 400)
    assert stored_index(session) == expected_index(session)
    snapshot = listed_snapshot(session)
    origins = [session.get(PostalCode, code) for code in (OSLO, "0560", "1337", "3015")]
    for origin in origins:
        for radius_km in (1, 5, 25):
            for profession in (None, Profession.CHIROPRACTOR):
                for limit, offset in ((20, 0), (7, 40), (100, 0)):
                    result = find_clinics_near(
                        session, origin, radius_km, profession, limit=limit, offset=offset
                    )
                    page, total = brute_force(
                        snapshot, origin, radius_km, profession, limit, offset
                    )
                    case = (origin.postcode, radius_km, profession, limit, offset)
                    assert [hit.clinic.id for hit in result.hits] == [i for _, i in page], case
                    assert [hit.distance_km for hit in result.hits] == pytest.approx(
                        [km for km, _ in page], abs=1e-6
                    ), case
                    cap = max(search.TOTAL_COUNT_CAP, offset + limit)
                    assert (result.total, result.total_capped) == (
                        min(total, cap),
                        total > cap,
                    ), case


def test_total_stops_counting_at_the_cap(session, monkeypatch):
    scatter_dense_city(session, random.Random(7), 120)
    monkeypatch.setattr(search, "TOTAL_COUNT_CAP", 30)
    origin = session.get(PostalCode, OSLO)
    _, within = brute_force(listed_snapshot(session), origin, 25, None, 20, 0)
    assert within > 30

    result = find_clinics_near(session, origin, 25, limit=10)
    assert (result.total, result.total_capped) == (30, True)
    # A page past the cap still counts at least as far as it shows.
    deep = find_clinics_near(session, origin, 25, limit=10, offset=40)
    assert len(deep.hits) == 10 and deep.total >= 50 and deep.total_capped is (within > 50)


def test_search_never_reads_the_clinic_table_to_choose_clinics(session):
    """A clinic missing from the index is not found: the index alone decides."""
    clinic = make_clinic(session)
    session.commit()
    session.execute(delete(ListedClinic))
    assert found_ids(session) == []
    session.rollback()
    assert found_ids(session) == [clinic.id]


def test_latitude_band_matches_the_triggers_at_band_edges(session):
    origin = session.get(PostalCode, OSLO)
    for latitude in (59.9, 59.99, 60.0, 60.01, 59.999999999, 69.005, 78.2):
        make_clinic(session, name=f"At {latitude}", latitude=latitude, longitude=origin.longitude)
    session.commit()
    assert stored_index(session) == expected_index(session)


def test_python_math_functions_give_sqlite_the_same_distance():
    """The fallback for SQLite builds without math functions computes the same figures."""
    connection = sqlite3.connect(":memory:")
    add_sqlite_math_functions(connection)
    lat, lon = 59.91, 10.75
    value = connection.execute(
        "SELECT power(sin((radians(?) - radians(?)) / 2), 2) + cos(radians(?)) * "
        "cos(radians(?)) * power(sin((radians(?) - radians(?)) / 2), 2)",
        (60.39, lat, lat, 60.39, 5.32, lon),
    ).fetchone()[0]
    connection.close()
    km = 2 * 6371.009 * math.asin(math.sqrt(value))
    assert km == pytest.approx(distance_km((lat, lon), (60.39, 5.32)), abs=1e-9)


def test_nearest_listed_is_the_brute_force_ranking_to_the_last_digit(session):
    """The nearest clinics are those of a ranking of every listed clinic by great-circle
    distance: the same clinics, the same distances to the last digit, ties by id, in a
    city, on a ring of equally distant clinics, and where the search must widen far."""
    rng = random.Random(16)
    scatter_dense_city(session, rng, 150)
    # A ring around a spot far from the city, mirrored north-south and east-west: clinics
    # equally far whose figures the database and Python must round alike.
    ring_centre = (61.2, 8.3)
    for step in range(1, 5):
        for north, east in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)):
            make_clinic(
                session,
                name=f"Ring {step} {north} {east}",
                latitude=ring_centre[0] + north * step * 0.004,
                longitude=ring_centre[1] + east * step * 0.008,
                professions=(rng.choice(list(Profession)),),
            )
    # A few clinics across the country, so that a search far from them widens many times.
    scatter_far(session, rng, 40, (58.0, 71.0), (5.0, 30.0))
    session.commit()
    snapshot = listed_snapshot(session)
    points = [
        (59.913, 10.739),  # central Oslo
        ring_centre,
        (ring_centre[0] + 0.002, ring_centre[1]),
        (69.65, 18.96),  # Tromsø, with only the scattered clinics near
        (78.22, 15.65),  # Longyearbyen: none within hundreds of kilometres
    ]
    for point in points:
        for profession in (None, Profession.CHIROPRACTOR):
            ranked = sorted(
                (distance_km(point, location), clinic_id)
                for clinic_id, location, professions in snapshot
                if professions and (profession is None or profession in professions)
            )
            for max_km in (0.5, 3.0, 25.0, 900.0):
                within = [hit for hit in ranked if hit[0] <= max_km]
                # 150 asks more than a page: the database filters by distance itself.
                for wanted in (1, 7, 20, 150):
                    nearest, complete = search.nearest_listed(
                        session, point, wanted, max_km, profession
                    )
                    case = (point, profession, max_km, wanted)
                    assert nearest == within[:wanted], case
                    assert complete is (len(within) < wanted), case
                    # The same figures as a haversine written apart from the app's.
                    assert [km for km, _ in nearest] == pytest.approx(
                        [haversine_km(point, location_of(snapshot, i)) for _, i in nearest],
                        rel=1e-12,
                    ), case


def test_count_listed_is_the_brute_force_count_for_every_size_of_box(session):
    """The capped count reads a box's bands as a few probes, many (one array on
    PostgreSQL), or one range: each counts what a ranking of every clinic counts."""
    rng = random.Random(17)
    scatter_dense_city(session, rng, 150)
    scatter_far(session, rng, 60, (58.0, 63.0), (5.0, 12.0))
    session.commit()
    snapshot = listed_snapshot(session)
    # 2 km: 4 probes; 25 km: 64; 60 and 100 km: 128 and 256 (an array on PostgreSQL);
    # 400 km: one range.
    for point in ((59.913, 10.739), (60.39, 5.32)):
        for profession in (None, Profession.PHYSIOTHERAPIST):
            distances = [
                distance_km(point, location)
                for _, location, professions in snapshot
                if professions and (profession is None or profession in professions)
            ]
            for radius in (2.0, 25.0, 60.0, 100.0, 400.0):
                within = sum(1 for km in distances if km <= radius)
                for cap in (0, 40, 1000):
                    counted = search.count_listed(session, point, radius, profession, cap)
                    assert counted == min(within, cap + 1), (point, profession, radius, cap)


def location_of(snapshot, clinic_id: int) -> tuple[float, float]:
    return next(location for found, location, _ in snapshot if found == clinic_id)


def test_a_search_on_a_broken_connection_fails_as_every_query_does_and_the_next_works(session):
    """The search's statement runs on the driver, but a failure there is SQLAlchemy's
    exception (the error pages answer an OperationalError "try again shortly"), and the
    broken connection leaves the pool, so the next search works."""
    clinic = make_clinic(session)
    session.commit()
    session.connection().connection.driver_connection.close()  # as a database restart would

    with pytest.raises(DBAPIError) as raised:
        search.nearest_listed(session, (59.913, 10.739), 20, 25)
    assert raised.value.connection_invalidated
    session.rollback()
    nearest, _ = search.nearest_listed(session, (59.913, 10.739), 20, 25)
    assert [clinic_id for _, clinic_id in nearest] == [clinic.id]


def test_the_filters_facts_follow_languages_hours_entrances_closures_and_answers(session):
    """Every fact the filter counts read from the index changes with what it comes from."""
    clinic = make_clinic(session, professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST))
    other = make_clinic(session, name="Annen klinikk")
    session.commit()
    chiropractor, physiotherapist = sorted(clinic.practices, key=lambda p: p.profession.value)
    chiropractor.clinician.languages = ["nb", "pl", "xx"]
    physiotherapist.accepts_new_patients = True
    physiotherapist.accepts_new_patients_confirmed_at = datetime(2026, 11, 30, 8, 0)
    clinic.step_free_access = True
    clinic.closed_until = date(2026, 12, 24)
    session.add(OpeningHours(clinic=clinic, weekday=2, opens=time(8), closes=time(16)))
    session.commit()
    session.expire_all()
    assert stored_index(session) == expected_index(session)
    facts = stored_index(session)[clinic.id]
    polish = 1 << INDEXED_LANGUAGES.index("pl")  # the chiropractor's bits come first
    assert facts[5] & polish and facts[6:9] == (True, True, date(2026, 12, 24))
    assert facts[9] is None and facts[10] is not None  # a physiotherapist takes new patients

    # Hours moved to another clinic, then gone; an answer withdrawn; a licence lost.
    session.execute(update(OpeningHours).values(clinic_id=other.id))
    session.commit()
    assert stored_index(session)[clinic.id][7] is False
    assert stored_index(session)[other.id][7] is True
    session.execute(delete(OpeningHours))
    physiotherapist.accepts_new_patients = False
    chiropractor.clinician.licence_status = LicenceStatus.SUSPENDED
    session.commit()
    session.expire_all()
    assert stored_index(session) == expected_index(session)
    assert stored_index(session)[clinic.id][5] & polish == 0
    assert stored_index(session)[other.id][7] is False
