"""The finder's search as patients use it: professions, filters and a complaint.

A plain search (one profession or all, no filter, no complaint) goes straight to
``search.find_clinics_near``, the indexed nearest-first search. Anything more reads every
listed clinic within the radius, nearest first, keeps those that pass the filters, and —
for a complaint — orders them by the ring rule in ``complaints.py``; the page is then cut
from that exact list, so page 2 never repeats or skips a clinic from page 1.

When no clinic within the radius passes, the circle widens until it holds a page of
clinics that do, as the plain search does, and the result says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .complaints import Complaint, rank_for_complaint
from .hours import is_open_at
from .models import Clinic, Profession
from .search import (
    MAX_FALLBACK_RADIUS_KM,
    ClinicHit,
    SearchResult,
    find_clinics_near,
    nearest_listed,
)

# Enough for "every listed clinic within the radius" in any real directory.
ALL_WITHIN = 1_000_000
# Candidates are loaded with their clinicians and hours this many at a time.
LOAD_CHUNK = 500


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

    @property
    def single_profession(self) -> Profession | None:
        """The one profession asked for; None for all three, or none chosen."""
        if len(self.professions) == 1:
            return next(iter(self.professions))
        return None

    @property
    def is_plain(self) -> bool:
        """Whether the indexed search answers this alone."""
        return (
            len(self.professions) in (0, 1, len(Profession))
            and self.complaint is None
            and not (self.helfo_only or self.new_patients_only or self.open_now or self.language)
        )


@dataclass(frozen=True)
class FinderResult:
    """A page of the search, and how many clinics of each profession it found."""

    search: SearchResult
    profession_counts: dict[Profession, int] = field(default_factory=dict)
    counts_capped: bool = False


def _filters(query: FinderQuery, now: datetime) -> list[Callable[[Clinic], bool]]:
    tests: list[Callable[[Clinic], bool]] = []
    if query.professions and len(query.professions) < len(Profession):
        tests.append(lambda clinic: bool(set(clinic.professions) & query.professions))
    if query.helfo_only:
        tests.append(lambda clinic: clinic.helfo_agreement)
    if query.new_patients_only:
        tests.append(lambda clinic: clinic.accepts_new_patients_as_of(now) is True)
    if query.open_now:
        tests.append(lambda clinic: is_open_at(clinic, now) is True)
    if query.language:
        language = query.language
        tests.append(lambda clinic: any(language in c.languages for c in clinic.active_clinicians))
    return tests


def _load(session: Session, ids: Sequence[int]) -> dict[int, Clinic]:
    clinics: dict[int, Clinic] = {}
    for start in range(0, len(ids), LOAD_CHUNK):
        chunk = ids[start : start + LOAD_CHUNK]
        statement = (
            select(Clinic)
            .where(Clinic.id.in_(chunk))
            .options(selectinload(Clinic.clinicians), selectinload(Clinic.opening_hours))
        )
        clinics.update((clinic.id, clinic) for clinic in session.scalars(statement))
    return clinics


def _passing(
    session: Session,
    point: tuple[float, float],
    max_km: float,
    tests: list[Callable[[Clinic], bool]],
    profession: Profession | None,
) -> list[ClinicHit]:
    """Every listed clinic within `max_km` that passes every test, nearest first."""
    ranked, _ = nearest_listed(session, point, ALL_WITHIN, max_km, profession)
    clinics = _load(session, [clinic_id for _, clinic_id in ranked])
    hits = [ClinicHit(clinics[clinic_id], km) for km, clinic_id in ranked if clinic_id in clinics]
    return [hit for hit in hits if all(test(hit.clinic) for test in tests)]


def _count_professions(hits: Sequence[ClinicHit]) -> dict[Profession, int]:
    counts: Counter[Profession] = Counter()
    for hit in hits:
        counts.update(hit.clinic.professions)
    return {profession: counts[profession] for profession in Profession}


def find(
    session: Session,
    origin,
    query: FinderQuery,
    *,
    limit: int,
    offset: int,
    now: datetime,
) -> FinderResult:
    """Run a patient's search and return one page (see the module docstring)."""
    if query.is_plain:
        result = find_clinics_near(
            session,
            origin,
            radius_km=query.radius_km,
            profession=query.single_profession,
            limit=limit,
            offset=offset,
        )
        return FinderResult(result)

    point = (origin.latitude, origin.longitude)
    tests = _filters(query, now)
    # Profession is one bit of the index; more than one is tested with the rest.
    profession = query.single_profession
    hits = _passing(session, point, query.radius_km, tests, profession)
    # Counts per profession ignore the profession choice, so they say what a change finds.
    other_tests = _filters(
        FinderQuery(
            query.radius_km,
            helfo_only=query.helfo_only,
            new_patients_only=query.new_patients_only,
            open_now=query.open_now,
            language=query.language,
        ),
        now,
    )
    if hits:
        if query.complaint is not None:
            hits = rank_for_complaint(hits, query.complaint)
        everyone = (
            hits
            if not query.professions
            else _passing(session, point, query.radius_km, other_tests, None)
        )
        return FinderResult(
            SearchResult(origin, query.radius_km, True, len(hits), hits[offset : offset + limit]),
            _count_professions(everyone),
        )

    # Nothing within the radius passes: widen until a page of clinics does.
    reach = max(2 * query.radius_km, 1.0)
    while True:
        hits = _passing(session, point, reach, tests, profession)
        if len(hits) >= limit or reach >= MAX_FALLBACK_RADIUS_KM:
            break
        reach = min(MAX_FALLBACK_RADIUS_KM, reach * 2)
    hits = hits[:limit]
    return FinderResult(SearchResult(origin, query.radius_km, False, len(hits), hits))
