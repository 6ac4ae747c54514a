"""Licence checks against the Health Personnel Register, through the loopback HPR: every
status stored and acted on, `flask clinicians verify-licences` resumable and summarised."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_finder.extensions import db
from clinic_finder.hpr import LicenceStatus
from clinic_finder.licences import check_clinicians, clinicians_to_look_at, required_categories
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    ListedClinic,
    PostalCode,
    Practice,
    Profession,
    now_utc,
)
from clinic_finder.search import find_clinics_near

from .conftest import PROJECT_ROOT
from .factories import make_clinic, make_practice, new_clinician
from .hpr_server import load_register, register_from_json

FOREVER = None


def approval(category: str, valid_from="2010-08-01", valid_to=FOREVER, suspended_from=None):
    entry = {"category": category, "valid_from": valid_from, "valid_to": valid_to}
    if suspended_from:
        entry["suspensions"] = [{"from": suspended_from, "to": None}]
    return entry


def _directory(session) -> dict[str, Clinician]:
    """One clinician per outcome, each at a clinic of their own near 0150."""
    people = {}
    for name, profession in (
        ("valid", Profession.PHYSIOTHERAPIST),
        ("not_found", Profession.PHYSIOTHERAPIST),
        ("no_authorisation_for_profession", Profession.CHIROPRACTOR),
        ("suspended", Profession.CHIROPRACTOR),
        ("expired", Profession.MANUAL_THERAPIST),
    ):
        clinic = make_clinic(session, name=f"Klinikk {name}", professions=(profession,))
        people[name] = clinic.practices[0].clinician
    session.commit()
    return people


def _register(people: dict[str, Clinician]) -> dict:
    return register_from_json(
        {
            people["valid"].hpr_number: {"approvals": [approval("FT")]},
            # Holds FT, practises as a chiropractor: no authorisation for that.
            people["no_authorisation_for_profession"].hpr_number: {"approvals": [approval("FT")]},
            people["suspended"].hpr_number: {
                "approvals": [approval("KI", suspended_from="2026-10-01")]
            },
            people["expired"].hpr_number: {
                "approvals": [approval("FT"), approval("MT", valid_to="2025-06-30")]
            },
        }
    )


def _listed_names(session) -> set[str]:
    origin = session.get(PostalCode, "0150")
    found = find_clinics_near(session, origin, 25, limit=50)
    return {hit.clinic.name for hit in found.hits}


def test_verify_licences_stores_every_status_and_hides_those_not_valid(
    hpr_app, hpr_server, runner, session
):
    people = _directory(session)
    hpr_server.register.update(_register(people))
    assert len(_listed_names(session)) == 5

    result = runner.invoke(args=["clinicians", "verify-licences"])

    assert result.exit_code == 0, result.output
    session.expire_all()
    for expected, clinician in people.items():
        assert clinician.licence_status == LicenceStatus(expected)
        assert clinician.licence_checked_at is not None
    assert people["expired"].licence_categories == ["FT", "MT"]
    assert people["expired"].licence_valid_to.isoformat() == "2025-06-30"
    # Only the valid one is still found; the others wait for staff on the licences page.
    assert _listed_names(session) == {"Klinikk valid"}
    assert {c.hpr_number for c in clinicians_to_look_at(session)} == {
        people[name].hpr_number
        for name in ("not_found", "no_authorisation_for_profession", "suspended", "expired")
    }
    assert "Checked 5 clinician(s)" in result.output
    assert "suspended: 1" in result.output
    assert "4 clinician(s) are now hidden from patients" in result.output
    # Each change of status is in the audit log.
    changes = session.scalars(select(AuditEntry).where(AuditEntry.action == "licence_checked"))
    assert len(list(changes)) == 5


def test_a_run_that_hpr_breaks_off_resumes_where_it_stopped(hpr_app, hpr_server, runner, session):
    people = _directory(session)
    hpr_server.register.update(_register(people))
    hpr_server.fail("down", after=2)

    broken = runner.invoke(args=["clinicians", "verify-licences"])

    assert broken.exit_code == 1
    assert "HPR gave no usable answer for 3 clinician(s)" in broken.output
    assert "run the command again later" in broken.output
    session.expire_all()
    checked = [c for c in people.values() if c.licence_checked_at is not None]
    assert len(checked) == 2
    # The unanswered keep their status: nobody is hidden or shown for HPR being down.
    assert all(
        c.licence_status is LicenceStatus.UNCHECKED
        for c in people.values()
        if c.licence_checked_at is None
    )

    hpr_server.recover()
    before = len(hpr_server.asked_for())
    resumed = runner.invoke(args=["clinicians", "verify-licences"])

    assert resumed.exit_code == 0, resumed.output
    asked_again = hpr_server.asked_for()[before:]
    assert sorted(asked_again) == sorted(c.hpr_number for c in people.values() if c not in checked)
    session.expire_all()
    assert all(c.licence_checked_at is not None for c in people.values())


def test_stale_days_decides_who_is_checked_again(hpr_app, hpr_server, runner, session):
    people = _directory(session)
    hpr_server.register.update(_register(people))
    assert runner.invoke(args=["clinicians", "verify-licences"]).exit_code == 0

    again = runner.invoke(args=["clinicians", "verify-licences"])
    assert "Every clinician was checked within the last 30 day(s)" in again.output

    people["valid"].licence_checked_at = now_utc() - timedelta(days=31)
    session.commit()
    asked = len(hpr_server.asked_for())
    assert runner.invoke(args=["clinicians", "verify-licences"]).exit_code == 0
    assert hpr_server.asked_for()[asked:] == [people["valid"].hpr_number]

    asked = len(hpr_server.asked_for())
    assert runner.invoke(args=["clinicians", "verify-licences", "--stale-days", "0"]).exit_code == 0
    assert len(hpr_server.asked_for()[asked:]) == 5


def test_a_suspended_clinician_comes_back_once_hpr_says_valid(hpr_app, hpr_server, runner, session):
    people = _directory(session)
    hpr_server.register.update(_register(people))
    runner.invoke(args=["clinicians", "verify-licences"])
    assert "Klinikk suspended" not in _listed_names(session)

    number = people["suspended"].hpr_number
    hpr_server.register.update(register_from_json({number: {"approvals": [approval("KI")]}}))
    runner.invoke(args=["clinicians", "verify-licences", "--stale-days", "0"])

    session.expire_all()
    assert people["suspended"].licence_status is LicenceStatus.VALID
    assert "Klinikk suspended" in _listed_names(session)


def test_the_command_says_so_when_the_check_is_off(runner, session):
    make_clinic(session)
    session.commit()
    result = runner.invoke(args=["clinicians", "verify-licences"])
    assert result.exit_code != 0
    assert "The licence check is off: set HPR_URL" in result.output


def test_a_clinician_at_two_clinics_needs_every_profession_they_practise(session):
    physio_clinic = make_clinic(session, professions=())
    manual_clinic = make_clinic(session, name="Manuellterapeutene", professions=())
    person = new_clinician("Kari Nordmann")
    make_practice(session, physio_clinic, person, Profession.PHYSIOTHERAPIST)
    make_practice(session, manual_clinic, person, Profession.MANUAL_THERAPIST)
    assert required_categories(person) == frozenset({"FT", "MT"})


def test_a_time_budget_stops_a_run_and_says_how_many_were_not_reached(
    hpr_app, hpr_client, hpr_server, session
):
    people = _directory(session)
    hpr_server.register.update(_register(people))
    summary = check_clinicians(
        db.session, list(people.values()), client=hpr_client, budget_seconds=0
    )
    assert summary.checked == 0
    assert summary.not_reached == 5
    assert summary.stopped_because == "time budget"
    assert hpr_server.asked_for() == []


def test_a_run_stops_once_hpr_has_failed_several_times_in_a_row(
    hpr_app, hpr_client, hpr_server, session
):
    people = _directory(session)
    more = [make_clinic(session, name=f"Flere {n}").practices[0].clinician for n in range(3)]
    session.commit()
    hpr_server.fail("down")
    summary = check_clinicians(db.session, [*people.values(), *more], client=hpr_client)
    assert summary.unavailable == 3
    assert summary.not_reached == 5
    assert summary.stopped_because == "HPR unavailable"


@pytest.mark.parametrize("mode", ["error", "slow", "garbage"])
def test_hpr_giving_no_usable_answer_changes_nobody(hpr_app, hpr_client, hpr_server, session, mode):
    people = _directory(session)
    hpr_server.register.update(_register(people))
    hpr_server.fail(mode)
    summary = check_clinicians(db.session, [people["suspended"]], client=hpr_client)
    assert summary.unavailable == 1 and summary.checked == 0
    assert people["suspended"].licence_status is LicenceStatus.UNCHECKED
    assert people["suspended"].licence_checked_at is None


def test_the_demo_directory_against_the_demo_register_meets_every_status(
    hpr_app, hpr_server, runner, session
):
    """`make run`'s demo file, imported with HPR on (the import checks its new clinicians),
    then checked again by the command: every status occurs, and only the valid and the
    unchecked are found by patients."""
    hpr_server.register.update(load_register(PROJECT_ROOT / "data" / "demo_hpr_register.json"))
    imported = runner.invoke(args=["clinics", "import", str(PROJECT_ROOT / "data/clinics.csv")])
    assert imported.exit_code == 0, imported.output

    verified = runner.invoke(args=["clinicians", "verify-licences", "--stale-days", "0"])

    assert verified.exit_code == 0, verified.output
    statuses = Counter(session.scalars(select(Clinician.licence_status)))
    # Four of each failing case in the demo register (scripts/generate_demo_clinics.py).
    assert {status: statuses[status] for status in statuses if status != "valid"} == {
        LicenceStatus.NOT_FOUND: 4,
        LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION: 4,
        LicenceStatus.SUSPENDED: 4,
        LicenceStatus.EXPIRED: 4,
    }
    assert statuses[LicenceStatus.VALID] > 500
    for status in ("not_found", "no_authorisation_for_profession", "suspended", "expired"):
        assert f"{status}: 4" in verified.output
    hidden = {c.id for c in clinicians_to_look_at(session)}
    assert len(hidden) == 16
    listed_people = set(
        session.scalars(
            select(Practice.clinician_id)
            .join(ListedClinic, ListedClinic.clinic_id == Practice.clinic_id)
            .where(Practice.active.is_(True))
        )
    )
    # A hidden clinician's clinic may still be listed for a colleague, but the practice
    # is not what makes it listed: no listed clinic lists only hidden clinicians.
    for clinic in session.scalars(select(Clinic).join(ListedClinic)):
        assert any(p.clinician_id not in hidden for p in clinic.practices if p.active)
    assert listed_people - hidden
