"""Staff keep the directory: clinics, the clinicians who work there (practices), the
clinicians as people, and the licences to look at — each change audited."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from babel.dates import format_date
from sqlalchemy import event, func, insert, select, update

from clinic_finder.extensions import db
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    ListedClinic,
    LocationSource,
    Practice,
    Profession,
    now_utc,
    today,
)

from .conftest import post_form
from .factories import make_clinic, make_practice, new_clinician
from .hpr_server import register_from_json

CLINIC_FORM = {
    "name": "Ny Klinikk",
    "org_number": "",
    "address": "Storgata 10",
    "postcode": "0155",
    "city": "",
    "phone": "22 11 22 33",
    "email": "post@ny-klinikk.example",
    "website": "https://ny-klinikk.example/",
    "booking_url": "https://booking.example/ny-klinikk",
    "step_free_access": "yes",
    "accessible_toilet": "",
    "parking": "no",
    "closed_until": "",
    "latitude": "",
    "longitude": "",
}


def _clinic_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Clinic))


def _audit_actions(app) -> list[str]:
    """The audit log's entries about the directory (not sign-ins), oldest first."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_type.in_(("clinic", "clinician", "practice")))
                .order_by(AuditEntry.id)
            )
        )


def test_staff_create_clinic_normalises_and_audits(app, staff_client):
    response = post_form(staff_client, "/staff/clinics/new", **CLINIC_FORM)
    assert response.status_code == 302
    with app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert clinic.phone == "+47 22 11 22 33"
        assert clinic.city == "Oslo"
        assert clinic.location_source is LocationSource.POSTCODE
        assert clinic.booking_url == "https://booking.example/ny-klinikk"
        assert (clinic.step_free_access, clinic.accessible_toilet, clinic.parking) == (
            True,
            None,
            False,
        )
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "clinic")
        ).one()
        assert entry.action == "clinic.create"
        assert entry.actor_label == "staff@clinic-finder.example"
        assert entry.changes["name"] == "Ny Klinikk"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("postcode", "9999", "not in the Norwegian postcode register"),
        ("org_number", "123456789", "not a valid Norwegian organisation number"),
        ("phone", "12", "not a valid phone number"),
        ("email", "post@", "not a valid email address"),
        ("email", "øystein@klinikk.example", "We cannot send email to"),
        ("website", "javascript:alert(1)", "http:// or https://"),
        ("booking_url", "http://booking.example/ny", "must be an https:// address"),
        ("booking_url", "javascript:alert(1)", "must be an https:// address"),
        ("booking_url", "booking.example/ny", "must be an https:// address"),
        ("step_free_access", "maybe", "Not a valid choice"),
        ("parking", "ja", "Not a valid choice"),
        ("latitude", "59.9", "both latitude and longitude"),
        ("name", "", "This field is required"),
        # 0123 Oslo is for P.O. boxes only: no patient can walk in there.
        ("postcode", "0123", "0123 is a postcode for P.O. boxes only; give the postcode of the"),
    ],
)
def test_staff_clinic_form_rejects_bad_values(app, staff_client, field, value, message):
    response = post_form(staff_client, "/staff/clinics/new", **{**CLINIC_FORM, field: value})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert _clinic_count(app) == 0
    if field != "name":  # what was typed is kept, to be corrected
        assert 'value="Ny Klinikk"' in page


def test_staff_coordinates_far_from_postcode_are_refused(app, staff_client):
    response = post_form(
        staff_client,
        "/staff/clinics/new",
        **{**CLINIC_FORM, "latitude": "60.39", "longitude": "5.32"},
    )
    assert "km from postcode 0155" in response.get_data(as_text=True)
    assert _clinic_count(app) == 0


def _selected(page: str, field: str) -> str:
    """The value of the option chosen in a select field of a page."""
    select_html = re.search(rf'<select[^>]*name="{field}"[^>]*>(.*?)</select>', page, re.S)
    chosen = re.search(r'<option selected value="([^"]*)"', select_html.group(1))
    return chosen.group(1) if chosen else ""


def test_staff_edit_records_old_and_new_values(app, staff_client, session):
    clinic = make_clinic(session, name="Gamle Navn", phone="+47 22 33 44 55", step_free_access=True)
    session.commit()
    url = f"/staff/clinics/{clinic.id}/edit"
    shown = staff_client.get(url).get_data(as_text=True)
    assert _selected(shown, "step_free_access") == "yes"
    assert _selected(shown, "parking") == ""
    form = {
        **CLINIC_FORM,
        "name": "Nytt Navn",
        "postcode": clinic.postcode,
        "address": clinic.address,
        "phone": "+47 22 33 44 66",
        "step_free_access": "",
        "parking": "no",
    }
    assert post_form(staff_client, url, **form).status_code == 302
    session.expire_all()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "clinic.update")).one()
    assert entry.changes["name"] == ["Gamle Navn", "Nytt Navn"]
    assert entry.changes["phone"] == ["+47 22 33 44 55", "+47 22 33 44 66"]
    assert entry.changes["step_free_access"] == [True, None]
    assert entry.changes["parking"] == [None, False]
    assert entry.changes["booking_url"] == [None, "https://booking.example/ny-klinikk"]
    assert session.get(Clinic, clinic.id).name == "Nytt Navn"
    page = staff_client.get(f"/staff/clinics/{clinic.id}").get_data(as_text=True)
    assert 'href="https://booking.example/ny-klinikk"' in page


def test_deactivated_clinic_vanishes_from_search_at_once(app, staff_client, client, session):
    clinic = make_clinic(session, name="Snart Borte")
    session.commit()
    assert client.get("/api/v1/clinics?postcode=0150").get_json()["total"] == 1
    response = post_form(
        staff_client, f"/staff/clinics/{clinic.id}", f"/staff/clinics/{clinic.id}/deactivate"
    )
    assert response.status_code == 302
    body = client.get("/api/v1/clinics?postcode=0150").get_json()
    assert all(result["id"] != clinic.id for result in body["results"])
    assert "clinic.deactivate" in _audit_actions(app)
    session.expire_all()
    assert session.get(Clinic, clinic.id) is not None  # kept, not deleted


def test_verify_shows_when_and_by_whom(staff_client, session):
    clinic = make_clinic(session)
    session.commit()
    post_form(staff_client, f"/staff/clinics/{clinic.id}", f"/staff/clinics/{clinic.id}/verify")
    page = staff_client.get(f"/staff/clinics/{clinic.id}").get_data(as_text=True)
    assert "by staff@clinic-finder.example" in page
    assert format_date(today(), "medium", locale="en") in page  # e.g. "Nov 25, 2026"


def test_temporarily_closed_clinic_says_when_it_reopens(client, session):
    reopens = today() + timedelta(days=10)
    make_clinic(session, closed_until=reopens)
    session.commit()
    page = client.get("/find?postcode=0150").get_data(as_text=True)
    expected = format_date(reopens, "medium", locale="en")
    assert f"Temporarily closed — reopens {expected}." in page
    body = client.get("/api/v1/clinics?postcode=0150").get_json()
    assert body["results"][0]["closed_until"] == reopens.isoformat()


# --- practices: clinicians at a clinic ---------------------------------------------------

NEW_PRACTICE = {
    "hpr_number": "7654321",
    "name": "Ny Person",
    "languages": "nb, en",
    "profession": "physiotherapist",
    "services": "dry needling; exercise therapy",
    "agreement_municipality": "",
    "accepts_new_patients": "yes",
}


def _add_at(staff_client, clinic, **changes):
    """Post the add-a-clinician form of a clinic."""
    url = f"/staff/clinics/{clinic.id}/clinicians/new"
    data = {name: value for name, value in {**NEW_PRACTICE, **changes}.items() if value is not None}
    return post_form(staff_client, url, **data)


def _edit_form(practice, **changes) -> dict[str, str]:
    """The edit form of a practice as a browser sends it unchanged, then ``changes``."""
    form = {
        "profession": practice.profession.value,
        "services": "; ".join(practice.services),
        "public_agreement": "y" if practice.public_agreement else None,
        "agreement_municipality": practice.agreement_municipality or "",
        "accepts_new_patients": {True: "yes", False: "no"}.get(practice.accepts_new_patients, ""),
        "active": "y" if practice.active else None,
    } | changes
    return {name: value for name, value in form.items() if value is not None}


def _listed_hpr_numbers(client, postcode: str) -> dict[int, list[str]]:
    """The clinics patients find near a postcode, with the HPR numbers they list."""
    body = client.get(f"/api/v1/clinics?postcode={postcode}&radius=5").get_json()
    return {
        result["id"]: [clinician["hpr_number"] for clinician in result["clinicians"]]
        for result in body["results"]
    }


def test_add_clinician_creates_the_person_and_the_practice_and_audits(app, staff_client, session):
    clinic = make_clinic(session, professions=())
    session.commit()
    response = _add_at(staff_client, clinic, public_agreement="y")
    assert response.status_code == 302
    session.expire_all()
    clinician = session.scalar(select(Clinician).where(Clinician.hpr_number == "7654321"))
    assert clinician.name == "Ny Person" and clinician.languages == ["nb", "en"]
    practice = clinician.practices[0]
    assert practice.clinic_id == clinic.id and practice.active
    assert practice.profession is Profession.PHYSIOTHERAPIST
    assert practice.services == ["dry-needling", "exercise-therapy"]
    # An agreement without a municipality is with the clinic's own.
    assert practice.public_agreement and practice.agreement_municipality == "Oslo"
    assert practice.accepts_new_patients is True
    assert practice.accepts_new_patients_confirmed_at is not None
    assert _audit_actions(app) == ["clinician.create", "practice.create"]
    page = staff_client.get(f"/staff/clinics/{clinic.id}").get_data(as_text=True)
    assert ">Ny Person</a>" in page and "7654321" in page
    assert "Yes — Oslo" in page and "practice.create" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"profession": "chiropractor", "public_agreement": "y"},
            "public_agreement",
            "Chiropractors do not hold a public agreement.",
        ),
        (
            {"agreement_municipality": "Bærum"},
            "agreement_municipality",
            "Give a municipality only with a public agreement.",
        ),
        ({"hpr_number": "12ab"}, "hpr_number", "must be 1 to 9 digits"),
        ({"hpr_number": ""}, "hpr_number", "This field is required"),
        ({"name": ""}, "name", "HPR number 7654321 is new to the directory: give the name."),
        ({"profession": "osteopath"}, "profession", "Not a valid choice"),
        ({"accepts_new_patients": "kanskje"}, "accepts_new_patients", "Not a valid choice"),
        ({"services": "massasje; " + "x" * 81}, "services", "each item at most 80 characters"),
        ({"languages": ", ".join(f"l{n}" for n in range(3_000))}, "languages", "at most 30 items"),
    ],
)
def test_add_clinician_refuses_with_a_field_error_and_keeps_what_was_typed(
    app, staff_client, session, changes, field, message
):
    clinic = make_clinic(session, professions=())
    session.commit()
    response = _add_at(staff_client, clinic, **changes)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    error = re.search(
        rf'<p class="[^"]*\berror-message\b[^"]*"[^>]*\bid="{field}-error">([^<]*)</p>', page
    )
    assert error and message in error.group(1)
    assert re.search(
        rf'id="{field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="{field}"', page
    )
    for name in ("name", "services"):  # what was typed is kept, to be corrected
        if name not in changes:
            assert f'value="{NEW_PRACTICE[name]}"' in page
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Clinician)) == 0
    assert session.scalar(select(func.count()).select_from(Practice)) == 0
    assert _audit_actions(app) == []


def test_same_clinician_twice_at_one_clinic_is_refused(app, staff_client, session):
    clinic = make_clinic(session)
    session.commit()
    taken = clinic.practices[0].clinician.hpr_number
    response = _add_at(staff_client, clinic, hpr_number=taken, profession="manual_therapist")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"(HPR number {taken}) already works here: edit that practice instead." in page
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Practice)) == 1


def test_clinician_from_another_clinic_is_reused_with_their_own_name(app, staff_client, session):
    first = make_clinic(session, name="Første Klinikk", postcode="0150")
    second = make_clinic(session, name="Andre Klinikk", postcode="5003", professions=())
    person = first.practices[0].clinician
    session.commit()
    response = _add_at(
        staff_client,
        second,
        hpr_number=person.hpr_number,
        name="Someone Else",
        languages="sv",
        profession="manual_therapist",
        accepts_new_patients="no",
    )
    assert response.status_code == 302
    flashed = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "also works at Første Klinikk: added here too" in flashed
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Clinician)) == 1
    clinician = session.get(Clinician, person.id)
    assert clinician.name == "Første Klinikk clinician 1" and clinician.languages == ["nb"]
    by_clinic = {practice.clinic_id: practice for practice in clinician.practices}
    assert by_clinic[first.id].profession is Profession.PHYSIOTHERAPIST
    assert by_clinic[second.id].profession is Profession.MANUAL_THERAPIST
    assert by_clinic[second.id].accepts_new_patients is False


def test_clinician_page_lists_every_practice(staff_client, session):
    oslo = make_clinic(session, name="Oslo Fysio", postcode="0150")
    bergen = make_clinic(session, name="Bergen Kiro", postcode="5003", professions=())
    person = oslo.practices[0].clinician
    make_practice(session, bergen, person, Profession.CHIROPRACTOR, services=["shockwave"])
    session.commit()
    clinic_page = staff_client.get(f"/staff/clinics/{oslo.id}").get_data(as_text=True)
    assert f'href="/staff/clinicians/{person.id}"' in clinic_page
    page = staff_client.get(f"/staff/clinicians/{person.id}").get_data(as_text=True)
    assert f'href="/staff/clinics/{oslo.id}">Oslo Fysio</a>' in page
    assert f'href="/staff/clinics/{bergen.id}">Bergen Kiro</a>' in page
    assert "Physiotherapist" in page and "Chiropractor" in page and "shockwave" in page
    assert person.hpr_number in page and "Not checked yet" in page


def test_edit_clinician_renames_them_at_every_clinic(app, staff_client, client, session):
    oslo = make_clinic(session, name="Oslo Fysio", postcode="0150")
    person = oslo.practices[0].clinician
    nearby = make_clinic(session, name="Nabo Fysio", postcode="0151", professions=())
    make_practice(session, nearby, person)
    session.commit()
    url = f"/staff/clinicians/{person.id}/edit"
    assert 'value="nb"' in staff_client.get(url).get_data(as_text=True)
    response = post_form(staff_client, url, name="Kari Nordmann", languages="nb; se")
    assert response.headers["Location"] == f"/staff/clinicians/{person.id}"
    body = client.get("/api/v1/clinics?postcode=0150&radius=5").get_json()
    shown = {
        (result["name"], clinician["name"], tuple(clinician["languages"]))
        for result in body["results"]
        for clinician in result["clinicians"]
    }
    assert shown == {
        ("Oslo Fysio", "Kari Nordmann", ("nb", "se")),
        ("Nabo Fysio", "Kari Nordmann", ("nb", "se")),
    }
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "clinician.update")).one()
    assert entry.changes["languages"] == [["nb"], ["nb", "se"]]
    assert post_form(staff_client, url, name="", languages="").status_code == 200


def test_practice_form_takes_services_in_either_language_and_shows_the_staff_members(
    app, staff_client, session
):
    clinic = make_clinic(session, services=["massage"])
    practice = clinic.practices[0]
    session.commit()
    url = f"/staff/practices/{practice.id}/edit"
    response = post_form(
        staff_client,
        url,
        **_edit_form(practice, services="Tørrnåling, exercise therapy; KINESIOTAPE"),
    )
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Practice, practice.id).services == [
        "dry-needling",
        "exercise-therapy",
        "taping",
    ]
    english = staff_client.get(url).get_data(as_text=True)
    assert 'value="Dry needling; Exercise therapy; Taping"' in english
    norwegian = staff_client.get(url + "?lang=nb").get_data(as_text=True)
    assert 'value="Tørrnåling; Treningsterapi; Taping"' in norwegian
    assert "Trykkbølgebehandling" in norwegian  # the list of services the form knows


def test_practice_form_refuses_a_service_it_does_not_know_naming_it(app, staff_client, session):
    clinic = make_clinic(session, services=["massage"])
    practice = clinic.practices[0]
    session.commit()
    url = f"/staff/practices/{practice.id}/edit"
    response = post_form(
        staff_client, url, **_edit_form(practice, services="massasje; Graston; akupunktur")
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    error = re.search(
        r'<p class="[^"]*\berror-message\b[^"]*"[^>]*\bid="services-error">([^<]*)</p>', page
    )
    assert error and "Graston" in error.group(1) and "akupunktur" not in error.group(1)
    assert 'value="massasje; Graston; akupunktur"' in page
    session.expire_all()
    assert session.get(Practice, practice.id).services == ["massage"]


def test_edit_practice_records_old_and_new_values(app, staff_client, session):
    clinic = make_clinic(session, services=["massage"])
    practice = clinic.practices[0]
    session.commit()
    url = f"/staff/practices/{practice.id}/edit"
    page = staff_client.get(url).get_data(as_text=True)
    assert _selected(page, "profession") == "physiotherapist"
    assert 'value="Massage"' in page
    form = _edit_form(
        practice,
        profession="manual_therapist",
        services="massage; dry needling",
        public_agreement="y",
        agreement_municipality="Bærum",
        accepts_new_patients="yes",
    )
    response = post_form(staff_client, url, **form)
    assert response.headers["Location"] == f"/staff/clinics/{clinic.id}"
    session.expire_all()
    practice = session.get(Practice, practice.id)
    assert practice.profession is Profession.MANUAL_THERAPIST
    assert practice.services == ["massage", "dry-needling"]
    assert (practice.public_agreement, practice.agreement_municipality) == (True, "Bærum")
    assert practice.accepts_new_patients is True
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "practice.update")).one()
    assert entry.object_type == "practice" and entry.object_id == practice.id
    assert entry.changes["profession"] == ["physiotherapist", "manual_therapist"]
    assert entry.changes["agreement_municipality"] == [None, "Bærum"]
    assert entry.changes["accepts_new_patients"] == [None, True]
    history = staff_client.get(f"/staff/clinics/{clinic.id}").get_data(as_text=True)
    assert "practice.update" in history


@pytest.mark.parametrize(
    ("profession", "changes", "field", "message"),
    [
        (
            Profession.PHYSIOTHERAPIST,
            {"profession": "chiropractor"},  # the agreement stays ticked
            "public_agreement",
            "Chiropractors do not hold a public agreement.",
        ),
        (
            Profession.CHIROPRACTOR,
            {"public_agreement": "y"},
            "public_agreement",
            "Chiropractors do not hold a public agreement.",
        ),
        (
            Profession.PHYSIOTHERAPIST,
            {"public_agreement": None, "agreement_municipality": "Oslo"},
            "agreement_municipality",
            "Give a municipality only with a public agreement.",
        ),
        (Profession.PHYSIOTHERAPIST, {"profession": ""}, "profession", "This field is required"),
        (Profession.PHYSIOTHERAPIST, {"profession": "lege"}, "profession", "Not a valid choice"),
        (
            Profession.PHYSIOTHERAPIST,
            {"agreement_municipality": "x" * 101},
            "agreement_municipality",
            "Field cannot be longer than 100 characters.",
        ),
    ],
)
def test_edit_practice_refuses_what_norway_does_not_have(
    app, staff_client, session, profession, changes, field, message
):
    clinic = make_clinic(
        session,
        professions=(profession,),
        helfo_agreement=profession is not Profession.CHIROPRACTOR,
        services=["massage"],
    )
    practice = clinic.practices[0]
    session.commit()
    url = f"/staff/practices/{practice.id}/edit"
    response = post_form(staff_client, url, **_edit_form(practice, services="typed", **changes))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    error = re.search(
        rf'<p class="[^"]*\berror-message\b[^"]*"[^>]*\bid="{field}-error">([^<]*)</p>', page
    )
    assert error and message in error.group(1)
    assert 'value="typed"' in page
    assert _audit_actions(app) == []
    session.expire_all()
    assert session.get(Practice, practice.id).services == ["massage"]


def test_new_patient_answer_lapses_and_confirmed_today_restarts_it(
    app, staff_client, client, session
):
    clinic = make_clinic(session, accepts_new_patients=True)
    practice = clinic.practices[0]
    session.execute(
        update(Practice)
        .where(Practice.id == practice.id)
        .values(accepts_new_patients_confirmed_at=now_utc() - timedelta(days=91))
    )
    session.commit()
    result = client.get("/api/v1/clinics?postcode=0150").get_json()["results"][0]
    assert result["clinicians"][0]["accepts_new_patients"] is None
    page = staff_client.get(f"/staff/clinics/{clinic.id}").get_data(as_text=True)
    assert "more than 90 days ago" in page
    url = f"/staff/practices/{practice.id}/edit"
    # The same answer, saved without "confirmed today": nothing changes, still stale.
    post_form(staff_client, url, **_edit_form(practice))
    assert _audit_actions(app) == []
    post_form(staff_client, url, **_edit_form(practice, accepts_new_patients_confirmed="y"))
    result = client.get("/api/v1/clinics?postcode=0150").get_json()["results"][0]
    assert result["clinicians"][0]["accepts_new_patients"] is True
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "practice.update")).one()
    assert entry.changes == {"accepts_new_patients_confirmed_at": [None, "now"]}


def test_leaving_one_clinic_leaves_the_clinician_at_the_other(app, staff_client, client, session):
    alone = make_clinic(session, name="Alene", postcode="0150")
    shared = make_clinic(session, name="Felles", postcode="0151")
    person = alone.practices[0].clinician
    make_practice(session, shared, person, Profession.MANUAL_THERAPIST)
    session.commit()
    colleague = shared.practices[0].clinician.hpr_number
    before = _listed_hpr_numbers(client, "0150")
    assert before[alone.id] == [person.hpr_number]
    assert set(before[shared.id]) == {person.hpr_number, colleague}
    leaving = next(p for p in person.practices if p.clinic_id == alone.id)
    response = post_form(
        staff_client,
        f"/staff/clinics/{alone.id}",
        f"/staff/practices/{leaving.id}/deactivate",
    )
    assert response.headers["Location"] == f"/staff/clinics/{alone.id}"
    listed = _listed_hpr_numbers(client, "0150")
    # Nobody is left at the first clinic: it leaves the search index; the other keeps them.
    assert alone.id not in listed
    assert set(listed[shared.id]) == {person.hpr_number, colleague}
    session.expire_all()
    assert session.get(ListedClinic, alone.id) is None
    assert session.get(ListedClinic, shared.id) is not None
    assert "practice.deactivate" in _audit_actions(app)
    page = staff_client.get(f"/staff/clinics/{alone.id}").get_data(as_text=True)
    assert "Has left" in page and "Mark as back" in page
    post_form(
        staff_client, f"/staff/clinics/{alone.id}", f"/staff/practices/{leaving.id}/reactivate"
    )
    assert _listed_hpr_numbers(client, "0150")[alone.id] == [person.hpr_number]


def test_unticking_works_here_in_the_edit_form_is_leaving(app, staff_client, client, session):
    clinic = make_clinic(session, professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST))
    leaving, staying = clinic.practices
    session.commit()
    url = f"/staff/practices/{leaving.id}/edit"
    assert post_form(staff_client, url, **_edit_form(leaving, active=None)).status_code == 302
    assert _listed_hpr_numbers(client, "0150") == {clinic.id: [staying.clinician.hpr_number]}


def test_unknown_practice_or_clinician_is_not_found(staff_client):
    assert staff_client.get("/staff/practices/999/edit").status_code == 404
    assert staff_client.get("/staff/clinicians/999").status_code == 404
    assert staff_client.get("/staff/clinicians/999/edit").status_code == 404


# --- licences to look at -----------------------------------------------------------------


def _checked(clinician, status, days_ago=1, **fields):
    clinician.licence_status = status
    clinician.licence_checked_at = now_utc() - timedelta(days=days_ago)
    for name, value in fields.items():
        setattr(clinician, name, value)
    return clinician


def test_licences_page_lists_a_suspended_clinician_and_not_a_valid_one(staff_client, session):
    clinic = make_clinic(session, name="Fjordklinikken")
    other = make_clinic(session, name="Byklinikken", postcode="0151", professions=())
    suspended = _checked(
        clinic.practices[0].clinician,
        LicenceStatus.SUSPENDED,
        licence_categories=["FT"],
        licence_valid_from=date(2015, 6, 1),
        licence_valid_to=date(2030, 1, 1),
    )
    make_practice(session, other, suspended, active=False)
    valid = _checked(new_clinician("Gyldig Person"), LicenceStatus.VALID, licence_categories=["FT"])
    make_practice(session, other, valid)
    session.commit()
    page = staff_client.get("/staff/licences").get_data(as_text=True)
    assert f'href="/staff/clinicians/{suspended.id}">{suspended.name}</a>' in page
    assert "Suspended" in page and "FT" in page
    assert format_date(date(2015, 6, 1), "medium", locale="en") in page
    assert format_date(date(2030, 1, 1), "medium", locale="en") in page
    assert f'href="/staff/clinics/{clinic.id}">Fjordklinikken</a>' in page
    assert f'href="/staff/clinics/{other.id}">Byklinikken</a> (has left)' in page
    assert "Gyldig Person" not in page
    # The menu leads there.
    assert 'href="/staff/licences"' in staff_client.get("/staff/").get_data(as_text=True)


def test_licences_page_puts_the_newest_check_first_and_counts_the_rest(staff_client, session):
    clinic = make_clinic(session, professions=())
    for name, status, days_ago in (
        ("Gammel Sjekk", LicenceStatus.EXPIRED, 40),
        ("Ny Sjekk", LicenceStatus.NOT_FOUND, 2),
        ("Midt I", LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION, 10),
        ("Gyldig Gammel", LicenceStatus.VALID, 31),
    ):
        make_practice(session, clinic, _checked(new_clinician(name), status, days_ago))
    for number in range(3):
        make_practice(session, clinic, new_clinician(f"Usjekket {number}"))
    session.commit()
    page = staff_client.get("/staff/licences").get_data(as_text=True)
    assert page.index("Ny Sjekk") < page.index("Midt I") < page.index("Gammel Sjekk")
    assert "Not found in HPR" in page and "No authorisation for the profession" in page
    assert "Expired" in page and "Usjekket" not in page and "Gyldig Gammel" not in page
    assert "3 clinicians not checked yet" in page
    assert "2 checks older than 30 days." in page


def test_hidden_clinician_is_not_shown_to_patients_but_staff_see_why(staff_client, client, session):
    clinic = make_clinic(session, professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST))
    hidden = _checked(clinic.practices[0].clinician, LicenceStatus.EXPIRED)
    session.commit()
    listed = _listed_hpr_numbers(client, "0150")[clinic.id]
    assert hidden.hpr_number not in listed and len(listed) == 1
    page = staff_client.get(f"/staff/clinicians/{hidden.id}").get_data(as_text=True)
    assert "Expired" in page and "Hidden from patients at every clinic" in page


def test_check_again_says_when_licence_checks_are_off(staff_client, session):
    clinician = make_clinic(session).practices[0].clinician
    session.commit()
    page = staff_client.get(f"/staff/clinicians/{clinician.id}").get_data(as_text=True)
    assert "Licence checks are off: HPR_URL is not set." in page
    response = post_form(
        staff_client,
        "/staff/licences",
        f"/staff/clinicians/{clinician.id}/check-licence?back=licences",
    )
    assert response.headers["Location"] == "/staff/licences"
    page = staff_client.get("/staff/licences").get_data(as_text=True)
    # Said twice: the message about the button pressed, and the page's own note.
    assert page.count("Licence checks are off: HPR_URL is not set.") == 2
    assert "Check again" not in page
    # Without its CSRF token the button does nothing.
    response = staff_client.post(f"/staff/clinicians/{clinician.id}/check-licence")
    assert response.status_code in (302, 400)


def _approval(category: str, suspended: bool = False) -> dict:
    """One authorisation as the loopback HPR's register holds it (tests/hpr_server.py)."""
    entry = {"category": category, "valid_from": "2012-08-01", "valid_to": None}
    if suspended:
        entry["suspensions"] = [{"from": "2026-10-01", "to": None}]
    return entry


def _in_hpr(hpr_server, hpr_number: str, *approvals: dict) -> None:
    hpr_server.register.update(register_from_json({hpr_number: {"approvals": list(approvals)}}))


def test_check_again_asks_hpr_and_hides_a_suspended_clinician(
    hpr_app, hpr_server, staff_client, client, session
):
    clinic = make_clinic(session)
    clinician = clinic.practices[0].clinician
    session.commit()
    _in_hpr(hpr_server, clinician.hpr_number, _approval("FT", suspended=True))
    page = staff_client.get(f"/staff/clinicians/{clinician.id}").get_data(as_text=True)
    assert "Check licence again" in page
    response = post_form(
        staff_client,
        f"/staff/clinicians/{clinician.id}",
        f"/staff/clinicians/{clinician.id}/check-licence",
    )
    assert response.headers["Location"] == f"/staff/clinicians/{clinician.id}"
    assert hpr_server.asked_for() == [clinician.hpr_number]
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Checked {clinician.name} against HPR: Suspended." in page
    assert clinic.id not in _listed_hpr_numbers(client, "0150")
    listed = staff_client.get("/staff/licences").get_data(as_text=True)
    assert f">{clinician.name}</a>" in listed and "Check again" in listed
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "licence_checked")).one()
    assert entry.actor_label == "staff@clinic-finder.example"


def test_check_again_from_the_list_goes_back_to_it(hpr_app, hpr_server, staff_client, session):
    clinician = _checked(make_clinic(session).practices[0].clinician, LicenceStatus.EXPIRED)
    session.commit()
    _in_hpr(hpr_server, clinician.hpr_number, _approval("FT"))
    response = post_form(
        staff_client,
        "/staff/licences",
        f"/staff/clinicians/{clinician.id}/check-licence?back=licences",
    )
    assert response.headers["Location"] == "/staff/licences"
    page = staff_client.get("/staff/licences").get_data(as_text=True)
    assert f"Checked {clinician.name} against HPR: Valid." in page
    assert f">{clinician.name}</a>" not in page
    session.expire_all()
    assert session.get(Clinician, clinician.id).licence_status is LicenceStatus.VALID


def test_check_again_while_hpr_is_down_changes_nothing_and_says_so(
    hpr_app, hpr_server, staff_client, session
):
    clinician = _checked(make_clinic(session).practices[0].clinician, LicenceStatus.SUSPENDED)
    session.commit()
    hpr_server.fail("down")
    response = post_form(
        staff_client,
        f"/staff/clinicians/{clinician.id}",
        f"/staff/clinicians/{clinician.id}/check-licence",
    )
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "HPR could not be reached, so the licence was not checked." in page
    session.expire_all()
    assert session.get(Clinician, clinician.id).licence_status is LicenceStatus.SUSPENDED


def test_adding_a_clinician_checks_their_licence_at_once(
    hpr_app, hpr_server, staff_client, session
):
    clinic = make_clinic(session, professions=())
    session.commit()
    # Authorised as a physiotherapist, added as a chiropractor.
    _in_hpr(hpr_server, "7654321", _approval("FT"))
    assert _add_at(staff_client, clinic, profession="chiropractor").status_code == 302
    session.expire_all()
    clinician = session.scalar(select(Clinician).where(Clinician.hpr_number == "7654321"))
    assert clinician.licence_status is LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION
    assert clinician.licence_categories == ["FT"] and clinician.licence_checked_at is not None


def test_saving_a_practice_checks_the_licence_and_hpr_down_keeps_the_change(
    hpr_app, hpr_server, staff_client, session
):
    clinic = make_clinic(session)
    practice = clinic.practices[0]
    session.commit()
    _in_hpr(hpr_server, practice.clinician.hpr_number, _approval("FT"))
    url = f"/staff/practices/{practice.id}/edit"
    post_form(staff_client, url, **_edit_form(practice))
    session.expire_all()
    assert session.get(Clinician, practice.clinician_id).licence_status is LicenceStatus.VALID
    hpr_server.fail("down")
    response = post_form(staff_client, url, **_edit_form(practice, services="massage"))
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "HPR could not be reached" in page
    session.expire_all()
    assert session.get(Practice, practice.id).services == ["massage"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/staff/licences"),
        ("get", "/staff/clinicians/1"),
        ("get", "/staff/clinicians/1/edit"),
        ("get", "/staff/practices/1/edit"),
        ("get", "/staff/clinics/1/clinicians/new"),
        ("post", "/staff/clinicians/1/check-licence"),
        ("post", "/staff/practices/1/deactivate"),
    ],
)
def test_directory_pages_send_everyone_else_to_sign_in(client, session, method, path):
    make_clinic(session)
    session.commit()
    # A POST carries a CSRF token, so that it is the sign-in rule that refuses it.
    response = post_form(client, "/staff/sign-in", path) if method == "post" else client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/sign-in")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=fjord", {"Fjordklinikken"}),
        ("q=5003", {"Fjordklinikken"}),
        ("q=troms", {"Tromsø Rygg"}),
        ("profession=chiropractor", {"Tromsø Rygg"}),
        ("status=inactive", {"Lukket"}),
        ("status=all", {"Fjordklinikken", "Tromsø Rygg", "Lukket"}),
        ("precision=given", {"Fjordklinikken", "Tromsø Rygg"}),
    ],
)
def test_clinic_list_search_and_filters(staff_client, session, query, expected):
    make_clinic(session, name="Fjordklinikken", postcode="5003")
    make_clinic(
        session, name="Tromsø Rygg", postcode="9008", professions=(Profession.CHIROPRACTOR,)
    )
    make_clinic(session, name="Lukket", active=False)
    session.commit()
    page = staff_client.get(f"/staff/clinics?{query}").get_data(as_text=True)
    shown = {name for name in ("Fjordklinikken", "Tromsø Rygg", "Lukket") if f">{name}</a>" in page}
    assert shown == expected


def test_clinic_list_profession_filter_reads_who_works_there_now(staff_client, session):
    make_clinic(session, name="Kiro Nå", professions=(Profession.CHIROPRACTOR,))
    gone = make_clinic(session, name="Kiro Før", professions=(Profession.CHIROPRACTOR,))
    gone.practices[0].active = False
    suspended = make_clinic(
        session,
        name="Kiro Suspendert",
        professions=(Profession.CHIROPRACTOR,),
        licence_status=LicenceStatus.SUSPENDED,
    )
    session.commit()
    page = staff_client.get("/staff/clinics?profession=chiropractor").get_data(as_text=True)
    # Staff see a clinic whose clinician is hidden by the licence check: it needs their work.
    assert ">Kiro Nå</a>" in page and f">{suspended.name}</a>" in page
    assert ">Kiro Før</a>" not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("profession=x", {"Fjordklinikken", "Tromsø Rygg"}),
        ("precision=x", {"Fjordklinikken", "Tromsø Rygg"}),
        ("status=x", {"Fjordklinikken", "Tromsø Rygg"}),
        ("profession=Chiropractor&status=all", {"Fjordklinikken", "Tromsø Rygg", "Lukket"}),
        ("profession=chiropractor&precision=gps", {"Tromsø Rygg"}),
    ],
)
def test_clinic_list_refuses_a_bad_filter_value_with_an_error(
    staff_client, session, query, expected
):
    make_clinic(session, name="Fjordklinikken", postcode="5003")
    make_clinic(
        session, name="Tromsø Rygg", postcode="9008", professions=(Profession.CHIROPRACTOR,)
    )
    make_clinic(session, name="Lukket", active=False)
    session.commit()
    response = staff_client.get(f"/staff/clinics?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not one of these choices; the list uses the default instead." in page
    # The refused filter is left at its default; the others still apply.
    shown = {name for name in ("Fjordklinikken", "Tromsø Rygg", "Lukket") if f">{name}</a>" in page}
    assert shown == expected


def test_admin_reads_audit_log(app, admin_client, session):
    post_form(admin_client, "/staff/clinics/new", **CLINIC_FORM)
    page = admin_client.get("/staff/audit").get_data(as_text=True)
    assert "clinic.create" in page and "admin@clinic-finder.example" in page


def test_staff_api_returns_inactive_clinic(staff_client, session):
    clinic = make_clinic(session, active=False)
    session.commit()
    body = staff_client.get(f"/staff/api/clinics/{clinic.id}").get_json()
    assert body["active"] is False


def test_staff_page_escapes_hostile_names(staff_client, session):
    make_clinic(session, name="<script>alert(1)</script>")
    session.commit()
    page = staff_client.get("/staff/clinics").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_clinic_list_pages_keep_the_filters(staff_client, session):
    for number in range(51):
        make_clinic(session, name=f"Klinikk {number:02d}")
    session.commit()
    page = staff_client.get("/staff/clinics?q=klinikk").get_data(as_text=True)
    assert "Page 1 of 2" in page
    assert 'href="/staff/clinics?page=2&amp;q=klinikk"' in page
    second = staff_client.get("/staff/clinics?q=klinikk&page=2").get_data(as_text=True)
    assert ">Klinikk 50</a>" in second


def test_clinic_list_pages_leave_out_a_refused_filter(staff_client, session):
    for number in range(51):
        make_clinic(session, name=f"Klinikk {number:02d}")
    session.commit()
    page = staff_client.get("/staff/clinics?q=klinikk&precision=x").get_data(as_text=True)
    assert 'href="/staff/clinics?page=2&amp;q=klinikk"' in page


def test_adding_someone_another_staff_member_saved_a_moment_ago_is_a_form_error(
    app, staff_client, session
):
    """Two staff add the same new person at once: the second save meets the unique HPR
    number in the database, and gets a message to send the form again, not a 500."""
    if db.engine.dialect.name != "postgresql":
        # SQLite lets one writer at a time: the other's commit waits for this request.
        pytest.skip("two writers at once need PostgreSQL")
    clinic = make_clinic(session, professions=())
    session.commit()

    saved_by_the_other = []

    def the_other_staff_member_saves_first(_session, _context, _instances):
        if saved_by_the_other:
            return
        saved_by_the_other.append(True)
        with db.engine.begin() as other:
            other.execute(
                insert(Clinician).values(
                    name="Ny Person",
                    hpr_number=NEW_PRACTICE["hpr_number"],
                    languages=["nb"],
                    licence_status=LicenceStatus.UNCHECKED,
                    licence_categories=[],
                    created_at=now_utc(),
                    updated_at=now_utc(),
                )
            )

    event.listen(db.session, "before_flush", the_other_staff_member_saves_first)
    try:
        response = _add_at(staff_client, clinic)
    finally:
        event.remove(db.session, "before_flush", the_other_staff_member_saves_first)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Someone else saved HPR number 7654321 just now" in page
    assert f'value="{NEW_PRACTICE["name"]}"' in page

    # Sent again, the form finds the person the other staff member saved and adds them here.
    assert _add_at(staff_client, clinic).status_code == 302
    session.expire_all()
    clinician = session.scalar(select(Clinician).where(Clinician.hpr_number == "7654321"))
    assert [practice.clinic_id for practice in clinician.practices] == [clinic.id]
