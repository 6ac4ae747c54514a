"""Find the active clinics nearest a point — the heart of the finder.

A bounding box around the point is cut in SQL, where the (latitude, longitude) index
makes it cheap; only the clinics inside it get an exact great-circle distance, which
decides the order and the radius. The same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from geopy.distance import EARTH_RADIUS
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, selectinload

from .models import Clinic, Clinician, PostalCode, Profession

RADIUS_CHOICES_KM = (5, 10, 25, 50, 100)
DEFAULT_RADIUS_KM = 25
# Beyond this the box covers all of Norway, Svalbard included, so the fallback stops growing.
MAX_FALLBACK_RADIUS_KM = 4000.0
KM_PER_DEGREE_LATITUDE = math.pi * EARTH_RADIUS / 180.0


@dataclass(frozen=True)
class ClinicHit:
    """A clinic and how far it is from the searched point."""

    clinic: Clinic
    distance_km: float


@dataclass(frozen=True)
class SearchResult:
    """One page of clinics nearest a postcode.

    ``within_radius`` is False when nothing lay within the radius and the nearest
    clinics were returned anyway; ``total`` then counts only those.
    """

    origin: PostalCode
    radius_km: float
    within_radius: bool
    total: int
    hits: list[ClinicHit]

    @property
    def nearest_km(self) -> float | None:
        return self.hits[0].distance_km if self.hits else None


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
    times the arithmetic when a dense city puts tens of thousands of clinics in the box.
    """
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def _candidates_in_box(
    session: Session,
    box: BoundingBox,
    profession: Profession | None,
) -> list[tuple[int, float, float]]:
    """Return (id, latitude, longitude) of active clinics inside the box."""
    query = select(Clinic.id, Clinic.latitude, Clinic.longitude).where(
        Clinic.active.is_(True),
        Clinic.latitude.between(box.min_latitude, box.max_latitude),
        Clinic.longitude.between(box.min_longitude, box.max_longitude),
    )
    # A clinic is listed only while a licensed clinician (of the profession asked for) works there.
    clinician_here = and_(Clinician.clinic_id == Clinic.id, Clinician.active.is_(True))
    if profession is not None:
        clinician_here = and_(clinician_here, Clinician.profession == profession)
    query = query.where(exists().where(clinician_here))
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def _within(
    session: Session,
    origin: tuple[float, float],
    radius_km: float,
    profession: Profession | None,
) -> list[tuple[float, int]]:
    """Return (distance, id) of every clinic within the radius, unordered."""
    box = BoundingBox.around(origin[0], origin[1], radius_km)
    within = []
    for clinic_id, latitude, longitude in _candidates_in_box(session, box, profession):
        km = distance_km(origin, (latitude, longitude))
        if km <= radius_km:
            within.append((km, clinic_id))
    return within


def _nearest(within: list[tuple[float, int]], count: int) -> list[tuple[float, int]]:
    # Only the first pages need ordering; the id breaks ties so that pages are stable.
    return heapq.nsmallest(count, within)


def _load_hits(session: Session, ranked: list[tuple[float, int]]) -> list[ClinicHit]:
    ids = [clinic_id for _, clinic_id in ranked]
    clinics = {
        clinic.id: clinic
        for clinic in session.scalars(
            select(Clinic).where(Clinic.id.in_(ids)).options(selectinload(Clinic.clinicians))
        )
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
    point = (origin.latitude, origin.longitude)
    within = _within(session, point, radius_km, profession)
    if within:
        page = _nearest(within, offset + limit)[offset:]
        return SearchResult(origin, radius_km, True, len(within), _load_hits(session, page))

    # Grow the circle until it holds `limit` clinics: then no clinic outside it can be
    # nearer than the ones inside, so the nearest `limit` are exact.
    search_radius = max(radius_km, 1.0)
    while search_radius < MAX_FALLBACK_RADIUS_KM:
        search_radius = min(search_radius * 2, MAX_FALLBACK_RADIUS_KM)
        within = _within(session, point, search_radius, profession)
        if len(within) >= limit:
            break
    nearest = _nearest(within, limit)
    return SearchResult(origin, radius_km, False, len(nearest), _load_hits(session, nearest))


def get_postcode(session: Session, code: str) -> PostalCode | None:
    """Return a postcode from the register, or None."""
    return session.get(PostalCode, code)
