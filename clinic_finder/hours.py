"""Opening hours: how staff write them, how patients read them, and "open now".

Staff write a day the way Norwegian clinics print it — ``08–16``, ``8:00-15:30``,
``08.00–11.30, 12.30–16.00`` — and leave a day empty when the clinic is closed. A clinic
list has the whole week in one cell, as a receptionist would type it in Excel:
``man-fre 08-16; tor 08-19; lør 10-14`` (``parse_week``; ``format_week`` writes it back).
Times are Norwegian wall-clock time; public holidays are not modelled (the pages say so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time

from babel.dates import get_day_names
from flask_babel import get_locale
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


# --- A week in one cell -------------------------------------------------------------------

# How the export writes the days (and the first way staff may write them).
DAY_ABBREVIATIONS = ("man", "tir", "ons", "tor", "fre", "lør", "søn")
# Every other way a day is written in Norway or in English, folded to lower case: Bokmål and
# Nynorsk names and abbreviations (two letters as calendars print them), the same without
# æøå for systems that lose them, and English.
_DAY_SPELLINGS = (
    ("man", "mandag", "måndag", "ma", "må", "mon", "monday", "mo"),
    ("tir", "tirs", "tirsdag", "tys", "tysdag", "ti", "tue", "tues", "tuesday", "tu"),
    ("ons", "onsdag", "on", "wed", "weds", "wednesday", "we"),
    ("tor", "tors", "torsdag", "to", "thu", "thur", "thurs", "thursday", "th"),
    ("fre", "fredag", "fr", "fri", "friday"),
    ("lør", "lørdag", "lau", "laurdag", "lø", "la", "lor", "lordag", "sat", "saturday", "sa"),
    ("søn", "søndag", "sun", "sundag", "sø", "su", "son", "sondag", "sunday"),
)
_DAY_WORDS = {word: day for day, words in enumerate(_DAY_SPELLINGS) for word in words}
# Words for several days at once; they count as ranges (a day named alone overrides them).
_DAY_GROUPS = {
    "hverdager": (0, 4),
    "hverdag": (0, 4),
    "kvardagar": (0, 4),
    "weekdays": (0, 4),
    "helg": (5, 6),
    "helger": (5, 6),
    "weekend": (5, 6),
    "alle dager": (0, 6),
    "daglig": (0, 6),
    "daily": (0, 6),
}
_CLOSED_WORDS = frozenset({"stengt", "lukket", "closed"})

_ENTRY_SEPARATOR = re.compile(r"[;\n]")
# The days end where the hours begin: at the first digit, or at a word for closed.
_HOURS_START = re.compile(r"\d|\b(?:stengt|lukket|closed)\b", re.IGNORECASE)
# A colon and "kl." between the days and the hours: "man-fre kl. 08-16", "Mon-Fri: 8-16".
# No repetition: runs of them would make the search quadratic on hostile input.
_DAYS_TAIL = re.compile(r"\s?:?\s?(?:\bkl\.?)?\s?:?\s?$", re.IGNORECASE)
_DAY_LIST_SEPARATOR = re.compile(r"\s*(?:,|&|\+|/|\bog\b|\band\b)\s*", re.IGNORECASE)
_DAY_RANGE_SEPARATOR = re.compile(r"\s*[-–—]\s*|\s+(?:til|to)\s+", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")

Week = dict[int, list[Stretch]]


def _day_name(day: int) -> str:
    """The weekday's full name in the page's language (English outside a request)."""
    return get_day_names("wide", locale=get_locale() or "en")[day]


def _day(word: str) -> int:
    folded = word.strip().rstrip(".").casefold()
    if folded not in _DAY_WORDS:
        raise HoursError(
            _(
                "“%(word)s” is not a day of the week: write man, tir, ons, tor, fre, lør, søn "
                "(or mon … sun).",
                word=word.strip(),
            )
        )
    return _DAY_WORDS[folded]


def _days_of(text: str) -> list[tuple[int, bool]]:
    """The days a text names, each with whether it was named on its own (not in a range)."""
    days: list[tuple[int, bool]] = []
    for item in _DAY_LIST_SEPARATOR.split(text):
        if item.casefold() in _DAY_GROUPS:
            first, last = _DAY_GROUPS[item.casefold()]
            days += [(day, False) for day in range(first, last + 1)]
            continue
        ends = _DAY_RANGE_SEPARATOR.split(item)
        if len(ends) > 2 or not all(end.strip() for end in ends):
            raise HoursError(
                _(
                    "Could not read the days “%(text)s”: write them like “man–fre” or "
                    "“man, ons, fre”.",
                    text=text,
                )
            )
        first, last = _day(ends[0]), _day(ends[-1])
        if last < first:
            raise HoursError(
                _(
                    "In “%(text)s” the days are in the wrong order: a range runs from Monday "
                    "towards Sunday.",
                    text=item,
                )
            )
        days += [(day, len(ends) == 1) for day in range(first, last + 1)]
    return days


def _hours_of(entry: str, text: str) -> list[Stretch]:
    if text.casefold() in _CLOSED_WORDS:
        return []
    if _LETTER.search(text):
        raise HoursError(
            _(
                "Could not read “%(text)s”: after the days write only times, and end each "
                "day's hours with a semicolon, like “man–fre 08–16; lør 10–14”.",
                text=entry,
            )
        )
    try:
        return parse_day(text)
    except HoursError as error:
        # parse_day's message names the stretch; the entry says which days it was for.
        raise HoursError(f"“{entry}”: {error}") from error


def _entry(text: str) -> tuple[list[tuple[int, bool]], list[Stretch]]:
    """One ``days hours`` entry: the days it names and their stretches."""
    entry = " ".join(text.split())
    start = _HOURS_START.search(entry)
    if start is None:
        raise HoursError(
            _(
                "Say the hours for “%(text)s”, like “man–fre 08–16”, or leave the day out "
                "when the clinic is closed.",
                text=entry,
            )
        )
    days_text = _DAYS_TAIL.sub("", entry[: start.start()]).strip()
    if not days_text:
        raise HoursError(_("Say which days “%(text)s” is for, like “man–fre 08–16”.", text=entry))
    return _days_of(days_text), _hours_of(entry, entry[start.start() :])


def parse_week(text: str) -> Week:
    """Read a week written in one cell; every weekday is in the answer ([] for closed).

    Entries are separated by semicolons (or line breaks), each days then hours:
    ``man-fre 08-16; tor 08-19; lør 10-14``. A day named on its own overrides a range or
    group that includes it (there Thursday is open until 19); otherwise a day may be given
    once. Days not named are closed, and an empty text means no hours are known (the same
    empty week). Raises HoursError saying what is wrong.
    """
    # day → (named on its own, its stretches, the entry it came from)
    given: dict[int, tuple[bool, list[Stretch], str]] = {}
    for part in _ENTRY_SEPARATOR.split(text or ""):
        if not part.strip():
            continue
        days, stretches = _entry(part)
        for day, alone in days:
            if day not in given or (alone and not given[day][0]):
                given[day] = (alone, stretches, part.strip())
            elif given[day][0] == alone:
                raise HoursError(
                    _(
                        "%(day)s is given twice, in “%(first)s” and in “%(second)s”: write each "
                        "day once, with all its stretches, like “tor 08–12, 13–16”.",
                        day=_day_name(day),
                        first=given[day][2],
                        second=part.strip(),
                    )
                )
    return {day: given[day][1] if day in given else [] for day in WEEKDAYS}


def _day_runs(days: list[int]) -> str:
    """Days as runs: ``man–ons, fre``."""
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        DAY_ABBREVIATIONS[run[0]]
        if len(run) == 1
        else f"{DAY_ABBREVIATIONS[run[0]]}–{DAY_ABBREVIATIONS[run[-1]]}"
        for run in runs
    )


def format_week(week: Mapping[int, list[Stretch]]) -> str:
    """Write a week the way parse_week reads it back: ``man–fre 08:00–16:00; lør 10:00–14:00``.

    Days with the same hours are written together, in order of their first day; closed days
    are left out, so a week without hours is ''.
    """
    days_by_hours: dict[str, list[int]] = {}
    for day in WEEKDAYS:
        hours = format_day(sorted(week.get(day, [])))
        if hours:
            days_by_hours.setdefault(hours, []).append(day)
    return "; ".join(f"{_day_runs(days)} {hours}" for hours, days in days_by_hours.items())


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
