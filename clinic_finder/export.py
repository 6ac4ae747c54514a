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

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from .import_format import CANONICAL_COLUMNS, export_row
from .importer import RowResult
from .models import Clinic, Practice
from .spreadsheet_cells import neutralise_cell

REJECTED_ROWS_COLUMNS = (*CANONICAL_COLUMNS, "line", "reason")


def _row_order(practice: Practice) -> tuple[object, ...]:
    clinic, clinician = practice.clinic, practice.clinician
    return (
        clinic.name.casefold(),
        clinic.name,
        clinic.id,
        clinician.name.casefold(),
        clinician.name,
        clinician.hpr_number,
    )


def export_rows(session: Session) -> Iterator[dict[str, str]]:
    """Yield one import-format row per active practice at an active clinic.

    A clinician who works at two clinics has a row at each, as in the file that put them
    there. Values are in their export form but not yet neutralised (the CSV writers do
    that). Rows come ordered by clinic name, clinic id and clinician name; the sort happens
    in Python so that SQLite and PostgreSQL, whose collations differ, give the same file.
    """
    practices = session.scalars(
        select(Practice)
        .join(Practice.clinic)
        .join(Practice.clinician)
        .where(Clinic.active.is_(True), Practice.active.is_(True))
        .options(
            contains_eager(Practice.clinic).selectinload(Clinic.opening_hours),
            contains_eager(Practice.clinician),
        )
    ).all()
    for practice in sorted(practices, key=_row_order):
        yield export_row(practice)


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
