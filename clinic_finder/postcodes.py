"""Load Norway's postcode register (Erik Bolstad's postnummer-koordinatar.tsv)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import PostalCode
from .validation import check_in_norway

POSTCODE_PATTERN = re.compile(r"^\d{4}$")
_RETIRED_SUFFIX = "(ikkje i bruk)"


class PostcodeFileError(ValueError):
    """The register file is not in the expected shape."""


@dataclass
class PostcodeLoadReport:
    """What loading the register did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def read_postcode_register(path: Path) -> list[dict[str, object]]:
    """Read the register into plain dicts with our column names.

    A postcode whose place name ends in "(ikkje i bruk)" is retired: it stays in the
    table (people still type old codes) but is marked not in use.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        required = {"POSTNR", "POSTSTAD", "KOMMNR", "KOMMUNE", "FYLKE", "LAT", "LON"}
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise PostcodeFileError(f"{path}: missing columns {', '.join(sorted(missing))}")
        entries = []
        for row in reader:
            code = (row["POSTNR"] or "").strip()
            if not POSTCODE_PATTERN.match(code) or not row["LAT"] or not row["LON"]:
                raise PostcodeFileError(f"{path}, line {reader.line_num}: bad postcode row")
            place = (row["POSTSTAD"] or "").strip()
            retired = place.endswith(_RETIRED_SUFFIX)
            if retired:
                place = place[: -len(_RETIRED_SUFFIX)].strip()
            entries.append(
                {
                    "postcode": code,
                    "place": place,
                    "municipality": (row["KOMMUNE"] or "").strip(),
                    "municipality_number": (row["KOMMNR"] or "").strip().zfill(4) or None,
                    "county": (row["FYLKE"] or "").strip(),
                    "latitude": float(row["LAT"]),
                    "longitude": float(row["LON"]),
                    "in_use": not retired,
                }
            )
    return _place_strays_in_their_municipality(entries)


def _outside_norway(entry: dict[str, object]) -> bool:
    try:
        check_in_norway(float(entry["latitude"]), float(entry["longitude"]))  # type: ignore[arg-type]
    except ValueError:
        return True
    return False


def _place_strays_in_their_municipality(
    entries: list[dict[str, object]],
) -> list[dict[str, object]]:
    """Move postcodes whose coordinates lie outside Norway to their municipality's centre.

    The register marks such points as uncertain (9523 Kautokeino sits at longitude 84,
    in Siberia); a patient typing that postcode must still get clinics near home.
    """
    by_municipality: dict[object, list[dict[str, object]]] = {}
    for entry in entries:
        if not _outside_norway(entry):
            by_municipality.setdefault(entry["municipality_number"], []).append(entry)
    for entry in entries:
        neighbours = by_municipality.get(entry["municipality_number"])
        if _outside_norway(entry) and neighbours:
            entry["latitude"] = round(
                sum(float(n["latitude"]) for n in neighbours) / len(neighbours),
                5,  # type: ignore[arg-type]
            )
            entry["longitude"] = round(
                sum(float(n["longitude"]) for n in neighbours) / len(neighbours),
                5,  # type: ignore[arg-type]
            )
    return entries


def load_postcodes(session: Session, path: Path) -> PostcodeLoadReport:
    """Insert or update every postcode in the register file; the caller commits."""
    report = PostcodeLoadReport()
    existing = {pc.postcode: pc for pc in session.scalars(select(PostalCode))}
    for entry in read_postcode_register(path):
        current = existing.get(entry["postcode"])  # type: ignore[arg-type]
        if current is None:
            session.add(PostalCode(**entry))
            report.created += 1
            continue
        changed = False
        for field, value in entry.items():
            if getattr(current, field) != value:
                setattr(current, field, value)
                changed = True
        if changed:
            report.updated += 1
        else:
            report.unchanged += 1
    return report
