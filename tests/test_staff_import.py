"""The web import: upload, preview, confirm in one transaction, rejected rows, export."""

from __future__ import annotations

import csv
import io
import time

import pytest
from sqlalchemy import func, select

from clinic_finder import create_app
from clinic_finder.extensions import db
from clinic_finder.models import AuditEntry, Clinic, Clinician, ImportBatch, LocationSource

from .conftest import config_for_tests, csrf_token_from, make_staff, post_form, sign_in
from .nominatim_server import running_nominatim

# A file in Norwegian Excel shape: semicolons, Windows-1252, Norwegian headers, decimal
# commas, Ja/Nei, CRLF, a quoted field with a newline, and four bad rows (two of them share
# an HPR number, so neither is imported).
NORWEGIAN_EXCEL = (
    "Klinikknavn;Orgnr;Adresse;Postnr;Poststed;Telefon;E-post;Nettside;Behandler;Yrke;"
    "HPR-nummer;Driftsavtale;Tar imot nye;Språk;Behandlinger;Breddegrad;Lengdegrad;Notat\r\n"
    "Fjordklinikken;;Strandgata 4;5003;Bergen;55 12 34 56;post@fjord.example;;Kari Nordmann;"
    'Fysioterapeut;9876543;Ja;Nei;nb;trening;60,3950;5,3250;"to linjer\r\nher"\r\n'
    "Fjordklinikken;;Strandgata 4;5003;Bergen;55 12 34 56;post@fjord.example;;Øyvind Ås;"
    "Kiropraktor;9876544;Ja;Nei;nb;manipulasjon;60,3950;5,3250;\r\n"
    "Nordlys Helse;;Storgata 1;9008;Tromsø;;;;Åse Berg;MANUELLTERAPEUT;9876545;nei;ja;nb;;"
    "69,6490;18,9560;\r\n"
    "Naprapatklinikken;;Torget 2;0150;Oslo;;;;Per Hansen;Naprapat;9876546;nei;ja;;;;;\r\n"
    "Ukjent sted;;Gata 3;9999;Intet;;;;Lise Lund;Fysioterapeut;9876547;nei;ja;;;;;\r\n"
    "Dobbel;;Gata 4;0150;Oslo;;;;Kopi Person;Fysioterapeut;9876543;nei;ja;;;;;\r\n"
).encode("cp1252")


def upload(client, data: bytes, filename: str = "klinikker.csv"):
    token = csrf_token_from(client, "/staff/import")
    return client.post(
        "/staff/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Clinic)),
            db.session.scalar(select(func.count()).select_from(Clinician)),
        )


def latest_batch_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.max(ImportBatch.id)))


def test_norwegian_excel_file_previews_then_imports_exactly_the_valid_rows(app, staff_client):
    response = upload(staff_client, NORWEGIAN_EXCEL)
    assert response.status_code == 302
    preview = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "6 rows" in preview and "2 new" in preview and "4 rejected" in preview
    assert "Notat" in preview  # the unknown column is reported
    assert "not one of the publicly licensed professions" in preview
    assert "9999" in preview and "not in the Norwegian postcode register" in preview
    assert preview.count("HPR number 9876543 is on lines 2, 8") == 2  # on both rows
    assert counts(app) == (0, 0), "the preview must not write"

    batch_id = latest_batch_id(app)
    applied = post_form(
        staff_client, f"/staff/import/{batch_id}", f"/staff/import/{batch_id}/apply"
    )
    assert applied.status_code == 302
    assert counts(app) == (2, 2)
    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.apply")
        ).one()
        assert sorted(entry.changes["new"]) == ["9876544", "9876545"]
        assert entry.actor_label == "staff@clinic-finder.example"


def test_importing_the_same_file_again_reports_all_unchanged(app, staff_client):
    first = upload(staff_client, NORWEGIAN_EXCEL)
    batch_id = latest_batch_id(app)
    post_form(staff_client, first.headers["Location"], f"/staff/import/{batch_id}/apply")
    again = upload(staff_client, NORWEGIAN_EXCEL)
    preview = staff_client.get(again.headers["Location"]).get_data(as_text=True)
    assert "0 new" in preview and "0 updated" in preview and "2 unchanged" in preview
    assert "Nothing to import" in preview


def test_rejected_rows_download_in_import_format_with_reasons(app, staff_client):
    upload(staff_client, NORWEGIAN_EXCEL)
    response = staff_client.get(f"/staff/import/{latest_batch_id(app)}/rejected.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["line"] for row in rows] == ["2", "6", "7", "8"]
    assert rows[1]["clinician_name"] == "Per Hansen"
    assert "publicly licensed" in rows[1]["reason"]
    # Both rows with the same HPR number come back, each saying where the other is.
    assert [rows[0]["clinician_name"], rows[3]["clinician_name"]] == [
        "Kari Nordmann",
        "Kopi Person",
    ]
    assert "is on lines 2, 8" in rows[0]["reason"] and "is on lines 2, 8" in rows[3]["reason"]


def test_a_file_cannot_be_applied_twice(app, staff_client):
    response = upload(staff_client, NORWEGIAN_EXCEL)
    batch_id = latest_batch_id(app)
    post_form(staff_client, response.headers["Location"], f"/staff/import/{batch_id}/apply")
    second = post_form(
        staff_client, response.headers["Location"], f"/staff/import/{batch_id}/apply"
    )
    assert second.status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "import.apply")
            )
            == 1
        )


def test_failure_mid_apply_leaves_directory_exactly_as_before(app, staff_client, refusing_database):
    base = upload(staff_client, NORWEGIAN_EXCEL)
    post_form(staff_client, base.headers["Location"], f"/staff/import/{latest_batch_id(app)}/apply")
    with app.app_context():
        before = sorted(
            (c.hpr_number, c.name, c.clinic.name) for c in db.session.scalars(select(Clinician))
        )
    changed = NORWEGIAN_EXCEL.decode("cp1252").replace("Åse Berg", "Åse Berg Lund")
    changed += (
        "Siste Klinikk;;Gata 9;0150;Oslo;;;;Refused Writer;Fysioterapeut;9876599;nei;ja;;;;;\r\n"
        "Etter;;Gata 10;0150;Oslo;;;;Ny Etter;Fysioterapeut;9876600;nei;ja;;;;;\r\n"
    )
    response = upload(staff_client, changed.encode("cp1252"))
    batch_id = latest_batch_id(app)
    preview = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 new" in preview and "1 updated" in preview

    failed = post_form(staff_client, f"/staff/import/{batch_id}", f"/staff/import/{batch_id}/apply")
    assert failed.status_code == 302
    page = staff_client.get(failed.headers["Location"]).get_data(as_text=True)
    assert "nothing was changed" in page
    with app.app_context():
        after = sorted(
            (c.hpr_number, c.name, c.clinic.name) for c in db.session.scalars(select(Clinician))
        )
        assert db.session.get(ImportBatch, batch_id).applied_at is None
    assert after == before


def test_empty_file_gets_a_clear_error(staff_client):
    response = upload(staff_client, b"")
    assert response.status_code == 200
    assert "The file is empty" in response.get_data(as_text=True)


def test_binary_file_gets_a_clear_error(staff_client):
    response = upload(staff_client, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png")
    assert response.status_code == 200
    assert "not a text file" in response.get_data(as_text=True)


def test_file_without_required_columns_gets_a_clear_error(staff_client):
    response = upload(staff_client, b"name;town\nA;B\n")
    assert "Required column(s) missing" in response.get_data(as_text=True)


def test_file_over_5_mb_is_refused_with_413(staff_client):
    # Built by hand so the test client keeps the body in memory (no temporary file).
    token = csrf_token_from(staff_client, "/staff/import")
    body = (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + token.encode()
        + b'\r\n--BOUNDARY\r\nContent-Disposition: form-data; name="file"; '
        b'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        + b"a" * (5 * 1024 * 1024 + 1)
        + b"\r\n--BOUNDARY--\r\n"
    )
    response = staff_client.post(
        "/staff/import", data=body, content_type="multipart/form-data; boundary=BOUNDARY"
    )
    assert response.status_code == 413
    assert "Traceback" not in response.get_data(as_text=True)


def test_export_is_staff_only(client):
    assert client.get("/staff/export.csv").status_code == 302


def test_export_round_trips_through_the_web_import(app, staff_client):
    upload(staff_client, NORWEGIAN_EXCEL)
    post_form(staff_client, "/staff/import", f"/staff/import/{latest_batch_id(app)}/apply")
    exported = staff_client.get("/staff/export.csv")
    assert exported.get_data(as_text=True).startswith("\ufeffclinic_name,")
    again = upload(staff_client, exported.data, "clinics.csv")
    preview = staff_client.get(again.headers["Location"]).get_data(as_text=True)
    assert "2 rows" in preview and "2 unchanged" in preview


@pytest.fixture
def geocoding_staff(app, database_url):
    """(Nominatim on loopback, an app using it, a signed-in staff client of that app)."""
    with running_nominatim({"karl johans gate 22": (59.9133, 10.7389)}) as server:
        geo_app = create_app(
            config_for_tests(database_url, **server.config(GEOCODER_DOWN_SECONDS=0.5))
        )
        make_staff(geo_app, "geo@clinic-finder.example")
        client = geo_app.test_client()
        assert sign_in(client, "geo@clinic-finder.example").status_code == 302
        yield server, geo_app, client
        with geo_app.app_context():
            db.engine.dispose()


WITHOUT_COORDINATES = (
    b"clinic_name,address,postcode,clinician_name,profession,hpr_number\r\n"
    b"Karl Johan Fysio,Karl Johans gate 22,0154,Ada Lovelace,physiotherapist,9123001\r\n"
)


def test_web_import_with_geocoder_down_falls_back_then_regeocodes(geocoding_staff):
    server, geo_app, client = geocoding_staff
    server.fail("down")
    response = upload(client, WITHOUT_COORDINATES)
    batch_id = latest_batch_id(geo_app)
    post_form(client, response.headers["Location"], f"/staff/import/{batch_id}/apply")
    with geo_app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert clinic.location_source is LocationSource.POSTCODE
    listed = client.get("/staff/locations/postcode-only").get_data(as_text=True)
    assert "Karl Johan Fysio" in listed

    server.fail("ok")
    # The outage is remembered for GEOCODER_DOWN_SECONDS: until then nobody asks again.
    time.sleep(geo_app.config["GEOCODER_DOWN_SECONDS"])
    post_form(client, "/staff/locations/postcode-only", "/staff/locations/regeocode")
    with geo_app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert clinic.location_source is LocationSource.GEOCODED
        assert (clinic.latitude, clinic.longitude) == (59.9133, 10.7389)
    assert "Karl Johan Fysio" not in client.get("/staff/locations/postcode-only").get_data(
        as_text=True
    )


def test_web_import_geocodes_rows_without_coordinates(geocoding_staff):
    server, geo_app, client = geocoding_staff
    response = upload(client, WITHOUT_COORDINATES)
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "geocoded" in preview
    asked = len(server.requests)
    post_form(
        client, response.headers["Location"], f"/staff/import/{latest_batch_id(geo_app)}/apply"
    )
    assert len(server.requests) == asked, "the address is asked for once, then cached"
    with geo_app.app_context():
        assert db.session.scalars(select(Clinic)).one().location_source is (LocationSource.GEOCODED)


def test_export_is_audited(app, staff_client):
    staff_client.get("/staff/export.csv")
    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "directory.export")
        ).one()
    assert entry.actor_label == "staff@clinic-finder.example"
