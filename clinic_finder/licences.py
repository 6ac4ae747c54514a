"""Clinicians' licences: checked against the Health Personnel Register, kept on the person.

A check asks HPR (hpr.py) whether the person holds a valid authorisation for every
profession they practise here, and stores the answer on the clinician. The search index's
triggers read ``licence_status``: a clinician whose check fails drops out of every clinic
they work at in the same statement, and staff find them on the "licences to look at"
page. Functions take the session and flush; the caller commits (the command line commits
after each clinician, so a long run that stops can resume where it stopped).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from .audit import record
from .hpr import HprClient, HprUnavailable, LicenceCheck, LicenceStatus
from .models import (
    LISTED_LICENCE_STATUSES,
    PROFESSION_TERMS,
    Clinician,
    Practice,
    StaffUser,
    now_utc,
    today,
)

# What a check done by the system (an import, the command line) is recorded as.
SYSTEM_ACTOR = "licence check"
DEFAULT_STALE_DAYS = 30
# After this many answers in a row without a usable reply, HPR is taken to be down and a
# run stops, instead of spending an hour of timeouts.
UNAVAILABLE_IN_A_ROW_STOPS_A_RUN = 3


def required_categories(clinician: Clinician) -> frozenset[str]:
    """The HPR categories the person needs: one per profession practised (an active
    practice first; a person with none active is judged on every practice they had)."""
    practices = clinician.active_practices or clinician.practices
    return frozenset(PROFESSION_TERMS[practice.profession].hpr_category for practice in practices)


def record_check(
    session: Session,
    clinician: Clinician,
    check: LicenceCheck,
    *,
    actor: StaffUser | str = SYSTEM_ACTOR,
    checked_at: datetime | None = None,
) -> None:
    """Store a check's outcome on the clinician; a changed status goes in the audit log."""
    previous = clinician.licence_status
    clinician.licence_status = check.status
    clinician.licence_categories = list(check.categories)
    clinician.licence_valid_from = check.valid_from
    clinician.licence_valid_to = check.valid_to
    clinician.licence_checked_at = checked_at or now_utc()
    if previous != check.status:
        record(
            session,
            actor,
            "licence_checked",
            "clinician",
            clinician.id,
            {"licence_status": [previous.value, check.status.value]},
            summary=f"HPR {clinician.hpr_number}: {previous.value} → {check.status.value}",
        )
    session.flush()


def check_clinician(
    session: Session,
    clinician: Clinician,
    *,
    client: HprClient,
    actor: StaffUser | str = SYSTEM_ACTOR,
    on: date | None = None,
) -> LicenceCheck:
    """Ask HPR about one clinician and store the answer; HprUnavailable when HPR can't say
    (the stored status then stays as it was)."""
    check = client.check(clinician.hpr_number, required_categories(clinician), on or today())
    record_check(session, clinician, check, actor=actor)
    return check


def due_for_check(stale_days: int = DEFAULT_STALE_DAYS, now: datetime | None = None) -> Select:
    """Clinicians with a practice whose licence was never checked or not for ``stale_days``,
    the never-checked and oldest first (so a stopped run goes on where it stopped)."""
    cutoff = (now or now_utc()) - timedelta(days=stale_days)
    return (
        select(Clinician)
        .where(
            Clinician.practices.any(),
            or_(Clinician.licence_checked_at.is_(None), Clinician.licence_checked_at < cutoff),
        )
        .options(selectinload(Clinician.practices))
        .order_by(
            Clinician.licence_checked_at.is_not(None), Clinician.licence_checked_at, Clinician.id
        )
    )


@dataclass
class LicenceRunSummary:
    """What a run of checks found: how many per status, and what it could not do."""

    by_status: Counter = field(default_factory=Counter)
    unavailable: int = 0
    # Not checked: the time budget ran out, or HPR stopped answering.
    not_reached: int = 0
    stopped_because: str | None = None

    @property
    def checked(self) -> int:
        return sum(self.by_status.values())

    @property
    def hidden(self) -> int:
        """Clinicians this run found not valid, now hidden from patients."""
        return sum(
            count
            for status, count in self.by_status.items()
            if status not in LISTED_LICENCE_STATUSES
        )


def check_clinicians(
    session: Session,
    clinicians: Iterable[Clinician],
    *,
    client: HprClient,
    budget_seconds: float | None = None,
    after_each: Callable[[Clinician], None] | None = None,
    on: date | None = None,
) -> LicenceRunSummary:
    """Check clinicians one by one (HPR's pace is the client's rate limit) within a time
    budget; ``after_each`` runs after every clinician (the command line commits there and
    moves its progress bar)."""
    summary = LicenceRunSummary()
    pending = list(clinicians)
    started = time.monotonic()
    unavailable_in_a_row = 0
    for position, clinician in enumerate(pending):
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            summary.stopped_because = "time budget"
        elif unavailable_in_a_row >= UNAVAILABLE_IN_A_ROW_STOPS_A_RUN:
            summary.stopped_because = "HPR unavailable"
        if summary.stopped_because:
            summary.not_reached = len(pending) - position
            break
        try:
            check = check_clinician(session, clinician, client=client, on=on)
        except HprUnavailable:
            summary.unavailable += 1
            unavailable_in_a_row += 1
        else:
            summary.by_status[check.status] += 1
            unavailable_in_a_row = 0
        if after_each is not None:
            after_each(clinician)
    return summary


def clinicians_to_look_at(session: Session) -> list[Clinician]:
    """Clinicians hidden from patients by their last check, the most recently checked first."""
    hidden = [status for status in LicenceStatus if status not in LISTED_LICENCE_STATUSES]
    return list(
        session.scalars(
            select(Clinician)
            .where(Clinician.licence_status.in_(hidden))
            .options(selectinload(Clinician.practices).joinedload(Practice.clinic))
            .order_by(Clinician.licence_checked_at.desc(), Clinician.id)
        )
    )
