"""Load Norway's postcode register (Erik Bolstad's postnummer-koordinatar.tsv)."""

from __future__ import annotations

import csv
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import PostalCode
from .validation import check_in_norway

T = TypeVar("T")

POSTCODE_PATTERN = re.compile(r"^\d{4}$")
_RETIRED_SUFFIX = "(ikkje i bruk)"
# The register's BRUKSOMRÅDE values for postcodes of street addresses (the others are
# P.O. boxes, one firm's own postcode, service codes, historic or uncertain ones).
STREET_ADDRESS_USAGES = frozenset(
    {"Gate-/veg-adresse", "Gateadresser og postboksar", "Fleire bruksområde"}
)

# The register's BRUKSOMRÅDE for postcodes of P.O. boxes and nothing else ("0123 Oslo"):
# a letter reaches a clinic there, a patient does not.
PO_BOXES_ONLY_USAGE = "Postboksar"


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
            retired = place.casefold().endswith(_RETIRED_SUFFIX)
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
                    "usage": (row.get("BRUKSOMRÅDE") or "").strip() or None,
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
    if has_app_context():
        postcode_cache().forget()
    return report


@dataclass(frozen=True)
class PostcodePlace:
    """A postcode from the register, as the finder needs it; plain data, safe to share."""

    postcode: str
    place: str
    municipality: str
    county: str
    latitude: float
    longitude: float
    in_use: bool
    usage: str | None = None

    @property
    def for_street_addresses(self) -> bool:
        """Whether people live or work at this postcode (not only P.O. boxes or one firm).

        Unknown usage (a register loaded before usage was kept) counts as yes.
        """
        return self.usage is None or self.usage in STREET_ADDRESS_USAGES


def postal_for_po_boxes_only(postal: PostalCode | PostcodePlace) -> bool:
    """Whether the register gives this postcode to P.O. boxes only (no street is in it).

    Unknown usage (a register loaded before usage was kept) counts as no.
    """
    return postal.usage == PO_BOXES_ONLY_USAGE


def po_box_postcode_message(postcode: str) -> str:
    """Why a P.O.-box postcode cannot be a clinic's: the words of the import and the form."""
    return _(
        "%(postcode)s is a postcode for P.O. boxes only; give the postcode of the visiting address",
        postcode=postcode,
    )


class PostcodeRegisterCache:
    """The whole register in this process's memory: every search starts with a lookup.

    5,785 small entries (about 2 MB) are read in one query and kept for ``max_age``
    seconds. The register changes a few times a year, through ``flask postcodes load``;
    this process forgets its copy at once when it loads, others within ``max_age``.
    Only a cache: nothing here has to agree between workers.
    """

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._places: dict[str, PostcodePlace] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()
        # Things computed from the register (the place-name index), dropped on reload.
        self._derived: dict[str, object] = {}

    def derived(self, session: Session, key: str, build: Callable[[list[PostcodePlace]], T]) -> T:
        """Something computed from the whole register, kept until the register is reloaded."""
        self.get(session, "")  # loads the register if it is missing or old
        derived = self._derived
        if key not in derived:
            derived[key] = build(list(self._places.values()))
        return derived[key]  # type: ignore[return-value]

    def forget(self) -> None:
        with self._lock:
            self._loaded_at = None

    def places(self) -> list[PostcodePlace]:
        """Every postcode loaded so far (call get() first to load the register)."""
        return list(self._places.values())

    def get(self, session: Session, code: str) -> PostcodePlace | None:
        loaded_at = self._loaded_at
        if loaded_at is None or time.monotonic() - loaded_at > self.max_age:
            self._reload(session)
        return self._places.get(code)

    def _reload(self, session: Session) -> None:
        places = read_register(session)
        with self._lock:
            # Swapped whole: a reader in another thread sees the old dict or the new one.
            self._places = places
            self._derived = {}
            self._loaded_at = time.monotonic()


def read_register(session: Session) -> dict[str, PostcodePlace]:
    """The whole postcode register as plain places, by postcode (one query, no models)."""
    columns = (
        PostalCode.postcode,
        PostalCode.place,
        PostalCode.municipality,
        PostalCode.county,
        PostalCode.latitude,
        PostalCode.longitude,
        PostalCode.in_use,
        PostalCode.usage,
    )
    return {row.postcode: PostcodePlace(*row) for row in session.execute(select(*columns))}


def postcode_cache() -> PostcodeRegisterCache:
    """This app's register cache (made on first use)."""
    extensions = current_app.extensions
    cache = extensions.get("postcode_register")
    if cache is None:
        cache = extensions["postcode_register"] = PostcodeRegisterCache(
            current_app.config["POSTCODE_CACHE_SECONDS"]
        )
    return cache


def lookup_postcode(session: Session, code: str) -> PostcodePlace | None:
    """A postcode from the register, from this process's cache; None when there is none."""
    return postcode_cache().get(session, code)


def nearest_postcode(session: Session, latitude: float, longitude: float) -> PostcodePlace | None:
    """The postcode in use whose centre is nearest a point ("use my location")."""
    from .search import distance_km

    cache = postcode_cache()
    cache.get(session, "")  # loads the register if this process has not yet
    point = (latitude, longitude)
    places = [place for place in cache.places() if place.in_use]
    if not places:
        return None
    return min(places, key=lambda place: distance_km(point, (place.latitude, place.longitude)))
