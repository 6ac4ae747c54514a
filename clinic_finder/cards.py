"""The clinics of a results page as their cards show them, read without the ORM.

A results page shows twenty clinics. Loading them as models (each clinic with its
practices, clinicians and opening hours: about 120 objects in the session's identity
map, every column read and each clinician's JSON lists parsed) cost more than the search,
and the cards then asked model properties for the same facts again and again (the listed
practices were filtered and sorted anew for each use). Here one Core query reads what
the cards show: each listed practice with its clinician's name and its clinic's columns,
whether the clinic gave opening hours, and whether they have it open at the moment. The
facts that depend on the moment (new patients, closed, open now) are worked out once, by
the rules the models and ``hours.is_open_at`` use, so the card's template only writes
words.

The stored public JSON (``public_json``) holds most of a card's facts, but not the
opening hours, and as pieces of the API's answer text that only its reader should know;
a row may be stale, and then the clinic would need the ORM anyway. Read back, it cost
about as much as these queries (bench/README.md, "Third round: cards").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import Row, bindparam, literal, select
from sqlalchemy.orm import Session

from .clinic_pages import slugify
from .formatting import http_url
from .models import (
    NORWAY,
    Clinic,
    Clinician,
    OpeningHours,
    Practice,
    Profession,
    clinic_new_patients_answer,
    closed_on,
    new_patients_answer,
)
from .search import open_by_hours

# Named tuples, not frozen dataclasses: as immutable, and built in half the time (a frozen
# dataclass sets each of a card's twenty fields through object.__setattr__).


class CardClinician(NamedTuple):
    """A listed clinician as a card lists them."""

    name: str
    hpr_number: str
    profession: Profession
    public_agreement: bool


class ClinicCard(NamedTuple):
    """What a result card shows of a clinic, at the moment of the search.

    The clinic's own fields keep their model names (``id``, ``name``, ``latitude`` …), so
    the map, ``clinic_pages.directions`` and the shared macros read a card as they read a
    ``Clinic``. ``clinicians`` are the listed ones in ``Clinic.listed_practices``' order;
    ``offered`` their services there, in the same order, read only for a complaint's line.
    """

    id: int
    name: str
    slug: str
    address: str
    postcode: str
    city: str
    latitude: float
    longitude: float
    phone: str | None
    email: str | None
    website: str | None  # http(s) only (formatting.http_url), else None
    booking_url: str | None  # likewise
    reopens_on: date | None  # set only while the clinic is temporarily closed
    clinicians: tuple[CardClinician, ...]
    professions: tuple[Profession, ...]  # in Profession's order, as Clinic.professions
    agreement_holders: tuple[str, ...]  # the names of the clinicians with a public agreement
    accepts_new_patients: bool | None  # Clinic.accepts_new_patients_as_of
    open_now: bool | None  # hours.is_open_at: None when the clinic gave no hours
    offered: tuple[tuple[str, ...], ...] = ()


class CardHit(NamedTuple):
    """A card and how far its clinic is from the searched point (as ``search.ClinicHit``,
    whose ``clinic`` the map reads)."""

    clinic: ClinicCard
    distance_km: float


# Each listed practice of the clinics asked for, with its clinician's name, and its
# clinic's columns a card shows: whether the clinic gave opening hours, and whether they
# have it open at a moment (Norwegian wall-clock time, as hours are written). One query,
# a row per practice: a listed clinic has a listed practice (the index's rule), and one
# round trip costs less than two (about 0.2 ms of CPU on SQLite). Built once: a statement
# built per page costs more than running it.
_HOURS = select(literal(1)).where(OpeningHours.clinic_id == Clinic.id)
_CARD_COLUMNS = (
    Clinic.id,
    Clinic.name,
    Clinic.address,
    Clinic.postcode,
    Clinic.city,
    Clinic.latitude,
    Clinic.longitude,
    Clinic.phone,
    Clinic.email,
    Clinic.website,
    Clinic.booking_url,
    Clinic.closed_until,
    _HOURS.exists().label("has_hours"),
    open_by_hours(Clinic.id, weekday="weekday", clock="clock").label("open_by_hours"),
    Practice.id.label("practice_id"),
    Practice.profession,
    Practice.public_agreement,
    Practice.accepts_new_patients,
    Practice.accepts_new_patients_confirmed_at,
    Clinician.name.label("clinician_name"),
    Clinician.hpr_number,
)
# With the services offered at each practice, for a complaint's line, or without.
_CARDS = {
    with_services: select(*_CARD_COLUMNS, *([Practice.services] if with_services else []))
    .join_from(Practice, Clinician, Clinician.id == Practice.clinician_id)
    .join(Clinic, Clinic.id == Practice.clinic_id)
    .where(Practice.clinic_id.in_(bindparam("ids", expanding=True)), Practice.is_listed_sql())
    for with_services in (False, True)
}

_PROFESSION_ORDER = {profession: order for order, profession in enumerate(Profession)}


def _rows_by_clinic(
    session: Session, ids: Sequence[int], moment: datetime, with_services: bool
) -> dict[int, list[Row]]:
    """The rows of these clinics by clinic id, each's in ``listed_practices``' order."""
    local = moment.astimezone(NORWAY)
    parameters = {
        "ids": ids,
        "weekday": local.weekday(),
        "clock": local.time().replace(tzinfo=None),
    }
    # Core, not the ORM: rows, no identity map (in the session's transaction all the same).
    rows: dict[int, list[Row]] = defaultdict(list)
    for row in session.connection().execute(_CARDS[with_services], parameters):
        rows[row.id].append(row)
    for practices in rows.values():
        # Sorted here, not in SQL: the database's collation could order names otherwise.
        practices.sort(key=lambda row: (row.clinician_name, row.practice_id))
    return rows


def _card(listed: list[Row], moment: datetime, day: date, with_services: bool) -> ClinicCard:
    clinic = listed[0]
    closed = closed_on(clinic.closed_until, day)
    present = {practice.profession for practice in listed}
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
        reopens_on=clinic.closed_until if closed else None,
        clinicians=tuple(
            CardClinician(p.clinician_name, p.hpr_number, p.profession, p.public_agreement)
            for p in listed
        ),
        professions=tuple(sorted(present, key=_PROFESSION_ORDER.__getitem__)),
        agreement_holders=tuple(p.clinician_name for p in listed if p.public_agreement),
        accepts_new_patients=clinic_new_patients_answer(
            [
                new_patients_answer(
                    p.accepts_new_patients, p.accepts_new_patients_confirmed_at, moment
                )
                for p in listed
            ]
        ),
        open_now=(False if closed else bool(clinic.open_by_hours)) if clinic.has_hours else None,
        offered=tuple(tuple(p.services or ()) for p in listed) if with_services else (),
    )


def load_cards(
    session: Session,
    ranked: Sequence[tuple[float, int]],
    moment: datetime,
    *,
    with_services: bool = False,
) -> list[CardHit]:
    """The cards of (km, id) pairs at ``moment``, in order (a clinic no longer listed
    since the search is left out); ``with_services`` reads the clinicians' services too."""
    if not ranked:
        return []
    rows = _rows_by_clinic(session, [clinic_id for _, clinic_id in ranked], moment, with_services)
    day = moment.astimezone(NORWAY).date()
    return [
        CardHit(_card(rows[clinic_id], moment, day, with_services), km)
        for km, clinic_id in ranked
        if clinic_id in rows
    ]
