"""The import round trip in a real browser, as a receptionist does it with Norwegian Excel:
upload a file, download its rejected rows, fix one in the spreadsheet, upload it again."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from clinic_finder.extensions import db
from clinic_finder.models import Clinician

from .conftest import make_staff, sign_in_in_browser
from .helpers import table_lines

pytestmark = pytest.mark.browser

# Norwegian Excel's "CSV (semikolonseparert)": Windows-1252, semicolons, Norwegian headers,
# decimal commas, and a column of the staff's own. Line 3 is at a P.O.-box postcode (typed
# 123 by Excel, for 0123), line 4 lacks its HPR number.
HEADER = "Klinikknavn;Adresse;Postnr;Behandler;Yrke;HPR-nummer;Breddegrad;Lengdegrad;Kommentar"
UPLOAD = (
    f"{HEADER}\r\n"
    "Fjordklinikken;Strandgata 4;5003;Kari Nordmann;Fysioterapeut;9876543;60,3950;5,3250;"
    "ny i år\r\n"
    "Østbanen Fysio;Jernbanetorget 1;123;Åse Berg;Fysioterapeut;9876545;;;sjekk adressen\r\n"
    "Nordlys Helse;Storgata 1;9008;Øyvind Ås;Kiropraktor;;69,6490;18,9560;mangler HPR\r\n"
).encode("cp1252")


def test_rejected_rows_go_back_to_excel_and_come_back_fixed(
    sqlite_only, app, live_server, page, tmp_path
):
    make_staff(app)
    upload = tmp_path / "klinikker.csv"
    upload.write_bytes(UPLOAD)
    sign_in_in_browser(page, app, f"{live_server}/staff/import?lang=nb")

    page.get_by_label("Klinikkliste (CSV)").set_input_files(str(upload))
    page.get_by_role("button", name="Forhåndsvis").click()
    page.get_by_role("button", name="Importer 1 rad").wait_for(timeout=20_000)
    main = page.locator("main").inner_text()
    assert "«HPR-nummer» mangler" in main
    assert "«Postnr»: 0123 er et postnummer bare for postbokser" in main

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Last ned de avviste radene").click()
    data = download_info.value.path().read_bytes()
    text = data.decode("cp1252")  # Windows-1252 as uploaded: not UTF-8, no BOM
    assert not data.startswith(b"\xef\xbb\xbf") and "Åse Berg".encode("cp1252") in data
    header, first, second = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert header == [*HEADER.split(";"), "Feil"]
    assert first[:6] == ["Østbanen Fysio", "Jernbanetorget 1", "123", "Åse Berg"] + [
        "Fysioterapeut",
        "9876545",
    ]
    assert first[8] == "sjekk adressen" and "postbokser" in first[9]
    assert second[3] == "Øyvind Ås" and "«HPR-nummer» mangler" in second[9]

    # The receptionist gives Øyvind his HPR number in Excel and saves the file as it was.
    fixed = tmp_path / "avviste.csv"
    fixed.write_bytes(text.replace("Kiropraktor;;", "Kiropraktor;9876546;").encode("cp1252"))
    page.goto(f"{live_server}/staff/import")
    page.get_by_label("Klinikkliste (CSV)").set_input_files(str(fixed))
    page.get_by_role("button", name="Forhåndsvis").click()
    page.get_by_role("button", name="Importer 1 rad").wait_for(timeout=20_000)
    main = page.locator("main").inner_text()
    # Kommentar is reported as ignored, as before; the error column is left out silently.
    ignored = page.locator("p.notice", has_text="ble ignorert").inner_text()
    assert ignored.endswith("ble ignorert: Kommentar.")
    # Line numbers are the new file's: Åse is on line 2 of it, and still refused.
    assert table_lines(page.content()) == ["2"]
    page.get_by_role("button", name="Importer 1 rad").click()
    page.get_by_text("Importert ").wait_for(timeout=20_000)
    with app.app_context():
        assert (
            db.session.scalar(select(Clinician.name).where(Clinician.hpr_number == "9876546"))
            == "Øyvind Ås"
        )
