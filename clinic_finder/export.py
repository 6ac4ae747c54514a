"""Write the directory, and an import's rejected rows, as CSV in the import format.

The export round-trips: importing an exported file into the same directory classifies
every row as unchanged. Every cell is also safe to open in a spreadsheet, whichever of
``;``, ``,`` or tab it splits cells on (spreadsheet_cells.py): each part that could run as
a formula gets a leading ``'``, which the importer takes off again. Legitimate values are
written in a form that never needs it, so the ``'`` only ever lands on hostile or odd text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from .importer import CANONICAL_COLUMNS, RowResult
from .models import Clinic, Clinician, LocationSource
from .spreadsheet_cells import neutralise_cell
from .validation import clean_phone

REJECTED_ROWS_COLUMNS = (*CANONICAL_COLUMNS, "line", "reason")


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


def _yes_no(value: bool | None) -> str:
    if value is None:
        return ""
    return "yes" if value else "no"


def _row(clinic: Clinic, clinician: Clinician) -> dict[str, str]:
    # A clinic placed at its postcode's centre is written without coordinates: importing
    # it places it there again and keeps it marked as postcode precision, instead of
    # passing the centre off as the clinic's own coordinates.
    at_postcode = clinic.location_source is LocationSource.POSTCODE
    return {
        "clinic_name": clinic.name,
        "org_number": clinic.org_number or "",
        "address": clinic.address,
        "postcode": clinic.postcode,
        "city": clinic.city,
        "phone": phone_for_export(clinic.phone),
        "email": clinic.email or "",
        "website": clinic.website or "",
        "clinician_name": clinician.name,
        "profession": clinician.profession.value,
        "hpr_number": clinician.hpr_number,
        "helfo_agreement": _yes_no(clinic.helfo_agreement),
        "accepts_new_patients": _yes_no(clinic.accepts_new_patients),
        "languages": ";".join(clinician.languages or ()),
        "services": ";".join(clinician.services or ()),
        "latitude": "" if at_postcode else coordinate_for_export(clinic.latitude),
        "longitude": "" if at_postcode else coordinate_for_export(clinic.longitude),
    }


def _row_order(clinician: Clinician) -> tuple[object, ...]:
    clinic = clinician.clinic
    return (
        clinic.name.casefold(),
        clinic.name,
        clinic.id,
        clinician.name.casefold(),
        clinician.name,
        clinician.hpr_number,
    )


def export_rows(session: Session) -> Iterator[dict[str, str]]:
    """Yield one import-format row per active clinician of an active clinic.

    Values are in their export form but not yet neutralised (the CSV writers do that).
    Rows come ordered by clinic name, clinic id and clinician name; the sort happens in
    Python so that SQLite and PostgreSQL, whose collations differ, give the same file.
    """
    clinicians = session.scalars(
        select(Clinician)
        .join(Clinician.clinic)
        .where(Clinic.active.is_(True), Clinician.active.is_(True))
        .options(contains_eager(Clinician.clinic))
    ).all()
    for clinician in sorted(clinicians, key=_row_order):
        yield _row(clinician.clinic, clinician)


def rows_to_csv(
    rows: Iterable[Mapping[str, object]], columns: Sequence[str] = CANONICAL_COLUMNS
) -> str:
    """Write rows as CSV text with a header, ``\\r\\n`` line ends and every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise_cell(column) for column in columns])
    for row in rows:
        writer.writerow([neutralise_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def export_directory_csv(session: Session) -> str:
    """Return the directory as CSV text in the import format.

    The text has no byte-order mark; whoever writes it out for Excel adds one (the
    ``/staff/export.csv`` route and ``flask clinics export PATH`` do).
    """
    return rows_to_csv(export_rows(session))


def rejected_rows_csv(rows: Iterable[RowResult]) -> str:
    """Return an import's rejected rows as CSV: the columns as read, plus line and reason."""
    return rows_to_csv(
        ({**row.raw, "line": row.line, "reason": "; ".join(row.errors)} for row in rows),
        REJECTED_ROWS_COLUMNS,
    )
