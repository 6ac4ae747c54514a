"""The finder's search as patients use it: professions, filters and a complaint.

Professions and filters become a ``search.Listing``: conditions in the index query, so
the database passes over the clinics that don't qualify and the search costs about the
same with filters as without. A complaint changes only the order, by the ring rule in
``complaints.py``: the clinics of every ring up to the one that ends the page are read
(their ids, distances and clinicians' services, not whole clinics), ordered, and the page
cut from that exact order, so page 2 never repeats or skips a clinic from page 1.

When no clinic within the radius passes, the circle widens until it holds a page of
clinics that do, as the plain search does, and the result says so. So a search that finds
nothing at all is one no clinic anywhere passes: the result then says which of its
filters emptied it (``DeadEnd``), so the page can offer the same search without them.

Beside each profession and each filter the page shows how many clinics within the radius
choosing it would leave, the other choices applied (``with_counts``, or ``count_choices``
alone for the search form the results page fetches when it is opened).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .cards import load_cards
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
    MAX_FALLBACK_RADIUS_KM,
    TOTAL_COUNT_CAP,
    FilterCounts,
    Listing,
    OpenAt,
    RankedPage,
    Reorder,
    SearchResult,
    count_by_filter,
    count_by_profession,
    count_listed,
    load_hits,
    nearest_listed,
    rank_clinics_near,
)

# Enough for "every listed clinic within these rings" in any real directory.
ALL_WITHIN = 1_000_000
# Clinicians' services are read for this many clinics a statement.
SERVICES_CHUNK = 500


# The filters, by the names links and forms give them, and what "off" is for each.
FILTERS = {
    "helfo": ("helfo_only", False),
    "new_patients": ("new_patients_only", False),
    "open_now": ("open_now", False),
    "step_free": ("step_free_only", False),
    "language": ("language", None),
}


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

    @property
    def filters_on(self) -> tuple[str, ...]:
        """The names of the filters this search has on, in FILTERS' order."""
        return tuple(
            name for name, (attribute, off) in FILTERS.items() if getattr(self, attribute) != off
        )

    def without(self, *filters: str) -> FinderQuery:
        """The same search with these filters off."""
        return replace(self, **{FILTERS[name][0]: FILTERS[name][1] for name in filters})

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
class DeadEnd:
    """Why a search found no clinic anywhere, for a way back.

    ``emptied_by`` names each filter the search finds clinics without (the others on);
    ``found_without_filters`` says whether it finds any with every filter off. Neither
    is the case when no clinic of the chosen professions is listed at all.
    """

    filters: tuple[str, ...]
    emptied_by: tuple[str, ...]
    found_without_filters: bool


@dataclass(frozen=True)
class FinderResult:
    """A page of the search, and how many clinics within the radius each choice leaves.

    ``profession_counts`` apply every choice but the professions, so each says what
    ticking that profession finds. ``filter_counts`` (by FILTERS' names, language apart)
    and ``language_counts`` apply every other choice, the professions included, so each
    says what ticking that filter, or choosing that language, finds; a filter that is on
    counts what the search finds within the radius now. Counts over ``TOTAL_COUNT_CAP``
    are capped (shown as "200+"): ``counts_capped`` and ``filters_capped`` say which.
    ``dead_end`` is set when the search found nothing anywhere.
    """

    search: SearchResult
    profession_counts: dict[Profession, int] = field(default_factory=dict)
    counts_capped: frozenset[Profession] = frozenset()
    filter_counts: dict[str, int] = field(default_factory=dict)
    language_counts: dict[str, int] = field(default_factory=dict)
    filters_capped: frozenset[str] = frozenset()
    dead_end: DeadEnd | None = None


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


def _count_filters(
    session: Session,
    point: tuple[float, float],
    query: FinderQuery,
    now: datetime,
    languages: Sequence[str],
) -> tuple[dict[str, int], dict[str, int], frozenset[str]]:
    # What the new-patients and open-now filters mean at this moment, on or off now.
    every_filter_on = replace(query, new_patients_only=True, open_now=True).listing(now)
    counts: FilterCounts = count_by_filter(
        session,
        point,
        query.radius_km,
        query.listing(now),
        new_patients_since=every_filter_on.new_patients_since,
        open_at=every_filter_on.open_at,
        languages=languages,
        cap=TOTAL_COUNT_CAP,
    )
    filters = {
        "helfo": counts.helfo,
        "new_patients": counts.new_patients,
        "open_now": counts.open_now,
        "step_free": counts.step_free,
    }
    capped = frozenset(
        name
        for name, count in (*filters.items(), *counts.languages.items())
        if count > TOTAL_COUNT_CAP
    )

    def at_cap(values: dict[str, int]) -> dict[str, int]:
        return {name: min(count, TOTAL_COUNT_CAP) for name, count in values.items()}

    return at_cap(filters), at_cap(counts.languages), capped


def dead_end(
    session: Session, point: tuple[float, float], query: FinderQuery, now: datetime
) -> DeadEnd:
    """Which of a search's filters left it with no clinic anywhere (see DeadEnd)."""
    filters = query.filters_on

    def finds(without: tuple[str, ...]) -> bool:
        # A probe that stops at the first clinic that passes, however far away.
        listing = query.without(*without).listing(now)
        return count_listed(session, point, MAX_FALLBACK_RADIUS_KM, listing, cap=0) > 0

    emptied_by = tuple(name for name in filters if finds((name,)))
    if len(filters) == 1:
        return DeadEnd(filters, emptied_by, bool(emptied_by))
    return DeadEnd(filters, emptied_by, bool(filters) and (bool(emptied_by) or finds(filters)))


def rank(
    session: Session,
    origin: PostalCode,
    query: FinderQuery,
    *,
    limit: int,
    offset: int,
    now: datetime,
) -> RankedPage:
    """The ids and distances of one page of a patient's search, and its total (no clinic
    is loaded: the API reads their stored JSON instead)."""
    return rank_clinics_near(
        session,
        (origin.latitude, origin.longitude),
        query.radius_km,
        query.listing(now),
        limit,
        offset,
        reorder=_by_complaint(query.complaint) if query.complaint is not None else None,
    )


def find(
    session: Session,
    origin: PostalCode,
    query: FinderQuery,
    *,
    limit: int,
    offset: int,
    now: datetime,
    with_counts: bool = False,
    count_languages: Sequence[str] = (),
    as_cards: bool = False,
) -> FinderResult:
    """Run a patient's search and return one page (see the module docstring).

    ``with_counts`` adds the counts the finder page shows beside each profession and
    filter, and beside each of ``count_languages``. The page's clinics are models
    (``search.ClinicHit``), or with ``as_cards`` what the results page's cards show of
    them at ``now`` (``cards.CardHit``: no model is loaded).
    """
    point = (origin.latitude, origin.longitude)
    listing = query.listing(now)
    counts, capped = (
        _count_professions(session, point, query.radius_km, listing)
        if with_counts
        else ({}, frozenset())
    )
    filter_counts, language_counts, filters_capped = (
        _count_filters(session, point, query, now, count_languages)
        if with_counts
        else ({}, {}, frozenset())
    )
    page = rank(session, origin, query, limit=limit, offset=offset, now=now)
    search = SearchResult(
        origin,
        query.radius_km,
        page.within_radius,
        page.total,
        load_cards(session, page.ranked, now, with_services=query.complaint is not None)
        if as_cards
        else load_hits(session, page.ranked),
        total_capped=page.total_capped,
    )
    empty = not page.ranked and page.total == 0
    return FinderResult(
        search,
        counts,
        capped,
        filter_counts,
        language_counts,
        filters_capped,
        dead_end(session, point, query, now) if empty else None,
    )


@dataclass(frozen=True)
class ChoiceCounts:
    """How many clinics within the radius each choice of the search form would leave:
    the counts of ``FinderResult`` without the page (see there for what each means)."""

    profession_counts: dict[Profession, int]
    counts_capped: frozenset[Profession]
    filter_counts: dict[str, int]
    language_counts: dict[str, int]
    filters_capped: frozenset[str]


def count_choices(
    session: Session,
    origin: PostalCode,
    query: FinderQuery,
    *,
    now: datetime,
    count_languages: Sequence[str] = (),
) -> ChoiceCounts:
    """Count what each profession, filter and of ``count_languages`` would leave, without
    choosing or loading a page: the search form the results page folds away asks for
    these only when a patient opens it."""
    point = (origin.latitude, origin.longitude)
    counts, capped = _count_professions(session, point, query.radius_km, query.listing(now))
    filter_counts, language_counts, filters_capped = _count_filters(
        session, point, query, now, count_languages
    )
    return ChoiceCounts(counts, capped, filter_counts, language_counts, filters_capped)
