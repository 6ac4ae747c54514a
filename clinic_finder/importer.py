"""Read, validate, classify and apply a clinic list — one path for the CLI and the web upload.

The file has one row per clinician at a clinic (a practice); clinic details repeat on each
row of the same clinic, and the first row of a clinic gives them. Importing works in two
steps so that nothing is written before it has all been checked: :func:`plan_rows` (or
:func:`plan_import`, the whole file at once) classifies every row as new, updated,
unchanged or rejected (with the line number and reason; an accepted row may carry
warnings), and :func:`apply_import` writes the accepted rows. The caller owns the transaction, so a
failure part-way leaves nothing behind. ``imports.py`` stores the plan and runs the two
steps for the web upload and the command line alike.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import functools
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from geopy.distance import great_circle
from sqlalchemy import Insert, delete, insert, select, text, update
from sqlalchemy.orm import Session

from .audit import apply_changes, record
from .hours import Stretch, format_week, parse_week
from .i18n import LOCATION_SOURCE_NAMES
from .import_format import (
    COLUMNS,
    ERRORS_COLUMN_NAMES,
    HEADER_ALIASES,
    REQUIRED_COLUMNS,
    ServiceCell,
    column_label,
    kept_columns,
    kept_fields,
    one_line,
    parse_postcode,
)
from .models import (
    PROFESSION_TERMS,
    Clinic,
    Clinician,
    ImportBatch,
    LocationSource,
    OpeningHours,
    PostalCode,
    Practice,
    Profession,
    RowStatus,
    StaffUser,
    now_utc,
)
from .postcodes import (
    PostcodePlace,
    po_box_postcode_message,
    postal_for_po_boxes_only,
    read_register,
)
from .services import current_vocabulary
from .spreadsheet_cells import restore_cell
from .textguard import without_bidi_controls
from .validation import (
    MAX_KM_FROM_POSTCODE,
    check_in_norway,
    clean_hpr_number,
    public_agreement_errors,
    split_list,
)

__all__ = ["RowStatus"]  # defined with the tables it is stored in; most callers import it here

# (latitude, longitude, how they were found)
Location = tuple[float, float, LocationSource]
# A postcode of the register: a table row, or the plain copy a plan holds.
Postcode = PostalCode | PostcodePlace
# Finds a location for (street address, postcode, city); must not raise.
Locate = Callable[[str, Postcode, str], Location]


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, or a required column missing)."""


@dataclass(frozen=True)
class ClinicRecord:
    """Validated clinic details from one row."""

    name: str
    org_number: str | None
    address: str
    postcode: str
    city: str
    phone: str | None
    email: str | None
    website: str | None
    booking_url: str | None
    step_free_access: bool | None
    accessible_toilet: bool | None
    parking: bool | None
    latitude: float
    longitude: float
    location_source: LocationSource
    # The week as import_format.parse_opening_hours writes it; "" when the row gives none
    # (the clinic's hours then stay as they are). Not a column: apply_import writes it.
    opening_hours: str = ""
    # The fields the file has no column for: an existing clinic keeps its own
    # (import_format.kept_fields); a new one gets the values above.
    kept: frozenset[str] = frozenset()

    @functools.cached_property
    def key(self) -> tuple[str, ...]:
        """Identify the clinic by normalised name, address and postcode.

        Not by org number: chains run several clinics under one, and a clinic that gains
        one in a later file must still be the same clinic.
        """
        return clinic_key(self.name, self.address, self.postcode)

    def fields(self) -> dict[str, Any]:
        """The values as the model's fields (a new clinic's)."""
        return {name: getattr(self, name) for name in _CLINIC_FIELDS}

    def given(self) -> dict[str, Any]:
        """The values the file gives, as the model's fields (what an update writes)."""
        return _given(self.fields(), self.kept)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values, to store with a planned row."""
        return {
            **self.fields(),
            "location_source": self.location_source.value,
            "opening_hours": self.opening_hours,
            "kept": sorted(self.kept),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClinicRecord:
        """The record stored by :meth:`to_json`."""
        return cls(
            **{
                **data,
                "location_source": LocationSource(data["location_source"]),
                "kept": frozenset(data.get("kept", ())),
            }
        )


@dataclass(frozen=True)
class ClinicianRecord:
    """Validated details of the person from one row (the same on each of their rows)."""

    name: str
    hpr_number: str
    languages: tuple[str, ...]
    # The fields the file has no column for (as ClinicRecord.kept).
    kept: frozenset[str] = frozenset()

    def fields(self) -> dict[str, Any]:
        """The values as the model's fields (a new clinician's)."""
        return {"name": self.name, "hpr_number": self.hpr_number, "languages": list(self.languages)}

    def given(self) -> dict[str, Any]:
        """The values the file gives, as the model's fields (what an update writes)."""
        return _given(self.fields(), self.kept)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values, to store with a planned row."""
        return {**self.fields(), "kept": sorted(self.kept)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClinicianRecord:
        """The record stored by :meth:`to_json`."""
        return cls(
            name=data["name"],
            hpr_number=data["hpr_number"],
            languages=tuple(data["languages"]),
            kept=frozenset(data.get("kept", ())),
        )


@dataclass(frozen=True)
class PracticeRecord:
    """Validated details of the clinician's work at the row's clinic."""

    profession: Profession
    services: tuple[str, ...]
    public_agreement: bool
    # With an agreement and none given, the plan fills it in (_Plan.as_in_directory).
    agreement_municipality: str | None
    accepts_new_patients: bool | None
    # The fields the file has no column for (as ClinicRecord.kept). A kept agreement is
    # the directory's (the plan reads it, _Plan.as_in_directory), for the rules on it.
    kept: frozenset[str] = frozenset()

    def fields(self) -> dict[str, Any]:
        """The values as the model's fields (a new practice's)."""
        return {
            "profession": self.profession,
            "services": list(self.services),
            "public_agreement": self.public_agreement,
            "agreement_municipality": self.agreement_municipality,
            "accepts_new_patients": self.accepts_new_patients,
        }

    def given(self) -> dict[str, Any]:
        """The values the file gives, as the model's fields (what an update writes)."""
        return _given(self.fields(), self.kept)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values, to store with a planned row."""
        return {**self.fields(), "profession": self.profession.value, "kept": sorted(self.kept)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PracticeRecord:
        """The record stored by :meth:`to_json`."""
        return cls(
            **{
                **data,
                "profession": Profession(data["profession"]),
                "services": tuple(data["services"]),
                "kept": frozenset(data.get("kept", ())),
            }
        )


# ClinicRecord's fields that are the clinic's columns (its hours are rows of their own).
_CLINIC_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(ClinicRecord)
    if field.name not in ("opening_hours", "kept")
)


def _given(fields: dict[str, Any], kept: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name not in kept}


@dataclass(frozen=True)
class RowRecords:
    """What an accepted row says: the clinic, the clinician, and their practice there, and
    what of it is not imported as written (services the vocabulary does not know)."""

    clinic: ClinicRecord
    clinician: ClinicianRecord
    practice: PracticeRecord
    warnings: tuple[str, ...] = ()


@dataclass
class RowResult:
    """One input row: where it was, what it said, and what importing it does.

    ``warnings`` say what of an accepted row is not imported as written: a clinic detail
    that differs from an earlier row of the same clinic (the earlier row's value is kept),
    or a service the vocabulary does not know (left out).
    """

    line: int
    raw: dict[str, str]
    status: RowStatus = RowStatus.REJECTED
    errors: list[str] = field(default_factory=list)
    clinic: ClinicRecord | None = None
    clinician: ClinicianRecord | None = None
    practice: PracticeRecord | None = None
    warnings: list[str] = field(default_factory=list)
    # What an updated row changes: (the file's name of the column, value now, value after).
    changes: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class AddressProgress:
    """How far a plan is with the addresses it looks up, for a progress figure.

    ``total`` is the file's addresses a look-up may be needed for (rows without
    coordinates, at clinics the directory does not have yet); ``done`` counts those whose
    rows have been planned (looked up, found in the cache, or rejected without a look-up).
    """

    total: int = 0
    done: int = 0


@dataclass
class ImportReport:
    """Every row of a file, classified, plus what was wrong with the file's header."""

    rows: list[RowResult] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)

    def count(self, status: RowStatus) -> int:
        return sum(1 for row in self.rows if row.status is status)

    @property
    def counts(self) -> dict[str, int]:
        return {status.value: self.count(status) for status in RowStatus}

    @property
    def rejected(self) -> list[RowResult]:
        return [row for row in self.rows if row.status is RowStatus.REJECTED]

    @property
    def accepted(self) -> list[RowResult]:
        return [row for row in self.rows if row.status is not RowStatus.REJECTED]

    @property
    def with_warnings(self) -> list[RowResult]:
        return [row for row in self.rows if row.warnings]


def normalise_key(text: str) -> str:
    """Fold case and spacing so "Storgata 1 " and "storgata  1" are the same address."""
    return " ".join(text.casefold().split())


# A well-formed UTF-8 sequence of two to four bytes (RFC 3629, no surrogates, no overlong
# forms). Windows-1252 text almost never holds one; UTF-8 text with æ, ø or å always does.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _line_of(data: bytes, offset: int) -> int:
    """The line (from 1) of a byte offset into a file with LF or CRLF line ends."""
    return data.count(b"\n", 0, offset) + 1


def decode_upload(data: bytes) -> str:
    """Decode a spreadsheet export (see :func:`decode_upload_as`)."""
    return decode_upload_as(data)[0]


def decode_upload_as(data: bytes) -> tuple[str, str]:
    """Decode a spreadsheet export: UTF-16 with a BOM, UTF-8 (BOM or not), else Windows-1252.

    Returns the text and the encoding it was in, as Python names it (``utf-16``,
    ``utf-8-sig`` for UTF-8 with a BOM, ``utf-8``, ``cp1252``), so that the rejected rows
    can go back to the spreadsheet in the same encoding.

    Excel's "Unicode text" is UTF-16 with a byte-order mark (and tabs between cells);
    its "CSV" is Windows-1252, and "CSV UTF-8" UTF-8. A file that is UTF-8 but for some
    bytes (a line pasted from another file) is refused, naming the first such line:
    read as Windows-1252, every æ, ø and å of the rest would turn into two letters. Only
    a file without a single UTF-8 sequence of several bytes is read as Windows-1252.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            decoded = data.decode("utf-16")  # the BOM says which byte order
        except UnicodeDecodeError as error:
            line = data[: error.start].decode("utf-16", errors="replace").count("\n") + 1
            raise ImportFileError(
                _(
                    "Line %(line)s is not valid UTF-16, though the file starts as UTF-16. "
                    "Save it again from the spreadsheet.",
                    line=line,
                )
            ) from error
        if "\x00" in decoded:
            raise ImportFileError(_("This is not a text file (it contains NUL bytes)."))
        return decoded, "utf-16"
    if b"\x00" in data:
        raise ImportFileError(_("This is not a text file (it contains NUL bytes)."))
    body = data.removeprefix(codecs.BOM_UTF8)
    encoding = "utf-8-sig" if len(body) < len(data) else "utf-8"
    try:
        return body.decode("utf-8"), encoding
    except UnicodeDecodeError as error:
        if _UTF8_MULTIBYTE.search(body):
            raise ImportFileError(
                _(
                    "Line %(line)s is not UTF-8, though other lines are: the file mixes two "
                    "character encodings, so its letters cannot be read for certain. Save "
                    "it again as UTF-8 (Excel: “CSV UTF-8”) or all of it as "
                    "Windows-1252 (“CSV”).",
                    line=_line_of(body, error.start),
                )
            ) from error
    return data.decode("cp1252", errors="replace"), "cp1252"


# Cell separators a header row is sniffed for; on a tie the first wins.
DELIMITERS = (",", ";", "\t")


@dataclass
class ClinicList:
    """A clinic list as read: its rows by canonical column name, and what its header said."""

    # (line of the file where the row starts, canonical column name → cell), blank rows
    # left out.
    rows: list[tuple[int, dict[str, str]]]
    # Header names the import format does not know (reported, not fatal).
    unknown_columns: list[str]
    # The file's own name for each column of the format it has ("hpr_number" →
    # "HPR-nummer"): what the row reports call the columns.
    names: dict[str, str]


def read_sheet(text: str) -> tuple[str, list[str], Iterator[tuple[int, list[str]]]]:
    """Split CSV text into its cell separator, its header row and its other rows.

    The separator is whichever of comma, semicolon and tab the header row holds most of:
    Norwegian Excel writes semicolons (the comma is the decimal mark), and tabs in its
    "Unicode text". The rows come as (line of the file where the row starts, cells),
    blank rows left out, as they are read.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not text.strip("\ufeff \t\r\n") or not lines:
        raise ImportFileError(_("The file is empty."))
    delimiter = max(DELIMITERS, key=lines[0].count)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as error:
        raise ImportFileError(
            _("The header row cannot be read: %(error)s", error=str(error))
        ) from error

    def records() -> Iterator[tuple[int, list[str]]]:
        line = reader.line_num + 1
        try:
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    yield line, cells
                line = reader.line_num + 1
        except csv.Error as error:
            raise ImportFileError(
                _("Line %(line)s: %(error)s", line=reader.line_num, error=str(error))
            ) from error

    return delimiter, header, records()


def read_rows(text: str) -> ClinicList:
    """Read CSV text as a clinic list: each row's cells by canonical column name.

    Header names are matched in any case and spacing, in English or Norwegian
    (import_format.COLUMNS). Our rejected-rows download's error column ("Feil",
    "Errors") is left out without a word: that file is meant to come back.
    """
    _delimiter, header, records = read_sheet(text)
    columns: list[str | None] = []
    unknown: list[str] = []
    names: dict[str, str] = {}
    for name in header:
        folded = normalise_key(name)
        canonical = HEADER_ALIASES.get(folded)
        columns.append(canonical)
        if canonical is not None:
            names.setdefault(canonical, " ".join(name.split()))
        elif name.strip() and folded not in ERRORS_COLUMN_NAMES:
            unknown.append(name.strip())
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            _(
                "Required column(s) missing: %(columns)s. The first row must name the "
                "columns; see the import format in the staff guide (/staff/help#import-format).",
                columns=", ".join(missing),
            )
        )
    rows = [
        (
            line,
            {
                column: value.strip()
                for column, value in zip(columns, cells, strict=False)
                if column is not None
            },
        )
        for line, cells in records
    ]
    return ClinicList(rows, unknown, names)


def columns_left_as_they_are(text: str) -> list[str]:
    """The columns a clinic list does not have, whose fields it leaves as they are on what
    it updates (import_format.kept_columns), from its header row alone."""
    _delimiter, header, _records = read_sheet(text)
    present = {HEADER_ALIASES.get(normalise_key(name)) for name in header}
    return [column.name for column in kept_columns(present)]


def cell_value(raw: dict[str, str], column: str) -> str:
    """A row's cell, trimmed, without the guard our export puts before formula characters."""
    text = raw.get(column)
    if not text:
        return ""
    # Our export writes "'=…" (in any part of a cell) so spreadsheets don't run it; take
    # such a value back as it was (a cell without a ' has nothing to take back, and most
    # have none: a 10,000-row file has 200,000 cells). Bidi controls are never stored
    # (models.py), so they are not read either: a file that has them compares equal to
    # what it stored.
    text = text.strip()
    if "'" in text:
        text = restore_cell(text)
    return without_bidi_controls(text)


def locate_at_postcode(address: str, postal: Postcode, city: str) -> Location:
    """Place an address at its postcode's centre: the fallback when nothing better is known."""
    return postal.latitude, postal.longitude, LocationSource.POSTCODE


def _read_cells(
    raw: dict[str, str], names: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Every column's value from a row, by the column table, and what is wrong with them
    (naming the columns as the file does, ``names``)."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for column in COLUMNS:
        cell = cell_value(raw, column.name)
        label = column_label(names, column.name)
        if not cell:
            if column.required:
                errors.append(_("%(column)s is missing", column=label))
            values[column.name] = column.empty
            continue
        if column.max_length is not None and len(cell) > column.max_length:
            errors.append(
                _(
                    "%(column)s is longer than %(longest)s characters",
                    column=label,
                    longest=column.max_length,
                )
            )
            continue
        try:
            values[column.name] = column.parse(cell)
        except ValueError as error:
            errors.append(_("%(column)s: %(error)s", column=label, error=str(error)))
    return values, errors


def _place(
    values: dict[str, Any], postcodes: Mapping[str, Postcode], names: dict[str, str] | None = None
) -> tuple[Postcode | None, list[str]]:
    """The row's postcode from the register, with its coordinates checked against it.

    A postcode the register gives to P.O. boxes only is no clinic's visiting address.
    """
    errors: list[str] = []
    postal = postcodes.get(values.get("postcode") or "")
    if values.get("postcode") and postal is None:
        errors.append(
            _(
                "postcode %(postcode)s is not in the Norwegian postcode register",
                postcode=repr(values["postcode"]),
            )
        )
    elif postal is not None and postal_for_po_boxes_only(postal):
        errors.append(
            _(
                "%(column)s: %(message)s",
                column=column_label(names, "postcode"),
                message=po_box_postcode_message(postal.postcode),
            )
        )
    latitude, longitude = values.get("latitude"), values.get("longitude")
    if (latitude is None) != (longitude is None):
        if "latitude" in values and "longitude" in values:  # both read (or empty)
            errors.append(
                _(
                    "give both %(latitude)s and %(longitude)s, or neither",
                    latitude=column_label(names, "latitude"),
                    longitude=column_label(names, "longitude"),
                )
            )
        return postal, errors
    if latitude is None:
        return postal, errors
    try:
        check_in_norway(latitude, longitude)
    except ValueError as error:
        return postal, [*errors, str(error)]
    if postal is not None:
        km = great_circle((latitude, longitude), (postal.latitude, postal.longitude)).km
        if km > MAX_KM_FROM_POSTCODE:
            errors.append(
                _(
                    "coordinates are %(km)s km from postcode %(postcode)s "
                    "(more than %(limit)s km): check them",
                    km=f"{km:.0f}",
                    postcode=postal.postcode,
                    limit=f"{MAX_KM_FROM_POSTCODE:.0f}",
                )
            )
    return postal, errors


def _kept_of(kept: frozenset[tuple[str, str]], record: str) -> frozenset[str]:
    return frozenset(name for holder, name in kept if holder == record)


def _targets(values: dict[str, Any], record: str) -> dict[str, Any]:
    return {
        column.target[1]: values[column.name]
        for column in COLUMNS
        if column.target is not None and column.target[0] == record
    }


def _practice_errors(values: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    """What is wrong with the row's public agreement, by Norwegian rules (the forms' rule,
    validation.public_agreement_errors, in the words of the file's columns)."""
    if "helfo_agreement" not in values:  # unreadable: its own error says so
        return []
    problems = public_agreement_errors(
        values.get("profession"), values["helfo_agreement"], values.get("municipality_agreement")
    )
    agreement = column_label(names, "helfo_agreement")
    messages = {
        # Their patients pay in full: showing one with an agreement is a wrong price.
        "public_agreement": lambda: _(
            "Chiropractors have no public agreement (driftsavtale) in Norway: their "
            "patients pay in full. Write no in %(agreement)s for a chiropractor.",
            agreement=agreement,
        ),
        "agreement_municipality": lambda: _(
            "%(municipality)s is given but %(agreement)s is not yes: a "
            "municipality goes only with a public agreement",
            municipality=column_label(names, "municipality_agreement"),
            agreement=agreement,
        ),
    }
    return [messages[field]() for field in problems]


def validate_row(
    raw: dict[str, str],
    postcodes: Mapping[str, Postcode],
    locate: Locate = locate_at_postcode,
    names: dict[str, str] | None = None,
) -> tuple[RowRecords | None, list[str]]:
    """Check one row; return its records, or the reasons it cannot be imported.

    Each cell is read by its column (import_format.COLUMNS); the postcode must be in the
    register and the coordinates near it; a chiropractor has no public agreement, and a
    municipality comes only with one. A row without coordinates is placed by ``locate``
    (a geocoder, or the postcode centre). The reasons name the columns as ``names`` (the
    file's header) does.
    """
    values, errors = _read_cells(raw, names)
    postal, place_errors = _place(values, postcodes, names)
    kept = kept_fields(names)
    errors += place_errors
    if ("practice", "public_agreement") not in kept:
        # Without the agreement's column, the plan checks the directory's agreement.
        errors += _practice_errors(values, names)
    if errors:
        return None, errors
    assert postal is not None
    services: ServiceCell = values["services"]
    values["services"] = services.keys
    clinic_values = _targets(values, "clinic")
    if values["latitude"] is None:
        location = locate(clinic_values["address"], postal, clinic_values["city"])
    else:
        location = (values["latitude"], values["longitude"], LocationSource.GIVEN)
    clinic = ClinicRecord(
        **{**clinic_values, "city": clinic_values["city"] or postal.place},
        postcode=postal.postcode,
        latitude=location[0],
        longitude=location[1],
        location_source=location[2],
        kept=_kept_of(kept, "clinic"),
    )
    records = RowRecords(
        clinic,
        ClinicianRecord(**_targets(values, "clinician"), kept=_kept_of(kept, "clinician")),
        PracticeRecord(**_targets(values, "practice"), kept=_kept_of(kept, "practice")),
        _unknown_services_warnings(services.unknown, names),
    )
    return records, []


def _unknown_services_warnings(
    unknown: tuple[str, ...], names: dict[str, str] | None = None
) -> tuple[str, ...]:
    """A warning naming the services of a row that the vocabulary does not know."""
    if not unknown:
        return ()
    return (
        _(
            "%(column)s: left out, as they are not in the list of services we know: "
            "%(services)s. Write a name from the staff guide's list, in Norwegian or English.",
            column=column_label(names, "services"),
            services=", ".join(repr(text) for text in unknown),
        ),
    )


def clinic_key(name: str, address: str, postcode: str) -> tuple[str, ...]:
    """What makes two rows (or a row and a clinic) the same clinic."""
    return (normalise_key(name), normalise_key(address), postcode)


# Ids (or HPR numbers) asked for in one IN (…) list: well inside every driver's limits.
LOOKUP_CHUNK = 1_000


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def _hpr_number_of(raw: dict[str, str]) -> str | None:
    """A row's HPR number as stored, or None when it is missing or malformed."""
    try:
        return clean_hpr_number(cell_value(raw, "hpr_number"))
    except ValueError:
        return None


def _clinic_key_as_written(raw: dict[str, str]) -> tuple[str, ...]:
    """The clinic a row is about, from its cells before they are checked."""
    return clinic_key(
        cell_value(raw, "clinic_name"),
        cell_value(raw, "address"),
        parse_postcode(cell_value(raw, "postcode")),
    )


@dataclass(frozen=True)
class _HprLine:
    """A line of the file with a given HPR number: its clinic, and the person it names."""

    line: int
    clinic: tuple[str, ...]
    # (name, languages) as written, spacing folded: what must agree between clinics.
    person: tuple[str, tuple[str, ...]]


def _hpr_numbers_of_file(
    raw_rows: list[tuple[int, dict[str, str]]],
) -> tuple[list[str], dict[str, list[_HprLine]]]:
    """Every HPR number of a file, and the lines of those on several rows, so that a
    number given twice is seen at once."""
    rows_of: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, raw in raw_rows:
        number = _hpr_number_of(raw)
        if number is not None:
            rows_of.setdefault(number, []).append((line, raw))
    # Only these are compared (a few, if any): reading every row's person would cost more.
    lines = {
        number: [
            _HprLine(
                line,
                _clinic_key_as_written(raw),
                (
                    one_line(cell_value(raw, "clinician_name")),
                    tuple(split_list(cell_value(raw, "languages"))),
                ),
            )
            for line, raw in rows
        ]
        for number, rows in rows_of.items()
        if len(rows) > 1
    }
    return list(rows_of), lines


def _hpr_conflict(number: str, lines: list[_HprLine], clinic: tuple[str, ...]) -> str | None:
    """Why a row is refused for an HPR number that other lines of the file have too.

    At two clinics it is one clinician working at both (two practices), as long as the
    rows agree on the person. Twice at one clinic, or with two names, we cannot know
    which row is right: none is imported, and each names every line, so the staff member
    fixes the file.
    """
    same_clinic = [entry.line for entry in lines if entry.clinic == clinic]
    if len(same_clinic) > 1:
        return _(
            "HPR number %(hpr)s is on lines %(lines)s for the same clinic: a clinician has "
            "one row per clinic, so none of these rows is imported",
            hpr=number,
            lines=", ".join(str(line) for line in same_clinic),
        )
    if len({entry.person for entry in lines}) > 1:
        return _(
            "HPR number %(hpr)s is on lines %(lines)s with different names or languages: "
            "a clinician's rows must give the same name and languages, so none of these "
            "rows is imported",
            hpr=number,
            lines=", ".join(str(entry.line) for entry in lines),
        )
    return None


# A later row of a clinic that differs from its first row in one of these gets a warning
# naming the column; the first row's value is kept. (The postcode, name and address, folded,
# are what make it the same clinic.)
_CLINIC_DETAILS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    *(
        ((column.target[1],), (column.name,))
        for column in COLUMNS
        if column.target is not None and column.target[0] == "clinic"
    ),
    (("latitude", "longitude"), ("latitude", "longitude")),
)


def _clinic_differences(
    first: ClinicRecord,
    first_line: int,
    later: ClinicRecord,
    line: int,
    names: dict[str, str] | None = None,
) -> list[str]:
    """Warnings for the clinic details of a later row that differ from the first row's."""
    return [
        _(
            "%(column)s on line %(line)s differs from line %(first)s of the same clinic: "
            "the value on line %(first)s is kept",
            column="/".join(column_label(names, column) for column in columns),
            line=line,
            first=first_line,
        )
        for fields, columns in _CLINIC_DETAILS
        if any(getattr(first, name) != getattr(later, name) for name in fields)
    ]


# What a plan compares a row with: the directory's values, read once as plain rows.
_CLINIC_COLUMNS = (
    Clinic.id,
    *(getattr(Clinic, name) for name in _CLINIC_FIELDS),
    Clinic.active,
)
_CLINICIAN_COLUMNS = (Clinician.hpr_number, Clinician.name, Clinician.languages)
_PRACTICE_COLUMNS = (
    Clinician.hpr_number,
    Practice.clinic_id,
    Practice.profession,
    Practice.services,
    Practice.public_agreement,
    Practice.agreement_municipality,
    Practice.accepts_new_patients,
    Practice.active,
)


def _directory_people(
    session: Session, hpr_numbers: list[str]
) -> tuple[dict[str, Any], dict[tuple[str, int], Any]]:
    """The directory's clinicians with these HPR numbers (those of a file), and their
    practices by (HPR number, clinic id), as plain rows.

    Only the file's: their languages and services are JSON, and reading everyone's would
    cost more than planning a small file against a large directory.
    """
    clinicians: dict[str, Any] = {}
    practices: dict[tuple[str, int], Any] = {}
    for chunk in _chunks(hpr_numbers):
        query = select(*_CLINICIAN_COLUMNS).where(Clinician.hpr_number.in_(chunk))
        clinicians.update((row.hpr_number, row) for row in session.execute(query))
        query = (
            select(*_PRACTICE_COLUMNS)
            .join(Practice.clinician)
            .where(Clinician.hpr_number.in_(chunk))
        )
        practices.update(((row.hpr_number, row.clinic_id), row) for row in session.execute(query))
    return clinicians, practices


def _directory_hours(session: Session, clinic_ids: list[int]) -> dict[int, str]:
    """The opening hours of these clinics, each week as the import format writes it
    (clinics without hours are left out)."""
    weeks: dict[int, dict[int, list[Stretch]]] = {}
    for chunk in _chunks(clinic_ids):
        query = select(
            OpeningHours.clinic_id, OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes
        ).where(OpeningHours.clinic_id.in_(chunk))
        for clinic_id, weekday, opens, closes in session.execute(query):
            weeks.setdefault(clinic_id, {}).setdefault(weekday, []).append((opens, closes))
    return {clinic_id: format_week(week) for clinic_id, week in weeks.items()}


# The column each stored field comes from, by (record, field).
_COLUMN_OF_FIELD = {column.target: column.name for column in COLUMNS if column.target is not None}


def _shown(value: Any) -> str:
    """A stored value as the preview shows it beside the file's ("" for none)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, Profession):
        return _(PROFESSION_TERMS[value].english)
    if isinstance(value, LocationSource):
        return str(LOCATION_SOURCE_NAMES[value])
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _field_changes(
    before: Any, after: dict[str, Any], record: str, names: dict[str, str] | None
) -> list[tuple[str, str, str]]:
    """(column, before, after) for each field of a directory row a planned row changes."""
    changes = []
    if record == "clinic" and (
        (before.latitude, before.longitude) != (after["latitude"], after["longitude"])
    ):
        label = (
            "/".join(column_label(names, name) for name in ("latitude", "longitude"))
            if names and "latitude" in names
            else _("Location")
        )
        changes.append(
            (
                label,
                f"{before.latitude:.5f}, {before.longitude:.5f}",
                f"{after['latitude']:.5f}, {after['longitude']:.5f}",
            )
        )
    for name, value in after.items():
        if name in ("latitude", "longitude"):
            continue
        old = getattr(before, name)
        if old == value:
            continue
        if name == "services":
            locale = get_locale()
            language = locale.language if locale is not None else "nb"
            old, value = (current_vocabulary().names(keys, language) for keys in (old, value))
        column = _COLUMN_OF_FIELD.get((record, name))
        label = column_label(names, column) if column else _("How it was placed")
        changes.append((label, _shown(old), _shown(value)))
    return changes


class _Plan:
    """What planning a file knows: the directory as plain rows, and the file so far.

    The directory is read once, at the start, as plain rows rather than ORM objects: a
    caller may commit between rows (a job storing its progress does) without the plan
    reloading what it holds, and tuples load several times faster than models for a
    directory of tens of thousands of clinics.
    """

    def __init__(
        self,
        session: Session,
        raw_rows: list[tuple[int, dict[str, str]]],
        locate: Locate | None,
        names: dict[str, str] | None = None,
        addresses: AddressProgress | None = None,
    ) -> None:
        self.names = names
        self.postcodes = read_register(session)
        self.clinics: dict[tuple[str, ...], Any] = {}
        for existing in session.execute(select(*_CLINIC_COLUMNS).order_by(Clinic.id)):
            key = clinic_key(existing.name, existing.address, existing.postcode)
            self.clinics.setdefault(key, existing)
        hpr_numbers, self.lines_of_hpr = _hpr_numbers_of_file(raw_rows)
        self.clinicians, self.practices = _directory_people(session, hpr_numbers)
        # The hours of the file's clinics, read only when the file gives hours at all.
        self.hours: dict[int, str] = {}
        if any(raw.get("opening_hours") for _, raw in raw_rows):
            keys = {_clinic_key_as_written(raw) for _, raw in raw_rows}
            ids = [self.clinics[key].id for key in keys if key in self.clinics]
            self.hours = _directory_hours(session, ids)
        self.locate = locate or locate_at_postcode
        # The first line (and its details) of each clinic in the file, and one geocoder
        # answer per address per file, however the geocoder is doing.
        self.clinic_in_file: dict[tuple[str, ...], tuple[int, ClinicRecord]] = {}
        self.located: dict[tuple[str, str], Location] = {}
        self.addresses = addresses or AddressProgress()
        self.addresses_pending: set[tuple[str, str]] = set()
        if locate is not None:
            self.addresses_pending = {
                place for _, raw in raw_rows if (place := self.address_to_look_up(raw)) is not None
            }
            self.addresses.total, self.addresses.done = len(self.addresses_pending), 0

    def address_to_look_up(self, raw: dict[str, str]) -> tuple[str, str] | None:
        """The (address, postcode) a row may have to be looked up at, as the locator keys it:
        a row with an address and no coordinates, at a clinic the directory does not have."""
        address = normalise_key(cell_value(raw, "address"))
        if not address or (cell_value(raw, "latitude") and cell_value(raw, "longitude")):
            return None
        if _clinic_key_as_written(raw) in self.clinics:
            return None
        return address, parse_postcode(cell_value(raw, "postcode"))

    def hpr_conflict(self, raw: dict[str, str]) -> str | None:
        """Why a row is refused for its HPR number being on other lines too, if it is."""
        number = _hpr_number_of(raw)
        lines = self.lines_of_hpr.get(number or "")
        if number is None or lines is None:
            return None
        return _hpr_conflict(number, lines, _clinic_key_as_written(raw))

    def locator_for(self, clinic_name: str) -> Locate:
        """Place a row without coordinates where its clinic already is, else look it up.

        From an earlier row of the file, else from the directory: an import, or an export
        coming back, never moves a clinic; improving postcode-only places is the staff's
        re-geocoding step.
        """

        def locate_row(address: str, postal: Postcode, city: str) -> Location:
            key = clinic_key(clinic_name, address, postal.postcode)
            if key in self.clinic_in_file:
                earlier = self.clinic_in_file[key][1]
                return earlier.latitude, earlier.longitude, earlier.location_source
            if key in self.clinics:
                known = self.clinics[key]
                return known.latitude, known.longitude, known.location_source
            place = (normalise_key(address), postal.postcode)
            if place not in self.located:
                self.located[place] = self.locate(address, postal, city)
            return self.located[place]

        return locate_row

    def classify(self, line: int, raw: dict[str, str]) -> RowResult:
        """Check one row and say what importing it would do."""
        result = RowResult(line=line, raw=raw)
        conflict = self.hpr_conflict(raw)
        # A row refused for its HPR number is still checked, to report all that is wrong
        # with it, but not geocoded: it will not be imported.
        locate = (
            locate_at_postcode
            if conflict
            else self.locator_for(" ".join(cell_value(raw, "clinic_name").split()))
        )
        records, errors = validate_row(raw, self.postcodes, locate, self.names)
        if self.addresses_pending:
            place = self.address_to_look_up(raw)
            if place in self.addresses_pending:
                self.addresses_pending.discard(place)
                self.addresses.done += 1
        if conflict is not None:
            errors.append(conflict)
        if records is None or errors:
            result.errors = errors
            return result
        records = self.as_in_directory(records)
        if "public_agreement" in records.practice.kept:
            # The rules validate_row checks for a file with the column, on the
            # directory's agreement.
            errors = _practice_errors(
                {
                    "profession": records.practice.profession,
                    "helfo_agreement": records.practice.public_agreement,
                    "municipality_agreement": records.practice.agreement_municipality,
                },
                self.names,
            )
            if errors:
                result.errors = errors
                return result
        records, differences = self.first_row_wins(line, records)
        result.warnings = [*records.warnings, *differences]
        result.clinic, result.clinician = records.clinic, records.clinician
        result.practice = records.practice
        result.status, result.changes = self.compare(records)
        return result

    def existing_practice(self, records: RowRecords) -> Any | None:
        """The directory's practice of the row's clinician at the row's clinic, if any."""
        clinic = self.clinics.get(records.clinic.key)
        if clinic is None:
            return None
        return self.practices.get((records.clinician.hpr_number, clinic.id))

    def as_in_directory(self, records: RowRecords) -> RowRecords:
        """The row's records with what the file leaves to the directory filled in.

        The same point as the directory's keeps its precision (an exported file coming
        back). A file without the agreement's column leaves the directory's agreement (none,
        for a new practice). An agreement without a municipality keeps the one the
        directory knows, and a new agreement is with the clinic's municipality, where such
        agreements are made.
        """
        clinic, practice = records.clinic, records.practice
        if "public_agreement" in practice.kept:
            existing = self.existing_practice(records)
            agreement = existing is not None and existing.public_agreement
            practice = dataclasses.replace(practice, public_agreement=agreement)
            records = dataclasses.replace(records, practice=practice)
        existing_clinic = self.clinics.get(clinic.key)
        if (
            existing_clinic is not None
            and existing_clinic.location_source is not clinic.location_source
            and (existing_clinic.latitude, existing_clinic.longitude)
            == (clinic.latitude, clinic.longitude)
        ):
            clinic = dataclasses.replace(clinic, location_source=existing_clinic.location_source)
            records = dataclasses.replace(records, clinic=clinic)
        if practice.public_agreement and practice.agreement_municipality is None:
            existing = self.existing_practice(records)
            if existing is not None and existing.public_agreement:
                municipality = existing.agreement_municipality
            else:
                municipality = self.postcodes[clinic.postcode].municipality or None
            practice = dataclasses.replace(practice, agreement_municipality=municipality)
            records = dataclasses.replace(records, practice=practice)
        return records

    def first_row_wins(self, line: int, records: RowRecords) -> tuple[RowRecords, list[str]]:
        """The clinic as its first row in the file gives it, and warnings for what differs."""
        first_line, first = self.clinic_in_file.setdefault(
            records.clinic.key, (line, records.clinic)
        )
        if first_line == line:
            return records, []
        warnings = _clinic_differences(first, first_line, records.clinic, line, self.names)
        return dataclasses.replace(records, clinic=first), warnings

    def compare(self, records: RowRecords) -> tuple[RowStatus, list[tuple[str, str, str]]]:
        """New, updated or unchanged, against the directory as it was read, and what an
        update changes.

        A row is a practice, found by HPR number and clinic: new if the clinician does not
        work at that clinic yet, updated if anything of it, the clinician or the clinic
        changes (or it, or the clinic, was deactivated).
        """
        existing = self.existing_practice(records)
        if existing is None:
            return RowStatus.NEW, []
        clinic = self.clinics[records.clinic.key]
        hours = records.clinic.opening_hours
        changes = [
            *_field_changes(clinic, records.clinic.given(), "clinic", self.names),
            *_field_changes(
                self.clinicians[records.clinician.hpr_number],
                records.clinician.given(),
                "clinician",
                self.names,
            ),
            *_field_changes(existing, records.practice.given(), "practice", self.names),
        ]
        if hours and hours != self.hours.get(clinic.id, ""):
            label = column_label(self.names, "opening_hours")
            changes.append((label, self.hours.get(clinic.id, ""), hours))
        if not clinic.active or not existing.active:
            changes.append((_("Shown in the directory"), _("no"), _("yes")))
        return (RowStatus.UPDATED if changes else RowStatus.UNCHANGED), changes


def plan_rows(
    session: Session,
    raw_rows: list[tuple[int, dict[str, str]]],
    locate: Locate | None = None,
    names: dict[str, str] | None = None,
    addresses: AddressProgress | None = None,
) -> Iterator[RowResult]:
    """Validate and classify each row read by :func:`read_rows`, in order; write nothing.

    ``locate`` places rows that have no coordinates (see :mod:`clinic_finder.geocoding`);
    without it they go to their postcode's centre. The row reports name the columns as
    ``names`` says the file does (:attr:`ClinicList.names`). ``addresses`` is kept up to
    date with how far the look-ups are.
    """
    plan = _Plan(session, raw_rows, locate, names, addresses)
    for line, raw in raw_rows:
        yield plan.classify(line, raw)


def plan_import(
    session: Session,
    text: str,
    locate: Locate | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Read a whole clinic list and plan every row in memory (see :func:`plan_rows`).

    ``progress(done, total)`` is called after each row, for a progress bar.
    """
    clinic_list = read_rows(text)
    report = ImportReport(unknown_columns=clinic_list.unknown_columns)
    rows = plan_rows(session, clinic_list.rows, locate, clinic_list.names)
    for done, row in enumerate(rows, start=1):
        report.rows.append(row)
        if progress is not None:
            progress(done, len(clinic_list.rows))
    return report


def record_import(
    session: Session,
    actor: StaffUser | str,
    report: ImportReport,
    batch: ImportBatch | None,
    counts: Mapping[str, int] | None = None,
) -> None:
    """Audit an applied import: which HPR numbers were added and changed, from which file.

    ``counts`` are the file's counts by status when ``report`` holds only its accepted
    rows (a stored plan); by default they are counted from the report.
    """
    by_status: dict[str, list[str]] = {status.value: [] for status in RowStatus}
    for row in report.accepted:
        assert row.clinician is not None
        by_status[row.status.value].append(row.clinician.hpr_number)
    counts = {status.value: 0 for status in RowStatus} | dict(counts or report.counts)
    if batch is not None:
        batch.applied_at = now_utc()
        batch.summary = counts
    record(
        session,
        actor,
        "import.apply",
        "import_batch",
        batch.id if batch is not None else None,
        {"counts": counts, "new": by_status["new"], "updated": by_status["updated"]},
        summary=(
            f"{batch.filename if batch is not None else 'command line'}: {counts['new']} new, "
            f"{counts['updated']} updated, {counts['unchanged']} unchanged, "
            f"{counts['rejected']} rejected"
        ),
    )


IMPORT_LOCK_ID = 7_401_201  # any constant shared by every process of this app


def take_import_lock(session: Session) -> None:
    """Hold the directory's import lock until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": IMPORT_LOCK_ID})
    else:
        # SQLite has one writer at a time: a first write takes (or waits for) that lock.
        session.execute(
            update(ImportBatch).where(ImportBatch.id == -1).values(filename=ImportBatch.filename)
        )


def _find_existing_clinics(
    session: Session, keys: set[tuple[str, ...]]
) -> dict[tuple[str, ...], Clinic]:
    """The directory's clinics that rows with these keys are (the oldest, for a key twice).

    The keys are worked out from (id, name, address, postcode) tuples; only the clinics
    that match are loaded as models, so a file costs what it names, not the directory.
    """
    ids: dict[tuple[str, ...], int] = {}
    query = select(Clinic.id, Clinic.name, Clinic.address, Clinic.postcode).order_by(Clinic.id)
    for clinic_id, name, address, postcode in session.execute(query):
        key = clinic_key(name, address, postcode)
        if key in keys:
            ids.setdefault(key, clinic_id)
    loaded: dict[int, Clinic] = {}
    for chunk in _chunks(list(ids.values())):
        loaded.update(
            (c.id, c) for c in session.scalars(select(Clinic).where(Clinic.id.in_(chunk)))
        )
    return {key: loaded[clinic_id] for key, clinic_id in ids.items()}


def _find_existing_people(
    session: Session, hpr_numbers: list[str]
) -> tuple[dict[str, Clinician], dict[tuple[int, int], Practice]]:
    """The directory's clinicians with these HPR numbers, and every practice of theirs by
    (clinician id, clinic id)."""
    clinicians: dict[str, Clinician] = {}
    practices: dict[tuple[int, int], Practice] = {}
    for chunk in _chunks(hpr_numbers):
        query = select(Clinician).where(Clinician.hpr_number.in_(chunk))
        found = {c.id: c for c in session.scalars(query)}
        clinicians.update((c.hpr_number, c) for c in found.values())
        query = select(Practice).where(Practice.clinician_id.in_(list(found)))
        practices.update(((p.clinician_id, p.clinic_id), p) for p in session.scalars(query))
    return clinicians, practices


def _apply_clinics_and_clinicians(
    session: Session, accepted: list[RowResult], clinicians: dict[str, Clinician]
) -> dict[tuple[str, ...], Clinic]:
    """Add or update every clinic and clinician the rows name; return the clinics by key."""
    clinics = _find_existing_clinics(
        session, {row.clinic.key for row in accepted if row.clinic is not None}
    )
    for row in accepted:
        assert row.clinic is not None and row.clinician is not None
        clinic = clinics.get(row.clinic.key)
        if clinic is None:
            clinics[row.clinic.key] = clinic = Clinic(**row.clinic.fields(), active=True)
            session.add(clinic)
        else:
            # Every row of a clinic carries its first row's details: the same values again.
            apply_changes(clinic, row.clinic.given())
            clinic.active = True
        clinician = clinicians.get(row.clinician.hpr_number)
        if clinician is None:
            clinician = Clinician(**row.clinician.fields())
            clinicians[row.clinician.hpr_number] = clinician
            session.add(clinician)
        else:
            apply_changes(clinician, row.clinician.given())
    return clinics


def _in_batches(statement: Insert) -> Insert:
    """An INSERT of many rows that goes to the database a thousand rows a statement.

    Its NULLs are written out, so every row has the same columns and all go in one batch
    (otherwise each run of rows with other Nones is a statement of its own); and it returns
    the ids, which makes SQLAlchemy write many rows a statement rather than one statement
    per row, so the search index's statement triggers (PostgreSQL) run a few times, not
    once per row.
    """
    table = statement.table
    return statement.returning(table.c.id).execution_options(render_nulls=True)


def _new_practice(
    clinic: Clinic, clinician: Clinician, record: PracticeRecord, now: datetime
) -> dict[str, Any]:
    """A practice to insert: the clinician at the clinic, active, answers confirmed now."""
    return {
        **record.fields(),
        "clinic_id": clinic.id,
        "clinician_id": clinician.id,
        "accepts_new_patients_confirmed_at": None if record.accepts_new_patients is None else now,
        "active": True,
        "created_at": now,
        "updated_at": now,
    }


def _update_practice(practice: Practice, record: PracticeRecord, now: datetime) -> None:
    """Bring a practice up to the row (active again, if it was not)."""
    given = record.given()
    if (
        "accepts_new_patients" in given
        and practice.accepts_new_patients != given["accepts_new_patients"]
    ):
        # A changed answer is confirmed now; the same answer again confirms nothing new.
        practice.accepts_new_patients_confirmed_at = (
            None if record.accepts_new_patients is None else now
        )
    apply_changes(practice, given)
    practice.active = True


@functools.lru_cache(maxsize=1024)
def _stretches_of(week: str) -> tuple[tuple[int, time, time], ...]:
    """(weekday, opens, closes) of a week as the import format writes it (a few weeks are
    shared by many clinics, so each is read once)."""
    return tuple(
        (day, opens, closes)
        for day, stretches in parse_week(week).items()
        for opens, closes in stretches
    )


def _apply_opening_hours(
    session: Session, clinics: dict[tuple[str, ...], Clinic], accepted: list[RowResult]
) -> None:
    """Give each clinic the hours its rows give, where they differ from what it has."""
    given = {
        clinics[row.clinic.key].id: row.clinic.opening_hours
        for row in accepted
        if row.clinic is not None and row.clinic.opening_hours
    }
    current = _directory_hours(session, list(given))
    changed = [clinic_id for clinic_id, week in given.items() if current.get(clinic_id) != week]
    for chunk in _chunks(changed):
        session.execute(
            delete(OpeningHours)
            .where(OpeningHours.clinic_id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    added = [
        {"clinic_id": clinic_id, "weekday": day, "opens": opens, "closes": closes}
        for clinic_id in changed
        for day, opens, closes in _stretches_of(given[clinic_id])
    ]
    if added:
        session.execute(insert(OpeningHours), added)


def apply_import(session: Session, report: ImportReport) -> list[Clinician]:
    """Write the accepted rows of a planned import; the caller commits or rolls back.

    Each row is a practice, found by HPR number and clinic; its clinic and clinician are
    added or updated with it. A clinic named in the file is (re)activated, and so is a
    practice. Clinics, clinicians and practices absent from the file are left alone: an
    import never deletes or deactivates. Imports apply one at a time: the directory is
    read again under the lock, so two imports adding the same clinic or clinician at once
    add it once. Returns the file's clinicians (for the licence check), in file order.
    """
    take_import_lock(session)
    accepted = report.accepted
    hpr_numbers = list(
        dict.fromkeys(row.clinician.hpr_number for row in accepted if row.clinician is not None)
    )
    clinicians, practices = _find_existing_people(session, hpr_numbers)
    clinics = _apply_clinics_and_clinicians(session, accepted, clinicians)
    # New clinics and clinicians get their ids here, so practices are added by id.
    session.flush()
    now = now_utc()
    added: list[dict[str, Any]] = []
    for row in accepted:
        assert row.clinic is not None and row.clinician is not None and row.practice is not None
        clinic, clinician = clinics[row.clinic.key], clinicians[row.clinician.hpr_number]
        existing = practices.get((clinician.id, clinic.id))
        if existing is None:
            added.append(_new_practice(clinic, clinician, row.practice, now))
        else:
            _update_practice(existing, row.practice, now)
    if added:
        # In one statement rather than as objects: a new file is mostly new practices, and
        # nothing here reads them back (a relationship read later loads them as any other).
        session.execute(_in_batches(insert(Practice)), added)
    _apply_opening_hours(session, clinics, accepted)
    session.flush()
    return [clinicians[number] for number in hpr_numbers]
