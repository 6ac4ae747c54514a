"""Opening hours: staff write them per weekday, patients see them and "open now"."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from clinic_finder.hours import (
    HoursError,
    format_day,
    format_week,
    is_open_at,
    parse_day,
    parse_week,
    week_of,
)
from clinic_finder.models import AuditEntry, Clinic, OpeningHours

from .conftest import post_form
from .factories import make_clinic


@pytest.mark.parametrize(
    "text, stretches",
    [
        ("", []),
        ("08–16", [(time(8), time(16))]),
        ("8:00-15:30", [(time(8), time(15, 30))]),
        ("08.00–11.30, 12.30–16.00", [(time(8), time(11, 30)), (time(12, 30), time(16))]),
        ("12:30-16, 08-11:30", [(time(8), time(11, 30)), (time(12, 30), time(16))]),
        ("07—24", [(time(7), time(23, 59))]),
    ],
)
def test_staff_write_hours_as_clinics_print_them(text, stretches):
    assert parse_day(text) == stretches


@pytest.mark.parametrize(
    "text, message",
    [
        ("08-", "Could not read “08-”"),
        ("mandag", "Could not read"),
        ("16-08", "closes before it opens"),
        ("25-26", "is not a time of day"),
        ("08:75-16", "is not a time of day"),
        ("08-12, 11-16", "overlap"),
        ("07-08, 09-10, 11-12, 13-14", "At most 3"),
    ],
)
def test_unreadable_hours_get_a_message_saying_why(text, message):
    with pytest.raises(HoursError, match=message):
        parse_day(text)


def test_hours_are_written_back_the_way_staff_type_them():
    assert format_day(parse_day("8-11.30, 12.30-16")) == "08:00–11:30, 12:30–16:00"


def _clinic_with_hours(session, **fields) -> Clinic:
    clinic = make_clinic(session, **fields)
    # Monday and Wednesday 08–16 with lunch on Wednesday; closed the rest of the week.
    clinic.opening_hours = [
        OpeningHours(weekday=0, opens=time(8), closes=time(16)),
        OpeningHours(weekday=2, opens=time(8), closes=time(11, 30)),
        OpeningHours(weekday=2, opens=time(12, 30), closes=time(16)),
    ]
    session.commit()
    return clinic


@pytest.mark.parametrize(
    "moment, is_open",
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), True),  # Monday 10:00 in Oslo (winter, +1)
        (datetime(2026, 11, 23, 15, 0, tzinfo=UTC), False),  # Monday 16:00: just closed
        (datetime(2026, 11, 23, 6, 59, tzinfo=UTC), False),  # Monday 07:59
        (datetime(2026, 11, 25, 11, 0, tzinfo=UTC), False),  # Wednesday 12:00: lunch
        (datetime(2026, 11, 25, 11, 30, tzinfo=UTC), True),  # Wednesday 12:30
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), False),  # Tuesday: closed all day
        (
            datetime(2026, 6, 1, 14, 30, tzinfo=UTC),
            True,
        ),  # Monday 16:30 UTC+2? no: 14:30 UTC = 16:30 CEST
    ],
)
def test_open_now_reads_the_hours_in_norwegian_time(session, moment, is_open):
    clinic = _clinic_with_hours(session)
    expected = is_open if moment.month != 6 else False  # 16:30 in summer is after closing
    assert is_open_at(clinic, moment) is expected


def test_a_temporarily_closed_clinic_is_never_open_now(session):
    clinic = _clinic_with_hours(session, closed_until=date(2026, 12, 1))
    assert is_open_at(clinic, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) is False


def test_a_clinic_without_hours_is_neither_open_nor_closed(session):
    assert is_open_at(make_clinic(session), datetime(2026, 11, 23, 9, tzinfo=UTC)) is None


def test_staff_set_the_hours_of_a_clinic(app, staff_client, session):
    clinic = make_clinic(session)
    session.commit()
    url = f"/staff/clinics/{clinic.id}/hours"
    days = {f"day_{day}": "" for day in range(7)}
    days.update(day_0="08-16", day_2="08.00-11.30, 12.30-16")
    response = post_form(staff_client, url, **days)
    assert response.status_code == 302

    session.expire_all()
    week = week_of(session.get(Clinic, clinic.id))
    assert week[0] == [(time(8), time(16))]
    assert week[2] == [(time(8), time(11, 30)), (time(12, 30), time(16))]
    assert week[1] == []
    entry = session.scalars(select(AuditEntry).where(AuditEntry.summary == "opening hours")).one()
    assert entry.changes["hours_mon"] == ["", "08:00–16:00"]
    # The form shows them back the way staff typed them.
    page = staff_client.get(url).get_data(as_text=True)
    assert 'value="08:00–11:30, 12:30–16:00"' in page


def test_one_bad_day_saves_nothing_and_says_which(app, staff_client, session):
    clinic = _clinic_with_hours(session)
    url = f"/staff/clinics/{clinic.id}/hours"
    days = {f"day_{day}": "" for day in range(7)}
    days.update(day_0="09-15", day_4="16-08")
    response = post_form(staff_client, url, **days)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "closes before it opens" in page
    session.expire_all()
    assert week_of(session.get(Clinic, clinic.id))[0] == [(time(8), time(16))]


def test_anonymous_visitors_cannot_see_or_change_hours(app, session, client):
    clinic = make_clinic(session)
    session.commit()
    response = client.get(f"/staff/clinics/{clinic.id}/hours")
    assert response.status_code == 302
    assert "/staff/sign-in" in response.headers["Location"]


def test_the_clinic_page_shows_the_week_and_tells_search_engines(client, session):
    import json
    import re

    clinic = _clinic_with_hours(session)
    page = client.get(f"/clinics/{clinic.id}", follow_redirects=True).get_data(as_text=True)
    rows = re.findall(r"<tr><th scope=\"row\">(\w+)</th><td>([^<]*)</td></tr>", page)
    assert rows[0] == ("Monday", "08:00–16:00")
    assert rows[1] == ("Tuesday", "Closed all day")
    assert rows[2] == ("Wednesday", "08:00–11:30, 12:30–16:00")
    assert "Public holidays are not taken into account" in page
    (structured,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    hours = json.loads(structured)["openingHoursSpecification"]
    assert hours[0] == {
        "@type": "OpeningHoursSpecification",
        "dayOfWeek": "https://schema.org/Monday",
        "opens": "08:00",
        "closes": "16:00",
    }
    norwegian = client.get(f"/clinics/{clinic.id}?lang=nb", follow_redirects=True)
    assert '<th scope="row">Mandag</th>' in norwegian.get_data(as_text=True)


def test_a_clinic_without_hours_shows_no_table(client, session):
    clinic = make_clinic(session)
    session.commit()
    page = client.get(f"/clinics/{clinic.id}", follow_redirects=True).get_data(as_text=True)
    assert "opening-hours" not in page


def test_a_bad_day_is_explained_in_norwegian_to_norwegian_staff(app):
    with (
        app.test_request_context("/?lang=nb"),
        pytest.raises(HoursError, match="stenger klinikken før den åpner"),
    ):
        parse_day("16-08")


# --- A week in one cell (the clinic list's opening_hours column) ----------------------------

MORNING = [(time(8), time(16))]


def _week(**days: list) -> dict[int, list]:
    """A week from ``mon=…, sat=…``; days not given are closed."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {day: days.get(name, []) for day, name in enumerate(names)}


@pytest.mark.parametrize(
    "text, week",
    [
        ("", _week()),
        ("  ", _week()),
        ("man-fre 08-16", _week(mon=MORNING, tue=MORNING, wed=MORNING, thu=MORNING, fri=MORNING)),
        (
            "man-fre 08-16; tor 08-19; lør 10-14",
            _week(
                mon=MORNING,
                tue=MORNING,
                wed=MORNING,
                thu=[(time(8), time(19))],
                fri=MORNING,
                sat=[(time(10), time(14))],
            ),
        ),
        (
            "man-tor 07:30-15:30, 16:00-20:00; fre 08-14",
            _week(
                **dict.fromkeys(
                    ("mon", "tue", "wed", "thu"),
                    [(time(7, 30), time(15, 30)), (time(16), time(20))],
                ),
                fri=[(time(8), time(14))],
            ),
        ),
        ("Mon–Fri 8-16", _week(mon=MORNING, tue=MORNING, wed=MORNING, thu=MORNING, fri=MORNING)),
        ("mon to fri 8-16", _week(mon=MORNING, tue=MORNING, wed=MORNING, thu=MORNING, fri=MORNING)),
        (
            "mandag til fredag: 08.00–16.00",
            _week(mon=MORNING, tue=MORNING, wed=MORNING, thu=MORNING, fri=MORNING),
        ),
        ("Man. – Ons. kl. 08–16", _week(mon=MORNING, tue=MORNING, wed=MORNING)),
        ("man, ons og fre 08-16", _week(mon=MORNING, wed=MORNING, fri=MORNING)),
        ("ma 08-16\nto 08-16", _week(mon=MORNING, thu=MORNING)),
        ("måndag 08-16; laurdag 10-14", _week(mon=MORNING, sat=[(time(10), time(14))])),
        ("hverdager 08-16; ons stengt", _week(mon=MORNING, tue=MORNING, thu=MORNING, fri=MORNING)),
        (
            "tor 08-19; man-fre 08-16",
            _week(mon=MORNING, tue=MORNING, wed=MORNING, thu=[(time(8), time(19))], fri=MORNING),
        ),
        ("helg 10-14;", _week(sat=[(time(10), time(14))], sun=[(time(10), time(14))])),
        ("søn 12-24", _week(sun=[(time(12), time(23, 59))])),
    ],
)
def test_a_week_is_read_as_a_receptionist_types_it(text, week):
    assert parse_week(text) == week


@pytest.mark.parametrize(
    "text, message",
    [
        ("mna-fre 08-16", "“mna” is not a day of the week"),
        ("man-fre 08-16; sunday 10-14; frokost 08-09", "“frokost” is not a day of the week"),
        ("man-fre 08-12, 11-16", "“man-fre 08-12, 11-16”: Two stretches of the same day overlap"),
        ("man 16-08", "“man 16-08”: In “16-08” the clinic closes before it opens"),
        ("lør 25-26", "25:00 is not a time of day"),
        ("tor 08-12; tor 13-16", "Thursday is given twice, in “tor 08-12” and in “tor 13-16”"),
        ("man-fre 08-16; tor-lør 10-14", "Thursday is given twice"),
        ("fre-man 08-16", "In “fre-man” the days are in the wrong order"),
        ("man-ons-fre 08-16", "Could not read the days “man-ons-fre”"),
        ("man,,fre 08-16", "Could not read the days"),
        ("man-fre", "Say the hours for “man-fre”"),
        ("08-16", "Say which days “08-16” is for"),
        ("Mon-Fri 8-16, Sat 10-14", "end each day's hours with a semicolon"),
        ("man 07-08, 09-10, 11-12, 13-14", "At most 3 stretches a day"),
        # A run of "kl" once made the search quadratic: minutes for a hostile cell.
        pytest.param("man " + "kl " * 20_000 + "x 08-16", "is not a day", id="long-kl-run"),
    ],
)
def test_an_unreadable_week_gets_a_message_naming_what_is_wrong(text, message):
    with pytest.raises(HoursError, match=re.escape(message)):
        parse_week(text)


def test_a_week_is_written_with_norwegian_days_and_shared_hours_together():
    week = parse_week("man-fre 08-16; tor 08-19; lør 10-14")
    assert format_week(week) == "man–ons, fre 08:00–16:00; tor 08:00–19:00; lør 10:00–14:00"


def test_a_week_without_hours_is_written_empty():
    assert format_week(_week()) == ""
    assert format_week({}) == ""


def test_a_day_given_twice_is_named_in_norwegian_to_norwegian_staff(app):
    with (
        app.test_request_context("/?lang=nb"),
        pytest.raises(HoursError, match="Dagen torsdag står to ganger"),
    ):
        parse_week("tor 08-12; tor 13-16")


_MINUTES_OF_DAY = st.integers(min_value=0, max_value=23 * 60 + 59)


@st.composite
def _days(draw) -> list:
    """Up to three stretches of one day, in order, none overlapping."""
    count = draw(st.integers(min_value=0, max_value=3))
    bounds = sorted(draw(st.sets(_MINUTES_OF_DAY, min_size=2 * count, max_size=2 * count)))
    clock = [time(minute // 60, minute % 60) for minute in bounds]
    return list(zip(clock[::2], clock[1::2], strict=True))


@pytest.mark.slow
@settings(max_examples=300, derandomize=True, deadline=None)
@given(days=st.lists(_days(), min_size=7, max_size=7))
def test_format_week_is_read_back_identically(days):
    week = dict(enumerate(days))
    text = format_week(week)
    assert parse_week(text) == week
    assert format_week(parse_week(text)) == text
