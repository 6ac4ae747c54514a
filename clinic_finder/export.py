"""Write the directory as CSV in the import format, and an import's rejected rows as the
file that was uploaded had them.

The export round-trips: importing an exported file into the same directory classifies
every row as unchanged. The rejected rows round-trip too: they come back in the upload's
separator, encoding and columns, with the errors in a last column that the importer
leaves out, so the staff member fixes them in their spreadsheet and uploads the file
again. Every cell is also safe to open in a spreadsheet, whichever of ``;``, ``,`` or tab
it splits cells on (spreadsheet_cells.py): each part that could run as a formula gets a
leading ``'``, which the importer takes off again. Legitimate values are written in a
form that never needs it, so the ``'`` only ever lands on hostile or odd text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from .import_format import CANONICAL_COLUMNS, ERRORS_COLUMN_NAMES, errors_column_name, export_row
from .importer import RowResult, normalise_key, read_sheet
from .models import Clinic, Practice
from .spreadsheet_cells import neutralise_cell

# An upload's encoding (importer.decode_upload_as) as a Content-Type names it. A batch
# uploaded before the encoding was kept gets UTF-8 with a byte-order mark, as Excel reads.
CHARSETS = {"utf-8-sig": "utf-8", "utf-8": "utf-8", "cp1252": "windows-1252", "utf-16": "utf-16"}
DEFAULT_ENCODING = "utf-8-sig"


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


def rejected_rows_csv(content: str, rows: Iterable[RowResult]) -> str:
    """Return the rejected rows of an uploaded file as CSV text in the file's own shape.

    The separator, the header and every column are the file's, in its order (a column the
    import format does not know too), each row's cells as the file gave them, plus the
    errors in a last column named in the current language ("Feil"). A file that is such a
    download coming back has the column already: it gets the new errors. The line numbers
    are left out: they would be those of the old file, not of the one fixed and uploaded.
    """
    errors = {row.line: "; ".join(row.errors) for row in rows}
    delimiter, header, records = read_sheet(content)
    column = next(
        (index for index, name in enumerate(header) if normalise_key(name) in ERRORS_COLUMN_NAMES),
        None,
    )
    if column is None:
        header, column = [*header, errors_column_name()], len(header)
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
    )
    writer.writerow([neutralise_cell(name) for name in header])
    width = len(header)
    for line, cells in records:
        if line in errors:
            # Cells past the header's end are none of the file's columns (nor read).
            cells = cells[:width] + [""] * (width - len(cells))
            cells[column] = errors[line]
            writer.writerow([neutralise_cell(cell) for cell in cells])
    return buffer.getvalue()


def rejected_rows_file(
    content: str, encoding: str | None, rows: Iterable[RowResult]
) -> tuple[bytes, str]:
    """The rejected rows (:func:`rejected_rows_csv`) in the upload's encoding, and the
    charset that names it. A character the encoding lacks (one of our messages' arrows in
    Windows-1252) becomes ``?``."""
    encoding = encoding if encoding in CHARSETS else DEFAULT_ENCODING
    text = rejected_rows_csv(content, rows)
    return text.encode(encoding, errors="replace"), CHARSETS[encoding]
