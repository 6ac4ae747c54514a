"""The finder's search as patients use it: professions, filters and a complaint.

Professions and filters become a ``search.Listing``: conditions in the index query, so
the database passes over the clinics that don't qualify and the search costs about the
same with filters as without. A complaint changes only the order, by the ring rule in
``complaints.py``: the clinics of every ring up to the one that ends the page are read
(their ids, distances and clinicians' services, not whole clinics), ordered, and the page
cut from that exact order, so page 2 never repeats or skips a clinic from page 1.

When no clinic within the radius passes, the circle widens until it holds a page of
clinics that do, as the plain search does, and the result says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .complaints import COMPLAINT_RING_KM, Complaint, complaint_order_key, ring
from .models import (
    ACCEPTS_NEW_PATIENTS_VALID_FOR,
    NORWAY,
    Clinician,
    PostalCode,
    Practice,
    Profession,
)
from .search import (
    TOTAL_COUNT_CAP,
    Listing,
    OpenAt,
    Reorder,
    SearchResult,
    count_by_profession,
    load_hits,
    nearest_listed,
    rank_clinics_near,
)

# Enough for "every listed clinic within these rings" in any real directory.
ALL_WITHIN = 1_000_000
# Clinicians' services are read for this many clinics a statement.
SERVICES_CHUNK = 500


@dataclass(frozen=True)
class FinderQuery:
    """What a patient asked for."""

    radius_km: float
    professions: frozenset[Profession] = frozenset()
    complaint: Complaint | None = None
    helfo_only: bool = False
    new_patients_only: bool = False
    open_now: bool = False
    language: str | None = None
    step_free_only: bool = False

    def listing(self, now: datetime) -> Listing:
        """The professions and filters as conditions of the index query, at ``now``."""
        local = now.astimezone(NORWAY)
        return Listing(
            professions=self.professions,
            helfo_only=self.helfo_only,
            new_patients_since=now - ACCEPTS_NEW_PATIENTS_VALID_FOR
            if self.new_patients_only
            else None,
            language=self.language,
            open_at=OpenAt(local.date(), local.time().replace(tzinfo=None))
            if self.open_now
            else None,
            step_free_only=self.step_free_only,
        )


@dataclass(frozen=True)
class FinderResult:
    """A page of the search, and how many clinics of each profession lie within the radius.

    The counts apply every choice but the professions, so each says what ticking that
    profession finds; a count of ``TOTAL_COUNT_CAP`` or more is capped (shown as "200+").
    """

    search: SearchResult
    profession_counts: dict[Profession, int] = field(default_factory=dict)
    counts_capped: frozenset[Profession] = frozenset()


def _services_by_clinic(session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
    """The services the listed clinicians of these clinics offer there, by clinic id."""
    services: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(ids), SERVICES_CHUNK):
        rows = session.execute(
            select(Practice.clinic_id, Practice.services)
            .join(Clinician, Clinician.id == Practice.clinician_id)
            .where(
                Practice.clinic_id.in_(ids[start : start + SERVICES_CHUNK]),
                Practice.is_listed_sql(),
            )
        )
        for clinic_id, offered in rows:
            services[clinic_id].extend(offered or [])
    return services


def _complaint_order(
    session: Session, ranked: Sequence[tuple[float, int]], complaint: Complaint
) -> list[tuple[float, int]]:
    """Order (km, id) pairs by the ring rule: in each ring, clinics that suit come first."""
    services = _services_by_clinic(session, [clinic_id for _, clinic_id in ranked])

    def key(hit: tuple[float, int]) -> tuple:
        km, clinic_id = hit
        return complaint_order_key(km, complaint.suits_services(services[clinic_id]), clinic_id)

    return sorted(ranked, key=key)


def _by_complaint(complaint: Complaint) -> Reorder:
    """The ring rule as a search's reorder step.

    A clinic that suits may come before nearer ones of its own ring, so the ring the last
    clinic found lies in is read whole before the order is decided.
    """

    def reorder(
        session: Session,
        point: tuple[float, float],
        listing: Listing,
        nearest: list[tuple[float, int]],
        complete: bool,
        reach_km: float,
    ) -> list[tuple[float, int]]:
        if nearest and not complete:
            reach = min(reach_km, (ring(nearest[-1][0]) + 1) * COMPLAINT_RING_KM)
            nearest, _ = nearest_listed(
                session, point, ALL_WITHIN, reach, listing, first_reach_km=reach
            )
        return _complaint_order(session, nearest, complaint)

    return reorder


def _count_professions(
    session: Session, point: tuple[float, float], radius_km: float, listing: Listing
) -> tuple[dict[Profession, int], frozenset[Profession]]:
    counts = count_by_profession(session, point, radius_km, listing)
    capped = frozenset(p for p, count in counts.items() if count > TOTAL_COUNT_CAP)
    return {p: min(count, TOTAL_COUNT_CAP) for p, count in counts.items()}, capped


def find(
    session: Session,
    origin: PostalCode,
    query: FinderQuery,
    *,
    limit: int,
    offset: int,
    now: datetime,
    with_counts: bool = False,
    with_hours: bool = False,
) -> FinderResult:
    """Run a patient's search and return one page (see the module docstring).

    ``with_counts`` adds the count per profession that the finder page shows beside each;
    ``with_hours`` loads the clinics' opening hours, for "open now" on the page.
    """
    point = (origin.latitude, origin.longitude)
    listing = query.listing(now)
    counts, capped = (
        _count_professions(session, point, query.radius_km, listing)
        if with_counts
        else ({}, frozenset())
    )
    page = rank_clinics_near(
        session,
        point,
        query.radius_km,
        listing,
        limit,
        offset,
        reorder=_by_complaint(query.complaint) if query.complaint is not None else None,
    )
    search = SearchResult(
        origin,
        query.radius_km,
        page.within_radius,
        page.total,
        load_hits(session, page.ranked, with_hours=with_hours),
        total_capped=page.total_capped,
    )
    return FinderResult(search, counts, capped)
