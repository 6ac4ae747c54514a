"""Keeping the directory: staff create, change, verify and retire clinics and clinicians.

Every function takes the session and the acting staff member, records what it changed in
the audit log, and leaves the commit to its caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from .audit import apply_changes, record, to_json_value
from .importer import Locate, locate_at_postcode
from .models import (
    Clinic,
    Clinician,
    LocationSource,
    PostalCode,
    Profession,
    StaffUser,
    now_utc,
)


class DirectoryError(ValueError):
    """A change that would break one of the directory's rules."""


@dataclass(frozen=True)
class ClinicFilters:
    """What staff narrow the clinic list by."""

    text: str = ""
    profession: Profession | None = None
    active: bool | None = True
    precision: LocationSource | None = None


def staff_clinic_query(filters: ClinicFilters) -> Select:
    """Select clinics matching the staff list's search box and filters, by name."""
    query = select(Clinic).options(selectinload(Clinic.clinicians)).order_by(Clinic.name, Clinic.id)
    if filters.text:
        pattern = f"%{filters.text.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Clinic.name).like(pattern),
                Clinic.postcode.like(pattern),
                func.lower(Clinic.city).like(pattern),
            )
        )
    if filters.profession is not None:
        query = query.where(
            Clinic.clinicians.any(
                (Clinician.profession == filters.profession) & Clinician.active.is_(True)
            )
        )
    if filters.active is not None:
        query = query.where(Clinic.active.is_(filters.active))
    if filters.precision is not None:
        query = query.where(Clinic.location_source == filters.precision)
    return query


def _place_clinic(
    session: Session, values: dict[str, Any], current: Clinic | None, locate: Locate
) -> dict[str, Any]:
    """Fill in coordinates: as given, else kept, else looked up for a new address."""
    values = dict(values)
    latitude, longitude = values.pop("latitude", None), values.pop("longitude", None)
    if latitude is not None and longitude is not None:
        values.update(latitude=latitude, longitude=longitude, location_source=LocationSource.GIVEN)
        return values
    moved = current is None or (
        (current.address, current.postcode) != (values.get("address"), values.get("postcode"))
    )
    if not moved:
        return values
    postal = session.get(PostalCode, values["postcode"])
    if postal is None:
        raise DirectoryError(
            _("Postcode %(postcode)s is not in the register.", postcode=values["postcode"])
        )
    found_latitude, found_longitude, source = locate(
        values.get("address") or "", postal, values.get("city") or ""
    )
    values.update(latitude=found_latitude, longitude=found_longitude, location_source=source)
    return values


def _set_accepts_new_patients(
    clinic: Clinic, accepts_new_patients: bool | None, confirmed_now: bool
) -> None:
    # A changed answer, or staff saying they checked it today, restarts the 90 days.
    if clinic.accepts_new_patients != accepts_new_patients or confirmed_now:
        clinic.accepts_new_patients_confirmed_at = (
            now_utc() if accepts_new_patients is not None else None
        )
    clinic.accepts_new_patients = accepts_new_patients


def create_clinic(
    session: Session,
    actor: StaffUser,
    values: dict[str, Any],
    locate: Locate = locate_at_postcode,
) -> Clinic:
    """Add a clinic; without coordinates it is placed by ``locate``."""
    values = _place_clinic(session, values, None, locate)
    accepts_new_patients = values.pop("accepts_new_patients", None)
    values.pop("accepts_new_patients_confirmed", None)
    clinic = Clinic(**values, active=True)
    _set_accepts_new_patients(clinic, accepts_new_patients, confirmed_now=True)
    session.add(clinic)
    session.flush()
    record(
        session,
        actor,
        "clinic.create",
        "clinic",
        clinic.id,
        {name: to_json_value(value) for name, value in values.items()},
        summary=clinic.name,
    )
    return clinic


def update_clinic(
    session: Session,
    actor: StaffUser,
    clinic: Clinic,
    values: dict[str, Any],
    locate: Locate = locate_at_postcode,
) -> dict[str, list[Any]]:
    """Change a clinic's details; return (and audit) what changed."""
    values = _place_clinic(session, values, clinic, locate)
    accepts_new_patients = values.pop("accepts_new_patients", None)
    confirmed_now = bool(values.pop("accepts_new_patients_confirmed", False))
    before = clinic.accepts_new_patients
    _set_accepts_new_patients(clinic, accepts_new_patients, confirmed_now)
    changes = apply_changes(clinic, values)
    if before != accepts_new_patients:
        changes["accepts_new_patients"] = [before, accepts_new_patients]
    elif confirmed_now and accepts_new_patients is not None:
        changes["accepts_new_patients_confirmed_at"] = [None, "now"]
    if changes:
        record(session, actor, "clinic.update", "clinic", clinic.id, changes, summary=clinic.name)
    return changes


def set_clinic_active(session: Session, actor: StaffUser, clinic: Clinic, active: bool) -> None:
    """Deactivate (it leaves search at once) or reactivate a clinic; nothing is deleted."""
    if clinic.active == active:
        return
    clinic.active = active
    action = "clinic.reactivate" if active else "clinic.deactivate"
    record(
        session, actor, action, "clinic", clinic.id, {"active": [not active, active]}, clinic.name
    )


def mark_clinic_verified(session: Session, actor: StaffUser, clinic: Clinic) -> None:
    """Record that a staff member checked the whole entry against the clinic today."""
    clinic.verified_at = now_utc()
    clinic.verified_by = actor
    record(session, actor, "clinic.verify", "clinic", clinic.id, {}, summary=clinic.name)


def _check_hpr_free(session: Session, hpr_number: str, clinician: Clinician | None) -> None:
    holder = session.scalar(select(Clinician).where(Clinician.hpr_number == hpr_number))
    if holder is not None and holder is not clinician:
        raise DirectoryError(
            _(
                "HPR number %(number)s already belongs to %(name)s at %(clinic)s.",
                number=hpr_number,
                name=holder.name,
                clinic=holder.clinic.name,
            )
        )


def add_clinician(
    session: Session, actor: StaffUser, clinic: Clinic, values: dict[str, Any]
) -> Clinician:
    """Add a clinician to a clinic; the HPR number must be new."""
    _check_hpr_free(session, values["hpr_number"], None)
    clinician = Clinician(**values, clinic=clinic, active=True)
    session.add(clinician)
    session.flush()
    record(
        session,
        actor,
        "clinician.create",
        "clinician",
        clinician.id,
        {name: to_json_value(value) for name, value in values.items()},
        summary=f"{clinician.name} at {clinic.name}",
    )
    return clinician


def update_clinician(
    session: Session, actor: StaffUser, clinician: Clinician, values: dict[str, Any]
) -> dict[str, list[Any]]:
    """Change a clinician's details; return (and audit) what changed."""
    _check_hpr_free(session, values["hpr_number"], clinician)
    changes = apply_changes(clinician, values)
    if changes:
        record(
            session, actor, "clinician.update", "clinician", clinician.id, changes, clinician.name
        )
    return changes


def set_clinician_active(
    session: Session, actor: StaffUser, clinician: Clinician, active: bool
) -> None:
    """Mark a clinician as having left (kept for the record) or back again."""
    if clinician.active == active:
        return
    clinician.active = active
    action = "clinician.reactivate" if active else "clinician.deactivate"
    record(
        session,
        actor,
        action,
        "clinician",
        clinician.id,
        {"active": [not active, active]},
        clinician.name,
    )
