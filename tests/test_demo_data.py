"""The demo directory tells the truth: data/clinics.csv and data/demo_hpr_register.json.

These read the files as any program would (the csv and json modules), not through the
importer, so they hold whatever the importer's state.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict

import pytest

from clinic_finder.hours import HoursError, parse_week
from clinic_finder.services import load_services

from .conftest import PROJECT_ROOT
from .hpr_server import load_register

DATA = PROJECT_ROOT / "data"
SCRIPT = PROJECT_ROOT / "scripts" / "generate_demo_clinics.py"
COLUMNS = [
    "clinic_name", "org_number", "address", "postcode", "city", "phone", "email", "website",
    "booking_url", "step_free_access", "accessible_toilet", "parking", "opening_hours",
    "clinician_name", "profession", "hpr_number", "helfo_agreement", "municipality_agreement",
    "accepts_new_patients", "languages", "services", "latitude", "longitude",
]  # fmt: skip
CLINIC_COLUMNS = COLUMNS[: COLUMNS.index("opening_hours") + 1] + ["latitude", "longitude"]
PERSON_COLUMNS = ("clinician_name", "languages")
# The register's deliberate "not found" cases: a handful, never more.
MAX_ABSENT_FROM_REGISTER = 6


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with (DATA / "clinics.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def clinics(rows) -> dict[str, list[dict[str, str]]]:
    """Each clinic's rows, by clinic name (names are unique in the demo)."""
    by_clinic: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_clinic[row["clinic_name"]].append(row)
    return by_clinic


@pytest.fixture(scope="module")
def register() -> dict:
    return json.loads((DATA / "demo_hpr_register.json").read_text(encoding="utf-8"))


def _municipalities() -> dict[str, str]:
    """The postcode register's KOMMUNE of each postcode."""
    with (DATA / "postnummer-koordinatar.tsv").open(encoding="utf-8", newline="") as handle:
        return {row["POSTNR"]: row["KOMMUNE"] for row in csv.DictReader(handle, delimiter="\t")}


def test_demo_no_chiropractor_has_a_public_agreement(rows):
    chiropractors = [row for row in rows if row["profession"] == "chiropractor"]
    assert chiropractors
    assert [row for row in chiropractors if row["helfo_agreement"] == "yes"] == []


def test_demo_about_half_the_physiotherapists_have_a_public_agreement(rows):
    physios = [row for row in rows if row["profession"] == "physiotherapist"]
    with_agreement = [row for row in physios if row["helfo_agreement"] == "yes"]
    assert 0.4 <= len(with_agreement) / len(physios) <= 0.6


def test_demo_agreement_is_with_the_clinics_municipality(rows):
    municipalities = _municipalities()
    for row in rows:
        if row["helfo_agreement"] == "yes":
            assert row["municipality_agreement"] == municipalities[row["postcode"]], row
        else:
            assert row["helfo_agreement"] == "no"
            assert row["municipality_agreement"] == "", row


def test_demo_some_clinicians_work_at_two_clinics(rows):
    clinics_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        clinics_of[row["hpr_number"]].add(row["clinic_name"])
    at_two = [hpr for hpr, places in clinics_of.items() if len(places) == 2]
    assert len(at_two) >= 0.05 * len(clinics_of)
    assert max(len(places) for places in clinics_of.values()) == 2


def test_demo_a_clinician_is_the_same_person_at_every_clinic(rows):
    person: dict[str, tuple[str, ...]] = {}
    for row in rows:
        facts = tuple(row[column] for column in PERSON_COLUMNS)
        assert person.setdefault(row["hpr_number"], facts) == facts, row["hpr_number"]


def test_demo_no_hpr_number_is_twice_at_one_clinic(clinics):
    for name, clinic_rows in clinics.items():
        numbers = [row["hpr_number"] for row in clinic_rows]
        assert len(numbers) == len(set(numbers)), name


def test_demo_clinic_columns_repeat_identically_on_every_row(clinics):
    for name, clinic_rows in clinics.items():
        distinct = {tuple(row[column] for column in CLINIC_COLUMNS) for row in clinic_rows}
        assert len(distinct) == 1, name


def test_demo_most_clinics_have_opening_hours_parse_week_reads(clinics):
    readable = 0
    for clinic_rows in clinics.values():
        text = clinic_rows[0]["opening_hours"]
        if not text:
            continue
        try:
            week = parse_week(text)
        except HoursError as error:
            pytest.fail(f"{clinic_rows[0]['clinic_name']}: {error}")
        readable += any(week.values())
    assert readable >= 0.8 * len(clinics)


def test_demo_about_half_the_clinics_have_a_booking_link(clinics):
    links = [rows[0]["booking_url"] for rows in clinics.values() if rows[0]["booking_url"]]
    assert all(link.startswith("https://") and ".example/" in link for link in links)
    assert 0.4 <= len(links) / len(clinics) <= 0.6


def test_demo_access_facts_are_yes_no_or_unknown(clinics):
    known = 0
    for clinic_rows in clinics.values():
        facts = [clinic_rows[0][c] for c in ("step_free_access", "accessible_toilet", "parking")]
        assert set(facts) <= {"yes", "no", ""}
        known += facts[0] != ""
    assert 0.4 <= known / len(clinics) <= 0.6


def test_demo_every_clinician_is_in_the_register_or_deliberately_absent(rows, register):
    people = register
    listed = {row["hpr_number"] for row in rows}
    absent = listed - set(people)
    assert 1 <= len(absent) <= MAX_ABSENT_FROM_REGISTER
    assert set(people) <= listed
    for row in rows:
        if row["hpr_number"] in people:
            person = people[row["hpr_number"]]
            assert f"{person['first_name']} {person['last_name']}" == row["clinician_name"]


def test_demo_register_entries_have_the_agreed_shape(register):
    # The loopback HPR reads it as it is (and refuses any key it does not know).
    assert len(load_register(DATA / "demo_hpr_register.json")) == len(register)
    for hpr, person in register.items():
        assert hpr.isdigit() and len(hpr) == 9
        assert set(person) == {"first_name", "last_name", "approvals"}
        for authorisation in person["approvals"]:
            assert set(authorisation) == {"category", "valid_from", "valid_to", "suspensions"}
            assert authorisation["category"] in {"KI", "FT", "MT"}
            for suspension in authorisation["suspensions"]:
                assert set(suspension) == {"from", "to"}


def test_demo_files_are_what_the_script_makes_from_its_default_seed(tmp_path):
    clinics_csv, register_json = tmp_path / "clinics.csv", tmp_path / "register.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--output", clinics_csv, "--hpr-register", register_json],
        check=True,
        capture_output=True,
    )
    assert clinics_csv.read_bytes() == (DATA / "clinics.csv").read_bytes()
    assert register_json.read_bytes() == (DATA / "demo_hpr_register.json").read_bytes()


def test_every_service_is_in_the_vocabulary_and_clinics_write_them_in_both_languages(rows):
    vocabulary = load_services(PROJECT_ROOT / "data" / "services.json")
    written = [service for row in rows for service in row["services"].split(";") if service]
    assert vocabulary.resolve(written)[1] == []
    by_language = {
        language: {vocabulary.name(key, language) for key in vocabulary.services}
        for language in ("nb", "en")
    }
    norwegian = sum(service in by_language["nb"] - by_language["en"] for service in written)
    english = sum(service in by_language["en"] - by_language["nb"] for service in written)
    assert norwegian > english > 0.2 * len(written)  # mostly Norwegian, as clinics write
