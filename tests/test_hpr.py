"""Licence checks against HPR: the rules on their own, and the client against a real SOAP
server on loopback (tests/hpr_server.py), which answers as NHN's HPR v2 Basic endpoint does."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import requests

from clinic_finder.config import ConfigError
from clinic_finder.hpr import (
    Approval,
    HprClient,
    HprPerson,
    HprUnavailable,
    LicenceCheck,
    LicenceStatus,
    Period,
    build_client,
    current_client,
    judge_person,
    licence_checks_enabled,
)

from .hpr_server import (
    TEST_PASSWORD,
    RegisteredApproval,
    RegisteredPerson,
    Suspension,
    load_register,
    register_from_json,
)

TODAY = date(2025, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)
TOMORROW = TODAY + timedelta(days=1)
KI, FT, MT = frozenset({"KI"}), frozenset({"FT"}), frozenset({"MT"})

# Arrivals are stamped by a server thread, which can run a few milliseconds after the
# request was sent; this much earlier than the client's spacing is still that spacing.
SCHEDULING_SLACK = 0.01


def at_midnight(day: date) -> datetime:
    """A register time as the service sends it: Norwegian midnight with its offset."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone(timedelta(hours=1)))


def approval(
    category: str,
    start: date | None = date(2010, 6, 1),
    end: date | None = None,
    suspended: tuple[tuple[date, date | None], ...] = (),
) -> Approval:
    return Approval(
        category,
        Period(start and at_midnight(start), end and at_midnight(end)),
        tuple(Period(at_midnight(s), e and at_midnight(e)) for s, e in suspended),
    )


def person(*approvals: Approval) -> HprPerson:
    return HprPerson("9144889", approvals)


# --- the rules ------------------------------------------------------------------------------


def test_judge_person_not_found():
    assert judge_person(None, FT, TODAY) == LicenceCheck(LicenceStatus.NOT_FOUND)


def test_judge_person_valid_open_ended():
    check = judge_person(person(approval("FT", date(2010, 6, 1))), FT, TODAY)
    assert check == LicenceCheck(LicenceStatus.VALID, ("FT",), date(2010, 6, 1), None)


def test_judge_person_valid_on_the_last_day():
    check = judge_person(person(approval("KI", end=TODAY)), KI, TODAY)
    assert check.status is LicenceStatus.VALID
    assert check.valid_to == TODAY


def test_judge_person_expired_the_day_after_the_last_day():
    check = judge_person(person(approval("KI", end=YESTERDAY)), KI, TODAY)
    assert check == LicenceCheck(LicenceStatus.EXPIRED, ("KI",), date(2010, 6, 1), YESTERDAY)


def test_judge_person_not_yet_valid_counts_as_expired():
    check = judge_person(person(approval("KI", start=TOMORROW)), KI, TODAY)
    assert check.status is LicenceStatus.EXPIRED
    assert check.valid_from == TOMORROW


def test_judge_person_valid_from_today():
    assert judge_person(person(approval("KI", start=TODAY)), KI, TODAY).status is (
        LicenceStatus.VALID
    )


def test_judge_person_without_a_period_is_not_valid():
    check = judge_person(person(Approval("FT", None)), FT, TODAY)
    assert check == LicenceCheck(LicenceStatus.EXPIRED, ("FT",))


@pytest.mark.parametrize(
    ("suspension", "status"),
    [
        ((date(2025, 1, 1), YESTERDAY), LicenceStatus.VALID),  # ended yesterday
        ((date(2025, 1, 1), TODAY), LicenceStatus.SUSPENDED),  # its last day
        ((TODAY, None), LicenceStatus.SUSPENDED),  # from today, open-ended
        ((TOMORROW, None), LicenceStatus.VALID),  # not yet
    ],
)
def test_judge_person_suspension_covering_today(suspension, status):
    check = judge_person(person(approval("MT", suspended=(suspension,))), MT, TODAY)
    assert check.status is status


def test_judge_person_without_the_category_has_no_authorisation_for_the_profession():
    check = judge_person(person(approval("LE"), approval("FT")), KI, TODAY)
    assert check == LicenceCheck(LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION, ("FT", "LE"))


def test_judge_person_several_categories_held_one_required():
    check = judge_person(person(approval("MT", end=date(2030, 1, 1)), approval("FT")), MT, TODAY)
    assert check == LicenceCheck(
        LicenceStatus.VALID, ("FT", "MT"), date(2010, 6, 1), date(2030, 1, 1)
    )


def test_judge_person_valid_for_several_categories_until_the_first_ends():
    held = person(approval("FT", end=date(2031, 1, 1)), approval("MT", end=date(2029, 1, 1)))
    check = judge_person(held, FT | MT, TODAY)
    assert (check.status, check.valid_to) == (LicenceStatus.VALID, date(2029, 1, 1))


@pytest.mark.parametrize(
    ("mt", "expected"),
    [
        (None, LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION),
        (approval("MT", end=YESTERDAY), LicenceStatus.EXPIRED),
        (approval("MT", suspended=((YESTERDAY, None),)), LicenceStatus.SUSPENDED),
    ],
)
def test_judge_person_is_valid_only_when_every_required_category_is(mt, expected):
    held = person(approval("FT"), *([mt] if mt else []))
    assert judge_person(held, FT | MT, TODAY).status is expected


def test_judge_person_takes_the_worst_category():
    held = person(approval("FT", end=YESTERDAY), approval("MT", suspended=((YESTERDAY, None),)))
    check = judge_person(held, FT | MT | KI, TODAY)
    assert check.status is LicenceStatus.SUSPENDED
    held = person(approval("FT", end=YESTERDAY))
    assert judge_person(held, FT | KI, TODAY).status is (
        LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION
    )


def test_judge_person_a_current_authorisation_outweighs_an_old_one():
    old, current = approval("FT", end=date(2015, 1, 1)), approval("FT", start=date(2015, 1, 2))
    check = judge_person(person(old, current), FT, TODAY)
    assert check == LicenceCheck(LicenceStatus.VALID, ("FT",), date(2015, 1, 2), None)


def test_judge_person_reads_times_as_norwegian_dates():
    # 23:30 UTC on the 9th is already the 10th in Oslo; a time without an offset is Oslo's.
    late = Approval(
        "FT", Period(at_midnight(date(2010, 1, 1)), datetime(2025, 3, 9, 23, 30, tzinfo=UTC))
    )
    assert judge_person(person(late), FT, TODAY).valid_to == TODAY
    naive = Approval("FT", Period(datetime(2010, 1, 1), datetime(2025, 3, 10, 0, 0)))
    assert judge_person(person(naive), FT, TODAY).status is LicenceStatus.VALID


def test_judge_person_needs_a_category():
    with pytest.raises(ValueError):
        judge_person(person(approval("FT")), frozenset(), TODAY)


# --- the client against the loopback HPR ------------------------------------------------------


def registered(category: str, start: date = date(2010, 6, 1), end=None, suspensions=()):
    return RegisteredApproval(category, start, end, tuple(suspensions))


@pytest.mark.parametrize(
    ("approvals", "required", "expected"),
    [
        ((registered("KI"),), KI, LicenceCheck(LicenceStatus.VALID, ("KI",), date(2010, 6, 1))),
        (
            (registered("FT", end=date(2026, 6, 30)),),
            FT,
            LicenceCheck(LicenceStatus.VALID, ("FT",), date(2010, 6, 1), date(2026, 6, 30)),
        ),
        (
            (registered("LE"),),
            KI,
            LicenceCheck(LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION, ("LE",)),
        ),
        (
            (registered("MT", suspensions=[Suspension(date(2025, 1, 1), date(2025, 6, 30))]),),
            MT,
            LicenceCheck(LicenceStatus.SUSPENDED, ("MT",), date(2010, 6, 1)),
        ),
        (
            (registered("FT", end=YESTERDAY),),
            FT,
            LicenceCheck(LicenceStatus.EXPIRED, ("FT",), date(2010, 6, 1), YESTERDAY),
        ),
        (
            (registered("FT"), registered("MT", start=date(2018, 1, 15))),
            MT,
            LicenceCheck(LicenceStatus.VALID, ("FT", "MT"), date(2018, 1, 15)),
        ),
    ],
    ids=["valid", "valid-until", "other-profession", "suspended", "expired", "ft-and-mt"],
)
def test_check_answers_from_the_register(hpr_server, hpr_client, approvals, required, expected):
    hpr_server.register["9144889"] = RegisteredPerson(approvals, "Bjørn", "Ødegård")
    assert hpr_client.check("9144889", required, TODAY) == expected
    assert hpr_server.asked_for() == ["9144889"]


def test_check_of_an_unknown_number_is_not_found(hpr_server, hpr_client):
    assert hpr_client.check(123456, FT, TODAY) == LicenceCheck(LicenceStatus.NOT_FOUND)
    assert hpr_server.asked_for() == ["123456"]


def test_the_client_reads_the_shipped_wsdl_never_the_services(hpr_server, hpr_client):
    hpr_client.check("1", FT, TODAY)
    assert [request.method for request in hpr_server.requests] == ["POST"]


def test_a_number_that_is_no_hpr_number_is_refused_before_asking(hpr_server, hpr_client):
    for number in ("", "12a", "1234567890", "١٢٣"):
        with pytest.raises(ValueError):
            hpr_client.check(number, FT, TODAY)
    assert hpr_server.requests == []


def test_a_wrong_password_is_unavailable_and_not_repeated(hpr_server):
    client = build_client(hpr_server.config(HPR_PASSWORD="not-the-password"))
    with pytest.raises(HprUnavailable, match="HTTP 401") as raised:
        client.check("9144889", FT, TODAY)
    assert "not-the-password" not in str(raised.value)
    assert "not-the-password" not in repr(client)
    assert [request.authorised for request in hpr_server.requests] == [False]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", "fault: The server was unable to process the request"),
        ("down", "HTTP 503"),
        ("garbage", "could not be read"),
        ("changed", "could not be read: Unexpected element"),
    ],
)
def test_a_failing_service_is_unavailable(hpr_server, hpr_client, mode, message):
    hpr_server.register["9144889"] = RegisteredPerson((registered("FT"),))
    hpr_server.fail(mode, times=1)
    with pytest.raises(HprUnavailable, match=message):
        hpr_client.check("9144889", FT, TODAY)
    assert hpr_client.check("9144889", FT, TODAY).status is LicenceStatus.VALID


def test_a_service_slower_than_the_timeout_is_unavailable(hpr_server, hpr_client):
    hpr_server.fail("slow")
    with pytest.raises(HprUnavailable, match="did not answer within 0.3 s"):
        hpr_client.check("9144889", FT, TODAY)


def test_an_unreachable_service_is_unavailable(hpr_server):
    client = build_client(hpr_server.config())
    hpr_server.stop()
    with pytest.raises(HprUnavailable, match="could not be reached"):
        client.check("9144889", FT, TODAY)


def test_the_server_fails_after_good_answers_and_for_a_number_of_requests(hpr_server, hpr_client):
    hpr_server.register["1"] = RegisteredPerson((registered("FT"),))
    hpr_server.fail("down", after=2, times=2)
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(hpr_client.check("1", FT, TODAY).status.value)
        except HprUnavailable:
            outcomes.append("unavailable")
    assert outcomes == ["valid", "valid", "unavailable", "unavailable", "valid"]
    assert len(hpr_server.calls) == 5


def spacings(hpr_server) -> list[float]:
    arrivals = sorted(request.at for request in hpr_server.calls)
    return [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]


def test_calls_are_spaced_by_the_rate_limit(hpr_server):
    client = build_client(hpr_server.config(HPR_REQUESTS_PER_SECOND=20))
    for number in ("1", "2", "3", "4"):
        client.check(number, FT, TODAY)
    assert len(spacings(hpr_server)) == 3
    assert min(spacings(hpr_server)) >= 1 / 20 - SCHEDULING_SLACK


def test_calls_from_several_threads_share_the_rate_limit(hpr_server):
    client = build_client(hpr_server.config(HPR_REQUESTS_PER_SECOND=20))
    start = threading.Barrier(4)

    def check(number: str) -> None:
        start.wait()
        client.check(number, FT, TODAY)

    threads = [threading.Thread(target=check, args=(str(n),)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(hpr_server.asked_for()) == ["1", "2", "3", "4"]
    assert min(spacings(hpr_server)) >= 1 / 20 - SCHEDULING_SLACK


# --- the app's seam and its settings -----------------------------------------------------------


def test_licence_checks_are_off_without_hpr_url(app):
    with app.app_context():
        assert current_client() is None
        assert licence_checks_enabled() is False


def test_the_app_checks_licences_at_hpr_url(hpr_app, hpr_server):
    hpr_server.register["9144889"] = RegisteredPerson((registered("KI"),))
    with hpr_app.app_context():
        assert licence_checks_enabled() is True
        assert current_client().check("9144889", KI, TODAY).status is LicenceStatus.VALID


@pytest.mark.parametrize(
    "url",
    ["ftp://ws.nhn.no/v2/HPR/Basic", "ws.nhn.no/v2/HPR/Basic", "https://u:p@ws.nhn.no/v2/HPR"],
)
def test_an_hpr_url_that_cannot_be_used_is_refused(url):
    with pytest.raises(ConfigError, match="HPR_URL"):
        build_client({"HPR_URL": url})


@pytest.mark.parametrize(
    "setting",
    [{"HPR_TIMEOUT_SECONDS": 0}, {"HPR_REQUESTS_PER_SECOND": -1}, {"HPR_TIMEOUT_SECONDS": "soon"}],
)
def test_hpr_settings_that_cannot_be_used_are_refused(setting):
    with pytest.raises(ConfigError):
        build_client({"HPR_URL": "https://ws.nhn.no/v2/HPR/Basic", **setting})


def test_the_client_takes_the_default_timeout_and_rate():
    client = build_client({"HPR_URL": "https://ws.nhn.no/v2/HPR/Basic"})
    assert isinstance(client, HprClient)
    assert (client.timeout_seconds, client.throttle.interval) == (10.0, 0.2)


# --- the loopback server itself ----------------------------------------------------------------


def test_the_server_serves_the_wsdl_pointing_at_itself_to_its_user(hpr_server):
    answer = requests.get(hpr_server.url + "?wsdl", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    answer = requests.get(
        hpr_server.url + "?wsdl", auth=(hpr_server.username, TEST_PASSWORD), timeout=5
    )
    assert answer.status_code == 200
    assert f'location="{hpr_server.url}"'.encode() in answer.content
    assert b"HentPerson" in answer.content


def test_load_register_reads_the_json_format(tmp_path):
    path = tmp_path / "register.json"
    path.write_text(
        json.dumps(
            {
                "9144889": {
                    "first_name": "Kari",
                    "last_name": "Nordmann",
                    "approvals": [
                        {"category": "FT", "valid_from": "2012-06-20", "valid_to": None},
                        {
                            "category": "MT",
                            "valid_from": "2018-01-15",
                            "valid_to": "2030-12-31",
                            "suspensions": [{"from": "2024-01-01", "to": "2024-03-31"}],
                        },
                    ],
                }
            }
        ),
        encoding="utf-8",
    )
    assert load_register(path) == {
        "9144889": RegisteredPerson(
            (
                RegisteredApproval("FT", date(2012, 6, 20)),
                RegisteredApproval(
                    "MT",
                    date(2018, 1, 15),
                    date(2030, 12, 31),
                    (Suspension(date(2024, 1, 1), date(2024, 3, 31)),),
                ),
            ),
            "Kari",
            "Nordmann",
        )
    }


@pytest.mark.parametrize(
    "data",
    [
        {"91448x9": {}},
        {"1": {"approvals": [{"category": "FT", "valid_from": "2012-06-20", "valid_til": None}]}},
        {"1": {"approvals": [{"category": "FT", "valid_from": "20.06.2012"}]}},
        {"1": {"approvals": [{"valid_from": "2012-06-20"}]}},
        {"1": {"name": "Kari"}},
    ],
)
def test_register_from_json_refuses_what_it_does_not_know(data):
    with pytest.raises(ValueError):
        register_from_json(data)
