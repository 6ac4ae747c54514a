"""The web import: upload, a background check, preview, confirm, one transaction, rejected rows."""

from __future__ import annotations

import codecs
import csv
import io
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from clinic_finder import create_app, imports, jobs
from clinic_finder.extensions import db
from clinic_finder.hpr import LicenceStatus
from clinic_finder.importer import locate_at_postcode
from clinic_finder.imports import plan_batch
from clinic_finder.models import (
    AuditEntry,
    Clinic,
    Clinician,
    ImportBatch,
    ImportRow,
    ImportStatus,
    LocationSource,
    Practice,
    now_utc,
)

from .conftest import (
    config_for_tests,
    csrf_token_from,
    make_staff,
    post_form,
    sign_in,
    wait_for_import,
)
from .helpers import table_lines
from .hpr_server import register_from_json
from .nominatim_server import running_nominatim

# A file in Norwegian Excel shape: semicolons, Windows-1252, Norwegian headers, decimal
# commas, Ja/Nei, CRLF, a quoted field with a newline, and four bad rows (two of them give
# one HPR number two names, so neither is imported). A physiotherapist with an agreement and
# a chiropractor without one share a clinic, and differ on taking new patients: the normal
# case, which the directory used to refuse.
NORWEGIAN_EXCEL = (
    "Klinikknavn;Orgnr;Adresse;Postnr;Poststed;Telefon;E-post;Nettside;Behandler;Yrke;"
    "HPR-nummer;Driftsavtale;Tar imot nye;Språk;Behandlinger;Breddegrad;Lengdegrad;Notat\r\n"
    "Fjordklinikken;;Strandgata 4;5003;Bergen;55 12 34 56;post@fjord.example;;Kari Nordmann;"
    'Fysioterapeut;9876543;Ja;Nei;nb;trening;60,3950;5,3250;"to linjer\r\nher"\r\n'
    "Fjordklinikken;;Strandgata 4;5003;Bergen;55 12 34 56;post@fjord.example;;Øyvind Ås;"
    "Kiropraktor;9876544;Nei;Ja;nb;manipulasjon;60,3950;5,3250;\r\n"
    "Nordlys Helse;;Storgata 1;9008;Tromsø;;;;Åse Berg;MANUELLTERAPEUT;9876545;nei;ja;nb;;"
    "69,6490;18,9560;\r\n"
    "Naprapatklinikken;;Torget 2;0150;Oslo;;;;Per Hansen;Naprapat;9876546;nei;ja;;;;;\r\n"
    "Ukjent sted;;Gata 3;9999;Intet;;;;Lise Lund;Fysioterapeut;9876547;nei;ja;;;;;\r\n"
    "Dobbel;;Gata 4;0150;Oslo;;;;Kopi Person;Fysioterapeut;9876543;nei;ja;;;;;\r\n"
).encode("cp1252")


def clinic_list(count: int, first_hpr: int, **changes: str) -> list[str]:
    """The rows of a file of ``count`` clinicians of one clinic, HPR numbers from ``first_hpr``."""
    return [
        f"Fjordklinikken,Strandgata 4,{changes.get('postcode', '5003')},Behandler {n},"
        f"physiotherapist,{first_hpr + n},60.3950,5.3250\r\n"
        for n in range(count)
    ]


LIST_HEADER = (
    "clinic_name,address,postcode,clinician_name,profession,hpr_number,latitude,longitude\r\n"
)


def upload(client, data: bytes, filename: str = "klinikker.csv"):
    token = csrf_token_from(client, "/staff/import")
    return client.post(
        "/staff/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def counts(app) -> tuple[int, int]:
    """(clinics, clinicians); every clinician these files add works at one clinic."""
    with app.app_context():
        practices = db.session.scalar(select(func.count()).select_from(Practice))
        clinicians = db.session.scalar(select(func.count()).select_from(Clinician))
        assert practices == clinicians
        return db.session.scalar(select(func.count()).select_from(Clinic)), clinicians


def latest_batch_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.max(ImportBatch.id)))


def upload_checked(client, data: bytes, filename: str = "klinikker.csv") -> tuple[int, str]:
    """Upload a file, wait for the background check; return the batch id and its preview."""
    response = upload(client, data, filename)
    assert response.status_code == 302, response.get_data(as_text=True)
    batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert wait_for_import(client.application, batch_id) is ImportStatus.PLANNED
    return batch_id, client.get(f"/staff/import/{batch_id}").get_data(as_text=True)


def apply_and_wait(client, batch_id: int) -> ImportStatus:
    """Press Import on the preview, wait for the job; return where the import ended."""
    response = post_form(client, f"/staff/import/{batch_id}", f"/staff/import/{batch_id}/apply")
    assert response.status_code == 302
    return wait_for_import(client.application, batch_id)


def test_norwegian_excel_file_previews_then_imports_exactly_the_valid_rows(app, staff_client):
    batch_id, preview = upload_checked(staff_client, NORWEGIAN_EXCEL)
    assert "6 rows" in preview and "2 new" in preview and "4 rejected" in preview
    assert "Notat" in preview  # the unknown column is reported
    assert "not one of the publicly licensed professions" in preview
    assert "9999" in preview and "not in the Norwegian postcode register" in preview
    assert preview.count("HPR number 9876543 is on lines 2, 8") == 2  # on both rows
    assert "with different names" in preview
    assert counts(app) == (0, 0), "the preview must not write"

    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    assert counts(app) == (2, 2)
    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.apply")
        ).one()
        assert sorted(entry.changes["new"]) == ["9876544", "9876545"]
        assert entry.actor_label == "staff@clinic-finder.example"


def test_importing_the_same_file_again_reports_all_unchanged(app, staff_client):
    batch_id, _ = upload_checked(staff_client, NORWEGIAN_EXCEL)
    apply_and_wait(staff_client, batch_id)
    _, preview = upload_checked(staff_client, NORWEGIAN_EXCEL)
    assert "0 new" in preview and "0 updated" in preview and "2 unchanged" in preview
    assert "Nothing to import" in preview


def test_rejected_rows_download_is_the_uploaded_file_with_only_those_rows_and_errors(
    app, staff_client
):
    batch_id, _ = upload_checked(staff_client, NORWEGIAN_EXCEL)
    response = staff_client.get(f"/staff/import/{batch_id}/rejected.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=windows-1252"
    text = response.get_data().decode("cp1252")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    header = NORWEGIAN_EXCEL.decode("cp1252").split("\r\n", 1)[0].split(";")
    assert rows[0] == [*header, "Errors"]  # Notat too, in its place
    rows = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [row["Behandler"] for row in rows] == [
        "Kari Nordmann",
        "Per Hansen",
        "Lise Lund",
        "Kopi Person",
    ]
    assert rows[0]["Notat"] == "to linjer\r\nher"
    assert "publicly licensed" in rows[1]["Errors"]
    # Both rows with the same HPR number come back, each saying where the other is.
    assert "is on lines 2, 8" in rows[0]["Errors"] and "is on lines 2, 8" in rows[3]["Errors"]


def test_a_file_cannot_be_applied_twice(app, staff_client):
    batch_id, _ = upload_checked(staff_client, NORWEGIAN_EXCEL)
    token = csrf_token_from(staff_client, f"/staff/import/{batch_id}")
    # A double click: both posts arrive before the job has run.
    first = staff_client.post(f"/staff/import/{batch_id}/apply", data={"csrf_token": token})
    second = staff_client.post(f"/staff/import/{batch_id}/apply", data={"csrf_token": token})
    assert first.status_code == second.status_code == 302
    assert wait_for_import(app, batch_id) is ImportStatus.APPLIED
    third = post_form(staff_client, f"/staff/import/{batch_id}", f"/staff/import/{batch_id}/apply")
    assert "already imported" in staff_client.get(third.headers["Location"]).get_data(as_text=True)
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
    base_id, _ = upload_checked(staff_client, NORWEGIAN_EXCEL)
    apply_and_wait(staff_client, base_id)
    with app.app_context():
        before = directory_rows()
    changed = NORWEGIAN_EXCEL.decode("cp1252").replace("Åse Berg", "Åse Berg Lund")
    changed += (
        "Siste Klinikk;;Gata 9;0150;Oslo;;;;Refused Writer;Fysioterapeut;9876599;nei;ja;;;;;\r\n"
        "Etter;;Gata 10;0150;Oslo;;;;Ny Etter;Fysioterapeut;9876600;nei;ja;;;;;\r\n"
    )
    batch_id, preview = upload_checked(staff_client, changed.encode("cp1252"))
    assert "2 new" in preview and "1 updated" in preview

    # Nothing was written, so the file is back to checked, and may be tried again.
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.PLANNED
    page = staff_client.get(f"/staff/import/{batch_id}").get_data(as_text=True)
    assert "nothing was changed" in page and "Import 3 rows" in page
    with app.app_context():
        after = directory_rows()
        assert db.session.get(ImportBatch, batch_id).applied_at is None
    assert after == before


def directory_rows() -> list[tuple]:
    """Every practice as (HPR number, name, clinic, profession, agreement, active)."""
    return sorted(
        (
            p.clinician.hpr_number,
            p.clinician.name,
            p.clinic.name,
            p.profession.value,
            p.public_agreement,
            p.active,
        )
        for p in db.session.scalars(select(Practice))
    )


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
    batch_id, _ = upload_checked(staff_client, NORWEGIAN_EXCEL)
    apply_and_wait(staff_client, batch_id)
    exported = staff_client.get("/staff/export.csv")
    assert exported.get_data(as_text=True).startswith("\ufeffclinic_name,")
    _, preview = upload_checked(staff_client, exported.data, "clinics.csv")
    assert "2 rows" in preview and "2 unchanged" in preview


# One clinic on three rows, in Norwegian headers with the new columns: the physiotherapist
# has the agreement, the chiropractor cannot have one, and the third row gives the clinic
# another phone number and booking link (the first row's are kept, with warnings).
PRACTICES_FILE = (
    "Klinikknavn;Adresse;Postnr;Telefon;Timebestilling;Trinnfri inngang;HC-toalett;"
    "Parkering;Behandler;Yrke;HPR-nummer;Driftsavtale;Avtalekommune;Tar imot nye;"
    "Breddegrad;Lengdegrad\r\n"
    "Fjordklinikken;Strandgata 4;5003;55 12 34 56;https://booking.example/fjord;Ja;Nei;;"
    "Kari Nordmann;Fysioterapeut;9876543;Ja;Bergen;Nei;60,3950;5,3250\r\n"
    "Fjordklinikken;Strandgata 4;5003;55 12 34 56;https://booking.example/fjord;Ja;Nei;;"
    "Øyvind Ås;Kiropraktor;9876544;Ja;;Ja;60,3950;5,3250\r\n"
    "Fjordklinikken;Strandgata 4;5003;55 99 99 99;http://booking.example/ny;Ja;Nei;;"
    "Ola Nordmann;Kiropraktor;9876545;Nei;;Ja;60,3950;5,3250\r\n"
).encode("cp1252")


def test_preview_rejects_a_chiropractor_with_an_agreement_and_an_http_booking_link(
    app, staff_client
):
    _, preview = upload_checked(staff_client, PRACTICES_FILE)
    assert "3 rows" in preview and "1 new" in preview and "2 rejected" in preview
    assert "Chiropractors have no public agreement (driftsavtale) in Norway" in preview
    # The file's own column name, not the import format's (booking_url).
    assert "“Timebestilling”: &#39;http://booking.example/ny&#39; must be an https:// address" in (
        preview
    )
    # A rejected row is no later row of its clinic: nothing to warn about.
    assert "Warning: " not in preview


def test_preview_counts_and_shows_warnings_under_their_rows(app, staff_client):
    data = PRACTICES_FILE.replace(b"http://booking.example/ny", b"https://booking.example/ny")
    data = data.replace(b"9876544;Ja;;Ja", b"9876544;Nei;;Ja")
    batch_id, preview = upload_checked(staff_client, data)
    assert "3 rows" in preview and "3 new" in preview and "0 rejected" in preview
    assert "1 accepted row has a warning" in preview
    assert preview.count("Warning: ") == 2
    for column in ("Telefon", "Timebestilling"):
        assert (
            f"Warning: “{column}” on line 4 differs from line 2 of the same clinic: the value "
            "on line 2 is kept" in preview
        )
    with_warnings = staff_client.get(f"/staff/import/{batch_id}?show=warnings").get_data(
        as_text=True
    )
    assert "With warnings (1)" in with_warnings
    assert table_lines(with_warnings) == ["4"]

    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    with app.app_context():
        clinic = db.session.scalars(select(Clinic)).one()
        assert (clinic.phone, clinic.booking_url) == (
            "+47 55 12 34 56",
            "https://booking.example/fjord",
        )
        assert (clinic.step_free_access, clinic.accessible_toilet, clinic.parking) == (
            True,
            False,
            None,
        )
        assert directory_rows() == [
            ("9876543", "Kari Nordmann", "Fjordklinikken", "physiotherapist", True, True),
            ("9876544", "Øyvind Ås", "Fjordklinikken", "chiropractor", False, True),
            ("9876545", "Ola Nordmann", "Fjordklinikken", "chiropractor", False, True),
        ]


def test_web_import_checks_the_licences_of_its_new_clinicians(hpr_app, hpr_server, staff_client):
    hpr_server.register.update(
        register_from_json(
            {
                "9876543": {"approvals": [{"category": "FT", "valid_from": "2010-08-01"}]},
                "9876545": {"approvals": [{"category": "FT", "valid_from": "2010-08-01"}]},
            }
        )
    )
    batch_id, _ = upload_checked(staff_client, PRACTICES_FILE.replace(b"http://", b"https://"))
    assert hpr_server.asked_for() == [], "checking the file asks HPR nothing"
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    # The chiropractor with an agreement was rejected; the two imported are checked.
    assert sorted(hpr_server.asked_for()) == ["9876543", "9876545"]
    with hpr_app.app_context():
        statuses = {c.name: c.licence_status for c in db.session.scalars(select(Clinician))}
    # Ola practises as a chiropractor but holds FT only: hidden from patients.
    assert statuses == {
        "Kari Nordmann": LicenceStatus.VALID,
        "Ola Nordmann": LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION,
    }


@pytest.fixture
def geocoding_staff(app, database_url, request):
    """(Nominatim on loopback, an app using it, a signed-in staff client of that app).

    An outage is remembered for half a second, so tests can wait it out; a test that
    needs it remembered for longer (whatever the machine's speed) marks itself with
    ``@pytest.mark.geocoder_down_seconds(N)``.
    """
    marker = request.node.get_closest_marker("geocoder_down_seconds")
    down_seconds = marker.args[0] if marker else 0.5
    with running_nominatim({"karl johans gate 22": (59.9133, 10.7389)}) as server:
        geo_app = create_app(
            config_for_tests(database_url, **server.config(GEOCODER_DOWN_SECONDS=down_seconds))
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
    batch_id, _ = upload_checked(client, WITHOUT_COORDINATES)
    apply_and_wait(client, batch_id)
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
    batch_id, preview = upload_checked(client, WITHOUT_COORDINATES)
    assert "Location: found from the address" in preview
    asked = len(server.requests)
    apply_and_wait(client, batch_id)
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


# --- encodings (item 13) -------------------------------------------------------------------


def test_upload_mixing_utf8_and_windows_1252_is_refused_naming_the_line(app, staff_client):
    data = b"Klinikknavn;Postnr;Behandler;Yrke;HPR-nummer\r\n" + b"".join(
        f"Sørum Fysio {n};1920;Kari;fysioterapeut;91000{n:02d}\r\n".encode() for n in range(12)
    )
    data += "Ås Fysio;1430;Åse;fysioterapeut;9100099\r\n".encode("cp1252")
    response = upload(staff_client, data)
    assert response.status_code == 200
    assert "Line 14 is not UTF-8" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_excel_unicode_text_upload_is_imported(app, staff_client):
    text = NORWEGIAN_EXCEL.decode("cp1252").replace(";", "\t")
    batch_id, preview = upload_checked(staff_client, text.encode("utf-16"), "klinikker.txt")
    assert "6 rows" in preview and "2 new" in preview and "4 rejected" in preview
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    with app.app_context():
        assert set(db.session.scalars(select(Clinician.name))) == {"Øyvind Ås", "Åse Berg"}


# --- background jobs, progress and paging (item 6) -----------------------------------------


@pytest.fixture
def queued_staff(app, database_url):
    """(an app that runs no jobs itself, as production; a signed-in staff client of it)."""
    queue_app = create_app(config_for_tests(database_url, JOBS_RUN_IN_PROCESS=False))
    make_staff(queue_app, "queue@clinic-finder.example")
    client = queue_app.test_client()
    assert sign_in(client, "queue@clinic-finder.example").status_code == 302
    yield queue_app, client
    with queue_app.app_context():
        db.engine.dispose()


def test_upload_waits_for_a_worker_and_is_imported_when_one_runs(queued_staff):
    queue_app, client = queued_staff
    response = upload(client, NORWEGIAN_EXCEL)
    assert response.status_code == 302
    batch_id = latest_batch_id(queue_app)
    page = client.get(f"/staff/import/{batch_id}").get_data(as_text=True)
    assert "The file has 6 rows. They are waiting to be checked." in page
    assert '<meta http-equiv="refresh"' in page
    listed = client.get("/staff/import").get_data(as_text=True)
    assert "waiting to be checked" in listed and "queue@clinic-finder.example" in listed

    worker = queue_app.test_cli_runner()
    assert "import 1\tqueued\t0/6 rows" in worker.invoke(args=["jobs", "status"]).output.replace(
        f"import {batch_id}", "import 1"
    )
    assert "Ran 1 job(s)." in worker.invoke(args=["jobs", "work"]).output
    assert "Jobs waiting or running: 0" in worker.invoke(args=["jobs", "status"]).output
    page = client.get(f"/staff/import/{batch_id}").get_data(as_text=True)
    assert "6 rows" in page and "Import 2 rows" in page
    assert '<meta http-equiv="refresh"' not in page

    post_form(client, f"/staff/import/{batch_id}", f"/staff/import/{batch_id}/apply")
    page = client.get(f"/staff/import/{batch_id}").get_data(as_text=True)
    assert "2 new and updated rows are waiting to be written." in page
    assert counts(queue_app) == (0, 0)

    assert "Ran 1 job(s)." in worker.invoke(args=["jobs", "work"]).output
    assert counts(queue_app) == (2, 2)
    page = client.get(f"/staff/import/{batch_id}").get_data(as_text=True)
    assert "2 new, 0 updated, 0 unchanged, 4 rejected." in page
    assert "imported" in client.get("/staff/").get_data(as_text=True)
    with queue_app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.apply")
        ).one()
    assert entry.actor_label == "queue@clinic-finder.example"


def test_checking_shows_its_progress_as_it_goes(queued_staff):
    queue_app, client = queued_staff
    upload(client, (LIST_HEADER + "".join(clinic_list(1_200, 9_200_000))).encode())
    batch_id = latest_batch_id(queue_app)
    seen = []
    with queue_app.app_context():
        claim = jobs.claim_next(db.session, lease_seconds=60)
        batch = db.session.get(ImportBatch, claim.batch_id)

        def checkpoint(done: int, total: int) -> None:
            db.session.commit()  # as the job does: the page reads what is committed
            seen.append(client.get(f"/staff/import/{batch_id}").get_data(as_text=True))

        plan_batch(db.session, batch, checkpoint=checkpoint)
        db.session.commit()
    assert len(seen) == 2
    assert "Checking the rows: 500 of 1200 done." in seen[0]
    assert '<progress max="1200" value="1000"' in seen[1]
    assert all('<meta http-equiv="refresh"' in page for page in seen)


def test_preview_of_a_large_file_is_paged_fifty_rows_at_a_time(app, staff_client):
    good = clinic_list(10, 9_300_000)
    bad = clinic_list(120, 9_400_000, postcode="0000")
    batch_id, first = upload_checked(staff_client, (LIST_HEADER + "".join(good + bad)).encode())

    table_rows = table_lines
    # The rejected rows first, in file order, 50 a page.
    assert table_rows(first) == [str(line) for line in range(12, 62)]
    assert "Page 1 of 3" in first
    last = staff_client.get(f"/staff/import/{batch_id}?page=3").get_data(as_text=True)
    assert table_rows(last) == [str(line) for line in range(112, 132)]
    every = staff_client.get(f"/staff/import/{batch_id}?show=all&page=3").get_data(as_text=True)
    assert table_rows(every) == [str(line) for line in range(102, 132)]
    new = staff_client.get(f"/staff/import/{batch_id}?show=new").get_data(as_text=True)
    assert table_rows(new) == [str(line) for line in range(2, 12)]
    assert "Page 1 of" not in new
    nonsense = staff_client.get(f"/staff/import/{batch_id}?show=nonsense").get_data(as_text=True)
    assert table_rows(nonsense) == table_rows(first)


def test_a_worker_presumed_dead_writes_nothing_and_another_takes_its_job_over(queued_staff):
    queue_app, client = queued_staff
    upload(client, NORWEGIAN_EXCEL)
    batch_id = latest_batch_id(queue_app)
    with queue_app.app_context():
        stalled = jobs.claim_next(db.session, lease_seconds=60)
        # Its lease runs out (the worker hangs, or died): the job is free again.
        db.session.execute(update(ImportBatch).values(lease_until=now_utc() - timedelta(seconds=1)))
        db.session.commit()
        taker = jobs.claim_next(db.session, lease_seconds=60)
        assert (taker.batch_id, stalled.batch_id) == (batch_id, batch_id)
        assert taker.token != stalled.token
        # The first worker wakes up and goes on: its commit finds the job taken.
        jobs.run_claim(db.session, stalled, geocoder=None, geocoding_budget=0, lease_seconds=60)
        assert db.session.scalar(select(func.count()).select_from(ImportRow)) == 0
        jobs.run_claim(db.session, taker, geocoder=None, geocoding_budget=0, lease_seconds=60)
        batch = db.session.get(ImportBatch, batch_id)
        assert (batch.status, batch.attempts, batch.summary["rejected"]) == (
            ImportStatus.PLANNED,
            2,
            4,
        )
        assert db.session.scalar(select(func.count()).select_from(ImportRow)) == 6


def test_an_import_taken_over_mid_apply_is_written_once(queued_staff):
    queue_app, client = queued_staff
    upload(client, NORWEGIAN_EXCEL)
    batch_id = latest_batch_id(queue_app)
    worker = queue_app.test_cli_runner()
    worker.invoke(args=["jobs", "work"])
    post_form(client, f"/staff/import/{batch_id}", f"/staff/import/{batch_id}/apply")
    with queue_app.app_context():
        stalled = jobs.claim_next(db.session, lease_seconds=60)
        db.session.execute(update(ImportBatch).values(lease_until=now_utc() - timedelta(seconds=1)))
        db.session.commit()
        taker = jobs.claim_next(db.session, lease_seconds=60)
        jobs.run_claim(db.session, taker, geocoder=None, geocoding_budget=0, lease_seconds=60)
        jobs.run_claim(db.session, stalled, geocoder=None, geocoding_budget=0, lease_seconds=60)
        assert db.session.get(ImportBatch, batch_id).status is ImportStatus.APPLIED
        applies = select(func.count()).where(AuditEntry.action == "import.apply")
        assert db.session.scalar(applies) == 1
    assert counts(queue_app) == (2, 2)


# --- the geocoder, once (item 10) ----------------------------------------------------------


def test_preview_reloads_never_ask_the_geocoder(geocoding_staff):
    server, geo_app, client = geocoding_staff
    server.fail("down")
    batch_id, preview = upload_checked(client, WITHOUT_COORDINATES)
    assert "postcode" in preview
    asked = len(server.requests)
    assert asked == geo_app.config["GEOCODER_RETRIES"] + 1
    for _ in range(3):
        assert client.get(f"/staff/import/{batch_id}").status_code == 200
    assert len(server.requests) == asked


@pytest.mark.geocoder_down_seconds(300)
def test_a_geocoder_found_down_is_left_alone_by_the_next_upload(geocoding_staff):
    server, geo_app, client = geocoding_staff
    server.fail("down")
    upload_checked(client, WITHOUT_COORDINATES)
    asked = len(server.requests)
    other = WITHOUT_COORDINATES.replace(b"Karl Johans gate 22", b"Karl Johans gate 24")
    _, preview = upload_checked(client, other)
    assert len(server.requests) == asked, "the outage is remembered across uploads"
    assert "postcode" in preview


def test_preview_warns_of_a_service_it_does_not_know_and_imports_the_rest(
    app, staff_client, session
):
    data = (
        "Klinikknavn;Adresse;Postnr;Behandler;Yrke;HPR-nummer;Tjenester\r\n"
        "Fjordklinikken;Strandgata 4;5003;Kari Nordmann;Fysioterapeut;9876543;"
        '"Tørrnåling;Graston;exercise therapy"\r\n'
    ).encode()
    batch_id, preview = upload_checked(staff_client, data)
    assert "1 new" in preview and "1 accepted row has a warning" in preview
    assert "Warning: “Tjenester”: left out" in preview and "&#39;Graston&#39;" in preview
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    practice = session.scalars(select(Practice)).one()
    assert practice.services == ["dry-needling", "exercise-therapy"]


# --- the round trip: rejected rows back in the file's own shape (issue 14) ---------------


def test_rejected_rows_come_back_in_utf8_with_a_bom_and_import_once_fixed(app, staff_client):
    data = (
        "\ufeff"
        + LIST_HEADER.replace("\r\n", ",Kommentar\r\n")
        + (
            "Fjordklinikken,Strandgata 4,5003,Kari Nordmann,physiotherapist,9700001,60.3950,5.3250,"
            "ok\r\n"
            "Fjordklinikken,Strandgata 4,0000,Øyvind Ås,physiotherapist,9700002,60.3950,5.3250,"
            "ring henne\r\n"
        )
    )
    batch_id, _ = upload_checked(staff_client, data.encode())
    response = staff_client.get(f"/staff/import/{batch_id}/rejected.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.get_data().startswith(codecs.BOM_UTF8)
    header, row = response.get_data().decode("utf-8-sig").splitlines()
    assert header == LIST_HEADER.strip() + ",Kommentar,Errors"
    assert row.startswith("Fjordklinikken,Strandgata 4,0000,Øyvind Ås,") and ",ring henne," in row

    fixed = response.get_data().replace(b",0000,", b",5003,")
    batch_id, preview = upload_checked(staff_client, fixed, "rejected.csv")
    assert "not part of the import format and were ignored: Kommentar." in preview  # not Errors
    with app.app_context():
        assert db.session.get(ImportBatch, batch_id).unknown_columns == ["Kommentar"]
    assert table_lines(preview) == ["2"]  # the line of the new file, not of the old
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    assert counts(app) == (1, 1)  # the fixed row (the first file was never imported)


def test_rejected_rows_of_excel_unicode_text_come_back_as_unicode_text(app, staff_client):
    text = NORWEGIAN_EXCEL.decode("cp1252").replace(";", "\t")
    batch_id, _ = upload_checked(staff_client, text.encode("utf-16"), "klinikker.txt")
    data = staff_client.get(f"/staff/import/{batch_id}/rejected.csv").get_data()
    assert data.startswith(codecs.BOM_UTF16_LE)
    header = data.decode("utf-16").split("\r\n", 1)[0]
    assert header.split("\t") == [*text.split("\r\n", 1)[0].split("\t"), "Errors"]


def test_rejected_rows_download_names_its_error_column_in_the_staff_members_language(
    app, staff_client
):
    batch_id, _ = upload_checked(staff_client, NORWEGIAN_EXCEL)
    data = staff_client.get(f"/staff/import/{batch_id}/rejected.csv?lang=nb").get_data()
    assert data.decode("cp1252").split("\r\n", 1)[0].endswith(";Notat;Feil")


def test_a_file_with_the_old_errors_column_gets_the_new_errors_in_it(app, staff_client):
    data = LIST_HEADER.replace("\r\n", ",Feil\r\n") + (
        "Fjordklinikken,Strandgata 4,0000,Kari Nordmann,physiotherapist,9700001,60.3950,5.3250,"
        "gammel feil\r\n"
    )
    batch_id, _ = upload_checked(staff_client, data.encode())
    text = staff_client.get(f"/staff/import/{batch_id}/rejected.csv").get_data().decode("utf-8")
    header, row = list(csv.reader(io.StringIO(text)))
    assert header == [*LIST_HEADER.strip().split(","), "Feil"]
    assert "0000" in row[-1] and "gammel feil" not in text


def test_preview_shows_what_an_updated_row_changes_and_the_button_after_the_rejected(
    app, staff_client
):
    row = "Fjordklinikken,Strandgata 4,5003,{name},physiotherapist,9700001,60.3950,5.3250\r\n"
    batch_id, _ = upload_checked(staff_client, (LIST_HEADER + row.format(name="Kari")).encode())
    apply_and_wait(staff_client, batch_id)
    rejected = "Fjordklinikken,Strandgata 4,0000,Ola,physiotherapist,9700002,60.3950,5.3250\r\n"
    data = LIST_HEADER + row.format(name="Kari Nordmann") + rejected
    batch_id, preview = upload_checked(staff_client, data.encode())
    # The rejected rows are listed first, and the button to import the rest comes after them.
    assert preview.index("not in the Norwegian postcode register") < preview.index("Import 1 row")
    assert "The 1 rejected row is left out." in preview
    updated = staff_client.get(f"/staff/import/{batch_id}?show=updated").get_data(as_text=True)
    assert "“clinician_name”: Kari → Kari Nordmann" in updated


def test_progress_counts_the_addresses_looked_up_as_it_goes(queued_staff, monkeypatch):
    queue_app, client = queued_staff
    # Stored after every address (not once a second), so that the test need not wait.
    monkeypatch.setattr(imports, "PLAN_LOOKUP_PROGRESS_SECONDS", 0)
    data = "clinic_name,address,postcode,clinician_name,profession,hpr_number\r\n" + "".join(
        f"Klinikk {n},Gata {n},0150,Behandler {n},physiotherapist,{9_710_000 + n}\r\n"
        for n in range(3)
    )
    upload(client, data.encode())
    batch_id = latest_batch_id(queue_app)
    seen = []
    with queue_app.app_context():
        claim = jobs.claim_next(db.session, lease_seconds=60)
        batch = db.session.get(ImportBatch, claim.batch_id)

        def checkpoint(done: int, total: int) -> None:
            db.session.commit()  # as the job does: the page reads what is committed
            progress = client.get(f"/staff/import/{batch_id}/progress")
            assert progress.headers["Cache-Control"] == "no-store"
            page = client.get(f"/staff/import/{batch_id}?lang=nb").get_data(as_text=True)
            seen.append((progress.get_json(), page))

        plan_batch(db.session, batch, locate=locate_at_postcode, checkpoint=checkpoint)
        db.session.commit()
    assert [(p["addresses_done"], p["addresses_total"], p["working"]) for p, _ in seen] == [
        (1, 3, True),
        (2, 3, True),
        (3, 3, True),
    ]
    assert "Looking up addresses: 1 of 3." in seen[0][0]["html"]
    assert "Slår opp adresser: 2 av 3." in seen[1][1]
    assert '<progress max="3" value="2"' in seen[1][1]
    # Without JavaScript the page reloads itself; with it, the script asks the endpoint.
    assert '<noscript><meta http-equiv="refresh"' in seen[1][1]
    assert "js/import-progress" in seen[1][1]
    done = client.get(f"/staff/import/{batch_id}/progress").get_json()
    assert (done["status"], done["working"]) == ("planned", False)


def test_partial_list_updates_its_columns_and_leaves_the_others_through_the_stored_plan(
    app, staff_client
):
    full = (
        "Klinikknavn;Adresse;Postnr;Telefon;E-post;Nettside;Timebestilling;Trinnfri inngang;"
        "Behandler;Yrke;HPR-nummer;Driftsavtale;Driftsavtale kommune;Tar imot nye;Språk;"
        "Behandlinger;Breddegrad;Lengdegrad\r\n"
        "Fjordklinikken;Strandgata 4;5003;55 12 34 56;post@fjord.example;https://fjord.example/;"
        "https://fjord.example/bestill;Ja;Kari Nordmann;Fysioterapeut;9876543;Ja;Askøy;Ja;nb;"
        "trening;60,3950;5,3250\r\n"
    )
    batch_id, _ = upload_checked(staff_client, full.encode("cp1252"))
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    phones = "Klinikknavn;Adresse;Postnr;Telefon;Behandler;Yrke;HPR-nummer\r\n"
    row = "Fjordklinikken;Strandgata 4;5003;{phone};Kari Nordmann;Fysioterapeut;9876543\r\n"

    batch_id, preview = upload_checked(
        staff_client, (phones + row.format(phone="22 33 44 55")).encode()
    )
    assert "1 updated" in preview
    # The preview says which columns the file leaves as they are.
    assert "Not in the file, so left as they are" in preview
    assert "org_number, city, email, website, helfo_agreement" in preview
    updated = staff_client.get(f"/staff/import/{batch_id}?show=updated").get_data(as_text=True)
    assert updated.count('class="row-change"') == 1
    assert "“Telefon”: +47 55 12 34 56 → +47 22 33 44 55" in updated
    assert apply_and_wait(staff_client, batch_id) is ImportStatus.APPLIED
    with app.app_context():
        practice = db.session.scalars(select(Practice)).one()
        clinic = practice.clinic
        assert clinic.phone == "+47 22 33 44 55"
        assert (clinic.email, clinic.website, clinic.booking_url, clinic.step_free_access) == (
            "post@fjord.example", "https://fjord.example/", "https://fjord.example/bestill", True
        )  # fmt: skip
        assert (practice.public_agreement, practice.agreement_municipality) == (True, "Askøy")
        assert (practice.accepts_new_patients, practice.services) == (True, ["exercise-therapy"])
        assert practice.clinician.languages == ["nb"]

    _, preview = upload_checked(staff_client, (phones + row.format(phone="22 33 44 55")).encode())
    assert "0 updated" in preview and "1 unchanged" in preview
