"""Small functions that put clinics, clinicians, their practices and contact requests in the
database for tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from clinic_finder.contact_requests import ContactDetails, create_contact_request
from clinic_finder.hpr import LicenceStatus
from clinic_finder.models import (
    Clinic,
    Clinician,
    ContactRequest,
    LocationSource,
    PostalCode,
    Practice,
    Profession,
    now_utc,
)

_hpr_numbers = itertools.count(8_000_001)


def new_clinician(
    name: str,
    *,
    languages: list[str] | None = None,
    licence_status: LicenceStatus = LicenceStatus.UNCHECKED,
    **fields,
) -> Clinician:
    """A clinician (the person) with a fresh HPR number, not yet working anywhere."""
    fields.setdefault("hpr_number", str(next(_hpr_numbers)))
    return Clinician(
        name=name,
        languages=["nb"] if languages is None else languages,
        licence_status=licence_status,
        **fields,
    )


def make_practice(
    session: Session,
    clinic: Clinic,
    clinician: Clinician,
    profession: Profession = Profession.PHYSIOTHERAPIST,
    **fields,
) -> Practice:
    """Let ``clinician`` work at ``clinic`` (an agreement or a new-patient answer as told)."""
    if fields.get("accepts_new_patients") is not None:
        fields.setdefault("accepts_new_patients_confirmed_at", now_utc())
    fields.setdefault("services", [])
    practice = Practice(clinic=clinic, clinician=clinician, profession=profession, **fields)
    session.add(practice)
    session.flush()
    return practice


def make_clinic(
    session: Session,
    *,
    name: str = "Testklinikken",
    postcode: str = "0150",
    latitude: float | None = None,
    longitude: float | None = None,
    professions: tuple[Profession, ...] = (Profession.PHYSIOTHERAPIST,),
    active: bool = True,
    helfo_agreement: bool = False,
    accepts_new_patients: bool | None = None,
    services: list[str] | None = None,
    languages: list[str] | None = None,
    licence_status: LicenceStatus = LicenceStatus.UNCHECKED,
    **fields,
) -> Clinic:
    """Add a clinic (at its postcode's centre unless told) with one clinician per profession.

    ``helfo_agreement`` gives every non-chiropractor there a public agreement (chiropractors
    never have one); ``accepts_new_patients``, ``services``, ``languages`` and
    ``licence_status`` apply to every clinician made here.
    """
    postal = session.get(PostalCode, postcode)
    assert postal is not None, f"postcode {postcode} not loaded"
    clinic = Clinic(
        name=name,
        address=fields.pop("address", "Testgata 1"),
        postcode=postcode,
        city=fields.pop("city", postal.place),
        latitude=postal.latitude if latitude is None else latitude,
        longitude=postal.longitude if longitude is None else longitude,
        location_source=fields.pop("location_source", LocationSource.GIVEN),
        active=active,
        **fields,
    )
    session.add(clinic)
    for index, profession in enumerate(professions):
        agreement = helfo_agreement and profession is not Profession.CHIROPRACTOR
        clinic.practices.append(
            Practice(
                clinician=new_clinician(
                    f"{name} clinician {index + 1}",
                    languages=languages,
                    licence_status=licence_status,
                ),
                profession=profession,
                services=list(services or []),
                public_agreement=agreement,
                agreement_municipality=postal.municipality if agreement else None,
                accepts_new_patients=accepts_new_patients,
                accepts_new_patients_confirmed_at=now_utc()
                if accepts_new_patients is not None
                else None,
            )
        )
    session.flush()
    return clinic


def make_contact_request(
    session: Session,
    *,
    name: str = "Pia Pasient",
    email: str | None = "pia@example.org",
    phone: str | None = None,
    postcode: str = "0150",
    profession: Profession | None = Profession.PHYSIOTHERAPIST,
    message: str = "Vondt i ryggen og ned i beinet i tre uker",
    clinic: Clinic | None = None,
    clinic_id: int | None = None,
    language: str | None = "nb",
    complaint: str | None = None,
    share: bool = False,
    owner_id: int | None = None,
    created_at: datetime | None = None,
    age: timedelta = timedelta(),
) -> ContactRequest:
    """Store a patient's contact request as the form does (its notices queued), received
    ``age`` ago (or at ``created_at``); return it."""
    request, _messages = create_contact_request(
        session,
        ContactDetails(
            name=name,
            email=email,
            phone=phone,
            postcode=postcode,
            profession=profession,
            message=message,
            duration="weeks",
            contact_time="evening",
            clinic_id=clinic.id if clinic is not None else clinic_id,
            share_message_with_clinic=share,
            complaint=complaint,
        ),
        staff_inbox="inbox@clinic-finder.example",
        base_url="https://finnklinikk.example",
        retention_days=180,
        patient_language=language or "nb",
        staff_language="nb",
    )
    # None: a request from before the patient's language was kept.
    request.language = language
    request.owner_id = owner_id
    request.created_at = created_at or now_utc() - age
    session.flush()
    return request
