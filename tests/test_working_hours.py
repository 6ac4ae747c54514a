"""Working hours: a request's age and overdue mark count Norwegian working days only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinic_finder.models import NORWAY, ContactRequest, RequestStatus
from clinic_finder.working_hours import (
    ANSWER_WITHIN,
    is_working_day,
    overdue_cutoff,
    working_time,
)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=NORWAY)


def new_request(received: datetime) -> ContactRequest:
    return ContactRequest(created_at=received.astimezone(UTC), status=RequestStatus.NEW)


def hours(number: float) -> timedelta:
    return timedelta(hours=number)


def test_a_weekday_counts_whole_and_a_weekend_not_at_all():
    friday_afternoon = oslo(2026, 12, 4, 15, 0)
    assert working_time(friday_afternoon, oslo(2026, 12, 7, 0, 0)) == hours(9)
    assert working_time(friday_afternoon, oslo(2026, 12, 7, 15, 0)) == hours(24)
    assert working_time(oslo(2026, 12, 5, 9, 0), oslo(2026, 12, 6, 21, 0)) == timedelta()


def test_a_request_from_friday_afternoon_is_not_overdue_until_tuesday_afternoon():
    request = new_request(oslo(2026, 12, 4, 15, 0))
    assert not request.is_overdue(oslo(2026, 12, 7, 9, 0))  # Monday: 33 clock hours … 18
    assert not request.is_overdue(oslo(2026, 12, 8, 15, 0))  # Tuesday: exactly 48
    assert request.is_overdue(oslo(2026, 12, 8, 15, 1))


def test_a_request_sent_at_the_weekend_starts_counting_on_monday():
    request = new_request(oslo(2026, 12, 5, 11, 0))  # Saturday
    assert not request.is_overdue(oslo(2026, 12, 9, 0, 0))  # Monday and Tuesday: 48
    assert request.is_overdue(oslo(2026, 12, 9, 0, 1))


@pytest.mark.parametrize(
    "day",
    [
        (2027, 3, 25),  # Maundy Thursday
        (2027, 3, 26),  # Good Friday
        (2027, 3, 29),  # Easter Monday
        (2027, 5, 6),  # Ascension Day
        (2027, 5, 17),  # Constitution Day (and Whit Monday)
        (2025, 12, 25),  # Christmas Day
        (2025, 12, 26),  # Boxing Day
        (2026, 1, 1),
        (2026, 5, 1),
    ],
)
def test_norwegian_public_holidays_are_not_working_days(day):
    assert not is_working_day(datetime(*day).date())


def test_christmas_eve_and_an_ordinary_wednesday_are_working_days():
    assert is_working_day(datetime(2025, 12, 24).date())
    assert is_working_day(datetime(2027, 3, 24).date())


def test_easter_stops_the_clock_from_maundy_thursday_to_easter_monday():
    request = new_request(oslo(2027, 3, 24, 12, 0))  # the Wednesday before Easter
    # Six clock days later it has waited 24 working hours: Wednesday afternoon, Tuesday morning.
    assert working_time(request.created_at, oslo(2027, 3, 30, 12, 0)) == hours(24)
    assert not request.is_overdue(oslo(2027, 3, 31, 12, 0))
    assert request.is_overdue(oslo(2027, 3, 31, 12, 1))


def test_the_seventeenth_of_may_does_not_count():
    request = new_request(oslo(2027, 5, 14, 10, 0))  # Friday; Monday 17 May is a holiday
    assert not request.is_overdue(oslo(2027, 5, 19, 10, 0))
    assert request.is_overdue(oslo(2027, 5, 19, 10, 1))


def test_christmas_does_not_count():
    request = new_request(oslo(2025, 12, 23, 12, 0))  # Tuesday; 25 and 26 are Thu and Fri
    assert working_time(request.created_at, oslo(2025, 12, 28, 23, 0)) == hours(36)
    assert not request.is_overdue(oslo(2025, 12, 29, 12, 0))
    assert request.is_overdue(oslo(2025, 12, 29, 12, 1))


def test_an_answered_request_is_never_overdue():
    request = new_request(oslo(2026, 11, 2, 9, 0))
    request.status = RequestStatus.IN_PROGRESS
    assert not request.is_overdue(oslo(2026, 12, 2, 9, 0))


def test_the_overdue_cutoff_behind_a_weekend_is_the_end_of_friday():
    # Wednesday 00:00: Monday and Tuesday hold the 48 hours; a request received at the
    # weekend has waited exactly 48, so only those from Friday on back are overdue.
    assert overdue_cutoff(oslo(2026, 12, 9, 0, 0)) == oslo(2026, 12, 5, 0, 0)


# Moments from 2024 to 2028, to the minute, in UTC.
moments = st.integers(min_value=0, max_value=5 * 365 * 24 * 60).map(
    lambda minutes: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
)


@given(received=moments, waited=st.integers(min_value=0, max_value=20 * 24 * 60))
def test_received_before_the_cutoff_is_exactly_more_than_48_working_hours(received, waited):
    now = received + timedelta(minutes=waited)
    assert (received < overdue_cutoff(now)) == (working_time(received, now) > ANSWER_WITHIN)
