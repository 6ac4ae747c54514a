"""Loading Norway's postcode register from data/."""

from __future__ import annotations

import csv

from sqlalchemy import func, select

from clinic_finder.models import PostalCode
from clinic_finder.postcodes import load_postcodes, read_postcode_register

from .conftest import POSTCODE_FILE


def _rows_in_file() -> int:
    with POSTCODE_FILE.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle, delimiter="\t"))


def test_register_loads_every_row(session):
    count = session.scalar(select(func.count()).select_from(PostalCode))
    assert count == _rows_in_file() > 5700


def test_postcode_keeps_its_leading_zero(session):
    oslo = session.get(PostalCode, "0150")
    assert oslo is not None
    assert oslo.place == "Oslo"
    assert oslo.county == "Oslo"
    assert 59.8 < oslo.latitude < 60.0 and 10.6 < oslo.longitude < 10.9


def test_retired_postcode_is_kept_but_not_in_use(session):
    retired = session.get(PostalCode, "0009")
    assert retired is not None
    assert retired.in_use is False
    assert "ikkje i bruk" not in retired.place


def test_retired_postcode_is_recognised_whatever_the_case_of_its_mark(session):
    # The register writes a few as "(Ikkje i bruk)"; they are no place to search from.
    retired = session.get(PostalCode, "0022")
    assert retired.in_use is False and retired.place == "Oslo"


def test_each_postcode_keeps_what_it_is_used_for(session):
    assert session.get(PostalCode, "3800").usage == "Gate-/veg-adresse"
    assert session.get(PostalCode, "3833").usage == "Postboksar"


def test_svalbard_and_finnmark_are_in_the_register(session):
    assert session.get(PostalCode, "9171").county == "Svalbard"
    assert session.get(PostalCode, "9990").municipality == "Båtsfjord"


def test_loading_again_changes_nothing(session):
    report = load_postcodes(session, POSTCODE_FILE)
    assert report.created == 0 and report.updated == 0
    assert report.unchanged == _rows_in_file()


def test_reader_gives_municipality_number_four_digits():
    entries = {entry["postcode"]: entry for entry in read_postcode_register(POSTCODE_FILE)}
    assert entries["0150"]["municipality_number"] == "0301"


def test_postcode_placed_outside_norway_is_moved_to_its_municipality(session):
    # The register puts 9523 Kautokeino at longitude 84 (Siberia); its neighbours are at 23.
    kautokeino = session.get(PostalCode, "9523")
    assert 68.5 < kautokeino.latitude < 69.5
    assert 22.5 < kautokeino.longitude < 24.5


def test_every_postcode_lies_in_norway(session):
    for postal in session.scalars(select(PostalCode)):
        assert 57 <= postal.latitude <= 81.5 and -9.5 <= postal.longitude <= 35, postal.postcode
