"""Result cards: what ``cards.load_cards`` reads says what the clinic models say."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time

from sqlalchemy import event, select

from clinic_finder.cards import CardClinician, ClinicCard, load_cards
from clinic_finder.clinic_pages import slugify
from clinic_finder.formatting import http_url
from clinic_finder.hours import is_open_at
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import (
    NORWAY,
    Clinic,
    ListedClinic,
    OpeningHours,
    PostalCode,
    Profession,
)

from .factories import make_practice, new_clinician

# A Monday before, at and after a clinic's 08–16; a day a closure ends on; a day months on,
# when every new-patient answer below has gone stale.
MOMENTS = (
    datetime(2026, 3, 2, 7, 59, tzinfo=NORWAY),
    datetime(2026, 3, 2, 8, 0, tzinfo=NORWAY),
    datetime(2026, 3, 2, 15, 59, 59, tzinfo=NORWAY),
    datetime(2026, 3, 2, 16, 0, tzinfo=NORWAY),
    datetime(2026, 3, 3, 10, 0, tzinfo=NORWAY),
    datetime(2026, 6, 1, 10, 0, tzinfo=NORWAY),
)
CONFIRMED = (
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 2, 20, tzinfo=UTC),
    datetime(2025, 6, 1, tzinfo=UTC),
)
WEBSITES = (None, "https://klinikk.example/", " http://klinikk.example ", "javascript:alert(1)")
NAMES = ("Fysio <b>Sentrum</b>", "Kiro & Co", "Ås Helsehus", "Klinikk")


def _directory(session, rng: random.Random) -> list[Clinic]:
    """Clinics varied in everything a card shows, some of them with no listed clinician."""
    postal = session.get(PostalCode, "0150")
    clinics = []
    for number in range(40):
        clinic = Clinic(
            name=f"{rng.choice(NAMES)} {number}",
            address=rng.choice(("", "Storgata 1")),
            postcode="0150",
            city=postal.place,
            latitude=postal.latitude + rng.uniform(-0.02, 0.02),
            longitude=postal.longitude + rng.uniform(-0.02, 0.02),
            location_source="given",
            phone=rng.choice((None, "+47 22 33 44 55")),
            email=rng.choice((None, "post@klinikk.example")),
            website=rng.choice(WEBSITES),
            booking_url=rng.choice(WEBSITES),
            closed_until=rng.choice((None, None, date(2026, 3, 3), date(2020, 1, 1))),
        )
        session.add(clinic)
        hours = rng.choice(("weekdays", "all day monday", "none"))
        for day in range(7):
            if hours == "weekdays" and day < 5:
                clinic.opening_hours.append(
                    OpeningHours(weekday=day, opens=time(8), closes=time(16))
                )
            elif hours == "all day monday" and day == 0:
                clinic.opening_hours.append(
                    OpeningHours(weekday=day, opens=time(0), closes=time(23, 59))
                )
        session.flush()
        for index in range(rng.choice((0, 1, 2, 3))):
            profession = rng.choice(tuple(Profession))
            answer = rng.choice((True, False, None))
            clinician = new_clinician(
                # Two clinicians of one name at a clinic: the practice's id decides.
                rng.choice(("Åse Berg", "Ola Dahl", "Kari Lie", "Ole Berg")),
                licence_status=rng.choice(
                    (LicenceStatus.VALID, LicenceStatus.UNCHECKED, LicenceStatus.SUSPENDED)
                ),
            )
            make_practice(
                session,
                clinic,
                clinician,
                profession,
                services=rng.sample(("manual-therapy", "exercise-therapy", "massage"), index),
                public_agreement=profession is not Profession.CHIROPRACTOR and rng.random() < 0.5,
                accepts_new_patients=answer,
                accepts_new_patients_confirmed_at=rng.choice(CONFIRMED)
                if answer is not None
                else None,
                active=rng.random() > 0.15,
            )
        clinics.append(clinic)
    session.commit()
    return clinics


def _as_the_models_say(clinic: Clinic, moment: datetime) -> ClinicCard:
    listed = clinic.listed_practices
    return ClinicCard(
        id=clinic.id,
        name=clinic.name,
        slug=slugify(clinic.name),
        address=clinic.address,
        postcode=clinic.postcode,
        city=clinic.city,
        latitude=clinic.latitude,
        longitude=clinic.longitude,
        phone=clinic.phone,
        email=clinic.email,
        website=http_url(clinic.website),
        booking_url=http_url(clinic.booking_url),
        reopens_on=clinic.closed_until
        if clinic.is_closed_on(moment.astimezone(NORWAY).date())
        else None,
        clinicians=tuple(
            CardClinician(
                p.clinician.name, p.clinician.hpr_number, p.profession, p.public_agreement
            )
            for p in listed
        ),
        professions=tuple(clinic.professions),
        agreement_holders=tuple(p.clinician.name for p in listed if p.public_agreement),
        accepts_new_patients=clinic.accepts_new_patients_as_of(moment),
        open_now=is_open_at(clinic, moment),
        offered=tuple(tuple(p.services) for p in listed),
    )


def test_cards_say_what_the_clinic_models_say_at_any_moment(session):
    clinics = _directory(session, random.Random(7))
    listed_ids = set(session.scalars(select(ListedClinic.clinic_id)))
    ranked = [(index / 10, clinic.id) for index, clinic in enumerate(clinics)]
    random.Random(8).shuffle(ranked)
    shown = [(km, clinic_id) for km, clinic_id in ranked if clinic_id in listed_ids]
    assert 10 < len(shown) < len(ranked)  # the directory has both kinds
    by_id = {clinic.id: clinic for clinic in clinics}
    for moment in MOMENTS:
        hits = load_cards(session, ranked, moment, with_services=True)
        # In the search's order, with its distances; a clinic not listed is left out.
        assert [(hit.distance_km, hit.clinic.id) for hit in hits] == shown
        for hit in hits:
            assert hit.clinic == _as_the_models_say(by_id[hit.clinic.id], moment), moment


def test_cards_leave_out_services_unless_asked_and_clinics_gone(session):
    clinics = _directory(session, random.Random(9))
    listed = [clinic.id for clinic in clinics if clinic.listed_practices]
    moment = MOMENTS[1]
    hits = load_cards(session, [(1.0, listed[0]), (2.0, 10**9)], moment)
    assert [hit.clinic.id for hit in hits] == [listed[0]]
    assert hits[0].clinic.offered == ()
    assert load_cards(session, [], moment) == []


def test_a_results_page_loads_no_clinic_model(app, client, session):
    _directory(session, random.Random(10))
    loaded = []

    def count(target, _context):
        loaded.append(target)

    event.listen(Clinic, "load", count)
    try:
        page = client.get("/find?postcode=0150&radius=10")
    finally:
        event.remove(Clinic, "load", count)
    assert page.status_code == 200
    assert b'class="clinic ds-card"' in page.data
    assert loaded == []
