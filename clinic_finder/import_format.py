"""The clinic list's columns: one table, each row everything the import and export know of a
column — its header names, whether it is required, its longest value, how a cell is read,
where the value goes, and how the export writes it back.

A file has one row per clinician at a clinic (a practice); the clinic's details repeat on
each row of the same clinic, and a clinician who works at two clinics has a row at each.
Adding a column is a row here, a field on the model (and its migration), and the form.
The postcode and the coordinates are read here too, but placed by ``importer.validate_row``:
they are checked against the postcode register and against each other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import phonenumbers
from flask_babel import gettext as _

from .hours import format_week, parse_week, week_of
from .i18n import current_language
from .models import PROFESSION_TERMS, LocationSource, Practice, Profession
from .services import current_vocabulary
from .validation import (
    clean_booking_url,
    clean_email,
    clean_hpr_number,
    clean_list,
    clean_org_number,
    clean_phone,
    clean_website,
)

YES_VALUES = {"yes", "ja", "true", "1", "y", "j"}
NO_VALUES = {"no", "nei", "false", "0", "n"}

# What a file may call a profession: our value, its English name or its Norwegian title
# (PROFESSION_TERMS), in any case, plus the spellings people also use.
PROFESSION_NAMES: dict[str, Profession] = {
    name.lower(): profession
    for profession, terms in PROFESSION_TERMS.items()
    for name in (profession.value, terms.english, terms.norwegian)
} | {"manuell terapeut": Profession.MANUAL_THERAPIST}


def one_line(text: str) -> str:
    """Runs of spaces (and line breaks) folded into one, as names and addresses are kept."""
    return " ".join(text.split())


def parse_yes_no(value: str) -> bool:
    """Read ja/nei/yes/no/true/false/1/0 in any case."""
    folded = value.strip().lower()
    if folded in YES_VALUES:
        return True
    if folded in NO_VALUES:
        return False
    raise ValueError(_("%(value)s must be yes or no (ja/nei)", value=repr(value)))


def parse_profession(value: str) -> Profession:
    """Read a profession by our value, its English name or its Norwegian title."""
    profession = PROFESSION_NAMES.get(" ".join(value.casefold().split()))
    if profession is None:
        raise ValueError(
            _(
                "%(profession)s is not one of the publicly licensed professions we list "
                "(chiropractor, physiotherapist, manual therapist)",
                profession=repr(value),
            )
        )
    return profession


def parse_postcode(value: str) -> str:
    """Four digits; Excel drops the leading zero of Oslo's postcodes, so three get it back."""
    return "0" + value if re.fullmatch(r"[0-9]{3}", value) else value


def parse_coordinate(value: str) -> float:
    """Read a coordinate written with a decimal point or a decimal comma."""
    try:
        return float(value.replace(" ", "").replace(",", "."))
    except ValueError:
        raise ValueError(_("must be a decimal number")) from None


def parse_list(value: str) -> tuple[str, ...]:
    """A ;-separated list, within the directory's caps."""
    return tuple(clean_list(value))


@dataclass(frozen=True)
class ServiceCell:
    """A services cell: the vocabulary keys it names, and what it names that the
    vocabulary does not know (left out of the import, with a warning on the row)."""

    keys: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def parse_services(value: str) -> ServiceCell:
    """A ;-separated list of services in either language (key, name or alias, any case)."""
    keys, unknown = current_vocabulary().resolve(clean_list(value))
    return ServiceCell(tuple(keys), tuple(unknown))


def services_for_export(keys: list[str]) -> str:
    """Services by their names in the current language, which the importer reads back."""
    return ";".join(current_vocabulary().names(keys, current_language()))


@functools.lru_cache(maxsize=4096)
def parse_opening_hours(value: str) -> str:
    """A week as a receptionist types it (hours.parse_week), in the one form the export
    writes (hours.format_week), so that two spellings of one week compare equal."""
    # Remembered: every row of a clinic repeats its week, and a list has few spellings.
    # A cell that cannot be read raises, and is not remembered (its message is in the
    # language of the moment).
    return format_week(parse_week(value))


# --- how the export writes values ---------------------------------------------------------


def yes_no(value: bool | None) -> str:
    """yes, no, or empty for unknown."""
    if value is None:
        return ""
    return "yes" if value else "no"


def phone_for_export(phone: str | None) -> str:
    """Write a stored phone number as dialled from Norway, so it never starts with ``+``.

    ``+47 22 33 44 55`` becomes ``22 33 44 55`` and ``+46 8 123 456 78`` becomes
    ``00 46 8 123 456 78``; the importer reads both back to the stored value. A value it
    would not read back identically (one stored before the rules, say) is written as
    stored, and so neutralised like any other text.
    """
    if not phone:
        return ""
    try:
        dialled = phonenumbers.format_out_of_country_calling_number(
            phonenumbers.parse(phone, "NO"), "NO"
        )
        if clean_phone(dialled) == phone:
            return dialled
    except (phonenumbers.NumberParseException, ValueError):
        pass
    return phone


def coordinate_for_export(value: float) -> str:
    """Write a coordinate exactly (``repr`` reads back to the same float).

    Only Jan Mayen lies west of Greenwich, so only there is a coordinate negative. Such a
    value gets a leading space instead of the ``'``: a spreadsheet reads `` -8.6543`` as
    the number, the neutraliser leaves exactly this form alone (spreadsheet_cells.py), and
    the importer strips the space and reads the same float.
    """
    text = repr(float(value))
    return " " + text if text.startswith("-") else text


def _coordinate(name: str) -> Callable[[Practice], str]:
    # A clinic placed at its postcode's centre is written without coordinates: importing
    # it places it there again and keeps it marked as postcode precision, instead of
    # passing the centre off as the clinic's own coordinates.
    def export(practice: Practice) -> str:
        clinic = practice.clinic
        if clinic.location_source is LocationSource.POSTCODE:
            return ""
        return coordinate_for_export(getattr(clinic, name))

    return export


def _stored(record: str, name: str, write: Callable[[Any], str] = str):
    """The export of a stored field of the practice, its clinic or its clinician:
    ``write`` turns the value into cell text."""

    def export(practice: Practice) -> str:
        holder = practice if record == "practice" else getattr(practice, record)
        value = getattr(holder, name)
        return "" if value is None else write(value)

    return export


@dataclass(frozen=True)
class Column:
    """One column of the clinic list."""

    name: str
    # Other header names staff use (compared folded to lower case, spaces folded).
    aliases: tuple[str, ...] = ()
    required: bool = False
    # The longest value the directory stores (models.py); None: no text limit here.
    max_length: int | None = None
    # Reads a non-empty cell; raises ValueError saying what is wrong.
    parse: Callable[[str], Any] = one_line
    # The value of an empty cell.
    empty: Any = None
    # Where the value goes: ("clinic", "clinician" or "practice", field name); None for
    # the columns validate_row places itself (the postcode and the coordinates).
    target: tuple[str, str] | None = None
    # Writes the stored value of a practice (its clinic, its clinician) as the importer
    # reads it.
    export: Callable[[Practice], str] | None = None
    # A file without this column leaves the field as it is (kept_fields) — unless the file
    # has the column named here, which the field is worked out from.
    goes_with: str | None = None


# fmt: off
COLUMNS: tuple[Column, ...] = (
    Column("clinic_name", ("klinikknavn", "klinikk"), True, 200, empty="",
           target=("clinic", "name"), export=_stored("clinic", "name")),
    Column("org_number", ("organisasjonsnummer", "orgnr", "org.nr", "org.nr."),
           parse=clean_org_number, target=("clinic", "org_number"),
           export=_stored("clinic", "org_number")),
    Column("address", ("adresse",), max_length=200, empty="",
           target=("clinic", "address"), export=_stored("clinic", "address")),
    Column("postcode", ("postnummer", "postnr"), True, parse=parse_postcode, empty="",
           export=_stored("clinic", "postcode")),
    Column("city", ("poststed",), max_length=100, empty="",
           target=("clinic", "city"), export=_stored("clinic", "city")),
    Column("phone", ("telefon",), max_length=40, parse=clean_phone,
           target=("clinic", "phone"),
           export=lambda practice: phone_for_export(practice.clinic.phone)),
    Column("email", ("e-post", "epost"), max_length=254, parse=clean_email,
           target=("clinic", "email"), export=_stored("clinic", "email")),
    Column("website", ("nettside",), max_length=500, parse=clean_website,
           target=("clinic", "website"), export=_stored("clinic", "website")),
    Column("clinician_name", ("behandler", "navn"), True, 200, empty="",
           target=("clinician", "name"), export=_stored("clinician", "name")),
    Column("profession", ("yrke", "profesjon"), True, parse=parse_profession,
           target=("practice", "profession"),
           export=_stored("practice", "profession", lambda p: p.value)),
    Column("hpr_number", ("hpr-nummer", "hpr", "hpr-nr"), True, parse=clean_hpr_number,
           empty="", target=("clinician", "hpr_number"),
           export=_stored("clinician", "hpr_number")),
    # The clinician's own agreement, for their work at this clinic (never a chiropractor's).
    Column("helfo_agreement", ("driftsavtale",), parse=parse_yes_no, empty=False,
           target=("practice", "public_agreement"),
           export=_stored("practice", "public_agreement", yes_no)),
    Column("accepts_new_patients", ("tar imot nye", "tar imot nye pasienter"),
           parse=parse_yes_no, target=("practice", "accepts_new_patients"),
           export=_stored("practice", "accepts_new_patients", yes_no)),
    Column("languages", ("språk",), parse=parse_list, empty=(),
           target=("clinician", "languages"),
           export=_stored("clinician", "languages", ";".join)),
    # Names in either language (services.py); validate_row keeps the keys and warns of
    # what the vocabulary does not know.
    Column("services", ("behandlinger", "tjenester", "tilbud"), parse=parse_services,
           empty=ServiceCell(), target=("practice", "services"),
           export=_stored("practice", "services", services_for_export)),
    Column("latitude", ("breddegrad",), parse=parse_coordinate, export=_coordinate("latitude")),
    Column("longitude", ("lengdegrad",), parse=parse_coordinate,
           export=_coordinate("longitude")),
    # Added with practices (issue 12), after the older columns so that files and scripts
    # that write those by position keep working.
    Column("booking_url", ("timebestilling", "bestillingslenke", "booking", "bestill time",
                           "nettbooking"),
           max_length=500, parse=clean_booking_url, target=("clinic", "booking_url"),
           export=_stored("clinic", "booking_url")),
    Column("step_free_access", ("trinnfri inngang", "trinnfri tilgang", "trinnfritt"),
           parse=parse_yes_no, target=("clinic", "step_free_access"),
           export=_stored("clinic", "step_free_access", yes_no)),
    Column("accessible_toilet", ("tilrettelagt toalett", "hc-toalett", "hc toalett", "hc-wc"),
           parse=parse_yes_no, target=("clinic", "accessible_toilet"),
           export=_stored("clinic", "accessible_toilet", yes_no)),
    Column("parking", ("parkering",), parse=parse_yes_no, target=("clinic", "parking"),
           export=_stored("clinic", "parking", yes_no)),
    Column("municipality_agreement", ("driftsavtale kommune", "avtalekommune",
                                      "kommune for driftsavtale", "driftsavtalekommune"),
           max_length=100, target=("practice", "agreement_municipality"),
           export=_stored("practice", "agreement_municipality"), goes_with="helfo_agreement"),
    # The whole week in one cell. Empty leaves the clinic's hours as they are (staff often
    # keep them on the clinic's page), so that a list without them never wipes them.
    Column("opening_hours", ("åpningstider", "åpningstid", "opening hours"), max_length=500,
           parse=parse_opening_hours, empty="", target=("clinic", "opening_hours"),
           export=lambda practice: format_week(week_of(practice.clinic))),
)
# fmt: on

COLUMN_BY_NAME = {column.name: column for column in COLUMNS}
CANONICAL_COLUMNS = tuple(column.name for column in COLUMNS)
REQUIRED_COLUMNS = tuple(column.name for column in COLUMNS if column.required)
# Header names staff use, folded to lower case; the canonical names map to themselves.
HEADER_ALIASES: dict[str, str] = {
    name: column.name for column in COLUMNS for name in (column.name, *column.aliases)
}


def kept_columns(present: Collection[str] | None) -> tuple[Column, ...]:
    """The columns that a file with only the ``present`` ones leaves as they are on the
    clinics, clinicians and practices it updates (None: the file has every column).

    A column left out of the file says nothing, so it changes nothing: a list of names,
    addresses and phones must not wipe the emails, agreements and services the directory
    has. An empty cell in a column the file has still clears the field. New records get
    the columns' ``empty`` values, as ever. A column that goes with another the file has
    is not kept: the municipality is worked out from the agreement given (an agreement
    given as no has none). Without coordinates, a clinic the directory has stays where it
    is (importer._Plan.locator_for).
    """
    if present is None:
        return ()
    return tuple(
        column
        for column in COLUMNS
        if column.target is not None
        and column.name not in present
        and (column.goes_with is None or column.goes_with not in present)
    )


def kept_fields(present: Collection[str] | None) -> frozenset[tuple[str, str]]:
    """The (record, field) pairs of :func:`kept_columns`."""
    return frozenset(column.target for column in kept_columns(present) if column.target)


# The column the rejected-rows download adds after the file's own, named in the staff
# member's language (errors_column_name); every language's name, folded, so that the file
# can come back without the column being reported as unknown.
ERRORS_COLUMN_NAMES = frozenset({"errors", "feil"})


def errors_column_name() -> str:
    """The rejected-rows download's error column, in the current language ("Feil")."""
    return _("Errors")


def column_label(names: dict[str, str] | None, column: str) -> str:
    """A column as a row report names it: the file's own header, quoted («HPR-nummer»)."""
    return _("“%(column)s”", column=(names or {}).get(column, column))


def export_row(practice: Practice) -> dict[str, str]:
    """One clinician at one clinic as a row of the clinic list, ready to be neutralised."""
    return {column.name: column.export(practice) for column in COLUMNS}
