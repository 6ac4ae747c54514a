"""The import service: one path from a clinic list to the directory, for the web and the CLI.

A file becomes an :class:`ImportBatch` (:func:`create_batch`); its plan is worked out once
and stored row by row in ``import_row`` (:func:`plan_batch`); its accepted rows are then
written from that stored plan (:func:`apply_batch`), in one transaction, or not at all.
The staff upload runs the two steps as background jobs (``jobs.py``), with staff reading
the stored plan in between; ``flask clinics import`` runs them one after the other. Every
function here takes the session and flushes; committing is the caller's (the view, the
command or the job runner).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Text, cast, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .hpr import current_client as current_hpr_client
from .hpr import licence_checks_enabled
from .importer import (
    AddressProgress,
    ClinicianRecord,
    ClinicRecord,
    ImportReport,
    Locate,
    PracticeRecord,
    RowResult,
    apply_import,
    decode_upload_as,
    plan_rows,
    read_rows,
    record_import,
    take_import_lock,
)
from .licences import DEFAULT_STALE_DAYS, LicenceRunSummary, check_clinicians
from .models import (
    Clinician,
    ImportBatch,
    ImportRow,
    ImportStatus,
    RowStatus,
    StaffUser,
    as_utc,
    now_utc,
)

logger = logging.getLogger(__name__)

# Planned rows are stored this many at a time, or after this many seconds (geocoding can
# make rows slow); the caller's checkpoint runs after each store.
PLAN_CHUNK_ROWS = 500
PLAN_CHUNK_SECONDS = 5.0
# While addresses are looked up (about one a second), what is planned is stored this often,
# so that the progress staff see moves with the look-ups.
PLAN_LOOKUP_PROGRESS_SECONDS = 1.0
# The preview shows this many rows a page.
ROWS_PER_PAGE = 50
# The key of a plan's summary that counts its rows with warnings (beside the statuses).
WARNINGS = "warnings"
# What the preview can show: every row in file order, one status, or the rows with warnings.
ROW_FILTERS = ("all", *(status.value for status in RowStatus), WARNINGS)

# Called with (rows done, rows in the file) after each stored chunk of a plan.
Checkpoint = Callable[[int, int], None]
# The most applying an import spends asking HPR about its clinicians; those left over stay
# as they are until `flask clinicians verify-licences` comes to them.
IMPORT_LICENCE_BUDGET_SECONDS = 30.0


class BatchAlreadyApplied(RuntimeError):
    """The batch was applied already, or its job now belongs to another worker."""


def create_batch(
    session: Session,
    filename: str,
    data: bytes,
    uploaded_by: StaffUser | None = None,
    language: str | None = None,
) -> ImportBatch:
    """Keep an uploaded file as a batch queued for planning; refuse an unreadable one now.

    The whole file is decoded and split into rows here (a second or less for 5 MB), so a
    file in an unknown encoding, with a broken quote or without the required columns is
    refused at once, where the staff member is, rather than by a job later. The file's
    encoding is kept for its rejected rows; ``language`` is the one its rows are checked
    and reported in (the uploader's).
    """
    text, encoding = decode_upload_as(data)
    clinic_list = read_rows(text)
    batch = ImportBatch(
        filename=filename[:255] or "upload.csv",
        content=text,
        encoding=encoding,
        language=language,
        uploaded_by=uploaded_by,
        status=ImportStatus.QUEUED,
        rows_total=len(clinic_list.rows),
        rows_done=0,
        unknown_columns=clinic_list.unknown_columns,
    )
    session.add(batch)
    session.flush()
    return batch


def _stored(batch_id: int, row: RowResult) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "line": row.line,
        "status": row.status,
        "errors": row.errors,
        # The cells as read matter for a rejected row (shown, and downloaded to be fixed);
        # an accepted one is its records. Half the stored JSON of a large file.
        "raw": row.raw if row.status is RowStatus.REJECTED else {},
        "clinic": row.clinic.to_json() if row.clinic is not None else None,
        "clinician": row.clinician.to_json() if row.clinician is not None else None,
        "practice": row.practice.to_json() if row.practice is not None else None,
        "warnings": row.warnings,
        "changes": [list(change) for change in row.changes],
    }


def plan_batch(
    session: Session,
    batch: ImportBatch,
    locate: Locate | None = None,
    checkpoint: Checkpoint | None = None,
) -> dict[str, int]:
    """Plan every row of a batch and store the plan; the batch becomes planned.

    Rows are stored in chunks (:data:`PLAN_CHUNK_ROWS`), each followed by
    ``checkpoint(done, total)``: the job runner commits there, so its progress and the
    geocoder's answers are kept as it goes; the command line updates its progress bar. A
    plan left half-stored by a worker that died is thrown away first. Returns the counts.
    """
    batch_id = batch.id  # read once: a checkpoint's commit expires the batch
    session.execute(delete(ImportRow).where(ImportRow.batch_id == batch_id))
    clinic_list = read_rows(batch.content)
    total, done = len(clinic_list.rows), 0
    batch.rows_total, batch.rows_done = total, done
    batch.unknown_columns = clinic_list.unknown_columns
    counts: Counter[str] = Counter()
    chunk: list[dict[str, Any]] = []
    stored_at = time.monotonic()
    addresses = AddressProgress()
    rows = plan_rows(session, clinic_list.rows, locate, clinic_list.names, addresses)
    # Counted by the plan before its first row; shown from the first checkpoint on.
    addresses_stored = -1

    def store() -> None:
        nonlocal done, addresses_stored
        if chunk:
            session.execute(insert(ImportRow), chunk)
        done += len(chunk)
        batch.rows_done = done
        batch.addresses_total, batch.addresses_done = addresses.total, addresses.done
        addresses_stored = addresses.done
        chunk.clear()
        session.flush()

    for row in rows:
        counts[row.status.value] += 1
        counts[WARNINGS] += bool(row.warnings)
        chunk.append(_stored(batch_id, row))
        waited = time.monotonic() - stored_at
        if (
            len(chunk) >= PLAN_CHUNK_ROWS
            or waited > PLAN_CHUNK_SECONDS
            or (addresses.done != addresses_stored and waited > PLAN_LOOKUP_PROGRESS_SECONDS)
        ):
            store()
            stored_at = time.monotonic()
            if checkpoint is not None:
                checkpoint(done, total)
    store()
    batch.summary = {status.value: counts[status.value] for status in RowStatus}
    batch.summary[WARNINGS] = counts[WARNINGS]
    batch.status = ImportStatus.PLANNED
    batch.planned_at = now_utc()
    session.flush()
    return batch.summary


def stored_accepted_rows(session: Session, batch: ImportBatch) -> list[RowResult]:
    """The rows of a stored plan that will be written, in file order, as the importer's rows."""
    query = (
        select(
            ImportRow.line,
            ImportRow.status,
            ImportRow.clinic,
            ImportRow.clinician,
            ImportRow.practice,
        )
        .where(ImportRow.batch_id == batch.id, ImportRow.status != RowStatus.REJECTED)
        .order_by(ImportRow.line)
    )
    return [
        RowResult(
            line=line,
            raw={},
            status=status,
            clinic=ClinicRecord.from_json(clinic),
            clinician=ClinicianRecord.from_json(clinician),
            practice=PracticeRecord.from_json(practice),
        )
        for line, status, clinic, clinician, practice in session.execute(query)
    ]


def stored_rejected_rows(session: Session, batch: ImportBatch) -> list[RowResult]:
    """The rejected rows of a stored plan, with their cells and reasons, in file order."""
    query = (
        select(ImportRow.line, ImportRow.raw, ImportRow.errors)
        .where(ImportRow.batch_id == batch.id, ImportRow.status == RowStatus.REJECTED)
        .order_by(ImportRow.line)
    )
    return [
        RowResult(line=line, raw=raw, errors=list(errors))
        for line, raw, errors in session.execute(query)
    ]


def stored_warnings(session: Session, batch: ImportBatch) -> list[tuple[int, list[str]]]:
    """The (line, warnings) of a stored plan's rows that have warnings, in file order."""
    if not batch.summary.get(WARNINGS):
        return []
    query = (
        select(ImportRow.line, ImportRow.warnings)
        .where(ImportRow.batch_id == batch.id, ImportRow.status != RowStatus.REJECTED)
        .order_by(ImportRow.line)
    )
    return [(line, list(warnings)) for line, warnings in session.execute(query) if warnings]


def default_row_filter(batch: ImportBatch) -> str:
    """What the preview shows first: the rejected rows if there are any, else every row."""
    return "rejected" if batch.summary.get("rejected") else "all"


def rows_in_filter(batch: ImportBatch, show: str) -> int:
    """How many stored rows a preview filter holds (from the plan's counts, not a COUNT)."""
    return batch.rows_total if show == "all" else batch.summary.get(show, 0)


def stored_rows_query(batch: ImportBatch, show: str = "all") -> Select[tuple[ImportRow]]:
    """The preview's rows in file order: all of them, one status, or those with warnings.

    Each reads an index in order ((batch, line), or (batch, status, line)), so a page costs
    the same whatever the file's size; a sort over every row would not. Rows with warnings
    are picked from the file's rows as they come (a file has few, and no index says which).
    """
    query = select(ImportRow).where(ImportRow.batch_id == batch.id)
    if show == WARNINGS:
        # The JSON as text: PostgreSQL's json type has no equality, and both store "[]".
        query = query.where(cast(ImportRow.warnings, Text) != "[]")
    elif show != "all":
        query = query.where(ImportRow.status == RowStatus(show))
    return query.order_by(ImportRow.line)


def apply_batch(
    session: Session,
    batch: ImportBatch,
    actor: StaffUser | str,
    *,
    lease_token: str | None = None,
) -> dict[str, int]:
    """Write a planned batch's accepted rows and audit the import; the caller commits.

    Under the import lock, the batch is first marked applied with a conditional UPDATE,
    so however many workers (or clicks) try, one writes it; with ``lease_token``, only the
    job that holds the batch's lease. Raises :class:`BatchAlreadyApplied` otherwise.
    With licence checks on (``HPR_URL``), the file's new clinicians, and those not checked
    lately, are then checked against HPR within a time budget (:func:`check_imported_licences`,
    the one place an import does). Returns the file's counts by status.
    """
    take_import_lock(session)
    claim = update(ImportBatch).where(ImportBatch.id == batch.id, ImportBatch.applied_at.is_(None))
    if lease_token is not None:
        claim = claim.where(ImportBatch.lease_token == lease_token)
    claimed = session.execute(
        claim.values(applied_at=now_utc()).execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise BatchAlreadyApplied(f"import batch {batch.id} is applied or being applied")
    report = ImportReport(rows=stored_accepted_rows(session, batch))
    clinicians = apply_import(session, report)
    record_import(session, actor, report, batch, counts=batch.summary)
    if licence_checks_enabled():
        check_imported_licences(session, clinicians)
    batch.status = ImportStatus.APPLIED
    batch.lease_token = batch.lease_until = None
    batch.error = None
    session.flush()
    return dict(batch.summary)


def licences_due(clinicians: Iterable[Clinician], now: datetime) -> list[Clinician]:
    """The clinicians never checked against HPR, or not for DEFAULT_STALE_DAYS (as
    ``flask clinicians verify-licences`` picks them): the never-checked first, then the
    oldest, so that a budget that runs out leaves the most recently checked."""
    cutoff = now - timedelta(days=DEFAULT_STALE_DAYS)
    due = [
        clinician
        for clinician in clinicians
        if clinician.licence_checked_at is None or as_utc(clinician.licence_checked_at) < cutoff
    ]
    return sorted(
        due,
        key=lambda clinician: (
            clinician.licence_checked_at is not None,
            as_utc(clinician.licence_checked_at or now),
        ),
    )


def check_imported_licences(
    session: Session, clinicians: list[Clinician]
) -> LicenceRunSummary | None:
    """Check an applied import's new and stale clinicians against HPR, for at most
    IMPORT_LICENCE_BUDGET_SECONDS; the answers are written with the import.

    Returns what the check found, or None when it broke off: the import is kept either
    way, and whoever was not checked stays as they were, for verify-licences to come to.
    """
    client = current_hpr_client()
    assert client is not None, "call only when licence_checks_enabled()"
    due = licences_due(clinicians, now_utc())
    try:
        summary = check_clinicians(
            session, due, client=client, budget_seconds=IMPORT_LICENCE_BUDGET_SECONDS
        )
    except SQLAlchemyError:
        raise  # the transaction is broken: the import fails as a whole, as it should
    except Exception:
        # Whatever the register (or our reading of it) did, a checked file still imports.
        logger.exception("import: the licence check broke off; the import goes on")
        return None
    logger.info(
        "import: %s licence(s) checked, %s hidden, %s HPR could not answer, %s not reached",
        summary.checked,
        summary.hidden,
        summary.unavailable,
        summary.not_reached,
    )
    return summary


def discard_batch(session: Session, batch: ImportBatch) -> None:
    """Delete a batch and its stored plan (a dry run keeps nothing but geocoding answers)."""
    session.execute(delete(ImportRow).where(ImportRow.batch_id == batch.id))
    session.delete(batch)
    session.flush()


def recent_batches(session: Session, limit: int = 10) -> list[ImportBatch]:
    """The latest uploads, newest first, for the staff pages."""
    return list(session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)))
