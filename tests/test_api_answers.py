"""The API's search answers, byte for byte, against those the code gave before issue 16.

``api_answers.json`` holds the answers main's code gave (before the clinics' JSON was kept
ready) for a random directory built here with a fixed seed: several places, radii,
filters, pages, complaints and both languages. Nothing in the directory depends on the
day the test runs (new-patient answers are confirmed days before now or long ago, closures
run to 2099 or ended in 2001), so the answers are the same every day.

Regenerate (only on purpose, from code whose answers are right):
``API_ANSWERS_WRITE=1 .venv/bin/pytest tests/test_api_answers.py -k same_as_before -n 0``.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from clinic_finder import public_json
from clinic_finder.extensions import db
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import (
    NORWAY,
    Clinic,
    Clinician,
    ListedClinic,
    LocationSource,
    PostalCode,
    Practice,
    Profession,
    StoredClinicJson,
    now_utc,
)
from clinic_finder.public_json import answer_json, clinic_json, stored_json
from clinic_finder.services import current_vocabulary

from .helpers import assert_as_recorded, clinic_rows, csv_text, import_text

ANSWERS_FILE = Path(__file__).with_name("api_answers.json")
SEED = 16
# Places with many clinics, a few, and none (Svalbard: the nearest, outside the radius).
CENTRES = ["0150", "0562", "5003", "7011", "9008", "4611"]
SERVICES = [
    "exercise-therapy",
    "manual-therapy",
    "spinal-manipulation",
    "massage",
    "dry-needling",
    "acupuncture",
    "pregnancy-care",
    "pelvic-girdle-pain",
    "headache-treatment",
    "running-analysis",
]
LANGUAGES = ["nb", "en", "pl", "ar", "ti", "so", "de"]
NAMES = [
    "Fysio",
    "Kiropraktikk",
    "Helse & Trening",
    "Rygg <og> Nakke",
    "Senter for «bevegelse»",
    "O'Brien Klinikk",
    "Ærlig Åsane Øst",
    "Ryggklinikken",
]
PEOPLE = ["Kari", "Ola", "Åse", "Jan-Erik", "Marta", "Nadia", "Tesfay", "Ingrid", "Per"]
SURNAMES = ["Hansen", "Nordmann", "Øvrebø", "Kowalski", "Haile", "Berg", "Lie"]

QUERIES = [
    "postcode=0150",
    "postcode=0150&radius=5",
    "postcode=0150&radius=100&limit=7&page=2",
    "postcode=0150&radius=100&limit=7&page=3",
    "postcode=0150&radius=25&profession=chiropractor",
    "postcode=0150&radius=25&profession=physiotherapist&profession=manual_therapist",
    "postcode=0150&helfo=true",
    "postcode=0150&new_patients=true",
    "postcode=0150&language=pl",
    "postcode=0150&step_free=true",
    "postcode=0150&complaint=sciatica",
    "postcode=0150&complaint=low-back-pain&helfo=true&limit=5&page=2",
    "postcode=0562&radius=10&limit=50",
    "postcode=5003&radius=50",
    "postcode=5003&radius=5&language=ar",
    "postcode=7011&radius=100&complaint=neck-pain",
    "postcode=9008&radius=10",
    "postcode=9171",
    "postcode=9171&radius=5&profession=chiropractor",
    "postcode=4611&radius=5",
    "place=Bergen&radius=25&limit=10",
    "postcode=0150&limit=100",
    "postcode=0150&lang=nb",
    "postcode=5003&lang=en&radius=10",
    "postcode=0150&language=zz",
    "postcode=0150&radius=7",
    "postcode=9999",
]


def _moment(rng: random.Random, now: datetime) -> datetime | None:
    """A new-patient answer's confirmation: fresh (shown), stale (unknown) or none."""
    fresh = now - timedelta(days=rng.randint(1, 60))
    return rng.choice([None, fresh, datetime(2001, 3, 4, 5, 6, tzinfo=UTC)])


def build_directory(session) -> None:
    """A seeded random directory around CENTRES: about 180 clinics, every kind of detail.

    Clinic ids and HPR numbers are given, so the answers name the same ones on every
    backend, whatever ran before.
    """
    rng = random.Random(SEED)
    now = now_utc()
    postcodes = {code: session.get(PostalCode, code) for code in CENTRES}
    clinic_id = 9000
    person = 0
    for code, count in zip(CENTRES, (70, 25, 40, 20, 15, 8), strict=True):
        centre = postcodes[code]
        for _ in range(count):
            clinic_id += 1
            active = rng.random() > 0.05
            clinic = Clinic(
                id=clinic_id,
                name=f"{rng.choice(NAMES)} {clinic_id}",
                address=rng.choice(["Storgata 1", "", "Kongens gate 12B", "Vei <3> & 'hus'"]),
                postcode=code,
                city=centre.place,
                latitude=centre.latitude + rng.uniform(-0.3, 0.3) ** 3,
                longitude=centre.longitude + rng.uniform(-0.5, 0.5) ** 3,
                location_source=rng.choice(list(LocationSource)),
                phone=rng.choice([None, "+47 22 33 44 55", "90012345"]),
                email=rng.choice([None, f"post{clinic_id}@klinikk.example"]),
                website=rng.choice([None, f"https://klinikk{clinic_id}.example/"]),
                booking_url=rng.choice([None, f"https://booking.example/{clinic_id}?a=1&b=2"]),
                step_free_access=rng.choice([None, True, False]),
                accessible_toilet=rng.choice([None, True, False]),
                parking=rng.choice([None, True, False]),
                active=active,
                closed_until=rng.choice([None] * 6 + [date(2099, 6, 1), date(2001, 1, 1)]),
            )
            session.add(clinic)
            for _ in range(rng.choice([1, 1, 2, 3, 4])):
                person += 1
                profession = rng.choice(list(Profession))
                agreement = profession is not Profession.CHIROPRACTOR and rng.random() < 0.4
                status = rng.choice(
                    [LicenceStatus.UNCHECKED] * 3
                    + [LicenceStatus.VALID] * 3
                    + [LicenceStatus.SUSPENDED, LicenceStatus.NOT_FOUND]
                )
                checked = status is not LicenceStatus.UNCHECKED
                clinician = Clinician(
                    name=f"{rng.choice(PEOPLE)} {rng.choice(SURNAMES)}",
                    hpr_number=str(7_000_000 + person),
                    languages=rng.sample(LANGUAGES, rng.randint(0, 3)),
                    licence_status=status,
                    licence_categories=[profession.terms.hpr_category] if checked else [],
                    licence_checked_at=datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
                    if checked
                    else None,
                )
                answer = rng.choice([None, True, False])
                clinic.practices.append(
                    Practice(
                        clinician=clinician,
                        profession=profession,
                        services=rng.sample(SERVICES, rng.randint(0, 4)),
                        public_agreement=agreement,
                        agreement_municipality=centre.municipality if agreement else None,
                        accepts_new_patients=answer,
                        accepts_new_patients_confirmed_at=_moment(rng, now)
                        if answer is not None
                        else None,
                        active=rng.random() > 0.1,
                    )
                )
    session.flush()


def answer(client, query: str, **headers: str) -> dict:
    """What the API answers to a search, as the golden file keeps it."""
    response = client.get(f"/api/v1/clinics?{query}", headers=headers)
    return {
        "status": response.status_code,
        "headers": sorted(
            # A cookie's Expires is a date a year from now: its Max-Age says the same.
            [name, re.sub(r"Expires=[^;]*; ", "", value)]
            for name, value in response.headers.items()
            if name not in ("Content-Length", "Date", "X-Request-ID")
        ),
        "body": response.get_data(as_text=True),
    }


def all_answers(client) -> dict:
    answers = {query: answer(client, query) for query in QUERIES}
    answers["postcode=0150 (Accept-Language: nb)"] = answer(
        client, "postcode=0150", **{"Accept-Language": "nb"}
    )
    return answers


def test_answers_are_the_same_as_before(client, session):
    build_directory(session)
    session.commit()
    assert None not in stored_bodies(session).values()  # answered from the stored JSON
    answers = all_answers(client)
    assert_as_recorded(answers, ANSWERS_FILE, "API_ANSWERS_WRITE")


def test_answers_from_stale_rows_are_the_same_as_before(client, session):
    # After an upgrade every row is stale: those clinics are serialized per answer.
    build_directory(session)
    session.commit()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE clinic_json SET body = NULL"))
    answers = all_answers(client)
    before = json.loads(ANSWERS_FILE.read_text())
    for query, expected in before.items():
        assert answers[query] == expected, query


def test_debug_mode_answers_the_same_json_indented(client, session, app):
    # jsonify indents in debug mode: the spliced text is parsed and encoded as a whole.
    build_directory(session)
    session.commit()
    path = "/api/v1/clinics?postcode=0150&complaint=sciatica"
    compact = client.get(path).get_data(as_text=True)
    app.debug = True
    indented = client.get(path).get_data(as_text=True)
    assert indented != compact
    assert json.loads(indented) == json.loads(compact)


# --- the stored JSON is kept in step ------------------------------------------------------


def stored_bodies(session) -> dict[int, str | None]:
    session.expire_all()
    return dict(session.execute(select(StoredClinicJson.clinic_id, StoredClinicJson.body)).all())


def assert_in_step(session) -> None:
    """Every listed clinic's stored JSON is what the serializer gives now; no other is kept."""
    stored = stored_bodies(session)
    listed = set(session.scalars(select(ListedClinic.clinic_id)))
    assert set(stored) == listed
    for clinic in session.scalars(select(Clinic).where(Clinic.id.in_(listed))):
        assert stored[clinic.id] == stored_json(clinic), clinic.id


def test_stored_json_read_back_is_the_serializer_at_any_moment(session):
    build_directory(session)
    session.commit()
    assert_in_step(session)
    vocabulary = current_vocabulary()
    stored = stored_bodies(session)
    # Today, 89 and 91 days on (answers age out), and the day a closure ends.
    for days in (0, 59, 89, 91, 365 * 80):
        now = now_utc() + timedelta(days=days)
        day = now.astimezone(NORWAY).date()
        for clinic in session.scalars(select(Clinic).where(Clinic.id.in_(stored))):
            body, offered = answer_json(stored[clinic.id], now, day, vocabulary)
            assert body == clinic_json(clinic, now, day)
            assert offered == [practice.services for practice in clinic.listed_practices]


def test_stored_json_follows_every_kind_of_change(session, app):
    build_directory(session)
    session.commit()
    clinic = session.scalars(
        select(Clinic).join(ListedClinic, ListedClinic.clinic_id == Clinic.id).order_by(Clinic.id)
    ).first()
    # A clinic edited; a clinician added; one leaving; an agreement changing.
    clinic.phone = "+47 99 88 77 66"
    clinic.closed_until = date(2099, 1, 2)
    session.commit()
    assert_in_step(session)
    added = Clinician(name="Ny Behandler", hpr_number="7999001", languages=["pl"])
    session.add(Practice(clinic=clinic, clinician=added, profession=Profession.PHYSIOTHERAPIST))
    session.commit()
    assert_in_step(session)
    assert "Ny Behandler" in stored_bodies(session)[clinic.id]
    practice = next(p for p in clinic.practices if p.clinician is added)
    practice.public_agreement = True
    practice.agreement_municipality = "Oslo"
    session.commit()
    assert_in_step(session)
    practice.active = False
    session.commit()
    assert_in_step(session)
    assert "Ny Behandler" not in stored_bodies(session)[clinic.id]
    # A licence check that fails hides the clinician everywhere (and a clinic with no one
    # else listed drops out); a clinician's name, shown at every clinic, changes too.
    for practice in clinic.practices:
        practice.clinician.licence_status = LicenceStatus.SUSPENDED
    other = session.scalars(select(Clinician).order_by(Clinician.id.desc())).first()
    other.name = "Omdøpt Behandler"
    session.commit()
    assert_in_step(session)
    assert clinic.id not in stored_bodies(session)
    # A clinic deactivated and deleted.
    last = session.scalars(select(Clinic).order_by(Clinic.id.desc())).first()
    last.active = False
    session.commit()
    assert_in_step(session)


def test_stored_json_follows_an_import(session):
    build_directory(session)
    session.commit()
    import_text(session, csv_text(*clinic_rows(1, 6)))
    assert_in_step(session)
    # The same file with a new phone and one clinician's answer changed: updates.
    import_text(session, csv_text(*clinic_rows(1, 6, phone="+47 22 00 00 00")))
    assert_in_step(session)
    assert sum("+47 22 00 00 00" in (body or "") for body in stored_bodies(session).values()) == 4


def test_sql_by_hand_is_answered_fresh_until_stored(session, client, runner, app):
    build_directory(session)
    session.commit()
    clinic_id = min(stored_bodies(session))  # near 0150
    # As if written from psql: no session, so nothing of the app's runs.
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE clinic SET phone = '+47 11 11 11 11' WHERE id = :id"), {"id": clinic_id}
        )
    assert stored_bodies(session)[clinic_id] is None
    body = client.get("/api/v1/clinics?postcode=0150&limit=100&radius=100").get_json()
    (hit,) = [hit for hit in body["results"] if hit["id"] == clinic_id]
    assert hit["phone"] == "+47 11 11 11 11"
    result = runner.invoke(args=["clinics", "refresh-json"])
    assert result.exit_code == 0 and "Stored the JSON of 1 clinics." in result.output
    assert_in_step(session)


def test_a_staff_edit_stores_a_bounded_part_of_a_backlog(session, runner, monkeypatch):
    # After an upgrade every row is stale; the first edit must not serialize them all
    # (at 100,000 clinics that took about the worker timeout).
    monkeypatch.setattr(public_json, "REFRESH_PER_COMMIT", 3)
    build_directory(session)
    session.commit()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE clinic_json SET body = NULL"))
    listed = sorted(stored_bodies(session))
    assert len(listed) > 10
    clinic = session.get(Clinic, listed[0])  # the oldest: never among "the newest first"
    clinic.phone = "+47 99 88 77 66"
    session.commit()
    bodies = stored_bodies(session)
    assert "+47 99 88 77 66" in bodies[clinic.id]
    assert sum(body is not None for body in bodies.values()) == 3
    # A clinician renamed: every clinic they work at is stored, even beyond the bound.
    clinician = session.scalars(
        select(Clinician)
        .join(Practice)
        .where(Practice.clinic_id == listed[1])
        .order_by(Clinician.id)
    ).first()
    clinician.name = "Omdøpt Behandler"
    session.commit()
    bodies = stored_bodies(session)
    assert bodies[listed[1]] == stored_json(session.get(Clinic, listed[1]))
    # The job worker stores the rest when it starts, as a deploy restarts it.
    result = runner.invoke(args=["jobs", "work"])
    assert result.exit_code == 0, result.output
    assert "Stored the JSON of" in result.output
    assert_in_step(session)
