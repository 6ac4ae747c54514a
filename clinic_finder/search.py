"""Find the active clinics nearest a point — the heart of the finder.

The search reads ``listed_clinic``, one row per clinic patients can find (active, with an
active clinician), which database triggers keep in step with the directory. Its index on
(band of latitude, longitude) answers "which listed clinics lie in this box" with a short
range scan per band. The search starts with a box about a kilometre wide and widens it
only until it holds the clinics asked for, so a dense city costs no more than a village.
The database picks the nearest clinics in the box by the haversine formula, the same
arithmetic as ``distance_km`` on the same C library, and returns each one's haversine,
from which the distance shown is ``distance_km``'s to the last digit; the order is by
distance, ties by id: both backends give the same answer. How many clinics lie
within the radius is counted in SQL, and only up to ``TOTAL_COUNT_CAP``: in a dense city
that count would otherwise cost more than everything else put together.
"""

from __future__ import annotations

import copy
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from functools import cache, lru_cache
from math import asin, sqrt

from geopy.distance import EARTH_RADIUS
from psycopg import RawCursor
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Exists,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    event,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from .models import (
    INDEXED_LANGUAGES,
    LANGUAGE_BIT_SLOTS,
    LATITUDE_BAND_OFFSET,
    LATITUDE_BANDS_PER_DEGREE,
    PROFESSION_BITS,
    PROFESSION_INDEX,
    Clinic,
    Clinician,
    ListedClinic,
    OpeningHours,
    PostalCode,
    Practice,
    Profession,
)

RADIUS_CHOICES_KM = (5, 10, 25, 50, 100)
DEFAULT_RADIUS_KM = 25
# Beyond this the box covers all of Norway, Svalbard included, so the fallback stops growing.
MAX_FALLBACK_RADIUS_KM = 4000.0
KM_PER_DEGREE_LATITUDE = math.pi * EARTH_RADIUS / 180.0
DIAMETER_KM = 2 * EARTH_RADIUS
# Ten pages of the finder, two of the API's largest. Counting on would read every clinic
# in the circle — tens of thousands in a dense city at 25 km, ten times the cost of the
# rest of the search — to tell a patient a number nobody pages through; past the cap the
# total means "at least" (and total_capped says so). Counting to 1,000 costs 3-4 times
# what counting to 200 does.
TOTAL_COUNT_CAP = 200
# The first box reaches this far: in a city it already holds a page of clinics.
FIRST_REACH_KM = 1.0
# Up to this many clinics a search asks the database for the nearest in a box, whatever
# their distance, and leaves out those beyond it itself.
MOST_UNFILTERED = 100
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


@dataclass(frozen=True)
class OpenAt:
    """A moment in Norwegian wall-clock terms, as opening hours are written."""

    day: date
    clock: time

    @property
    def weekday(self) -> int:
        return self.day.weekday()


@dataclass(frozen=True)
class Listing:
    """Which listed clinics a search wants, besides where they are.

    Every choice is a condition in the index query, so the database skips the clinics
    that don't pass instead of Python loading them: a rare language over 100 km costs a
    few index probes, not the whole directory in memory. Each condition means exactly
    what its Python counterpart on a loaded clinic means (``Clinic.professions``,
    ``Clinic.has_public_agreement``, a listed practice's ``accepts_new_patients_as_of``
    and its clinician's languages, ``hours.is_open_at``, ``Clinic.step_free_access``);
    tests/test_finder.py checks that they agree. The practice-level choices (agreement,
    new patients, language) mean a listed clinician of a chosen profession.
    """

    professions: frozenset[Profession] = frozenset()  # empty: any of the three
    helfo_only: bool = False
    # Takes new patients, as confirmed at or after this moment (older answers are unknown).
    new_patients_since: datetime | None = None
    language: str | None = None  # spoken by a listed clinician
    open_at: OpenAt | None = None  # open then by the clinic's hours, and not closed for a while
    step_free_only: bool = False  # a step-free entrance, as staff or the clinic told us

    @classmethod
    def of(cls, profession: Profession | None) -> Listing:
        """Any listed clinic, or those with a clinician of one profession."""
        return cls(frozenset([profession]) if profession else frozenset())

    def with_professions(self, professions: frozenset[Profession]) -> Listing:
        return replace(self, professions=professions)

    @property
    def profession_bits(self) -> int:
        if not self.professions:
            return _ANY_PROFESSION
        return sum(PROFESSION_BITS[profession] for profession in self.professions)

    @property
    def shape(self) -> tuple[bool, bool, bool, bool, bool]:
        """Which conditions the query needs: one cached statement per shape."""
        return (
            self.helfo_only,
            self.new_patients_since is not None,
            self.language is not None,
            self.open_at is not None,
            self.step_free_only,
        )

    def parameters(self) -> dict:
        """The values the conditions of this shape are bound to."""
        values: dict = {"profession_bits": self.profession_bits}
        if self.new_patients_since is not None:
            values["new_patients_since"] = self.new_patients_since
        if self.language is not None:
            # Languages are a JSON list of codes: '"pl"' with its quotes is one whole element.
            values["language_pattern"] = '%"' + _escape_like(self.language) + '"%'
        if self.open_at is not None:
            values.update(
                open_day=self.open_at.day,
                open_weekday=self.open_at.weekday,
                open_clock=self.open_at.clock,
            )
        return values


ANY_LISTING = Listing()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _practice_profession_bit() -> ColumnElement[int]:
    """A practice's profession as its bit in PROFESSION_BITS."""
    return case(
        *((Practice.profession == profession, bit) for profession, bit in PROFESSION_BITS.items()),
        else_=0,
    )


def _listing_conditions(
    shape: tuple[bool, bool, bool, bool, bool],
) -> list[ColumnElement[bool]]:
    """SQL for a Listing's choices, correlated with the listed clinic being read."""
    helfo_only, new_patients, language, open_at, step_free_only = shape
    conditions: list[ColumnElement[bool]] = []
    if helfo_only:
        # A clinician of a chosen profession with a public agreement here (the index's bits).
        conditions.append(
            ListedClinic.agreement_professions.bitwise_and(bindparam("profession_bits")) != 0
        )
    conditions += _practice_conditions(new_patients, language)
    conditions += _clinic_conditions(open_at, step_free_only)
    return conditions


def _practice_conditions(new_patients: bool, language: bool) -> list[ColumnElement[bool]]:
    """A listed clinician of a chosen profession here who passes every practice test."""
    practice_tests: list[ColumnElement[bool]] = _new_patients_tests() if new_patients else []
    if language:
        practice_tests.append(
            cast(Clinician.languages, String).like(bindparam("language_pattern"), escape="\\")
        )
    if not practice_tests:
        return []
    # One clinician passes every test: the one who speaks the language is the one who
    # takes new patients.
    return [
        select(literal(1))
        .select_from(Practice)
        .join(Clinician, Clinician.id == Practice.clinician_id)
        .where(
            Practice.clinic_id == ListedClinic.clinic_id,
            Practice.is_listed_sql(),
            _practice_profession_bit().op("&")(bindparam("profession_bits")) != 0,
            *practice_tests,
        )
        .exists()
    ]


def _new_patients_tests() -> list[ColumnElement[bool]]:
    """A practice takes new patients, as confirmed at or after a moment."""
    return [
        Practice.accepts_new_patients.is_(True),
        Practice.accepts_new_patients_confirmed_at
        >= bindparam("new_patients_since", type_=Practice.accepts_new_patients_confirmed_at.type),
    ]


def _clinic_conditions(open_at: bool, step_free_only: bool) -> list[ColumnElement[bool]]:
    """The clinic's own facts: open at a moment, step-free."""
    conditions: list[ColumnElement[bool]] = []
    clinic_tests: list[ColumnElement[bool]] = []
    if step_free_only:
        clinic_tests.append(Clinic.step_free_access.is_(True))
    if open_at:
        # Temporarily closed until a day means closed before that day, open on it.
        clinic_tests.append(
            or_(
                Clinic.closed_until.is_(None),
                Clinic.closed_until <= bindparam("open_day", type_=Clinic.closed_until.type),
            )
        )
    if clinic_tests:
        conditions.append(
            select(literal(1)).where(Clinic.id == ListedClinic.clinic_id, *clinic_tests).exists()
        )
    if open_at:
        conditions.append(
            open_by_hours(ListedClinic.clinic_id, weekday="open_weekday", clock="open_clock")
        )
    return conditions


def open_by_hours(clinic_id: ColumnElement[int], weekday: str, clock: str) -> Exists:
    """Whether the clinic's opening hours have it open at a moment, given as bound
    parameters of these names: its weekday (0 = Monday) and wall-clock time in Norway, as
    the hours are written (``hours.is_open_at`` reads them the same way, in Python)."""
    at = bindparam(clock, type_=OpeningHours.opens.type)
    return (
        select(literal(1))
        .where(
            OpeningHours.clinic_id == clinic_id,
            OpeningHours.weekday == bindparam(weekday),
            OpeningHours.opens <= at,
            OpeningHours.closes > at,
        )
        .exists()
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
# More probes than this are one array parameter on PostgreSQL (see probes_as_array).
MOST_PROBES_AS_PARAMETERS = 64


def _band_condition(slots: int, arrays: bool = False) -> ColumnElement[bool]:
    """The bands of a box: `slots` probes, or (0) one range over them all; with
    ``arrays`` (see :func:`probes_as_array`), the probes as one array parameter."""
    bands = ListedClinic.latitude_band
    if slots == 0:
        return bands.between(bindparam("first_band"), bindparam("last_band"))
    if arrays:
        return bands == any_(bindparam("bands", type_=ARRAY(Integer())))
    return bands.in_([bindparam(f"band_{slot}") for slot in range(slots)])


def probes_as_array(slots: int, dialect) -> bool:
    """Whether a box of `slots` band probes is read with one array parameter
    (``latitude_band = ANY(:bands)``) rather than a parameter a band: on PostgreSQL, for
    more than ``MOST_PROBES_AS_PARAMETERS``.

    The same probes of the index either way. PostgreSQL plans a statement anew for the
    values of most of its executions, and planning one with a parameter a band took longer
    than running it: a count at 100 km (256 probes) took 0.69–0.75 ms with a parameter a
    band and 0.45–0.54 ms with one array (p50, 200 postcodes, 100,000 clinics). For a few
    probes the array was slower (the nearest within 1 km, 4 probes: 0.24–0.28 against
    0.36–0.46 ms), and at 64 no faster. SQLite has no arrays, and plans in microseconds.
    """
    return dialect.name == "postgresql" and slots > MOST_PROBES_AS_PARAMETERS


# The haversine's constants are written into the SQL, not bound. Bound, SQLAlchemy's
# ``/ 2`` is ``/ CAST($2::INTEGER AS NUMERIC)``, and PostgreSQL converts a bound value in
# an expression for every row it reads when it runs a statement's generic plan (a 5 km box
# read by hand with one: 0.55 ms against 0.42); a constant is converted once, when planned.
# Halving is exact in binary floating point, so ``* 0.5`` is ``/ 2`` to the last digit.
_HALF = literal_column("0.5")
_TWO = literal_column("2")


def _haversine_sql() -> ColumnElement[float]:
    """SQL for the haversine of a listed clinic's distance from a point, as distance_km does.

    The database's sin, cos and radians are the C library's, like Python's, so SQL and
    distance_km agree on which clinics lie within a distance (bar rounding in the last
    digit, for a clinic a nanometre from the edge).
    """
    lat2 = func.radians(ListedClinic.latitude)
    lon2 = func.radians(ListedClinic.longitude)
    lat_sine = func.sin((lat2 - bindparam("origin_latitude_rad")) * _HALF)
    lon_sine = func.sin((lon2 - bindparam("origin_longitude_rad")) * _HALF)
    return func.power(lat_sine, _TWO) + bindparam("origin_latitude_cos") * func.cos(
        lat2
    ) * func.power(lon_sine, _TWO)


@cache
def _nearest_in_box_statement(
    slots: int,
    shape: tuple[bool, ...] = ANY_LISTING.shape,
    within: bool = True,
    arrays: bool = False,
):
    """The nearest `wanted` listed clinics in a box around a point, with their haversines.

    ``within`` keeps only those within a distance. Without it the database computes one
    haversine a clinic rather than two, and may return some beyond the distance (at most
    `wanted`): for a page, cheaper than filtering.
    """
    haversine = _haversine_sql()
    return (
        select(ListedClinic.clinic_id, haversine)
        .where(
            _band_condition(slots, arrays),
            *_IN_BOX,
            *([haversine <= bindparam("most_haversine")] if within else []),
            *_listing_conditions(shape),
        )
        .order_by(haversine, ListedClinic.clinic_id)
        .limit(bindparam("wanted"))
    )


@cache
def _count_within_statement(
    slots: int, shape: tuple[bool, ...] = ANY_LISTING.shape, arrays: bool = False
):
    inside = (
        select(literal(1))
        .where(
            _band_condition(slots, arrays),
            *_IN_BOX,
            _haversine_sql() <= bindparam("most_haversine"),
            *_listing_conditions(shape),
        )
        .limit(bindparam("cap"))
        .subquery()
    )
    return select(func.count()).select_from(inside)


@cache
def _count_by_profession_statement(slots: int, shape: tuple[bool, ...], arrays: bool):
    """How many of the first `cap` listed clinics within a distance list each profession."""
    # Under the HELFO filter a clinic counts for the professions holding an agreement there.
    bits = ListedClinic.agreement_professions if shape[0] else ListedClinic.professions
    inside = (
        select(bits.label("professions"))
        .where(
            _band_condition(slots, arrays),
            *_IN_BOX,
            _haversine_sql() <= bindparam("most_haversine"),
            *_listing_conditions(shape),
        )
        .limit(bindparam("cap"))
        .subquery()
    )
    return select(
        func.count(),
        *(
            func.coalesce(func.sum(case((inside.c.professions.op("&")(bit) != 0, 1), else_=0)), 0)
            for bit in PROFESSION_BITS.values()
        ),
    ).select_from(inside)


def _as_listing(listing: Listing | Profession | None) -> Listing:
    """A Listing from what callers pass: a Listing, one profession, or None for any."""
    if listing is None:
        return ANY_LISTING
    return listing if isinstance(listing, Listing) else Listing.of(listing)


def _box_parameters(box: BoundingBox, listing: Listing) -> tuple[int, dict]:
    """How many band probes a box takes (0: one range), and its query's parameters."""
    # One band more on each side: a point on a band's edge may be rounded into either.
    first = latitude_band(box.min_latitude) - 1
    last = latitude_band(box.max_latitude) + 1
    parameters = {
        "min_longitude": box.min_longitude,
        "max_longitude": box.max_longitude,
        "min_latitude": box.min_latitude,
        "max_latitude": box.max_latitude,
        **listing.parameters(),
    }
    count = last - first + 1
    if count > MAX_BAND_PROBES:
        # So tall a box is most of the table anyway: read its bands as one range.
        parameters.update(first_band=first, last_band=last)
        return 0, parameters
    slots = max(FEWEST_PROBES, 1 << (count - 1).bit_length())
    for slot in range(slots):
        parameters[f"band_{slot}"] = min(first + slot, last)
    if slots > MOST_PROBES_AS_PARAMETERS:
        parameters["bands"] = list(range(first, last + 1))  # the same, as one array
    return slots, parameters


def _within_parameters(
    point: tuple[float, float], reach_km: float, listing: Listing, box_km: float | None = None
) -> tuple[int, dict]:
    """The band probes and parameters that select the listed clinics within a distance
    (and, given ``box_km``, within the box around a circle that size)."""
    box = BoundingBox.around(point[0], point[1], reach_km if box_km is None else box_km)
    slots, parameters = _box_parameters(box, listing)
    latitude_rad = math.radians(point[0])
    parameters.update(
        origin_latitude_rad=latitude_rad,
        origin_latitude_cos=math.cos(latitude_rad),
        origin_longitude_rad=math.radians(point[1]),
        # distance <= reach  <=>  haversine <= sin(reach / 2R)^2: no asin per row.
        most_haversine=math.sin(min(math.pi / 2, reach_km / (2 * EARTH_RADIUS))) ** 2,
    )
    return slots, parameters


def _dollar_placeholders(dialect):
    """The dialect, writing PostgreSQL's own $1, $2 … (see DriverStatement)."""
    dollar = copy.copy(dialect)
    dollar.paramstyle = "numeric_dollar"
    dollar.positional = True
    return dollar


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled for one database, with what its driver needs besides values.

    For psycopg it is written with PostgreSQL's own placeholders ($1, $2 …) and run on a
    ``RawCursor``, which sends it as it is: psycopg rewrites ``%(name)s`` placeholders on
    every execution of a statement with more than 50 parameters (it caches only smaller
    ones). When a box's band probes were a parameter each (64 at 25 km), that rewriting
    cost more than the database's count; they are one array now (``probes_as_array``), and
    the raw cursor stays: it costs no more than the usual one.
    """

    sql: str
    order: tuple[str, ...] | None  # parameter names in order, for a positional paramstyle
    constants: dict  # the statement's own values, ready for the driver
    processors: tuple[tuple[str, Callable], ...]  # for bound values the driver cannot take
    raw: bool = False  # run on psycopg's RawCursor

    @classmethod
    def compile(cls, statement, dialect) -> DriverStatement:
        raw = dialect.driver == "psycopg"
        compiled = statement.compile(dialect=_dollar_placeholders(dialect) if raw else dialect)
        # Expanded with the values the statement holds (IN lists of constants, such as the
        # listed licence statuses), which SQLAlchemy would otherwise do on every execution;
        # the values each search binds are given later.
        later = {name: None for name, parameter in compiled.binds.items() if parameter.required}
        expanded = compiled.construct_expanded_state(later)
        processors = dict(expanded.processors)  # those of the expanded lists
        for name, parameter in compiled.binds.items():
            process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and name not in processors:
                processors[name] = process
        constants = {
            name: processors[name](value) if name in processors else value
            for name, value in expanded.parameters.items()
            if name not in later
        }
        return cls(
            expanded.statement,
            tuple(expanded.positiontup) if compiled.positional else None,
            constants,
            tuple((name, processors[name]) for name in later if name in processors),
            raw,
        )

    def rows(self, connection: Connection, parameters: dict) -> list[tuple]:
        """Run it on the connection, in its transaction; return the rows."""
        values = {**self.constants, **parameters}
        for name, process in self.processors:
            values[name] = process(values[name])
        driver_values = values if self.order is None else tuple(values[n] for n in self.order)
        cursor = None
        try:
            cursor = (
                RawCursor(connection.connection.driver_connection)
                if self.raw
                else connection.connection.cursor()
            )
            cursor.execute(self.sql, driver_values)
            return cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy's own execution would: its exceptions (an OperationalError is
            # answered "try again shortly"), and a connection that broke leaves the pool.
            gone = connection.dialect.is_disconnect(error, connection.connection, cursor)
            if gone:
                connection.invalidate(error)
            raise DBAPIError.instance(
                self.sql,
                driver_values,
                error,
                connection.dialect.loaded_dbapi.Error,
                connection_invalidated=gone,
                dialect=connection.dialect,
            ) from error
        finally:
            if cursor is not None:
                cursor.close()


@lru_cache(maxsize=256)
def _nearest_in_box_driver(
    slots: int, shape: tuple[bool, ...], within: bool, dialect
) -> DriverStatement:
    """_nearest_in_box_statement for the driver: the search's hottest statement.

    SQLAlchemy's execution (binding, result rows) costs more than the database's work on a
    typical search, so the statement is compiled once per database and goes straight to
    the driver.
    """
    statement = _nearest_in_box_statement(slots, shape, within, probes_as_array(slots, dialect))
    return DriverStatement.compile(statement, dialect)


@lru_cache(maxsize=256)
def _count_within_driver(slots: int, shape: tuple[bool, ...], dialect) -> DriverStatement:
    """_count_within_statement for the driver: every search with more than a page within
    its radius runs it, and SQLAlchemy's execution cost more than SQLite's count."""
    statement = _count_within_statement(slots, shape, probes_as_array(slots, dialect))
    return DriverStatement.compile(statement, dialect)


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
    listing: Listing | Profession | None = None,
    first_reach_km: float = FIRST_REACH_KM,
) -> tuple[list[tuple[float, int]], bool]:
    """Return the `wanted` nearest listed clinics within `max_km` as (km, id), nearest first.

    ``listing`` says which listed clinics count (a Listing, one profession, or None for
    any). The second value says whether these are all of them within `max_km`.
    """
    listing = _as_listing(listing)
    connection = session.connection()
    # For a page the database need not filter by distance (see _nearest_in_box_statement).
    within = wanted > MOST_UNFILTERED
    reach = min(first_reach_km, max_km)
    while True:
        # The box around `reach` holds every clinic within it: once `wanted` of them are
        # within `reach`, no clinic elsewhere can be nearer. The database picks them (in a
        # city the box holds hundreds) by the haversine, as distance_km computes it on the
        # same C library, so its figure is distance_km's to the last digit; the id breaks
        # ties so that pages are stable.
        slots, parameters = _within_parameters(point, reach, listing)
        parameters["wanted"] = wanted
        driver = _nearest_in_box_driver(slots, listing.shape, within, connection.dialect)
        found = sorted(
            (DIAMETER_KM * asin(min(1.0, sqrt(haversine))), clinic_id)
            for clinic_id, haversine in driver.rows(connection, parameters)
        )
        # The clinics within `reach` are the first of those found, whether or not the
        # database left out the others.
        nearest = [hit for hit in found if hit[0] <= reach]
        if len(nearest) >= wanted or reach >= max_km:
            return nearest, len(nearest) < wanted
        reach = min(max_km, _next_reach(reach, len(nearest), wanted))


def count_listed(
    session: Session,
    point: tuple[float, float],
    radius_km: float,
    listing: Listing | Profession | None,
    cap: int = TOTAL_COUNT_CAP,
) -> int:
    """Count the listed clinics within the radius, stopping at `cap` + 1."""
    listing = _as_listing(listing)
    if cap > 0:
        # The index is read band by band from the box's southern edge, where the circle
        # is narrow and most of the box's clinics lie outside it. The square inside the
        # circle holds none outside: when it holds more than `cap` (a city), so does the
        # circle, and reading it costs about `cap` rows instead of several times that.
        inside = _count_within(session, point, radius_km, listing, cap, radius_km * INSCRIBED)
        if inside > cap:
            return inside
    return _count_within(session, point, radius_km, listing, cap)


# The half side of the square inscribed in a circle, per radius.
INSCRIBED = math.sqrt(0.5)


def _count_within(
    session: Session,
    point: tuple[float, float],
    radius_km: float,
    listing: Listing,
    cap: int,
    box_km: float | None = None,
) -> int:
    slots, parameters = _within_parameters(point, radius_km, listing, box_km)
    parameters["cap"] = cap + 1
    connection = session.connection()
    driver = _count_within_driver(slots, listing.shape, connection.dialect)
    return driver.rows(connection, parameters)[0][0] or 0


def listed_anywhere(session: Session, point: tuple[float, float], listing: Listing) -> bool:
    """Whether any listed clinic passes the listing's choices, however far away."""
    if not any(listing.shape):
        return True  # every listed clinic lists a profession; widening finds one if any
    # One probe that stops at the first clinic that passes: when none does (a language
    # nobody here speaks), widening would read the whole index a few times to find that.
    return count_listed(session, point, MAX_FALLBACK_RADIUS_KM, listing, cap=0) > 0


def count_by_profession(
    session: Session,
    point: tuple[float, float],
    radius_km: float,
    listing: Listing,
    cap: int = TOTAL_COUNT_CAP,
) -> dict[Profession, int]:
    """Count the listed clinics within the radius that list each profession, up to `cap` + 1.

    ``listing``'s own professions are ignored: each count says what choosing that one
    profession (with the rest of the listing) would find. One statement reads the first
    clinics within the radius; only a profession it cannot settle is counted on its own.
    """
    listing = listing.with_professions(frozenset())
    if listing.new_patients_since is not None or listing.language is not None:
        # These mean one clinician of the chosen profession: counted profession by profession.
        return {
            profession: count_listed(
                session, point, radius_km, listing.with_professions(frozenset([profession])), cap
            )
            for profession in Profession
        }
    rows_cap = len(Profession) * (cap + 1)
    slots, parameters = _within_parameters(point, radius_km, listing)
    parameters["cap"] = rows_cap
    connection = session.connection()
    arrays = probes_as_array(slots, connection.dialect)
    statement = _count_by_profession_statement(slots, listing.shape, arrays)
    total, *per_profession = connection.execute(statement, parameters).one()
    counts = dict(zip(PROFESSION_BITS, per_profession, strict=True))
    if total < rows_cap:
        return counts  # every clinic within the radius was read: exact
    for profession, count in counts.items():
        # The clinics read held cap + 1 of this profession: it is "more than cap" anyway.
        if count <= cap:
            counts[profession] = count_listed(
                session, point, radius_km, listing.with_professions(frozenset([profession])), cap
            )
    return counts


@dataclass(frozen=True)
class FilterCounts:
    """How many listed clinics within a radius each filter would leave, all else as chosen.

    A filter that is on counts what the search finds now; ``languages`` holds the count
    for each language asked about, as if it were the one chosen. A count over the cap it
    was taken with is at least that (counting stopped); the others are exact.
    """

    helfo: int
    new_patients: int
    open_now: int
    step_free: int
    languages: dict[str, int]


FILTER_NAMES = ("helfo", "new_patients", "open_now", "step_free")
# ListedClinic's latest new-patient answer per profession, in PROFESSION_BITS' order.
_NEW_PATIENTS_COLUMNS = (
    ListedClinic.new_patients_chiropractor_at,
    ListedClinic.new_patients_physiotherapist_at,
    ListedClinic.new_patients_manual_therapist_at,
)
# The first statement reads this many clinics of the circle: in most of the country that
# is all of them, and in a city it settles every count over the cap at once.
FILTER_SAMPLE_ROWS = 4 * (TOTAL_COUNT_CAP + 1)
# A limit no circle reaches: every listed clinic within it is read.
EVERY_ROW = 2**62


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _filter_flags(
    shape: tuple[bool, ...], wanted: tuple[str, ...], clinic
) -> list[ColumnElement[int]]:
    """A 0/1 column per wanted filter, for the listed clinic being read and its `clinic`."""
    _, new_patients, language, _, _ = shape
    flags = {
        "helfo": lambda: _flag(_listing_conditions((True, False, False, False, False))[0]),
        # The same clinician takes new patients and speaks the chosen language.
        "new_patients": lambda: _flag(_practice_conditions(True, language)[0]),
        "open_now": lambda: _flag(
            and_(
                or_(
                    clinic.closed_until.is_(None),
                    clinic.closed_until <= bindparam("open_day", type_=Clinic.closed_until.type),
                ),
                _clinic_conditions(True, False)[-1],
            )
        ),
        "step_free": lambda: _flag(clinic.step_free_access.is_(True)),
    }
    return [flags[name]() for name in wanted]


@cache
def _count_by_filter_statement(
    slots: int, shape: tuple[bool, ...], wanted: tuple[str, ...], languages: int, arrays: bool
):
    """Counts for FilterCounts in one statement, over the first `rows` clinics of a circle.

    Each clinic within the radius that passes the choices every count shares (the
    professions, and the filters that are on but the language) is read once, with its
    clinic row, a flag for each wanted filter, and its clinicians' languages as one string;
    the counts are sums over those. A language needs one clinician who also passes the
    new-patients filter when that is on, so the string holds only such clinicians'
    languages. Returns the rows read, the count with the filters as they are, the wanted
    filters' counts, then the languages'.
    """
    helfo_only, new_patients, language, open_at, step_free_only = shape
    base_shape = (helfo_only, new_patients, False, open_at, step_free_only)
    profession_test = _practice_profession_bit().op("&")(bindparam("profession_bits")) != 0
    spoken = (
        select(func.aggregate_strings(cast(Clinician.languages, String), " "))
        .select_from(Practice)
        .join(Clinician, Clinician.id == Practice.clinician_id)
        .where(
            Practice.clinic_id == ListedClinic.clinic_id,
            Practice.is_listed_sql(),
            profession_test,
            *(_new_patients_tests() if new_patients else []),
        )
        .scalar_subquery()
    )
    # Its own name: the filters that are on ask the clinic in subqueries of their own.
    clinic = aliased(Clinic, name="counted_clinic")
    columns = [spoken, *_filter_flags(shape, wanted, clinic)]
    inside = select(*(column.label(f"c{number}") for number, column in enumerate(columns)))
    if "open_now" in wanted or "step_free" in wanted:
        inside = inside.select_from(ListedClinic).join(clinic, clinic.id == ListedClinic.clinic_id)
    inside = (
        inside.where(
            _band_condition(slots, arrays),
            *_IN_BOX,
            _haversine_sql() <= bindparam("most_haversine"),
            *_listing_conditions(base_shape),
        )
        # A subquery with a limit is read once: SQLite would otherwise merge it into the
        # sums below and run the languages' subquery again for every language.
        .limit(bindparam("rows"))
        .subquery()
    )

    def speaks(pattern: str) -> ColumnElement[int]:
        return _flag(inside.c.c0.like(bindparam(pattern), escape="\\"))

    chosen = speaks("language_pattern") if language else literal(1)
    sums = [
        # The new-patients flag already asks the chosen language, of the same clinician.
        func.sum(flag if name == "new_patients" else flag * chosen)
        for name, flag in zip(wanted, inside.c[1:], strict=True)
    ]
    sums += [func.sum(speaks(f"language_pattern_{slot}")) for slot in range(languages)]
    return select(
        func.count(), *(func.coalesce(value, 0) for value in [func.sum(chosen), *sums])
    ).select_from(inside)


def _indexed_flags(wanted: tuple[str, ...]) -> list[ColumnElement[int]]:
    """A 0/1 column per wanted filter, read from the listed clinic's facts alone."""
    profession_bits = bindparam("profession_bits", type_=Integer)
    since = bindparam("new_patients_since", type_=ListedClinic.new_patients_chiropractor_at.type)
    open_day = bindparam("open_day", type_=ListedClinic.closed_until.type)
    flags = {
        "helfo": lambda: ListedClinic.agreement_professions.op("&")(profession_bits) != 0,
        # A listed practice of a chosen profession took new patients, confirmed lately.
        "new_patients": lambda: or_(
            *(
                and_(profession_bits.op("&")(literal(bit)) != 0, column >= since)
                for bit, column in zip(PROFESSION_BITS.values(), _NEW_PATIENTS_COLUMNS, strict=True)
            )
        ),
        # Only a clinic that gave hours is asked for them: most of a circle never is.
        "open_now": lambda: and_(
            ListedClinic.has_hours.is_(True),
            or_(ListedClinic.closed_until.is_(None), ListedClinic.closed_until <= open_day),
            _clinic_conditions(True, False)[-1],
        ),
        "step_free": lambda: ListedClinic.step_free.is_(True),
    }
    return [_flag(flags[name]()) for name in wanted]


@cache
def _indexed_count_by_filter_statement(
    slots: int, shape: tuple[bool, ...], wanted: tuple[str, ...], languages: int, arrays: bool
):
    """As _count_by_filter_statement, from the index's facts: no clinic, practice or
    clinician row is read (but a clinic's opening hours, when it gave any and "open now"
    is counted). For searches without the new-patients and language filters, whose counts
    ask one clinician two things at once."""
    inside = (
        select(
            ListedClinic.language_bits.label("c0"),
            *(flag.label(f"c{number}") for number, flag in enumerate(_indexed_flags(wanted), 1)),
        )
        .where(
            _band_condition(slots, arrays),
            *_IN_BOX,
            _haversine_sql() <= bindparam("most_haversine"),
            *_listing_conditions(shape),
        )
        .limit(bindparam("rows"))
        .subquery()
    )
    sums = [func.sum(flag) for flag in inside.c[1:]]
    sums += [
        func.sum(
            _flag(inside.c.c0.op("&")(bindparam(f"language_mask_{slot}", type_=BigInteger)) != 0)
        )
        for slot in range(languages)
    ]
    return select(
        func.count(), *(func.coalesce(value, 0) for value in [func.count(), *sums])
    ).select_from(inside)


def language_mask(code: str, profession_bits: int) -> int:
    """The bits of ListedClinic.language_bits that mean: a clinician of one of these
    professions speaks this language."""
    place = INDEXED_LANGUAGES.index(code)
    return sum(
        1 << (LANGUAGE_BIT_SLOTS * PROFESSION_INDEX[profession] + place)
        for profession, bit in PROFESSION_BITS.items()
        if profession_bits & bit
    )


def _count_filters(
    session: Session,
    slots: int,
    listing: Listing,
    indexed: bool,
    values: dict,
    wanted: tuple[str, ...],
    codes: Sequence[str],
) -> tuple[int, dict]:
    """Run one filter-count statement (from the index's facts, or the old way through the
    clinicians); return how many clinics it read and each count ("" for the total)."""
    connection = session.connection()
    arrays = probes_as_array(slots, connection.dialect)
    if indexed:
        statement = _indexed_count_by_filter_statement(
            slots, listing.shape, wanted, len(codes), arrays
        )
        values.update(
            (f"language_mask_{slot}", language_mask(code, listing.profession_bits))
            for slot, code in enumerate(codes)
        )
    else:
        statement = _count_by_filter_statement(slots, listing.shape, wanted, len(codes), arrays)
        values.update(
            (f"language_pattern_{slot}", Listing(language=code).parameters()["language_pattern"])
            for slot, code in enumerate(codes)
        )
    read, total, *sums = connection.execute(statement, values).one()
    return read, {"": total} | dict(zip((*wanted, *codes), sums, strict=True))


def count_by_filter(
    session: Session,
    point: tuple[float, float],
    radius_km: float,
    listing: Listing,
    *,
    new_patients_since: datetime,
    open_at: OpenAt,
    languages: Sequence[str] = (),
    cap: int = TOTAL_COUNT_CAP,
) -> FilterCounts:
    """Count what each filter would leave within the radius, with the rest of the listing.

    ``new_patients_since`` and ``open_at`` say what the new-patients and open-now filters
    mean while they are off. From the index's facts, one statement reads the whole circle.
    Otherwise (the new-patients or language filter on) one statement reads the first
    clinics of the circle (see ``_count_by_filter_statement``): where that is all of them,
    every count is exact. Otherwise the counts over `cap` are settled, and one more
    statement counts the rest over the whole circle: a choice few clinics pass can only be
    counted by reading them all.
    """
    on = dict(zip(FILTER_NAMES, listing.shape[:2] + listing.shape[3:], strict=True))
    slots, parameters = _within_parameters(point, radius_km, listing)
    parameters.update(
        Listing(new_patients_since=new_patients_since, open_at=open_at).parameters(),
        profession_bits=listing.profession_bits,
    )
    # Without the filters that ask one clinician two things, the index's facts answer.
    indexed = not on["new_patients"] and listing.language is None
    indexed = indexed and all(code in INDEXED_LANGUAGES for code in languages)

    def count(rows: int, wanted: tuple[str, ...], codes: Sequence[str]) -> tuple[int, dict]:
        values = dict(parameters, rows=rows)
        return _count_filters(session, slots, listing, indexed, values, wanted, codes)

    off = tuple(name for name in FILTER_NAMES if not on[name])
    # From the index's facts a clinic costs little, and a circle larger than the sample
    # always leaves a rare language to count over all of it: one statement reads the
    # circle once (a city's page: 3.4 instead of 4.2 ms CPU on SQLite, one round trip
    # less on PostgreSQL). Read the old way, a clinic costs more: the sample first.
    rows = EVERY_ROW if indexed else FILTER_SAMPLE_ROWS
    read, counts = count(rows, off, languages)
    if rows != EVERY_ROW and read >= FILTER_SAMPLE_ROWS:
        unsettled = [key for key, value in counts.items() if value <= cap]
        if unsettled:
            _, exact = count(
                EVERY_ROW,
                tuple(name for name in off if name in unsettled),
                [code for code in languages if code in unsettled],
            )
            counts.update(exact)
    return FilterCounts(
        *(counts[name] if name in off else counts[""] for name in FILTER_NAMES),
        languages={code: counts[code] for code in languages},
    )


# Reorders the nearest (km, id) pairs a search found within a reach (the complaint rule in
# finder.py): called with (session, point, listing, nearest, complete, reach_km), it may
# read further, up to the reach, and returns the new order, at least as long as before.
Reorder = Callable[
    [Session, tuple[float, float], Listing, list[tuple[float, int]], bool, float],
    list[tuple[float, int]],
]


def rank_clinics_near(
    session: Session,
    point: tuple[float, float],
    radius_km: float = DEFAULT_RADIUS_KM,
    profession: Listing | Profession | None = None,
    limit: int = 20,
    offset: int = 0,
    reorder: Reorder | None = None,
) -> RankedPage:
    """Return the ids and distances of one page of find_clinics_near(), and the total.

    ``profession`` may be a whole Listing: the professions and filters a patient chose.
    ``reorder``, given, orders the nearest clinics before the page is cut from them.
    """
    profession = _as_listing(profession)
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
            counted = count_listed(session, point, radius_km, profession, cap)
            # Never fewer than the page shows, whatever rounding did at the very edge.
            total, capped = max(min(counted, cap), wanted), counted > cap
        if reorder is not None:
            nearest = reorder(session, point, profession, nearest, complete, radius_km)
        return RankedPage(True, total, capped, nearest[offset:wanted])

    # Nothing within the radius: widen until the nearest `limit` are found. The circle
    # holds `limit` clinics when it stops, so no clinic outside it can be nearer.
    if not listed_anywhere(session, point, profession):
        return RankedPage(False, 0, False, [])
    nearest, complete = nearest_listed(
        session,
        point,
        limit,
        MAX_FALLBACK_RADIUS_KM,
        profession,
        first_reach_km=max(2 * radius_km, FIRST_REACH_KM),
    )
    if reorder is not None:
        nearest = reorder(session, point, profession, nearest, complete, MAX_FALLBACK_RADIUS_KM)
    nearest = nearest[:limit]
    return RankedPage(False, len(nearest), False, nearest)


def load_hits(
    session: Session, ranked: Sequence[tuple[float, int]], *, with_hours: bool = False
) -> list[ClinicHit]:
    """The clinics of (km, id) pairs with their practices and clinicians (and opening
    hours), in order."""
    ids = [clinic_id for _, clinic_id in ranked]
    # One query with the practices and clinicians joined: a page's worth, where more
    # queries would cost as much again.
    options = [joinedload(Clinic.practices).joinedload(Practice.clinician)]
    if with_hours:
        options.append(selectinload(Clinic.opening_hours))
    statement = select(Clinic).where(Clinic.id.in_(ids)).options(*options)
    clinics = {clinic.id: clinic for clinic in session.scalars(statement).unique()}
    return [ClinicHit(clinics[clinic_id], km) for km, clinic_id in ranked if clinic_id in clinics]


def find_clinics_near(
    session: Session,
    origin: PostalCode,
    radius_km: float = DEFAULT_RADIUS_KM,
    profession: Listing | Profession | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchResult:
    """Return active clinics within ``radius_km`` of a postcode, nearest first, one page.

    ``profession`` narrows them to one profession, or to a Listing's choices. When none
    is within the radius, return the ``limit`` nearest clinics anyway (with
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
        load_hits(session, page.ranked),
        total_capped=page.total_capped,
    )


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
