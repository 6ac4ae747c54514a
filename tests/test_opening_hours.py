"""Opening hours: staff write them per weekday, patients see them and "open now"."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import select

from clinic_finder.hours import HoursError, format_day, is_open_at, parse_day, week_of
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
