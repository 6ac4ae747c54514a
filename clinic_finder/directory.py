"""Keeping the directory: staff create, change, verify and retire clinics, the clinicians
(the people) and their practices (a clinician at a clinic), and find licences to look at.

Every function that changes something takes the session and the acting staff member,
records what it changed in the audit log, and leaves the commit to its caller: the view
or command decides when a change is whole (an edit and the licence check it triggers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from .audit import apply_changes, record, to_json_value
from .hpr import LicenceStatus
from .importer import Locate, locate_at_postcode
from .licences import DEFAULT_STALE_DAYS
from .models import (
    Clinic,
    Clinician,
    LocationSource,
    PostalCode,
    Practice,
    Profession,
    StaffUser,
    now_utc,
)
from .validation import public_agreement_errors


class DirectoryError(ValueError):
    """A change that would break one of the directory's rules.

    ``field`` names the form field the rule is about (e.g. ``"hpr_number"``), when one is.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ClinicFilters:
    """What staff narrow the clinic list by."""

    text: str = ""
    profession: Profession | None = None
    active: bool | None = True
    precision: LocationSource | None = None


def staff_clinic_query(filters: ClinicFilters) -> Select:
    """Select clinics matching the staff list's search box and filters, by name."""
    query = select(Clinic).options(selectinload(Clinic.practices)).order_by(Clinic.name, Clinic.id)
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
        # Who works there now, whatever their licence check said: staff see them all.
        query = query.where(
            Clinic.practices.any(
                (Practice.profession == filters.profession) & Practice.active.is_(True)
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
            _("Postcode %(postcode)s is not in the register.", postcode=values["postcode"]),
            field="postcode",
        )
    found_latitude, found_longitude, source = locate(
        values.get("address") or "", postal, values.get("city") or ""
    )
    values.update(latitude=found_latitude, longitude=found_longitude, location_source=source)
    return values


def create_clinic(
    session: Session,
    actor: StaffUser,
    values: dict[str, Any],
    locate: Locate = locate_at_postcode,
) -> Clinic:
    """Add a clinic; without coordinates it is placed by ``locate``."""
    values = _place_clinic(session, values, None, locate)
    clinic = Clinic(**values, active=True)
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
    changes = apply_changes(clinic, values)
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


# --- practices: a clinician at a clinic -------------------------------------------------


def _checked_practice_values(clinic: Clinic, values: dict[str, Any]) -> dict[str, Any]:
    """The practice's values by Norway's rules; an agreement without a municipality is
    with the clinic's own (where nearly every agreement is held)."""
    values = dict(values)
    if values.get("public_agreement") and not values.get("agreement_municipality"):
        values["agreement_municipality"] = clinic.postal_code.municipality
    values["agreement_municipality"] = values.get("agreement_municipality") or None
    errors = public_agreement_errors(
        values["profession"], bool(values.get("public_agreement")), values["agreement_municipality"]
    )
    if errors:  # the forms show every one; here the first is enough to refuse
        field, message = next(iter(errors.items()))
        raise DirectoryError(message, field=field)
    return values


def _set_accepts_new_patients(
    practice: Practice, answer: bool | None, confirmed_now: bool
) -> dict[str, list[Any]]:
    """Store the answer on new patients; return the audit's view of what changed."""
    before = practice.accepts_new_patients
    # A changed answer, or staff saying they checked it today, restarts the 90 days.
    if before != answer or confirmed_now:
        practice.accepts_new_patients_confirmed_at = now_utc() if answer is not None else None
    practice.accepts_new_patients = answer
    if before != answer:
        return {"accepts_new_patients": [before, answer]}
    if confirmed_now and answer is not None:
        return {"accepts_new_patients_confirmed_at": [None, "now"]}
    return {}


def _clinician_for(
    session: Session, actor: StaffUser, clinic: Clinic, person: dict[str, Any]
) -> Clinician:
    """The person with this HPR number (they may work elsewhere), or a new one."""
    hpr_number = person["hpr_number"]
    clinician = session.scalar(select(Clinician).where(Clinician.hpr_number == hpr_number))
    if clinician is not None:
        if any(practice.clinic_id == clinic.id for practice in clinician.practices):
            raise DirectoryError(
                _(
                    "%(name)s (HPR number %(number)s) already works here: "
                    "edit that practice instead.",
                    name=clinician.name,
                    number=hpr_number,
                ),
                field="hpr_number",
            )
        return clinician
    if not person.get("name"):
        raise DirectoryError(
            _("HPR number %(number)s is new to the directory: give the name.", number=hpr_number),
            field="name",
        )
    clinician = Clinician(
        name=person["name"], hpr_number=hpr_number, languages=person.get("languages") or []
    )
    session.add(clinician)
    session.flush()
    record(
        session,
        actor,
        "clinician.create",
        "clinician",
        clinician.id,
        {
            name: to_json_value(getattr(clinician, name))
            for name in ("name", "hpr_number", "languages")
        },
        summary=clinician.name,
    )
    return clinician


def add_practice(
    session: Session,
    actor: StaffUser,
    clinic: Clinic,
    person: dict[str, Any],
    values: dict[str, Any],
) -> Practice:
    """Let a clinician work at ``clinic``, found by HPR number or added as new.

    ``person`` holds the HPR number, and the name and languages used only for someone
    new to the directory; ``values`` the practice (profession, services, agreement, new
    patients). The same person twice at one clinic is refused.
    """
    values = _checked_practice_values(clinic, values)
    answer = values.pop("accepts_new_patients", None)
    values.pop("accepts_new_patients_confirmed", None)
    try:
        # A savepoint: another staff member may add the same person (or the same person
        # here) between our look-up and our insert; the database's unique rules then
        # refuse ours, and only this step is undone.
        with session.begin_nested():
            clinician = _clinician_for(session, actor, clinic, person)
            practice = Practice(clinic=clinic, clinician=clinician, active=True, **values)
            _set_accepts_new_patients(practice, answer, confirmed_now=True)
            session.add(practice)
            session.flush()
    except IntegrityError:
        raise DirectoryError(
            _(
                "Someone else saved HPR number %(number)s just now. Send the form again "
                "to add them here.",
                number=person["hpr_number"],
            ),
            field="hpr_number",
        ) from None
    record(
        session,
        actor,
        "practice.create",
        "practice",
        practice.id,
        {
            "clinician": clinician.hpr_number,
            "clinic": clinic.id,
            **{name: to_json_value(value) for name, value in values.items()},
            "accepts_new_patients": answer,
        },
        summary=f"{clinician.name} at {clinic.name}",
    )
    return practice


def update_practice(
    session: Session, actor: StaffUser, practice: Practice, values: dict[str, Any]
) -> dict[str, list[Any]]:
    """Change how a clinician works at a clinic; return (and audit) what changed.

    ``values`` may carry ``accepts_new_patients_confirmed``: staff checked the answer on
    new patients today, so its 90 days start again.
    """
    values = _checked_practice_values(practice.clinic, values)
    answer = values.pop("accepts_new_patients", None)
    confirmed_now = bool(values.pop("accepts_new_patients_confirmed", False))
    changes = _set_accepts_new_patients(practice, answer, confirmed_now)
    changes |= apply_changes(practice, values)
    if changes:
        record(
            session,
            actor,
            "practice.update",
            "practice",
            practice.id,
            changes,
            summary=f"{practice.clinician.name} at {practice.clinic.name}",
        )
    return changes


def set_practice_active(
    session: Session, actor: StaffUser, practice: Practice, active: bool
) -> None:
    """Mark a clinician as having left one clinic (kept for the record) or back again.

    Their other practices stay as they are: leaving one clinic is not leaving them all.
    """
    if practice.active == active:
        return
    practice.active = active
    record(
        session,
        actor,
        "practice.reactivate" if active else "practice.deactivate",
        "practice",
        practice.id,
        {"active": [not active, active]},
        summary=f"{practice.clinician.name} at {practice.clinic.name}",
    )


# --- clinicians: the people -------------------------------------------------------------


def update_clinician(
    session: Session, actor: StaffUser, clinician: Clinician, values: dict[str, Any]
) -> dict[str, list[Any]]:
    """Change a clinician's name or languages (wherever they work); return (and audit)
    what changed. The HPR number is who they are: it is not changed here."""
    changes = apply_changes(
        clinician, {"name": values["name"], "languages": values.get("languages") or []}
    )
    if changes:
        record(
            session, actor, "clinician.update", "clinician", clinician.id, changes, clinician.name
        )
    return changes


# --- licences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenceWatch:
    """What the "licences to look at" page counts besides its list: clinicians never
    checked, and checks old enough for `flask clinicians verify-licences` to redo."""

    unchecked: int
    stale: int


def licence_watch(session: Session, now: datetime) -> LicenceWatch:
    """Count the clinicians never checked, and those last checked too long ago."""
    unchecked = session.scalar(
        select(func.count())
        .select_from(Clinician)
        .where(Clinician.licence_status == LicenceStatus.UNCHECKED)
    )
    stale = session.scalar(
        select(func.count())
        .select_from(Clinician)
        .where(Clinician.licence_checked_at < now - timedelta(days=DEFAULT_STALE_DAYS))
    )
    return LicenceWatch(unchecked=unchecked or 0, stale=stale or 0)
