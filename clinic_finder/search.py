"""Find the active clinics nearest a point — the heart of the finder.

The search reads ``listed_clinic``, one row per clinic patients can find (active, with an
active clinician), which database triggers keep in step with the directory. Its index on
(band of latitude, longitude) answers "which listed clinics lie in this box" with a short
range scan per band. The search starts with a box about a kilometre wide and widens it
only until it holds the clinics asked for, so a dense city costs no more than a village.
The database picks the nearest clinics in the box by the haversine formula, the same
arithmetic as ``distance_km`` on the same C library, which then gives the distances shown
and their order (ties by id): both backends give the same answer. How many clinics lie
within the radius is counted in SQL, and only up to ``TOTAL_COUNT_CAP``: in a dense city
that count would otherwise cost more than everything else put together.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from geopy.distance import EARTH_RADIUS
from sqlalchemy import ColumnElement, bindparam, event, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, joinedload

from .models import (
    LATITUDE_BAND_OFFSET,
    LATITUDE_BANDS_PER_DEGREE,
    PROFESSION_BITS,
    Clinic,
    ListedClinic,
    PostalCode,
    Profession,
)

RADIUS_CHOICES_KM = (5, 10, 25, 50, 100)
DEFAULT_RADIUS_KM = 25
# Beyond this the box covers all of Norway, Svalbard included, so the fallback stops growing.
MAX_FALLBACK_RADIUS_KM = 4000.0
KM_PER_DEGREE_LATITUDE = math.pi * EARTH_RADIUS / 180.0
# Ten pages of the finder, two of the API's largest. Counting on would read every clinic
# in the circle — tens of thousands in a dense city at 25 km, ten times the cost of the
# rest of the search — to tell a patient a number nobody pages through; past the cap the
# total means "at least" (and total_capped says so). Counting to 1,000 costs 3-4 times
# what counting to 200 does.
TOTAL_COUNT_CAP = 200
# The first box reaches this far: in a city it already holds a page of clinics.
FIRST_REACH_KM = 1.0
# Beyond this many bands a box is read as one range of bands (in effect a table scan,
# which is what so large a box needs anyway) instead of one index probe per band.
MAX_BAND_PROBES = 256


@dataclass(frozen=True)
class ClinicHit:
    """A clinic and how far it is from the searched point."""

    clinic: Clinic
    distance_km: float


@dataclass(frozen=True)
class SearchResult:
    """One page of clinics nearest a postcode.

    ``within_radius`` is False when nothing lay within the radius and the nearest
    clinics were returned anyway; ``total`` then counts only those. ``total_capped`` is
    True when more clinics than ``total`` lie within the radius: counting stopped at
    ``TOTAL_COUNT_CAP`` (or at the end of the page asked for, if that is further).
    """

    origin: PostalCode
    radius_km: float
    within_radius: bool
    total: int
    hits: list[ClinicHit]
    total_capped: bool = False

    @property
    def nearest_km(self) -> float | None:
        return self.hits[0].distance_km if self.hits else None


@dataclass(frozen=True)
class RankedPage:
    """The ids and distances of one page of a search, before any clinic is loaded."""

    within_radius: bool
    total: int
    total_capped: bool
    ranked: list[tuple[float, int]]  # (km, clinic id), nearest first


@dataclass(frozen=True)
class BoundingBox:
    """Latitude/longitude limits that contain every point within a radius of a centre."""

    min_latitude: float
    max_latitude: float
    min_longitude: float
    max_longitude: float

    @classmethod
    def around(cls, latitude: float, longitude: float, radius_km: float) -> BoundingBox:
        """Return the box around a point; widest where the circle is nearest a pole."""
        delta_latitude = radius_km / KM_PER_DEGREE_LATITUDE
        polar_edge = min(90.0, abs(latitude) + delta_latitude)
        cos_edge = math.cos(math.radians(polar_edge))
        if polar_edge >= 89.9 or cos_edge <= 0:
            delta_longitude = 180.0
        else:
            delta_longitude = min(180.0, radius_km / (KM_PER_DEGREE_LATITUDE * cos_edge))
        return cls(
            max(-90.0, latitude - delta_latitude),
            min(90.0, latitude + delta_latitude),
            max(-180.0, longitude - delta_longitude),
            min(180.0, longitude + delta_longitude),
        )


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in kilometres between two (latitude, longitude) points.

    The haversine formula on geopy's mean Earth radius: the same figure as
    ``geopy.distance.great_circle``, without building point objects, which cost several
    times the arithmetic.
    """
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def latitude_band(latitude: float) -> int:
    """The band of latitude a point falls in, as the listed_clinic triggers compute it."""
    return math.floor(latitude * LATITUDE_BANDS_PER_DEGREE + LATITUDE_BAND_OFFSET)


# The statements are built once, with bound parameters: building a SQLAlchemy expression
# costs more than SQLite takes to run it, and this is the hottest path in the service.
_IN_BOX = (
    ListedClinic.longitude.between(bindparam("min_longitude"), bindparam("max_longitude")),
    ListedClinic.latitude.between(bindparam("min_latitude"), bindparam("max_latitude")),
    # Clinics with an active clinician of a profession asked for (all three: any).
    ListedClinic.professions.bitwise_and(bindparam("profession_bits")) != 0,
)
_ANY_PROFESSION = sum(PROFESSION_BITS.values())
# A band is a range of the index; a box is read with one probe per band. The probes are a
# fixed number of parameters (a power of two, the spare ones repeating the last band)
# rather than an "expanding" IN, which SQLAlchemy would render anew on every execution.
FEWEST_PROBES = 4


def _band_condition(slots: int) -> ColumnElement[bool]:
    """The bands of a box: `slots` probes, or (0) one range over them all."""
    bands = ListedClinic.latitude_band
    if slots == 0:
        return bands.between(bindparam("first_band"), bindparam("last_band"))
    return bands.in_([bindparam(f"band_{slot}") for slot in range(slots)])


def _haversine_sql() -> ColumnElement[float]:
    """SQL for the haversine of a listed clinic's distance from a point, as distance_km does.

    The database's sin, cos and radians are the C library's, like Python's, so SQL and
    distance_km agree on which clinics lie within a distance (bar rounding in the last
    digit, for a clinic a nanometre from the edge).
    """
    lat2 = func.radians(ListedClinic.latitude)
    lon2 = func.radians(ListedClinic.longitude)
    return func.power(func.sin((lat2 - bindparam("origin_latitude_rad")) / 2), 2) + bindparam(
        "origin_latitude_cos"
    ) * func.cos(lat2) * func.power(func.sin((lon2 - bindparam("origin_longitude_rad")) / 2), 2)


@cache
def _nearest_in_box_statement(slots: int):
    """The nearest `wanted` listed clinics within a distance, read from a box around it."""
    haversine = _haversine_sql()
    columns = (ListedClinic.clinic_id, ListedClinic.latitude, ListedClinic.longitude)
    return (
        select(*columns)
        .where(_band_condition(slots), *_IN_BOX, haversine <= bindparam("most_haversine"))
        .order_by(haversine, ListedClinic.clinic_id)
        .limit(bindparam("wanted"))
    )


@cache
def _count_within_statement(slots: int):
    inside = (
        select(literal(1))
        .where(_band_condition(slots), *_IN_BOX, _haversine_sql() <= bindparam("most_haversine"))
        .limit(bindparam("cap"))
        .subquery()
    )
    return select(func.count()).select_from(inside)


def _box_parameters(box: BoundingBox, profession: Profession | None) -> tuple[int, dict]:
    """How many band probes a box takes (0: one range), and its query's parameters."""
    # One band more on each side: a point on a band's edge may be rounded into either.
    first = latitude_band(box.min_latitude) - 1
    last = latitude_band(box.max_latitude) + 1
    parameters = {
        "min_longitude": box.min_longitude,
        "max_longitude": box.max_longitude,
        "min_latitude": box.min_latitude,
        "max_latitude": box.max_latitude,
        "profession_bits": _ANY_PROFESSION if profession is None else PROFESSION_BITS[profession],
    }
    count = last - first + 1
    if count > MAX_BAND_PROBES:
        # So tall a box is most of the table anyway: read its bands as one range.
        parameters.update(first_band=first, last_band=last)
        return 0, parameters
    slots = max(FEWEST_PROBES, 1 << (count - 1).bit_length())
    for slot in range(slots):
        parameters[f"band_{slot}"] = min(first + slot, last)
    return slots, parameters


def _within_parameters(
    point: tuple[float, float], reach_km: float, profession: Profession | None
) -> tuple[int, dict]:
    """The band probes and parameters that select the listed clinics within a distance."""
    slots, parameters = _box_parameters(
        BoundingBox.around(point[0], point[1], reach_km), profession
    )
    latitude_rad = math.radians(point[0])
    parameters.update(
        origin_latitude_rad=latitude_rad,
        origin_latitude_cos=math.cos(latitude_rad),
        origin_longitude_rad=math.radians(point[1]),
        # distance <= reach  <=>  haversine <= sin(reach / 2R)^2: no asin per row.
        most_haversine=math.sin(min(math.pi / 2, reach_km / (2 * EARTH_RADIUS))) ** 2,
    )
    return slots, parameters


def _next_reach(reach_km: float, found: int, wanted: int) -> float:
    """How far to look next, having found `found` of `wanted` clinics within `reach_km`."""
    # Clinics in a circle grow with its area, so scale the radius by the square root of
    # what is missing (twice over, as clinics bunch); at least double, to end in few steps.
    factor = math.sqrt(2 * wanted / max(found, 0.5))
    return reach_km * min(8.0, max(2.0, factor))


def nearest_listed(
    session: Session,
    point: tuple[float, float],
    wanted: int,
    max_km: float,
    profession: Profession | None,
    first_reach_km: float = FIRST_REACH_KM,
) -> tuple[list[tuple[float, int]], bool]:
    """Return the `wanted` nearest listed clinics within `max_km` as (km, id), nearest first.

    The second value says whether these are all the listed clinics within `max_km`.
    """
    reach = min(first_reach_km, max_km)
    while True:
        # The box around `reach` holds every clinic within it: once `wanted` of them are
        # within `reach`, no clinic elsewhere can be nearer. The database picks them (in a
        # city the box holds hundreds); the distances and their order come from
        # distance_km, the id breaking ties so that pages are stable.
        slots, parameters = _within_parameters(point, reach, profession)
        parameters["wanted"] = wanted
        rows = session.connection().execute(_nearest_in_box_statement(slots), parameters).all()
        if len(rows) >= wanted or reach >= max_km:
            found = sorted(
                (distance_km(point, (latitude, longitude)), clinic_id)
                for clinic_id, latitude, longitude in rows
            )
            # SQL and Python may round a clinic a nanometre from the edge differently;
            # Python's distance is the one shown, so it decides.
            return [hit for hit in found if hit[0] <= reach], len(rows) < wanted
        reach = min(max_km, _next_reach(reach, len(rows), wanted))


def _count_within(
    session: Session,
    point: tuple[float, float],
    radius_km: float,
    profession: Profession | None,
    cap: int,
) -> int:
    """Count the listed clinics within the radius, stopping at `cap` + 1."""
    slots, parameters = _within_parameters(point, radius_km, profession)
    parameters["cap"] = cap + 1
    return session.connection().scalar(_count_within_statement(slots), parameters) or 0


def rank_clinics_near(
    session: Session,
    point: tuple[float, float],
    radius_km: float = DEFAULT_RADIUS_KM,
    profession: Profession | None = None,
    limit: int = 20,
    offset: int = 0,
) -> RankedPage:
    """Return the ids and distances of one page of find_clinics_near(), and the total."""
    wanted = offset + limit
    # The index queries go straight to the connection (the ORM's execute costs as much as
    # SQLite's work here), so flush first, as the ORM's own queries would.
    session.flush()
    nearest, complete = nearest_listed(session, point, wanted, radius_km, profession)
    if nearest:
        if complete:
            total, capped = len(nearest), False
        else:
            cap = max(TOTAL_COUNT_CAP, wanted)
            counted = _count_within(session, point, radius_km, profession, cap)
            # Never fewer than the page shows, whatever rounding did at the very edge.
            total, capped = max(min(counted, cap), wanted), counted > cap
        return RankedPage(True, total, capped, nearest[offset:wanted])

    # Nothing within the radius: widen until the nearest `limit` are found. The circle
    # holds `limit` clinics when it stops, so no clinic outside it can be nearer.
    nearest, _ = nearest_listed(
        session,
        point,
        limit,
        MAX_FALLBACK_RADIUS_KM,
        profession,
        first_reach_km=max(2 * radius_km, FIRST_REACH_KM),
    )
    nearest = nearest[:limit]
    return RankedPage(False, len(nearest), False, nearest)


def _load_hits(session: Session, ranked: Sequence[tuple[float, int]]) -> list[ClinicHit]:
    ids = [clinic_id for _, clinic_id in ranked]
    clinics = {
        clinic.id: clinic
        for clinic in session.scalars(
            select(Clinic).where(Clinic.id.in_(ids)).options(joinedload(Clinic.clinicians))
        ).unique()
    }
    return [ClinicHit(clinics[clinic_id], km) for km, clinic_id in ranked]


def find_clinics_near(
    session: Session,
    origin: PostalCode,
    radius_km: float = DEFAULT_RADIUS_KM,
    profession: Profession | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchResult:
    """Return active clinics within ``radius_km`` of a postcode, nearest first, one page.

    When none is within the radius, return the ``limit`` nearest clinics anyway (with
    ``within_radius`` False), so that a patient far from any clinic still gets an answer.
    """
    page = rank_clinics_near(
        session, (origin.latitude, origin.longitude), radius_km, profession, limit, offset
    )
    return SearchResult(
        origin,
        radius_km,
        page.within_radius,
        page.total,
        _load_hits(session, page.ranked),
        total_capped=page.total_capped,
    )


def get_postcode(session: Session, code: str) -> PostalCode | None:
    """Return a postcode from the register, or None."""
    return session.get(PostalCode, code)


# --- SQLite without math functions ------------------------------------------------------

_SQLITE_MATH = {
    "sin": (1, math.sin),
    "cos": (1, math.cos),
    "radians": (1, math.radians),
    "power": (2, math.pow),
}


def add_sqlite_math_functions(dbapi_connection: sqlite3.Connection) -> None:
    """Give a SQLite connection the math functions the count uses, from Python's math."""
    for name, (arity, function) in _SQLITE_MATH.items():
        dbapi_connection.create_function(name, arity, function, deterministic=True)


@event.listens_for(Engine, "connect")
def _ensure_sqlite_math_functions(dbapi_connection, _connection_record) -> None:
    # SQLite has sin, cos, radians and power only when built with SQLITE_ENABLE_MATH_FUNCTIONS
    # (3.35+; most builds, not all): fall back to Python's, which give the same figures.
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    try:
        dbapi_connection.execute("SELECT sin(0), cos(0), radians(0), power(2, 2)").fetchone()
    except sqlite3.OperationalError:
        add_sqlite_math_functions(dbapi_connection)
