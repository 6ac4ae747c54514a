"""Staff keep the directory: list, create, edit, verify, deactivate — each change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from babel.dates import format_date
from sqlalchemy import func, select

from clinic_finder.extensions import db
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    LocationSource,
    Profession,
    now_utc,
    today,
)

from .conftest import post_form
from .factories import make_clinic

CLINIC_FORM = {
    "name": "Ny Klinikk",
    "org_number": "",
    "address": "Storgata 10",
    "postcode": "0155",
    "city": "",
    "phone": "22 11 22 33",
    "email": "post@ny-klinikk.example",
    "website": "https://ny-klinikk.example/",
    "accepts_new_patients": "yes",
    "closed_until": "",
    "latitude": "",
    "longitude": "",
}


def _clinic_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Clinic))


def _audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_staff_create_clinic_normalises_and_audits(app, staff_client):
    response = post_form(staff_client, "/staff/clinics/new", **CLINIC_FORM)
    assert response.status_code == 302
    with app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert clinic.phone == "+47 22 11 22 33"
        assert clinic.city == "Oslo"
        assert clinic.location_source is LocationSource.POSTCODE
        assert clinic.accepts_new_patients is True
        assert clinic.accepts_new_patients_confirmed_at is not None
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
        ("latitude", "59.9", "both latitude and longitude"),
        ("name", "", "This field is required"),
    ],
)
def test_staff_clinic_form_rejects_bad_values(app, staff_client, field, value, message):
    response = post_form(staff_client, "/staff/clinics/new", **{**CLINIC_FORM, field: value})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert _clinic_count(app) == 0


def test_staff_coordinates_far_from_postcode_are_refused(app, staff_client):
    response = post_form(
        staff_client,
        "/staff/clinics/new",
        **{**CLINIC_FORM, "latitude": "60.39", "longitude": "5.32"},
    )
    assert "km from postcode 0155" in response.get_data(as_text=True)
    assert _clinic_count(app) == 0


def test_staff_edit_records_old_and_new_values(app, staff_client, session):
    clinic = make_clinic(session, name="Gamle Navn", phone="+47 22 33 44 55")
    session.commit()
    url = f"/staff/clinics/{clinic.id}/edit"
    form = {
        **CLINIC_FORM,
        "name": "Nytt Navn",
        "postcode": clinic.postcode,
        "address": clinic.address,
        "phone": "+47 22 33 44 66",
    }
    assert post_form(staff_client, url, **form).status_code == 302
    session.expire_all()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "clinic.update")).one()
    assert entry.changes["name"] == ["Gamle Navn", "Nytt Navn"]
    assert entry.changes["phone"] == ["+47 22 33 44 55", "+47 22 33 44 66"]
    assert session.get(Clinic, clinic.id).name == "Nytt Navn"


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


def test_stale_new_patient_answer_shows_as_unknown(client, session):
    make_clinic(
        session,
        accepts_new_patients=True,
        accepts_new_patients_confirmed_at=now_utc() - timedelta(days=91),
    )
    session.commit()
    body = client.get("/api/v1/clinics?postcode=0150").get_json()
    assert body["results"][0]["accepts_new_patients"] is None
    assert "Unknown — ask the clinic" in client.get("/find?postcode=0150").get_data(as_text=True)


def test_fresh_new_patient_answer_is_shown(client, session):
    make_clinic(session, accepts_new_patients=False)
    session.commit()
    assert (
        client.get("/api/v1/clinics?postcode=0150").get_json()["results"][0]["accepts_new_patients"]
        is False
    )


def test_temporarily_closed_clinic_says_when_it_reopens(client, session):
    reopens = today() + timedelta(days=10)
    make_clinic(session, closed_until=reopens)
    session.commit()
    page = client.get("/find?postcode=0150").get_data(as_text=True)
    expected = format_date(reopens, "medium", locale="en")
    assert f"Temporarily closed — reopens {expected}." in page
    body = client.get("/api/v1/clinics?postcode=0150").get_json()
    assert body["results"][0]["closed_until"] == reopens.isoformat()


def test_add_clinician_refuses_taken_hpr_number(app, staff_client, session):
    clinic = make_clinic(session)
    session.commit()
    taken = clinic.clinicians[0].hpr_number
    url = f"/staff/clinics/{clinic.id}/clinicians/new"
    response = post_form(
        staff_client,
        url,
        name="Ny Person",
        profession="chiropractor",
        hpr_number=taken,
        languages="nb",
        services="",
    )
    assert response.status_code == 200
    assert f"HPR number {taken} already belongs to" in response.get_data(as_text=True)
    response = post_form(
        staff_client,
        url,
        name="Ny Person",
        profession="chiropractor",
        hpr_number="12ab",
        languages="",
        services="",
    )
    assert "must be 1 to 9 digits" in response.get_data(as_text=True)
    response = post_form(
        staff_client,
        url,
        name="Ny Person",
        profession="chiropractor",
        hpr_number="7654321",
        languages="nb, en",
        services="dry needling; shockwave",
    )
    assert response.status_code == 302
    session.expire_all()
    added = session.scalar(select(Clinician).where(Clinician.hpr_number == "7654321"))
    assert added.languages == ["nb", "en"] and added.services == ["dry needling", "shockwave"]
    assert added.profession is Profession.CHIROPRACTOR


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("services", "; ".join(f"behandling {n}" for n in range(10_000)), "at most 30 items"),
        ("languages", ", ".join(f"l{n}" for n in range(3_000)), "at most 30 items, not 3000"),
        ("services", "massasje; " + "x" * 81, "each item at most 80 characters"),
    ],
)
def test_clinician_form_refuses_lists_past_the_caps(
    app, staff_client, session, field, value, message
):
    clinic = make_clinic(session, professions=())
    session.commit()
    form = {"name": "Ny Person", "profession": "chiropractor", "hpr_number": "7654321"}
    form |= {"languages": "nb", "services": "", field: value}
    response = post_form(staff_client, f"/staff/clinics/{clinic.id}/clinicians/new", **form)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page and 'aria-invalid="true"' in page
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Clinician)) == 0


def test_clinician_who_left_is_not_shown_to_patients(client, staff_client, session):
    clinic = make_clinic(session, professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST))
    session.commit()
    leaving = clinic.clinicians[0]
    post_form(
        staff_client, f"/staff/clinics/{clinic.id}", f"/staff/clinicians/{leaving.id}/deactivate"
    )
    result = client.get("/api/v1/clinics?postcode=0150").get_json()["results"][0]
    assert leaving.hpr_number not in [c["hpr_number"] for c in result["clinicians"]]
    assert len(result["clinicians"]) == 1


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
