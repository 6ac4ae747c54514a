"""Small functions that put clinics in the database for tests."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from clinic_finder.models import (
    Clinic,
    Clinician,
    LocationSource,
    PostalCode,
    Profession,
    now_utc,
)

_hpr_numbers = itertools.count(8_000_001)


def make_clinic(
    session: Session,
    *,
    name: str = "Testklinikken",
    postcode: str = "0150",
    latitude: float | None = None,
    longitude: float | None = None,
    professions: tuple[Profession, ...] = (Profession.PHYSIOTHERAPIST,),
    active: bool = True,
    **fields,
) -> Clinic:
    """Add a clinic (at its postcode's centre unless told) with one clinician per profession."""
    if fields.get("accepts_new_patients") is not None:
        fields.setdefault("accepts_new_patients_confirmed_at", now_utc())
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
    for index, profession in enumerate(professions):
        clinic.clinicians.append(
            Clinician(
                name=f"{name} clinician {index + 1}",
                profession=profession,
                hpr_number=str(next(_hpr_numbers)),
                languages=["nb"],
                services=[],
            )
        )
    session.add(clinic)
    session.flush()
    return clinic
