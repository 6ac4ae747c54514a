"""The directory export: the import format, the round trip, and no formulas for spreadsheets."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from clinic_finder.export import (
    export_directory_csv,
    export_rows,
    neutralise_cell,
    rejected_rows_csv,
)
from clinic_finder.import_format import CANONICAL_COLUMNS
from clinic_finder.importer import (
    RowResult,
    RowStatus,
    apply_import,
    decode_upload,
    locate_at_postcode,
    plan_import,
)
from clinic_finder.models import Clinic, LocationSource, PostalCode, Profession
from clinic_finder.spreadsheet_cells import restore_cell

from .conftest import FORMULA_PREFIXES, formula_cells
from .factories import make_clinic
from .helpers import DEMO_FILE, GOOD_ROW, csv_text, import_text

PAYLOADS = [
    '=HYPERLINK("http://evil.example","x")',
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# Values that are one cell to us and several to a spreadsheet splitting on ; , or tab.
SPLIT_PAYLOADS = [
    "massasje;=cmd|' /C calc'!A0",
    "Klinikk;=1+1;",
    "engelsk,@SUM(A1)",
    'tøying; "=1+1"',
    "a\t-2+3",
    "b\r=1+1",
]


def assert_no_formula_cells(text: str) -> None:
    assert formula_cells(text) == []


def assert_round_trips(session, text: str, rows: int) -> None:
    report = plan_import(session, text)
    assert report.rejected == []
    assert len(report.rows) == rows
    assert report.count(RowStatus.UNCHANGED) == rows


def where_and_phone(session) -> dict[str, tuple]:
    return {
        clinic.name: (clinic.latitude, clinic.longitude, clinic.location_source, clinic.phone)
        for clinic in session.scalars(select(Clinic))
    }


def locate_by_geocoder(address, postal, city):
    """A stand-in geocoder: a point near the postcode's centre, or the centre without a street."""
    if not address:
        return locate_at_postcode(address, postal, city)
    latitude, longitude = postal.latitude + 0.00123456789, postal.longitude + 0.00987654321
    return latitude, longitude, LocationSource.GEOCODED


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("Kari Nordmann", "Kari Nordmann"),
        (None, ""),
        ("", ""),
        (42, "42"),
        ("=1+1", "'=1+1"),
        ("+47 22 33 44 55", "'+47 22 33 44 55"),
        ("-", "'-"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
    ],
)
def test_neutralise_cell_prefixes_only_formula_starts(value, cell):
    assert neutralise_cell(value) == cell


def test_export_of_demo_directory_reimports_unchanged(session):
    demo = decode_upload(DEMO_FILE.read_bytes())
    import_text(session, demo)
    demo_rows = len(read_csv(demo)) - 1

    assert_round_trips(session, export_directory_csv(session), demo_rows)


def test_export_of_demo_directory_needs_no_neutralising(session):
    import_text(session, decode_upload(DEMO_FILE.read_bytes()))
    lines = read_csv(export_directory_csv(session))
    assert lines[0] == list(CANONICAL_COLUMNS)
    for line in lines[1:]:
        for cell in line:
            assert not cell.startswith(("'", *FORMULA_PREFIXES)), cell


def test_export_uses_crlf_and_no_bom(session):
    import_text(session, csv_text(GOOD_ROW))
    text = export_directory_csv(session)
    assert text.startswith("clinic_name,org_number,")
    assert text.count("\r\n") == 2
    assert "\n" not in text.replace("\r\n", "")


def test_export_writes_values_in_import_form(session):
    import_text(session, csv_text(GOOD_ROW))
    (row,) = export_rows(session)
    assert list(row) == list(CANONICAL_COLUMNS)
    assert row["phone"] == "55 12 34 56"
    assert (row["helfo_agreement"], row["accepts_new_patients"]) == ("yes", "no")
    assert row["municipality_agreement"] == "Bergen"
    assert (row["languages"], row["services"]) == ("nb;en", "Exercise therapy;Dry needling")
    assert (row["latitude"], row["longitude"]) == ("60.395", "5.325")
    assert [row[name] for name in ACCESS_COLUMNS] == ["", "", "", ""]


ACCESS_COLUMNS = ("booking_url", "step_free_access", "accessible_toilet", "parking")


@pytest.mark.parametrize(
    "cells",
    [
        ("https://booking.example/fjord?clinic=4&lang=nb", "yes", "no", ""),
        ("", "", "yes", "no"),
        ("https://timebestilling.example/", "no", "", "yes"),
    ],
)
def test_export_round_trips_booking_link_and_access_facts(session, cells):
    row = {**GOOD_ROW, **dict(zip(ACCESS_COLUMNS, cells, strict=True))}
    import_text(session, csv_text(row))
    (exported,) = export_rows(session)
    assert [exported[name] for name in ACCESS_COLUMNS] == list(cells)
    assert_round_trips(session, export_directory_csv(session), 1)


def test_export_round_trips_a_clinician_at_two_clinics_and_their_agreements(session):
    colleague = {
        **GOOD_ROW,
        "clinician_name": "Øyvind Ås",
        "hpr_number": "1000002",
        "profession": "chiropractor",
        "helfo_agreement": "no",
        "accepts_new_patients": "",
        "services": "manipulation",
    }
    elsewhere = {
        **GOOD_ROW,
        "clinic_name": "Bryggen Fysio",
        "address": "Bryggen 1",
        "municipality_agreement": "Askøy",
        "accepts_new_patients": "yes",
        "latitude": "60.3975",
        "longitude": "5.324",
    }
    import_text(session, csv_text(GOOD_ROW, colleague, elsewhere))
    rows = list(export_rows(session))
    assert [(r["clinic_name"], r["hpr_number"]) for r in rows] == [
        ("Bryggen Fysio", "9876543"),
        ("Fjordklinikken", "9876543"),
        ("Fjordklinikken", "1000002"),
    ]
    assert [(r["helfo_agreement"], r["municipality_agreement"]) for r in rows] == [
        ("yes", "Askøy"),
        ("yes", "Bergen"),
        ("no", ""),
    ]
    assert [r["accepts_new_patients"] for r in rows] == ["yes", "no", ""]
    assert [r["profession"] for r in rows] == ["physiotherapist", "physiotherapist", "chiropractor"]
    assert_round_trips(session, export_directory_csv(session), 3)


def test_export_writes_opening_hours_one_way_and_reads_them_back(session):
    import_text(
        session, csv_text({**GOOD_ROW, "opening_hours": "Mandag–fredag kl. 8-16; tor 8-19"})
    )
    colleague = {**GOOD_ROW, **CLOSED_ON_WEDNESDAYS}
    import_text(session, csv_text(colleague))
    rows = {row["clinic_name"]: row["opening_hours"] for row in export_rows(session)}
    assert rows == {
        "Fjordklinikken": "man–ons, fre 08:00–16:00; tor 08:00–19:00",
        "Onsdagsstengt": "man–tir, tor–fre 08:00–15:30",
    }
    assert_round_trips(session, export_directory_csv(session), 2)


CLOSED_ON_WEDNESDAYS = {
    "clinic_name": "Onsdagsstengt",
    "address": "Torget 1",
    "hpr_number": "1000002",
    "opening_hours": "hverdager 08:00-15:30; ons stengt",
}


def test_export_round_trips_an_agreement_whose_municipality_is_not_known(session):
    clinic = make_clinic(session, name="Ukjent kommune", helfo_agreement=True)
    clinic.practices[0].agreement_municipality = None
    session.commit()
    (row,) = export_rows(session)
    assert (row["helfo_agreement"], row["municipality_agreement"]) == ("yes", "")
    assert_round_trips(session, export_directory_csv(session), 1)


def test_export_keeps_geocoded_and_postcode_precision_and_foreign_phone(session):
    geocoded = {
        **GOOD_ROW,
        "clinic_name": "Geokoda klinikk",
        "address": "Kaigaten 1",
        "hpr_number": "1000001",
        "latitude": "",
        "longitude": "",
    }
    at_postcode = {
        **GOOD_ROW,
        "clinic_name": "Postnummerklinikken",
        "address": "",
        "postcode": "9990",
        "city": "",
        "phone": "+46 8 123 456 78",
        "hpr_number": "1000002",
        "accepts_new_patients": "",
        "latitude": "",
        "longitude": "",
    }
    given = {**GOOD_ROW, "hpr_number": "1000003", "phone": "+44 20 7946 0958"}
    report = plan_import(session, csv_text(geocoded, at_postcode), locate=locate_by_geocoder)
    apply_import(session, report)
    session.commit()
    import_text(session, csv_text(given))
    before = where_and_phone(session)
    assert before["Geokoda klinikk"][2] is LocationSource.GEOCODED
    assert before["Postnummerklinikken"][2] is LocationSource.POSTCODE

    text = export_directory_csv(session)
    rows = {row["clinic_name"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}
    assert rows["Postnummerklinikken"]["phone"] == "00 46 8 123 456 78"
    assert rows["Fjordklinikken"]["phone"] == "00 44 20 7946 0958"
    assert rows["Postnummerklinikken"]["latitude"] == rows["Postnummerklinikken"]["longitude"] == ""
    assert rows["Geokoda klinikk"]["latitude"] == repr(before["Geokoda klinikk"][0])

    assert_round_trips(session, text, 3)
    import_text(session, text)
    session.expire_all()
    assert where_and_phone(session) == before


def test_export_round_trips_negative_longitude_on_jan_mayen(session):
    jan_mayen = session.get(PostalCode, "8099")
    assert jan_mayen is not None and jan_mayen.longitude < 0
    row = {
        **GOOD_ROW,
        "postcode": "8099",
        "city": "Jan Mayen",
        "latitude": "70.93",
        "longitude": "-8.6543",
    }
    import_text(session, csv_text(row))
    text = export_directory_csv(session)
    assert_no_formula_cells(text)
    (exported,) = csv.DictReader(io.StringIO(text, newline=""))
    assert exported["longitude"] == " -8.6543"  # a number, not a formula
    assert_round_trips(session, text, 1)


def test_export_leaves_out_inactive_clinics_and_practices(session):
    make_clinic(session, name="Stengt klinikk", active=False)
    open_clinic = make_clinic(
        session,
        name="Åpen klinikk",
        professions=(Profession.CHIROPRACTOR, Profession.PHYSIOTHERAPIST),
    )
    open_clinic.practices[0].active = False
    session.commit()

    rows = list(export_rows(session))

    assert [row["clinic_name"] for row in rows] == ["Åpen klinikk"]
    assert [row["hpr_number"] for row in rows] == [open_clinic.practices[1].clinician.hpr_number]


def test_export_orders_by_clinic_then_clinician(session):
    second = {**GOOD_ROW, "clinician_name": "Anne Berg", "hpr_number": "1000002"}
    other = {
        **GOOD_ROW,
        "clinic_name": "bakgården fysio",
        "address": "Torget 1",
        "hpr_number": "1000003",
    }
    import_text(session, csv_text(GOOD_ROW, second, other))
    names = [(row["clinic_name"], row["clinician_name"]) for row in export_rows(session)]
    assert names == [
        ("bakgården fysio", "Kari Nordmann"),
        ("Fjordklinikken", "Anne Berg"),
        ("Fjordklinikken", "Kari Nordmann"),
    ]


def _set_clinic_name(clinic, payload):
    clinic.name = payload


def _set_address(clinic, payload):
    clinic.address = payload


def _set_city(clinic, payload):
    clinic.city = payload


def _set_phone(clinic, payload):
    clinic.phone = payload


def _set_clinician_name(clinic, payload):
    clinic.practices[0].clinician.name = payload


def _set_services(clinic, payload):
    clinic.practices[0].services = [payload, "dry needling"]


def _set_municipality(clinic, payload):
    clinic.practices[0].public_agreement = True
    clinic.practices[0].agreement_municipality = payload


def _set_booking_url(clinic, payload):
    # The forms and the importer take https only; whatever is stored is still neutralised.
    clinic.booking_url = payload


@pytest.mark.parametrize(
    "put",
    [
        _set_clinic_name,
        _set_address,
        _set_city,
        _set_phone,
        _set_clinician_name,
        _set_services,
        _set_municipality,
        _set_booking_url,
    ],
)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_export_neutralises_formula_cells(session, put, payload):
    clinic = make_clinic(session, phone="+47 22 33 44 55")
    put(clinic, payload)
    session.commit()

    text = export_directory_csv(session)

    assert_no_formula_cells(text)
    assert any(restore_cell(cell).startswith(payload) for cell in read_csv(text)[1])


@pytest.mark.parametrize(
    "put",
    [
        _set_clinic_name,
        _set_address,
        _set_city,
        _set_clinician_name,
        _set_services,
        _set_municipality,
    ],
)
@pytest.mark.parametrize("payload", SPLIT_PAYLOADS)
def test_export_neutralises_every_part_a_spreadsheet_may_split_off(session, put, payload):
    """Norwegian Excel splits a .csv on ;, so 'massasje;=cmd' was a formula cell there."""
    clinic = make_clinic(session)
    put(clinic, payload)
    session.commit()

    text = export_directory_csv(session)

    assert_no_formula_cells(text)
    assert any(payload in restore_cell(cell) for cell in read_csv(text)[1])


@pytest.mark.parametrize("payload", SPLIT_PAYLOADS[:4])
def test_export_with_split_payloads_reimports_unchanged(session, payload):
    clinic = make_clinic(session)
    clinic.name = "Ryggklinikken " + payload
    clinic.practices[0].services = ["massage", "dry-needling"]
    session.commit()
    assert_round_trips(session, export_directory_csv(session), 1)


def test_export_names_services_in_the_staff_members_language_and_reimports_unchanged(app, session):
    import_text(session, csv_text({**GOOD_ROW, "services": "exercise therapy;kinesiotape"}))
    app.config["DEFAULT_LOCALE"] = "nb"  # the language outside a request, as for the CLI
    (row,) = export_rows(session)
    assert row["services"] == "Treningsterapi;Taping"
    assert_round_trips(session, export_directory_csv(session), 1)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("massasje;=cmd", "massasje;'=cmd"),
        ("a,@b", "a,'@b"),
        ('x; "=1"', 'x; "\'=1"'),
        ("-8.6543", "'-8.6543"),
        (" -8.6543", " -8.6543"),
        ("59.9;-10.5", "59.9;'-10.5"),
        ("a\t=1", "a\t'=1"),
        ("\t=1", "'\t'=1"),
    ],
)
def test_neutralise_cell_guards_each_part_and_restore_cell_undoes_it(value, cell):
    assert neutralise_cell(value) == cell
    assert restore_cell(cell) == value


def test_rejected_rows_csv_neutralises_and_keeps_the_files_columns_with_the_errors(session):
    bad = {
        **GOOD_ROW,
        "clinic_name": '=HYPERLINK("http://evil.example","x")',
        "clinician_name": "@SUM(1+1)",
        "hpr_number": "1000009",
        "postcode": "0000",
    }
    text = csv_text(GOOD_ROW, bad)
    report = plan_import(session, text)

    rejected = rejected_rows_csv(text, report.rejected)

    assert_no_formula_cells(rejected)
    header, *rows = read_csv(rejected)
    assert header == [*read_csv(text)[0], "Errors"]
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["clinic_name"] == "'" + bad["clinic_name"]
    assert row["clinician_name"] == "'@SUM(1+1)"
    assert "0000" in row["Errors"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_rejected_rows_csv_neutralises_every_cell(payload):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CANONICAL_COLUMNS)
    writer.writerow([payload] * len(CANONICAL_COLUMNS))
    row = RowResult(line=2, raw={}, errors=[payload])
    text = rejected_rows_csv(buffer.getvalue(), [row])
    assert_no_formula_cells(text)
    assert restore_cell(read_csv(text)[1][-1]) == payload


def test_clinics_export_writes_a_file_that_reimports_unchanged(runner, tmp_path):
    runner.invoke(args=["clinics", "import", str(DEMO_FILE)])
    path = tmp_path / "export.csv"

    result = runner.invoke(args=["clinics", "export", str(path)])

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfclinic_name,")
    rows = data.count(b"\r\n") - 1
    assert f"Exported {rows} rows (one per clinician at each clinic)" in result.stderr
    again = runner.invoke(args=["clinics", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert f"{rows} rows: 0 new, 0 updated, {rows} unchanged, 0 rejected." in again.output


@pytest.mark.parametrize("args", [[], ["-"]])
def test_clinics_export_writes_to_stdout_without_bom(runner, args):
    runner.invoke(args=["clinics", "import", str(DEMO_FILE)])

    result = runner.invoke(args=["clinics", "export", *args])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("clinic_name,org_number,")
    assert "Exported" in result.stderr and "standard output" in result.stderr
