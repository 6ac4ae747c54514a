"""Working time: the hours of Norwegian weekdays that are not public holidays.

Patients are promised an answer "within 24–48 hours (weekdays)" (ANSWER_PROMISE), so a
request's age and its overdue mark count only those hours: a request sent on Friday
afternoon is not overdue on Monday morning, nor one sent before Easter on Easter Monday.
A working day counts whole (all 24 hours of it, in Norwegian time), the way a patient reads
"hours (weekdays)"; the public holidays are the `holidays` package's for Norway (it keeps
Easter, Ascension and Whit Monday right year by year), without its Sundays, which are
weekend anyway.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays

from .models import NORWAY

# The promise's upper end: a request with more working time than this and no answer is
# overdue.
ANSWER_WITHIN = timedelta(hours=48)


@lru_cache(maxsize=16)
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.Norway(years=year, include_sundays=False))


def is_working_day(day: date) -> bool:
    """Whether the day is a Norwegian weekday that is not a public holiday."""
    return day.weekday() < 5 and day not in _public_holidays(day.year)


def _midnight(day: date) -> datetime:
    """The moment a Norwegian day begins, in UTC (so differences are real elapsed time)."""
    return datetime.combine(day, time(), NORWAY).astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    # The database hands back naive datetimes on SQLite; every stored moment is UTC.
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def working_time(start: datetime, end: datetime) -> timedelta:
    """The time between two moments that falls on Norwegian working days."""
    start, end = _utc(start), _utc(end)
    total = timedelta()
    day = start.astimezone(NORWAY).date()
    last = end.astimezone(NORWAY).date()
    while day <= last:
        if is_working_day(day):
            begins, ends = _midnight(day), _midnight(day + timedelta(days=1))
            overlap = min(end, ends) - max(start, begins)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return total


def overdue_cutoff(now: datetime, within: timedelta = ANSWER_WITHIN) -> datetime:
    """The moment before which a request received is overdue as of ``now``, in UTC.

    That is, ``received < overdue_cutoff(now)`` exactly when ``working_time(received, now)
    > within``: found by walking back from ``now`` until ``within`` of working time is
    used up, and then on through any weekend or holiday right behind it (received then, a
    request has waited exactly ``within``, not more). One moment, so the inbox's filter and
    count are a plain ``created_at < cutoff`` in SQL.
    """
    cursor = _utc(now)
    day = cursor.astimezone(NORWAY).date()
    remaining = within
    while True:
        begins = _midnight(day)
        if is_working_day(day) and cursor > begins:
            available = cursor - begins
            if available > remaining:
                return cursor - remaining
            remaining -= available
        cursor = min(cursor, begins)
        day -= timedelta(days=1)
