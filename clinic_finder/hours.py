"""Opening hours: how staff write them, how patients read them, and "open now".

Staff write a day the way Norwegian clinics print it — ``08–16``, ``8:00-15:30``,
``08.00–11.30, 12.30–16.00`` — and leave a day empty when the clinic is closed. Times are
Norwegian wall-clock time; public holidays are not modelled (the pages say so).
"""

from __future__ import annotations

import re
from datetime import datetime, time

from babel.dates import get_day_names
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from . import audit
from .models import NORWAY, Clinic, OpeningHours, StaffUser

WEEKDAYS = range(7)  # Monday … Sunday, as date.weekday() counts
MAX_STRETCHES_PER_DAY = 3

_TIME = r"(\d{1,2})(?:[:.](\d{2}))?"
_STRETCH = re.compile(rf"^{_TIME}\s*[-–—]\s*{_TIME}$")

Stretch = tuple[time, time]


class HoursError(ValueError):
    """A day's opening hours could not be read; the message says why, for staff."""


def _clock(hours: str, minutes: str | None) -> time:
    hour, minute = int(hours), int(minutes or 0)
    if hour == 24 and minute == 0:
        return time(23, 59)
    if hour > 23 or minute > 59:
        raise HoursError(_("%(clock)s is not a time of day.", clock=f"{hours}:{minutes or '00'}"))
    return time(hour, minute)


def parse_day(text: str) -> list[Stretch]:
    """Read one day's hours; an empty text means closed. Raises HoursError."""
    text = (text or "").strip()
    if not text:
        return []
    stretches: list[Stretch] = []
    for part in (piece.strip() for piece in text.split(",")):
        match = _STRETCH.match(part)
        if not match:
            raise HoursError(
                _(
                    "Could not read “%(text)s”: write opening and closing times like 08:00–16:00.",
                    text=part,
                )
            )
        opens = _clock(match.group(1), match.group(2))
        closes = _clock(match.group(3), match.group(4))
        if opens >= closes:
            raise HoursError(_("In “%(text)s” the clinic closes before it opens.", text=part))
        stretches.append((opens, closes))
    if len(stretches) > MAX_STRETCHES_PER_DAY:
        raise HoursError(_("At most %(count)d stretches a day.", count=MAX_STRETCHES_PER_DAY))
    stretches.sort()
    for (_opens, first_closes), (second_opens, _closes) in zip(
        stretches, stretches[1:], strict=False
    ):
        if second_opens < first_closes:
            raise HoursError(_("Two stretches of the same day overlap."))
    return stretches


def format_day(stretches: list[Stretch]) -> str:
    """Write a day's hours as staff type them: ``08:00–11:30, 12:30–16:00``; '' if closed."""
    return ", ".join(f"{opens:%H:%M}–{closes:%H:%M}" for opens, closes in stretches)


def week_of(clinic: Clinic) -> dict[int, list[Stretch]]:
    """The clinic's hours by weekday (every weekday present; [] for closed)."""
    week: dict[int, list[Stretch]] = {day: [] for day in WEEKDAYS}
    for entry in clinic.opening_hours:
        week[entry.weekday].append((entry.opens, entry.closes))
    return week


def has_hours(clinic: Clinic) -> bool:
    return bool(clinic.opening_hours)


def week_rows(clinic: Clinic, language: str) -> list[tuple[str, list[Stretch]]]:
    """(weekday name in ``language``, that day's stretches) for Monday … Sunday."""
    names = get_day_names("wide", locale=language)
    return [
        (names[day][:1].upper() + names[day][1:], stretches)
        for day, stretches in week_of(clinic).items()
    ]


def is_open_at(clinic: Clinic, moment: datetime) -> bool | None:
    """Whether the clinic is open at ``moment`` (any time zone); None if no hours are known.

    A temporarily closed clinic is closed whatever its hours say.
    """
    if not clinic.opening_hours:
        return None
    local = moment.astimezone(NORWAY)
    if clinic.is_closed_on(local.date()):
        return False
    now = local.time()
    return any(
        entry.weekday == local.weekday() and entry.opens <= now < entry.closes
        for entry in clinic.opening_hours
    )


def set_opening_hours(
    session: Session, actor: StaffUser, clinic: Clinic, week: dict[int, list[Stretch]]
) -> bool:
    """Replace the clinic's hours with ``week``; audit the change. Returns whether it changed."""
    before = {day: format_day(stretches) for day, stretches in week_of(clinic).items()}
    after = {day: format_day(week.get(day, [])) for day in WEEKDAYS}
    if before == after:
        return False
    clinic.opening_hours = [
        OpeningHours(weekday=day, opens=opens, closes=closes)
        for day in WEEKDAYS
        for opens, closes in week.get(day, [])
    ]
    day_names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    changes = {
        f"hours_{day_names[day]}": [before[day], after[day]]
        for day in WEEKDAYS
        if before[day] != after[day]
    }
    audit.record(session, actor, "update", "clinic", clinic.id, changes, "opening hours")
    return True
