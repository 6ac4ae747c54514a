"""The clinic list loader: the import format, validation, classification, idempotence."""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import time, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from clinic_finder import imports
from clinic_finder.clinic_pages import slugify
from clinic_finder.hours import format_week, week_of
from clinic_finder.hpr import LicenceStatus
from clinic_finder.i18n import SUPPORTED_LOCALES
from clinic_finder.import_format import ERRORS_COLUMN_NAMES, errors_column_name
from clinic_finder.importer import (
    ImportFileError,
    RowStatus,
    apply_import,
    decode_upload,
    normalise_key,
    plan_import,
)
from clinic_finder.models import (
    Clinic,
    Clinician,
    LocationSource,
    PostalCode,
    Practice,
    Profession,
    now_utc,
)

from .helpers import DEMO_FILE, GOOD_ROW, HEADER, csv_text, import_text, partial_csv_text
from .hpr_server import register_from_json


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_demo_directory_imports_completely(session):
    report = import_text(session, decode_upload(DEMO_FILE.read_bytes()))
    assert report.rejected == []
    assert report.unknown_columns == []
    assert report.with_warnings == []  # every service, Norwegian or English, is known
    assert count(session, Clinic) >= 300
    assert count(session, Clinician) >= 500
    municipalities = session.scalar(
        select(func.count(func.distinct(PostalCode.municipality_number))).join(
            Clinic, Clinic.postcode == PostalCode.postcode
        )
    )
    assert municipalities >= 80
    counties = set(
        session.scalars(
            select(PostalCode.county).join(Clinic, Clinic.postcode == PostalCode.postcode)
        )
    )
    assert {"Svalbard", "Troms og Finnmark", "Oslo", "Vestland", "Nordland"} <= counties
    professions = set(session.scalars(select(Practice.profession)))
    assert professions == set(Profession)
    chiropractors = select(Practice).where(Practice.profession == Profession.CHIROPRACTOR)
    assert not any(practice.public_agreement for practice in session.scalars(chiropractors))


def test_demo_directory_imported_twice_is_unchanged(session):
    text = decode_upload(DEMO_FILE.read_bytes())
    import_text(session, text)
    clinics_before = count(session, Clinic)
    practices_before = count(session, Practice)
    second = import_text(session, text)
    assert second.count(RowStatus.UNCHANGED) == len(second.rows)
    assert count(session, Clinic) == clinics_before
    assert count(session, Practice) == practices_before


def test_demo_contacts_are_on_reserved_domains():
    with DEMO_FILE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for row in rows:
        assert row["email"] == "" or row["email"].endswith(".example")
        assert row["website"] == "" or ".example/" in row["website"]


def test_row_is_stored_with_normalised_values(session):
    import_text(session, csv_text(GOOD_ROW))
    clinic = session.scalars(select(Clinic)).one()
    assert clinic.name == "Fjordklinikken"
    assert clinic.phone == "+47 55 12 34 56"
    assert clinic.location_source is LocationSource.GIVEN
    assert (clinic.booking_url, clinic.step_free_access, clinic.parking) == (None, None, None)
    (practice,) = clinic.practices
    assert practice.profession is Profession.PHYSIOTHERAPIST
    assert practice.public_agreement is True
    # No municipality given: the agreement is with the clinic's own (5003 is in Bergen).
    assert practice.agreement_municipality == "Bergen"
    assert practice.accepts_new_patients is False
    assert practice.accepts_new_patients_confirmed_at is not None
    assert practice.services == ["exercise-therapy", "dry-needling"]
    assert practice.active is True
    assert practice.clinician.languages == ["nb", "en"]
    assert practice.clinician.hpr_number == "9876543"


def test_row_without_coordinates_is_placed_at_its_postcode(session):
    import_text(session, csv_text({**GOOD_ROW, "latitude": "", "longitude": ""}))
    clinic = session.scalars(select(Clinic)).one()
    postal = session.get(PostalCode, "5003")
    assert (clinic.latitude, clinic.longitude) == (postal.latitude, postal.longitude)
    assert clinic.location_source is LocationSource.POSTCODE


def test_norwegian_values_and_semicolons_are_understood(session):
    row = {
        **GOOD_ROW,
        "profession": "Manuellterapeut",
        "helfo_agreement": "Ja",
        "accepts_new_patients": "Nei",
        "latitude": "60,3950",
        "longitude": "5,3250",
    }
    report = import_text(session, csv_text(row, delimiter=";"))
    assert report.count(RowStatus.NEW) == 1
    practice = session.scalars(select(Practice)).one()
    assert practice.profession is Profession.MANUAL_THERAPIST
    assert (practice.public_agreement, practice.accepts_new_patients) == (True, False)
    assert practice.clinic.latitude == pytest.approx(60.395)


def test_clinicians_of_one_clinic_share_it(session):
    second = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    import_text(session, csv_text(GOOD_ROW, second))
    assert count(session, Clinic) == 1
    assert count(session, Clinician) == 2
    assert count(session, Practice) == 2


def _directory(session) -> dict[str, list[dict]]:
    """Every stored column of every clinic, clinician and practice, to compare before and
    after."""
    return {
        model.__name__: [
            {column.key: getattr(row, column.key) for column in model.__table__.columns}
            for row in session.scalars(select(model).order_by(model.id))
        ]
        for model in (Clinic, Clinician, Practice)
    }


def test_smaller_file_leaves_what_it_does_not_name_untouched(session):
    colleague = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    elsewhere = {
        **GOOD_ROW,
        "clinic_name": "Nordlys Helse",
        "address": "Storgata 1",
        "postcode": "9008",
        "city": "Tromsø",
        "clinician_name": "Åse Berg",
        "hpr_number": "9876545",
        "latitude": "69.6490",
        "longitude": "18.9560",
    }
    import_text(session, csv_text(GOOD_ROW, colleague, elsewhere))
    session.expire_all()
    before = _directory(session)

    # The next list has one row only: the other clinic and the colleague are not in it.
    report = import_text(session, csv_text(GOOD_ROW))
    session.expire_all()

    assert report.counts == {"new": 0, "updated": 0, "unchanged": 1, "rejected": 0}
    assert _directory(session) == before
    assert count(session, Clinic) == 2 and count(session, Clinician) == 3
    assert count(session, Practice) == 3
    assert all(row["active"] for model in ("Clinic", "Practice") for row in before[model])


def test_changed_row_is_updated_not_duplicated(session):
    import_text(session, csv_text(GOOD_ROW))
    report = import_text(session, csv_text({**GOOD_ROW, "clinician_name": "Kari Nordmann Berg"}))
    assert report.count(RowStatus.UPDATED) == 1
    assert session.scalars(select(Clinician)).one().name == "Kari Nordmann Berg"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"postcode": "9999"}, "not in the Norwegian postcode register"),
        ({"profession": "naprapat"}, "not one of the publicly licensed professions"),
        ({"profession": "osteopath"}, "not one of the publicly licensed professions"),
        ({"hpr_number": ""}, "“hpr_number” is missing"),
        ({"hpr_number": "12ab"}, "HPR number"),
        ({"org_number": "123456789"}, "not a valid Norwegian organisation number"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "øystein@klinikk.example"}, "We cannot send email to"),
        ({"website": "javascript:alert(1)"}, "http:// or https://"),
        ({"helfo_agreement": "maybe"}, "must be yes or no"),
        ({"parking": "kanskje"}, "“parking”: 'kanskje' must be yes or no"),
        ({"step_free_access": "2"}, "“step_free_access”: '2' must be yes or no"),
        ({"booking_url": "http://fjordklinikken.example/book"}, "must be an https:// address"),
        ({"booking_url": "javascript:alert(1)"}, "must be an https:// address"),
        ({"booking_url": "https://" + "b" * 500}, "“booking_url” is longer than 500 characters"),
        (
            {"profession": "kiropraktor", "helfo_agreement": "ja"},
            "Chiropractors have no public agreement (driftsavtale) in Norway",
        ),
        (
            {"helfo_agreement": "no", "municipality_agreement": "Bergen"},
            "a municipality goes only with a public agreement",
        ),
        ({"latitude": "48.85", "longitude": "2.35"}, "outside Norway"),
        ({"latitude": "63.43", "longitude": "10.39"}, "km from postcode 5003"),
        ({"latitude": "abc"}, "must be a decimal number"),
        ({"clinic_name": ""}, "“clinic_name” is missing"),
    ],
)
def test_bad_row_is_rejected_with_reason(session, changes, reason):
    report = plan_import(session, csv_text({**GOOD_ROW, **changes}))
    (row,) = report.rows
    assert row.status is RowStatus.REJECTED
    assert row.line == 2
    assert any(reason in error for error in row.errors), row.errors


# A second clinic in Bergen, for rows of one clinician at two clinics.
OTHER_CLINIC = {
    "clinic_name": "Bryggen Fysio",
    "address": "Bryggen 1",
    "phone": "55 98 76 54",
    "email": "post@bryggen.example",
    "website": "",
    "latitude": "60.3975",
    "longitude": "5.3240",
}


def test_same_hpr_twice_at_one_clinic_rejects_those_rows_naming_their_lines(session):
    someone_else = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    spaced = {**GOOD_ROW, "hpr_number": "987 654 3"}  # the same number, spelt apart
    report = import_text(session, csv_text(GOOD_ROW, someone_else, spaced))
    assert [row.status for row in report.rows] == [
        RowStatus.REJECTED,
        RowStatus.NEW,
        RowStatus.REJECTED,
    ]
    for row in (report.rows[0], report.rows[2]):
        assert row.errors == [
            "HPR number 9876543 is on lines 2, 4 for the same clinic: a clinician has one "
            "row per clinic, so none of these rows is imported"
        ]
    assert list(session.scalars(select(Clinician.hpr_number))) == ["9876544"]


def test_same_hpr_at_two_clinics_makes_two_practices_of_one_clinician(session):
    elsewhere = {
        **GOOD_ROW,
        **OTHER_CLINIC,
        "profession": "manuellterapeut",
        "helfo_agreement": "nei",
        "accepts_new_patients": "ja",
        "services": "manual therapy",
    }
    report = import_text(session, csv_text(GOOD_ROW, elsewhere))
    assert report.counts == {"new": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    clinician = session.scalars(select(Clinician)).one()
    practices = {p.clinic.name: p for p in clinician.practices}
    assert set(practices) == {"Fjordklinikken", "Bryggen Fysio"}
    fjord, bryggen = practices["Fjordklinikken"], practices["Bryggen Fysio"]
    assert (fjord.profession, fjord.public_agreement, fjord.accepts_new_patients) == (
        Profession.PHYSIOTHERAPIST,
        True,
        False,
    )
    assert (bryggen.profession, bryggen.public_agreement, bryggen.accepts_new_patients) == (
        Profession.MANUAL_THERAPIST,
        False,
        True,
    )
    assert bryggen.agreement_municipality is None
    assert (fjord.services, bryggen.services) == (
        ["exercise-therapy", "dry-needling"],
        ["manual-therapy"],
    )

    again = plan_import(session, csv_text(GOOD_ROW, elsewhere))
    assert again.counts == {"new": 0, "updated": 0, "unchanged": 2, "rejected": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"clinician_name": "Kari Nordmann Berg"},
        {"languages": "nb"},
        {"languages": "en;nb"},
    ],
)
def test_same_hpr_at_two_clinics_with_another_name_or_languages_is_rejected(session, change):
    elsewhere = {**GOOD_ROW, **OTHER_CLINIC, **change}
    someone_else = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    report = import_text(session, csv_text(GOOD_ROW, someone_else, elsewhere))
    assert [row.status for row in report.rows] == [
        RowStatus.REJECTED,
        RowStatus.NEW,
        RowStatus.REJECTED,
    ]
    for row in (report.rows[0], report.rows[2]):
        assert row.errors == [
            "HPR number 9876543 is on lines 2, 4 with different names or languages: a "
            "clinician's rows must give the same name and languages, so none of these rows "
            "is imported"
        ]
    assert list(session.scalars(select(Clinician.hpr_number))) == ["9876544"]


def test_same_hpr_twice_at_one_clinic_and_once_elsewhere_keeps_the_other_clinic(session):
    spaced = {**GOOD_ROW, "hpr_number": "987 654 3"}
    elsewhere = {**GOOD_ROW, **OTHER_CLINIC}
    report = import_text(session, csv_text(GOOD_ROW, spaced, elsewhere))
    assert [row.status for row in report.rows] == [
        RowStatus.REJECTED,
        RowStatus.REJECTED,
        RowStatus.NEW,
    ]
    assert "is on lines 2, 3 for the same clinic" in report.rows[0].errors[0]
    assert [p.clinic.name for p in session.scalars(select(Practice))] == ["Bryggen Fysio"]


def test_duplicate_hpr_is_reported_besides_a_row_s_other_errors(session):
    bad_email = {**GOOD_ROW, "email": "not-an-email"}
    report = plan_import(session, csv_text(GOOD_ROW, bad_email))
    assert report.counts["rejected"] == 2
    assert "is on lines 2, 3" in report.rows[0].errors[0]
    assert "email" in report.rows[1].errors[0]
    assert "is on lines 2, 3" in report.rows[1].errors[-1]


def test_duplicate_hpr_rows_are_not_geocoded(session):
    asked = []

    def locate(address, postal, city):
        asked.append(address)
        return postal.latitude, postal.longitude, LocationSource.POSTCODE

    row = {**GOOD_ROW, "latitude": "", "longitude": ""}
    report = plan_import(session, csv_text(row, {**row, "clinician_name": "Kari"}), locate)
    assert report.counts["rejected"] == 2
    assert asked == []


# --- practices, agreements and clinic details (issue 12) ----------------------------------


def test_physiotherapist_with_and_chiropractor_without_agreement_share_a_clinic(client, session):
    chiropractor = {
        **GOOD_ROW,
        "clinician_name": "Øyvind Ås",
        "hpr_number": "9876544",
        "profession": "kiropraktor",
        "helfo_agreement": "nei",
    }
    report = import_text(session, csv_text(GOOD_ROW, chiropractor))
    assert report.counts == {"new": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    clinic = session.scalars(select(Clinic)).one()
    agreements = {p.clinician.name: p.public_agreement for p in clinic.practices}
    assert agreements == {"Kari Nordmann": True, "Øyvind Ås": False}

    body = client.get(f"/clinics/{clinic.id}-{slugify(clinic.name)}?lang=en").get_data(as_text=True)
    cards = clinician_cards(body)
    assert "Public agreement with Bergen — you pay the public rate" in cards["Kari Nordmann"]
    assert "No public agreement — you pay the full price" in cards["Øyvind Ås"]
    assert "Public agreement with" not in cards["Øyvind Ås"]
    assert "Yes, with Kari Nordmann — you pay the public rate" in body


def clinician_cards(body: str) -> dict[str, str]:
    """Each clinician card of a clinic page, by the clinician's name."""
    cards = re.findall(r"<li[^>]*>\s*<h3[^>]*>(.*?)</h3>(.*?)</li>", body, flags=re.DOTALL)
    return dict(cards)


def test_clinician_at_two_clinics_is_shown_at_both_and_found_from_both(client, session):
    elsewhere = {**GOOD_ROW, **OTHER_CLINIC, "profession": "fysioterapeut"}
    import_text(session, csv_text(GOOD_ROW, elsewhere))
    clinics = session.scalars(select(Clinic).order_by(Clinic.name)).all()
    assert [clinic.name for clinic in clinics] == ["Bryggen Fysio", "Fjordklinikken"]
    for clinic in clinics:
        body = client.get(f"/clinics/{clinic.id}-{slugify(clinic.name)}?lang=en").get_data(
            as_text=True
        )
        assert "Kari Nordmann" in clinician_cards(body)

    found = client.get("/api/v1/clinics?postcode=5003&radius=10").get_json()
    by_clinic = {
        result["name"]: [c["hpr_number"] for c in result["clinicians"]]
        for result in found["results"]
    }
    assert by_clinic == {"Bryggen Fysio": ["9876543"], "Fjordklinikken": ["9876543"]}
    page = client.get("/find?postcode=5003&radius=10&lang=en").get_data(as_text=True)
    assert "Bryggen Fysio" in page and "Fjordklinikken" in page


def test_later_row_with_other_clinic_details_gets_a_warning_and_the_first_row_wins(session):
    colleague = {
        **GOOD_ROW,
        "clinician_name": "Ola Nordmann",
        "hpr_number": "9876544",
        "phone": "55 00 00 00",
        "booking_url": "https://booking.example/fjord",
        "parking": "ja",
        "helfo_agreement": "no",
        "accepts_new_patients": "yes",
    }
    report = import_text(session, csv_text(GOOD_ROW, colleague))
    assert report.counts == {"new": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert report.rows[0].warnings == []
    assert report.rows[1].warnings == [
        f"“{column}” on line 3 differs from line 2 of the same clinic: the value on line 2 is kept"
        for column in ("phone", "booking_url", "parking")
    ]
    clinic = session.scalars(select(Clinic)).one()
    assert (clinic.phone, clinic.booking_url, clinic.parking) == ("+47 55 12 34 56", None, None)
    # What is the clinician's own differs without a warning: each practice has its own.
    answers = {
        p.clinician.name: (p.public_agreement, p.accepts_new_patients) for p in clinic.practices
    }
    assert answers == {"Kari Nordmann": (True, False), "Ola Nordmann": (False, True)}


def test_later_row_with_other_coordinates_gets_one_warning_for_them(session):
    moved = {**GOOD_ROW, "hpr_number": "9876544", "latitude": "60.3960", "longitude": "5.3260"}
    unplaced = {**GOOD_ROW, "hpr_number": "9876545", "latitude": "", "longitude": ""}
    report = plan_import(session, csv_text(GOOD_ROW, moved, unplaced))
    assert report.rows[1].warnings == [
        "“latitude”/“longitude” on line 3 differs from line 2 of the same clinic: the value on "
        "line 2 is kept"
    ]
    # A row without coordinates is placed where its clinic's first row put it: no warning.
    assert report.rows[2].warnings == []
    assert report.rows[1].clinic == report.rows[2].clinic == report.rows[0].clinic


def test_clinic_name_in_another_case_is_the_same_clinic_with_a_warning(session):
    shouting = {**GOOD_ROW, "clinic_name": "FJORDKLINIKKEN", "hpr_number": "9876544"}
    report = import_text(session, csv_text(GOOD_ROW, shouting))
    assert report.rows[1].warnings == [
        "“clinic_name” on line 3 differs from line 2 of the same clinic: "
        "the value on line 2 is kept"
    ]
    assert session.scalars(select(Clinic.name)).all() == ["Fjordklinikken"]


def test_first_accepted_row_of_a_clinic_gives_its_details(session):
    broken = {**GOOD_ROW, "hpr_number": "", "phone": "22 00 00 00"}
    colleague = {**GOOD_ROW, "hpr_number": "9876544", "phone": "22 33 44 55"}
    report = import_text(session, csv_text(broken, colleague, GOOD_ROW))
    assert [row.status for row in report.rows] == [
        RowStatus.REJECTED,
        RowStatus.NEW,
        RowStatus.NEW,
    ]
    assert report.rows[2].warnings == [
        "“phone” on line 4 differs from line 3 of the same clinic: the value on line 3 is kept"
    ]
    assert session.scalars(select(Clinic.phone)).one() == "+47 22 33 44 55"


def test_new_clinic_columns_are_stored(session):
    row = {
        **GOOD_ROW,
        "booking_url": "https://booking.example/fjordklinikken",
        "step_free_access": "ja",
        "accessible_toilet": "nei",
        "parking": "",
        "municipality_agreement": "  Bergen   kommune ",
    }
    import_text(session, csv_text(row))
    clinic = session.scalars(select(Clinic)).one()
    assert clinic.booking_url == "https://booking.example/fjordklinikken"
    assert (clinic.step_free_access, clinic.accessible_toilet, clinic.parking) == (
        True,
        False,
        None,
    )
    assert clinic.practices[0].agreement_municipality == "Bergen kommune"


NORWEGIAN_HEADER = {
    "clinic_name": "Klinikknavn",
    "address": "Adresse",
    "postcode": "Postnr",
    "clinician_name": "Behandler",
    "profession": "Yrke",
    "hpr_number": "HPR-nummer",
    "helfo_agreement": "Driftsavtale",
    "municipality_agreement": "Avtalekommune",
    "accepts_new_patients": "Tar imot nye pasienter",
    "services": "Tjenester",
    "booking_url": "Timebestilling",
    "step_free_access": "Trinnfri inngang",
    "accessible_toilet": "HC-toalett",
    "parking": "Parkering",
}


@pytest.mark.parametrize(
    ("column", "alias"),
    [
        ("municipality_agreement", "Driftsavtale kommune"),
        ("municipality_agreement", "Kommune for driftsavtale"),
        ("booking_url", "Bestillingslenke"),
        ("booking_url", "BOOKING"),
        ("accessible_toilet", "Tilrettelagt toalett"),
    ],
)
def test_norwegian_names_of_the_new_columns_are_understood(session, column, alias):
    header = {**NORWEGIAN_HEADER, column: alias}
    text = (
        ";".join(header.values())
        + "\r\nFjordklinikken;Strandgata 4;5003;Kari Nordmann;Fysioterapeut;9876543;Ja;"
        "Bergen;Ja;trening;https://booking.example/fjord;Ja;Nei;Ja\r\n"
    )
    report = import_text(session, text)
    assert report.unknown_columns == []
    assert report.counts["new"] == 1, report.rows[0].errors
    practice = session.scalars(select(Practice)).one()
    clinic = practice.clinic
    assert (practice.public_agreement, practice.agreement_municipality) == (True, "Bergen")
    assert (practice.accepts_new_patients, practice.services) == (True, ["exercise-therapy"])
    assert clinic.booking_url == "https://booking.example/fjord"
    assert (clinic.step_free_access, clinic.accessible_toilet, clinic.parking) == (
        True,
        False,
        True,
    )


def test_agreement_without_municipality_keeps_the_one_the_directory_knows(session):
    import_text(session, csv_text({**GOOD_ROW, "municipality_agreement": "Askøy"}))
    report = import_text(session, csv_text(GOOD_ROW))
    assert report.counts["unchanged"] == 1
    assert session.scalars(select(Practice)).one().agreement_municipality == "Askøy"


def test_agreement_ended_clears_its_municipality(session):
    import_text(session, csv_text({**GOOD_ROW, "municipality_agreement": "Askøy"}))
    report = import_text(session, csv_text({**GOOD_ROW, "helfo_agreement": "nei"}))
    assert report.counts["updated"] == 1
    practice = session.scalars(select(Practice)).one()
    assert (practice.public_agreement, practice.agreement_municipality) == (False, None)


# A row with something in every optional column, and a list of only names, addresses and
# phones (the required columns, the address that tells clinics apart, and the phone).
FULL_ROW = {
    **GOOD_ROW,
    "org_number": "974760673",
    "booking_url": "https://fjordklinikken.example/bestill",
    "step_free_access": "ja",
    "accessible_toilet": "nei",
    "parking": "ja",
    "municipality_agreement": "Askøy",
    "accepts_new_patients": "ja",
    "opening_hours": "man-fre 08-16",
}
PHONE_LIST = ["clinic_name", "address", "postcode", "clinician_name", "profession", "hpr_number",
              "phone"]  # fmt: skip


def _stored_facts(session) -> dict:
    """Everything an import of FULL_ROW stored but the phone, as plain values."""
    session.expire_all()
    practice = session.scalars(select(Practice)).one()
    clinic, clinician = practice.clinic, practice.clinician
    facts = {
        name: getattr(clinic, name)
        for name in ("org_number", "city", "email", "website", "booking_url",
                     "step_free_access", "accessible_toilet", "parking", "latitude", "longitude",
                     "location_source")
    }  # fmt: skip
    facts |= {
        name: getattr(practice, name)
        for name in ("public_agreement", "agreement_municipality", "accepts_new_patients",
                     "accepts_new_patients_confirmed_at", "services")
    }  # fmt: skip
    return facts | {"languages": clinician.languages, "hours": format_week(week_of(clinic))}


def test_list_without_a_column_leaves_that_field_as_it_is(session):
    import_text(session, csv_text(FULL_ROW))
    before = _stored_facts(session)
    assert before["email"] and before["services"] and before["step_free_access"] is True
    report = import_text(
        session, partial_csv_text(PHONE_LIST, {**FULL_ROW, "phone": "22 33 44 55"})
    )
    (row,) = report.rows
    assert row.status is RowStatus.UPDATED
    # The preview's old → new names the phone only.
    assert row.changes == [("“phone”", "+47 55 12 34 56", "+47 22 33 44 55")]
    assert session.scalars(select(Clinic)).one().phone == "+47 22 33 44 55"
    assert _stored_facts(session) == before


def test_list_without_a_column_and_nothing_else_new_is_unchanged(session):
    import_text(session, csv_text(FULL_ROW))
    before = _stored_facts(session)
    report = import_text(session, partial_csv_text(PHONE_LIST, FULL_ROW))
    assert [(row.status, row.changes) for row in report.rows] == [(RowStatus.UNCHANGED, [])]
    assert _stored_facts(session) == before


def test_empty_cell_in_a_column_the_file_has_still_clears_it(session):
    import_text(session, csv_text(FULL_ROW))
    columns = [*PHONE_LIST, "email", "languages", "step_free_access", "accepts_new_patients"]
    empty = dict.fromkeys(("email", "languages", "step_free_access", "accepts_new_patients"), "")
    report = import_text(session, partial_csv_text(columns, {**FULL_ROW, **empty}))
    (row,) = report.rows
    assert {column: (before, after) for column, before, after in row.changes} == {
        "“email”": ("post@fjordklinikken.example", ""),
        "“languages”": ("nb, en", ""),
        "“step_free_access”": ("yes", ""),
        "“accepts_new_patients”": ("yes", ""),
    }
    practice = session.scalars(select(Practice)).one()
    assert (practice.clinic.email, practice.clinic.step_free_access) == (None, None)
    assert (practice.clinician.languages, practice.accepts_new_patients) == ([], None)
    assert practice.clinic.website == "https://fjordklinikken.example/"  # not in the file


def test_new_clinic_in_a_partial_list_gets_the_usual_defaults(session):
    import_text(session, csv_text(FULL_ROW))
    newcomer = {**FULL_ROW, **OTHER_CLINIC, "hpr_number": "9876544", "clinician_name": "Ola"}
    report = import_text(session, partial_csv_text(PHONE_LIST, newcomer))
    assert report.counts["new"] == 1
    clinic = session.scalars(select(Clinic).where(Clinic.name == "Bryggen Fysio")).one()
    (practice,) = clinic.practices
    assert (clinic.email, clinic.step_free_access, clinic.city) == (None, None, "Bergen")
    assert (practice.public_agreement, practice.accepts_new_patients) == (False, None)
    assert (practice.services, practice.clinician.languages) == ([], [])


def test_municipality_without_the_agreement_column_goes_by_the_directory_s_agreement(session):
    without_agreement = {**FULL_ROW, **OTHER_CLINIC, "hpr_number": "9876544",
                         "helfo_agreement": "nei", "municipality_agreement": ""}  # fmt: skip
    import_text(session, csv_text(FULL_ROW, without_agreement))
    columns = [*PHONE_LIST, "municipality_agreement"]
    report = import_text(
        session,
        partial_csv_text(
            columns,
            {**FULL_ROW, "municipality_agreement": "Bergen"},
            {**without_agreement, "municipality_agreement": "Bergen"},
        ),
    )
    assert [row.status for row in report.rows] == [RowStatus.UPDATED, RowStatus.REJECTED]
    assert "municipality goes only with a public agreement" in report.rows[1].errors[0]
    practice = session.scalars(
        select(Practice).join(Clinic).where(Clinic.name == "Fjordklinikken")
    ).one()
    assert (practice.public_agreement, practice.agreement_municipality) == (True, "Bergen")


def test_chiropractor_without_the_agreement_column_keeps_an_agreement_only_if_valid(session):
    import_text(session, csv_text(FULL_ROW))
    report = plan_import(
        session, partial_csv_text(PHONE_LIST, {**FULL_ROW, "profession": "kiropraktor"})
    )
    assert "Chiropractors have no public agreement" in report.rows[0].errors[0]


def test_row_changing_only_its_practice_is_updated(session):
    import_text(session, csv_text(GOOD_ROW))
    confirmed = session.scalars(select(Practice)).one().accepts_new_patients_confirmed_at
    report = import_text(session, csv_text({**GOOD_ROW, "accepts_new_patients": "ja"}))
    assert report.counts["updated"] == 1
    practice = session.scalars(select(Practice)).one()
    assert practice.accepts_new_patients is True
    assert practice.accepts_new_patients_confirmed_at > confirmed


def test_inactive_practice_named_again_is_updated_and_active(session):
    import_text(session, csv_text(GOOD_ROW))
    session.scalars(select(Practice)).one().active = False
    session.commit()
    report = import_text(session, csv_text(GOOD_ROW))
    assert report.counts["updated"] == 1
    assert session.scalars(select(Practice)).one().active is True


def test_practice_absent_from_the_file_stays_as_it_is(session):
    elsewhere = {**GOOD_ROW, **OTHER_CLINIC}
    import_text(session, csv_text(GOOD_ROW, elsewhere))
    session.expire_all()
    before = _directory(session)
    report = import_text(session, csv_text(elsewhere))
    session.expire_all()
    assert report.counts["unchanged"] == 1
    assert _directory(session) == before
    assert [p.active for p in session.scalars(select(Practice))] == [True, True]


def test_apply_returns_the_file_s_clinicians_once_each(session):
    elsewhere = {**GOOD_ROW, **OTHER_CLINIC}
    colleague = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    report = plan_import(session, csv_text(GOOD_ROW, colleague, elsewhere))
    clinicians = apply_import(session, report)
    assert [clinician.hpr_number for clinician in clinicians] == ["9876543", "9876544"]
    assert all(clinician.id is not None for clinician in clinicians)


def test_rejected_rows_do_not_stop_valid_rows(session):
    bad = {**GOOD_ROW, "hpr_number": "111", "postcode": "0000"}
    report = import_text(session, csv_text(bad, GOOD_ROW))
    assert report.counts == {"new": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert count(session, Clinician) == 1


def test_missing_required_column_is_fatal():
    with pytest.raises(ImportFileError, match="hpr_number"):
        plan_import(None, "clinic_name,postcode,clinician_name,profession\nA,0150,B,chiropractor\n")


def test_empty_file_is_fatal():
    with pytest.raises(ImportFileError, match="empty"):
        plan_import(None, "  \n")


def test_unknown_column_is_reported_not_fatal(session):
    text = csv_text(GOOD_ROW, header=HEADER + ",favourite_colour")
    report = plan_import(session, text)
    assert report.unknown_columns == ["favourite_colour"]
    assert report.rows[0].status is RowStatus.NEW


def test_dry_run_plan_writes_nothing(session):
    plan_import(session, csv_text(GOOD_ROW))
    session.commit()
    assert count(session, Clinic) == 0


def test_windows_1252_file_is_decoded():
    text = decode_upload("Klinikknavn;Poststed\nTromsø Fysio;Tromsø\n".encode("cp1252"))
    assert "Tromsø" in text


def test_binary_file_is_refused():
    with pytest.raises(ImportFileError, match="not a text file"):
        decode_upload(b"PK\x03\x04\x00\x00binary")


def test_clinics_sharing_an_org_number_stay_apart(session):
    second = {
        **GOOD_ROW,
        "org_number": "974760673",
        "clinic_name": "Fjordklinikken Sentrum",
        "address": "Torgallmenningen 1",
        "clinician_name": "Per Berg",
        "hpr_number": "9876544",
    }
    first = {**GOOD_ROW, "org_number": "974760673"}
    import_text(session, csv_text(first, second))
    assert count(session, Clinic) == 2
    again = plan_import(session, csv_text(first, second))
    assert again.count(RowStatus.UNCHANGED) == 2


def test_clinic_gaining_an_org_number_is_updated_not_duplicated(session):
    import_text(session, csv_text(GOOD_ROW))
    report = import_text(session, csv_text({**GOOD_ROW, "org_number": "974760673"}))
    assert report.count(RowStatus.UPDATED) == 1
    assert count(session, Clinic) == 1
    assert session.scalars(select(Clinic)).one().org_number == "974760673"


def test_neutralised_cell_from_our_export_comes_back_as_written(session):
    import_text(
        session, csv_text({**GOOD_ROW, "clinic_name": "'+Helse", "clinician_name": "'-Anne"})
    )
    clinician = session.scalars(select(Clinician)).one()
    assert clinician.name == "-Anne" and clinician.practices[0].clinic.name == "+Helse"


def test_too_long_values_are_rejected_with_reason(session):
    report = plan_import(session, csv_text({**GOOD_ROW, "clinic_name": "x" * 201}))
    assert "“clinic_name” is longer than 200 characters" in report.rows[0].errors


# --- caps on list cells (issue item 12) --------------------------------------------------


@pytest.mark.parametrize(
    ("column", "cell", "reason"),
    [
        ("services", ";".join(f"behandling {n}" for n in range(31)), "at most 30 items, not 31"),
        ("languages", ";".join(f"l{n}" for n in range(3000)), "at most 30 items, not 3000"),
        ("services", "dry needling;" + "x" * 81, "each item at most 80 characters"),
        ("languages", "nb;" + "y" * 200, "'yyyyyyyyyyyyyyyyyyyy…' has 200"),
    ],
)
def test_list_cell_past_the_caps_is_rejected_naming_its_column(session, column, cell, reason):
    report = plan_import(session, csv_text({**GOOD_ROW, column: cell}))
    (row,) = report.rows
    assert row.status is RowStatus.REJECTED
    assert any(error.startswith(f"“{column}”: ") and reason in error for error in row.errors), (
        row.errors
    )


def test_list_cell_at_the_caps_is_imported(session):
    languages = [f"språk {n:02d} " + "z" * 71 for n in range(30)]  # 30 items of 80
    assert {len(language) for language in languages} == {80}
    import_text(session, csv_text({**GOOD_ROW, "languages": ";".join(languages)}))
    assert session.scalars(select(Practice)).one().clinician.languages == languages


# --- encodings (issue item 13) -----------------------------------------------------------

SORUM = "Klinikknavn;Postnr;Poststed\r\nSørum Fysio;1920;Sørumsand\r\n"


def test_utf8_file_with_a_stray_windows_1252_byte_is_refused_naming_its_line():
    lines = [f"Klinikk {n};0150;Oslo".encode() for n in range(20)]
    lines[1] = "Sørum Fysio;1920;Sørumsand".encode()  # UTF-8
    lines[13] = "Ås Fysio;1430;Ås".encode("cp1252")  # a line pasted from an older file
    data = b"Klinikknavn;Postnr;Poststed\r\n" + b"\r\n".join(lines) + b"\r\n"
    with pytest.raises(ImportFileError, match=r"^Line 15 is not UTF-8") as refused:
        decode_upload(data)
    assert "Windows-1252" in str(refused.value)


def test_utf8_file_with_a_bom_and_a_stray_byte_is_refused_too():
    data = codecs.BOM_UTF8 + SORUM.encode() + "Ås;1430;Ås\r\n".encode("cp1252")
    with pytest.raises(ImportFileError, match="Line 3 is not UTF-8"):
        decode_upload(data)


def test_file_without_any_utf8_sequence_is_still_read_as_windows_1252():
    assert decode_upload(SORUM.encode("cp1252")) == SORUM


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_excel_unicode_text_utf16_with_tabs_is_read(session, encoding):
    text = csv_text({**GOOD_ROW, "clinic_name": "Sørum Fysio"}, delimiter="\t")
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
    report = import_text(session, decode_upload(bom[encoding] + text.encode(encoding)))
    assert report.counts["new"] == 1, report.rows[0].errors
    clinic = session.scalars(select(Clinic)).one()
    assert clinic.name == "Sørum Fysio"
    assert clinic.practices[0].services == ["exercise-therapy", "dry-needling"]


def test_utf16_without_a_bom_is_still_refused_for_its_nul_bytes():
    with pytest.raises(ImportFileError, match="not a text file"):
        decode_upload(SORUM.encode("utf-16-le"))


def test_utf16_holding_nul_characters_is_refused():
    with pytest.raises(ImportFileError, match="not a text file"):
        decode_upload(codecs.BOM_UTF16_LE + "a\x00b".encode("utf-16-le"))


def test_broken_utf16_is_refused_naming_its_line():
    data = (
        codecs.BOM_UTF16_LE + "a;b\r\nc;d\r\n".encode("utf-16-le") + b"\x00\xdc"
    )  # lone low surrogate
    with pytest.raises(ImportFileError, match="Line 3 is not valid UTF-16"):
        decode_upload(data)


# --- the licence check on import (issue 12) ------------------------------------------------

SUSPENDED_CHIROPRACTOR = {
    **GOOD_ROW,
    "clinician_name": "Øyvind Ås",
    "hpr_number": "9876544",
    "profession": "kiropraktor",
    "helfo_agreement": "nei",
}
UNKNOWN_TO_HPR = {**GOOD_ROW, **OTHER_CLINIC, "clinician_name": "Per Berg", "hpr_number": "9876545"}


def hpr_register() -> dict:
    """What the loopback HPR says: Kari holds FT, Øyvind's KI is suspended, Per is unknown."""
    return register_from_json(
        {
            "9876543": {"approvals": [{"category": "FT", "valid_from": "2010-08-01"}]},
            "9876544": {
                "approvals": [
                    {
                        "category": "KI",
                        "valid_from": "2012-01-01",
                        "suspensions": [{"from": "2026-10-01", "to": None}],
                    }
                ]
            },
        }
    )


def import_file(runner, tmp_path, *rows: dict[str, str]):
    path = tmp_path / "klinikker.csv"
    path.write_text(csv_text(*rows), encoding="utf-8")
    result = runner.invoke(args=["clinics", "import", str(path)])
    assert result.exit_code == 0, result.output
    return result


def licences(session) -> dict[str, LicenceStatus]:
    session.expire_all()
    return {c.hpr_number: c.licence_status for c in session.scalars(select(Clinician))}


def test_import_checks_its_new_clinicians_against_hpr_and_hides_the_suspended(
    hpr_app, hpr_server, runner, session, client, tmp_path
):
    hpr_server.register.update(hpr_register())
    import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR, UNKNOWN_TO_HPR)

    assert sorted(hpr_server.asked_for()) == ["9876543", "9876544", "9876545"]
    assert licences(session) == {
        "9876543": LicenceStatus.VALID,
        "9876544": LicenceStatus.SUSPENDED,
        "9876545": LicenceStatus.NOT_FOUND,
    }
    clinic = session.scalars(select(Clinic).where(Clinic.name == "Fjordklinikken")).one()
    body = client.get(f"/clinics/{clinic.id}-{slugify(clinic.name)}?lang=en").get_data(as_text=True)
    assert list(clinician_cards(body)) == ["Kari Nordmann"]
    # Bryggen Fysio's only clinician is not in the register: the clinic is not found at all.
    found = client.get("/api/v1/clinics?postcode=5003&radius=10").get_json()
    assert [result["name"] for result in found["results"]] == ["Fjordklinikken"]


def test_import_checks_again_only_those_not_checked_lately(
    hpr_app, hpr_server, runner, session, tmp_path
):
    hpr_server.register.update(hpr_register())
    import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR)
    kari = session.scalars(select(Clinician).where(Clinician.hpr_number == "9876543")).one()
    kari.licence_checked_at = now_utc() - timedelta(days=31)
    session.commit()
    asked = len(hpr_server.asked_for())

    again = import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR)

    assert "2 unchanged" in again.output
    assert hpr_server.asked_for()[asked:] == ["9876543"]


def test_import_without_hpr_leaves_licences_unchecked(runner, session, tmp_path):
    import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR)
    assert set(licences(session).values()) == {LicenceStatus.UNCHECKED}
    assert session.scalars(select(Clinician.licence_checked_at)).all() == [None, None]


def test_import_is_written_when_hpr_is_down(hpr_app, hpr_server, runner, session, tmp_path):
    hpr_server.fail("down")
    result = import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR)
    assert "2 new" in result.output
    assert licences(session) == {
        "9876543": LicenceStatus.UNCHECKED,
        "9876544": LicenceStatus.UNCHECKED,
    }


def test_import_stops_checking_at_its_time_budget(
    hpr_app, hpr_server, runner, session, tmp_path, monkeypatch
):
    monkeypatch.setattr(imports, "IMPORT_LICENCE_BUDGET_SECONDS", 0)
    import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR)
    assert hpr_server.asked_for() == []
    assert count(session, Practice) == 2


def test_import_is_written_when_the_licence_check_breaks_off(
    hpr_app, runner, session, tmp_path, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("an answer nobody expected")

    monkeypatch.setattr(imports, "check_clinicians", broken)
    import_file(runner, tmp_path, GOOD_ROW, SUSPENDED_CHIROPRACTOR)
    assert count(session, Practice) == 2


def test_licences_due_are_the_never_checked_then_the_oldest(session):
    now = now_utc()
    people = [
        Clinician(name="Fersk", hpr_number="1", licence_checked_at=now - timedelta(days=2)),
        Clinician(name="Gammel", hpr_number="2", licence_checked_at=now - timedelta(days=40)),
        Clinician(name="Ny", hpr_number="3"),
        Clinician(name="Eldst", hpr_number="4", licence_checked_at=now - timedelta(days=400)),
    ]
    assert [c.name for c in imports.licences_due(people, now)] == ["Ny", "Eldst", "Gammel"]


# --- opening hours in the clinic list --------------------------------------------------------


def stored_week(session) -> str:
    session.expire_all()
    return format_week(week_of(session.scalars(select(Clinic)).one()))


def test_opening_hours_are_stored_as_the_week_the_cell_gives(session):
    import_text(session, csv_text({**GOOD_ROW, "opening_hours": "man-fre 08-16; tor 08-19"}))
    clinic = session.scalars(select(Clinic)).one()
    thursday = [(entry.opens, entry.closes) for entry in clinic.opening_hours if entry.weekday == 3]
    assert thursday == [(time(8), time(19))]
    assert {entry.weekday for entry in clinic.opening_hours} == {0, 1, 2, 3, 4}
    assert stored_week(session) == "man–ons, fre 08:00–16:00; tor 08:00–19:00"


def test_one_week_written_two_ways_on_rows_of_a_clinic_is_no_warning(session):
    colleague = {
        **GOOD_ROW,
        "hpr_number": "9876544",
        "clinician_name": "Ola Nordmann",
        "opening_hours": "Mandag til fredag kl. 8.00–16.00",
    }
    report = import_text(
        session, csv_text({**GOOD_ROW, "opening_hours": "hverdager 08-16"}, colleague)
    )
    assert [row.warnings for row in report.rows] == [[], []]
    other = {**colleague, "hpr_number": "9876545", "opening_hours": "man-fre 08-15"}
    again = plan_import(session, csv_text({**GOOD_ROW, "opening_hours": "hverdager 08-16"}, other))
    assert again.rows[1].warnings == [
        "“opening_hours” on line 3 differs from line 2 of the same clinic: the value on line 2 "
        "is kept"
    ]


def test_changed_opening_hours_update_the_row_and_replace_the_week(session):
    import_text(session, csv_text({**GOOD_ROW, "opening_hours": "man-fre 08-16"}))
    same = plan_import(session, csv_text({**GOOD_ROW, "opening_hours": "man–fre 08:00–16:00"}))
    assert same.counts["unchanged"] == 1
    report = import_text(
        session, csv_text({**GOOD_ROW, "opening_hours": "man-tor 08-18; lør 10-14"})
    )
    assert report.counts["updated"] == 1
    assert stored_week(session) == "man–tor 08:00–18:00; lør 10:00–14:00"


def test_a_row_without_opening_hours_leaves_the_clinic_s_hours_as_they_are(session):
    import_text(session, csv_text({**GOOD_ROW, "opening_hours": "man-fre 08-16"}))
    report = import_text(session, csv_text(GOOD_ROW))
    assert report.counts["unchanged"] == 1
    assert stored_week(session) == "man–fre 08:00–16:00"


def test_unreadable_opening_hours_reject_the_row_saying_why(session):
    report = plan_import(session, csv_text({**GOOD_ROW, "opening_hours": "fre-man 08-16"}))
    (row,) = report.rows
    assert row.status is RowStatus.REJECTED
    assert any(error.startswith("“opening_hours”: ") for error in row.errors), row.errors


def test_norwegian_name_of_the_opening_hours_column_is_understood(session):
    header = HEADER.replace("opening_hours", "Åpningstider")
    report = import_text(
        session, csv_text({**GOOD_ROW, "opening_hours": "man-fre 08-16"}, header=header)
    )
    assert report.unknown_columns == []
    assert stored_week(session) == "man–fre 08:00–16:00"


# --- services: the vocabulary (issue 13) -------------------------------------------------


def test_services_in_either_language_or_an_alias_become_the_vocabulary_keys(session):
    rows = [
        {**GOOD_ROW, "services": "Treningsterapi; TØRRNÅLING; kinesiotape"},
        {**GOOD_ROW, **OTHER_CLINIC, "services": "exercise therapy;Dry needling;taping"},
    ]
    report = import_text(session, csv_text(*rows))
    assert report.counts["new"] == 2 and not report.with_warnings
    stored = [practice.services for practice in session.scalars(select(Practice))]
    assert stored == [["exercise-therapy", "dry-needling", "taping"]] * 2


def test_a_service_the_vocabulary_lacks_is_left_out_with_a_warning_naming_it(session):
    report = import_text(
        session, csv_text({**GOOD_ROW, "services": "massasje;Graston-teknikk;akupunktur"})
    )
    (row,) = report.rows
    assert row.status is RowStatus.NEW  # the rest of the row is imported
    (warning,) = row.warnings
    assert warning.startswith("“services”: ") and "'Graston-teknikk'" in warning
    assert "massasje" not in warning
    assert session.scalars(select(Practice)).one().services == ["massage", "acupuncture"]


def test_the_same_services_written_in_the_other_language_are_unchanged(session):
    import_text(session, csv_text({**GOOD_ROW, "services": "exercise therapy;dry needling"}))
    again = import_text(session, csv_text({**GOOD_ROW, "services": "Treningsterapi;Tørrnåling"}))
    assert again.counts["unchanged"] == 1


# --- the import round trip (issue 14) ----------------------------------------------------

ROUND_TRIP_HEADER = {
    "clinic_name": "Klinikknavn",
    "address": "Adresse",
    "postcode": "Postnr",
    "phone": "Telefon",
    "clinician_name": "Behandler",
    "profession": "Yrke",
    "hpr_number": "HPR-nummer",
    "latitude": "Breddegrad",
    "longitude": "Lengdegrad",
}


def norwegian_file(*rows: dict[str, str], extra: str = "Kommentar") -> str:
    """A ;-separated file with Norwegian headers and a column the format does not know."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([*ROUND_TRIP_HEADER.values(), extra])
    for row in rows:
        writer.writerow([row.get(column, "") for column in ROUND_TRIP_HEADER] + ["merknad"])
    return buffer.getvalue()


@pytest.mark.parametrize("postcode", ["0123", "123"])
def test_a_po_box_postcode_is_refused_as_a_clinics_address(session, postcode):
    # 0123 Oslo is "Postboksar" in the register; Excel writes it 123.
    row = {**GOOD_ROW, "postcode": postcode, "city": "Oslo", "latitude": "", "longitude": ""}
    report = plan_import(session, csv_text(row))
    (result,) = report.rows
    assert result.status is RowStatus.REJECTED
    assert result.errors == [
        "“postcode”: 0123 is a postcode for P.O. boxes only; give the postcode of the "
        "visiting address"
    ]


def test_a_po_box_postcode_is_refused_in_norwegian_naming_the_files_column(session):
    row = {**GOOD_ROW, "postcode": "123", "latitude": "", "longitude": ""}
    with force_locale("nb"):
        report = plan_import(session, norwegian_file(row))
    assert report.rows[0].errors == [
        "«Postnr»: 0123 er et postnummer bare for postbokser; oppgi postnummeret til besøksadressen"
    ]


def test_a_postcode_of_streets_and_po_boxes_is_a_clinics_address(session):
    # 0010 Oslo is "Gateadresser og postboksar": streets too.
    row = {**GOOD_ROW, "postcode": "0010", "city": "Oslo", "latitude": "", "longitude": ""}
    assert plan_import(session, csv_text(row)).rows[0].status is RowStatus.NEW


def test_row_reports_name_the_columns_as_the_file_does(session):
    row = {**GOOD_ROW, "hpr_number": "", "latitude": "60,39", "longitude": ""}
    with force_locale("nb"):
        (result,) = plan_import(session, norwegian_file(row)).rows
    assert "«HPR-nummer» mangler" in result.errors
    assert "oppgi både «Breddegrad» og «Lengdegrad», eller ingen av dem" in result.errors
    assert not any("hpr_number" in error or "latitude" in error for error in result.errors)


def test_the_error_column_of_a_rejected_rows_download_is_no_unknown_column(session):
    for name in ("Feil", "Errors", " feil "):
        report = plan_import(session, norwegian_file(GOOD_ROW, extra=name))
        assert report.unknown_columns == [], name
        assert report.rows[0].status is RowStatus.NEW
    assert plan_import(session, norwegian_file(GOOD_ROW)).unknown_columns == ["Kommentar"]


def test_every_language_names_the_error_column_as_the_importer_ignores_it(app):
    for language in SUPPORTED_LOCALES:
        with app.test_request_context(f"/?lang={language}"):
            assert normalise_key(errors_column_name()) in ERRORS_COLUMN_NAMES, language


def test_an_updated_row_says_what_it_changes_from_what_to_what(session):
    import_text(session, norwegian_file(GOOD_ROW))
    changed = {**GOOD_ROW, "phone": "55 99 99 99", "clinician_name": "Kari Nordmann-Ås"}
    with force_locale("nb"):
        (result,) = plan_import(session, norwegian_file(changed)).rows
    assert result.status is RowStatus.UPDATED
    assert result.changes == [
        ("«Telefon»", "+47 55 12 34 56", "+47 55 99 99 99"),
        ("«Behandler»", "Kari Nordmann", "Kari Nordmann-Ås"),
    ]
    (again,) = plan_import(session, norwegian_file(GOOD_ROW)).rows
    assert (again.status, again.changes) == (RowStatus.UNCHANGED, [])


def test_an_updated_row_shows_yes_no_and_hidden_practices_in_words(session):
    import_text(session, csv_text(GOOD_ROW))
    session.scalars(select(Practice)).one().active = False
    session.commit()
    changed = {**GOOD_ROW, "accepts_new_patients": "yes", "step_free_access": "no"}
    (result,) = plan_import(session, csv_text(changed)).rows
    assert result.changes == [
        ("“step_free_access”", "", "no"),
        ("“accepts_new_patients”", "no", "yes"),
        ("Shown in the directory", "no", "yes"),
    ]
