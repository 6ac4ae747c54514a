"""The clinic list loader: the import format, validation, classification, idempotence."""

from __future__ import annotations

import codecs
import csv

import pytest
from sqlalchemy import func, select

from clinic_finder.importer import (
    ImportFileError,
    RowStatus,
    decode_upload,
    plan_import,
)
from clinic_finder.models import Clinic, Clinician, LocationSource, PostalCode, Profession

from .helpers import DEMO_FILE, GOOD_ROW, HEADER, csv_text, import_text


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_demo_directory_imports_completely(session):
    report = import_text(session, decode_upload(DEMO_FILE.read_bytes()))
    assert report.rejected == []
    assert report.unknown_columns == []
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
    professions = set(session.scalars(select(Clinician.profession)))
    assert professions == set(Profession)


def test_demo_directory_imported_twice_is_unchanged(session):
    text = decode_upload(DEMO_FILE.read_bytes())
    import_text(session, text)
    clinics_before = count(session, Clinic)
    second = import_text(session, text)
    assert second.count(RowStatus.UNCHANGED) == len(second.rows)
    assert count(session, Clinic) == clinics_before


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
    assert clinic.helfo_agreement is True
    assert clinic.accepts_new_patients is False
    assert clinic.location_source is LocationSource.GIVEN
    clinician = clinic.clinicians[0]
    assert clinician.profession is Profession.PHYSIOTHERAPIST
    assert clinician.languages == ["nb", "en"]
    assert clinician.services == ["exercise therapy", "dry needling"]


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
    clinician = session.scalars(select(Clinician)).one()
    assert clinician.profession is Profession.MANUAL_THERAPIST
    assert clinician.clinic.latitude == pytest.approx(60.395)


def test_clinicians_of_one_clinic_share_it(session):
    second = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    import_text(session, csv_text(GOOD_ROW, second))
    assert count(session, Clinic) == 1
    assert count(session, Clinician) == 2


def _directory(session) -> dict[str, list[dict]]:
    """Every stored column of every clinic and clinician, to compare before and after."""
    return {
        model.__name__: [
            {column.key: getattr(row, column.key) for column in model.__table__.columns}
            for row in session.scalars(select(model).order_by(model.id))
        ]
        for model in (Clinic, Clinician)
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
    assert all(row["active"] for rows in before.values() for row in rows)


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
        ({"hpr_number": ""}, "hpr_number is missing"),
        ({"hpr_number": "12ab"}, "HPR number"),
        ({"org_number": "123456789"}, "not a valid Norwegian organisation number"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "øystein@klinikk.example"}, "We cannot send email to"),
        ({"website": "javascript:alert(1)"}, "http:// or https://"),
        ({"helfo_agreement": "maybe"}, "must be yes or no"),
        ({"latitude": "48.85", "longitude": "2.35"}, "outside Norway"),
        ({"latitude": "63.43", "longitude": "10.39"}, "km from postcode 5003"),
        ({"latitude": "abc"}, "decimal numbers"),
        ({"clinic_name": ""}, "clinic_name is missing"),
    ],
)
def test_bad_row_is_rejected_with_reason(session, changes, reason):
    report = plan_import(session, csv_text({**GOOD_ROW, **changes}))
    (row,) = report.rows
    assert row.status is RowStatus.REJECTED
    assert row.line == 2
    assert any(reason in error for error in row.errors), row.errors


def test_duplicate_hpr_rejects_every_row_with_it_naming_all_lines(session):
    other_clinic = {**GOOD_ROW, "clinic_name": "Annen klinikk", "address": "Torget 1"}
    someone_else = {**GOOD_ROW, "clinician_name": "Ola Nordmann", "hpr_number": "9876544"}
    spaced = {**other_clinic, "hpr_number": "987 654 3"}  # the same number, spelt apart
    report = import_text(session, csv_text(GOOD_ROW, someone_else, other_clinic, spaced))
    assert [row.status for row in report.rows] == [
        RowStatus.REJECTED,
        RowStatus.NEW,
        RowStatus.REJECTED,
        RowStatus.REJECTED,
    ]
    for row in (report.rows[0], report.rows[2], report.rows[3]):
        assert row.errors == [
            "HPR number 9876543 is on lines 2, 4, 5: a clinician has one row, so none of "
            "these rows is imported"
        ]
    assert list(session.scalars(select(Clinician.hpr_number))) == ["9876544"]


def test_duplicate_hpr_is_reported_besides_a_row_s_other_errors(session):
    bad_postcode = {**GOOD_ROW, "clinic_name": "Annen klinikk", "postcode": "0000"}
    report = plan_import(session, csv_text(GOOD_ROW, bad_postcode))
    assert report.counts["rejected"] == 2
    assert "is on lines 2, 3" in report.rows[0].errors[0]
    assert "not in the Norwegian postcode register" in report.rows[1].errors[0]
    assert "is on lines 2, 3" in report.rows[1].errors[-1]


def test_duplicate_hpr_rows_are_not_geocoded(session):
    asked = []

    def locate(address, postal, city):
        asked.append(address)
        return postal.latitude, postal.longitude, LocationSource.POSTCODE

    row = {**GOOD_ROW, "latitude": "", "longitude": ""}
    report = plan_import(session, csv_text(row, {**row, "address": "Torget 1"}), locate)
    assert report.counts["rejected"] == 2
    assert asked == []


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
    assert clinician.name == "-Anne" and clinician.clinic.name == "+Helse"


def test_too_long_values_are_rejected_with_reason(session):
    report = plan_import(session, csv_text({**GOOD_ROW, "clinic_name": "x" * 201}))
    assert "clinic_name is longer than 200 characters" in report.rows[0].errors


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
    assert any(error.startswith(f"{column}: ") and reason in error for error in row.errors), (
        row.errors
    )


def test_list_cell_at_the_caps_is_imported(session):
    services = [f"behandling {n:02d} " + "z" * 66 for n in range(30)]  # 30 items of 80
    assert {len(service) for service in services} == {80}
    import_text(session, csv_text({**GOOD_ROW, "services": ";".join(services)}))
    assert session.scalars(select(Clinician)).one().services == services


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
    assert clinic.clinicians[0].services == ["exercise therapy", "dry needling"]


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
