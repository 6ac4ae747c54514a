"""Background jobs: planning and applying uploaded clinic lists, with the database as the queue.

An :class:`ImportBatch` whose status is ``queued`` or ``apply_queued`` is a job waiting.
It is queued in the same transaction as the upload (or the staff member's "Import"), so
a job can neither be lost nor run before what it works on is committed, and the job's
state, progress and stored plan are where every host's staff pages read them. The
transactional outbox (``mail.py``) works the same way; docs/deploy.md says why no
separate queue (huey, Redis) is used.

A worker claims a job with a conditional UPDATE, as the outbox sender claims a message,
and holds it for ``JOBS_LEASE_SECONDS``: planning renews the lease at every stored chunk
and checks it is still the holder before each commit (a worker presumed dead that wakes
up finds the job gone and stops); a job whose worker died is taken over when its lease has
run out, and planned again from the start. Applying is one transaction that begins by
marking the batch applied under the import lock, conditional on still holding the lease,
so it is written once or not at all, and a retry after a crash is safe.

Workers: ``flask jobs work --loop`` as a service in production; elsewhere (``make run``,
the tests) a thread of the web process, started when a job is queued
(``JOBS_RUN_IN_PROCESS``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import weakref
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .extensions import db
from .geocoding import AddressLocator, ThrottledGeocoder, current_geocoder
from .importer import ImportFileError
from .imports import BatchAlreadyApplied, apply_batch, plan_batch
from .models import ImportBatch, ImportStatus, StaffUser, now_utc
from .public_json import refresh_all_stale

logger = logging.getLogger(__name__)

EXTENSION_KEY = "clinic_finder.jobs"
# A job whose workers died this many times (out of memory, say) is not tried again.
MAX_ATTEMPTS = 3
# What the audit log names as the actor when the staff member who pressed Import is gone.
UNKNOWN_ACTOR = "staff (account removed)"


class LeaseLost(RuntimeError):
    """Another worker took the job over: this one was presumed dead and must stop."""


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: which batch, which step, and the lease's token."""

    batch_id: int
    step: str  # "plan" or "apply"
    token: str


def request_apply(session: Session, batch: ImportBatch, staff: StaffUser) -> bool:
    """Queue applying a planned batch; False if it is not waiting for that (no commit).

    A conditional UPDATE, so a double click or two staff members queue it once.
    """
    queued = session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch.id, ImportBatch.status == ImportStatus.PLANNED)
        .values(
            status=ImportStatus.APPLY_QUEUED,
            apply_requested_by_id=staff.id,
            attempts=0,
            error=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return queued == 1


def _claimable(now):
    return or_(
        ImportBatch.status.in_([ImportStatus.QUEUED, ImportStatus.APPLY_QUEUED]),
        and_(
            ImportBatch.status.in_([ImportStatus.PLANNING, ImportStatus.APPLYING]),
            ImportBatch.lease_until < now,
        ),
    )


def _unleased(now):
    return or_(ImportBatch.lease_until.is_(None), ImportBatch.lease_until < now)


def claim_next(session: Session, lease_seconds: float) -> Claim | None:
    """Claim the oldest waiting job (or one whose worker died), committing the claim."""
    now = now_utc()
    passed_over: set[int] = set()
    while True:
        query = select(ImportBatch.id, ImportBatch.status, ImportBatch.attempts).where(
            _claimable(now)
        )
        if passed_over:
            query = query.where(ImportBatch.id.not_in(passed_over))
        # PostgreSQL: a job another worker is claiming, or is applying (its transaction
        # holds the row), is skipped rather than waited for. SQLite has one writer anyway.
        found = session.execute(
            query.order_by(ImportBatch.id).limit(1).with_for_update(skip_locked=True)
        ).first()
        if found is None:
            session.commit()
            return None
        planning = found.status in (ImportStatus.QUEUED, ImportStatus.PLANNING)
        unchanged = and_(ImportBatch.id == found.id, ImportBatch.status == found.status)
        if found.attempts >= MAX_ATTEMPTS:
            session.execute(
                update(ImportBatch)
                .where(unchanged, _unleased(now))
                .values(
                    status=ImportStatus.FAILED if planning else ImportStatus.PLANNED,
                    error="WorkerLost",
                    lease_token=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
            logger.warning(
                "import %s: its worker stopped %s times; given up", found.id, MAX_ATTEMPTS
            )
            passed_over.add(found.id)
            continue
        token = secrets.token_hex(16)
        # Of two workers, exactly one matches the row as it was.
        claimed = session.execute(
            update(ImportBatch)
            .where(unchanged, _unleased(now))
            .values(
                status=ImportStatus.PLANNING if planning else ImportStatus.APPLYING,
                lease_token=token,
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=ImportBatch.attempts + 1,
                step_started_at=now,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if claimed == 1:
            return Claim(found.id, "plan" if planning else "apply", token)
        passed_over.add(found.id)


def _hold(session: Session, claim: Claim, **values) -> None:
    """Update the job's batch, in the caller's transaction, if this worker still holds it.

    Each commit of a job goes through here first: a worker presumed dead (its lease ran
    out, another took the job) finds out, and its transaction is rolled back.
    """
    held = session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == claim.batch_id, ImportBatch.lease_token == claim.token)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if held != 1:
        raise LeaseLost(f"import {claim.batch_id} was taken over by another worker")


def _end(session: Session, claim: Claim, status: ImportStatus, error: str) -> None:
    """Record that the step failed (in a transaction of its own) and let the job go."""
    session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == claim.batch_id, ImportBatch.lease_token == claim.token)
        .values(status=status, error=error[:500], lease_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _plan(
    session: Session, claim: Claim, locate: AddressLocator | None, lease_seconds: float
) -> None:
    batch = session.get(ImportBatch, claim.batch_id)
    assert batch is not None
    # The rows are reported in the language of whoever uploaded the file.
    with force_locale(batch.language or current_app.config["DEFAULT_LOCALE"]):
        _plan_in_language(session, claim, batch, locate, lease_seconds)


def _plan_in_language(
    session: Session,
    claim: Claim,
    batch: ImportBatch,
    locate: AddressLocator | None,
    lease_seconds: float,
) -> None:

    def checkpoint(done: int, total: int) -> None:
        # Each chunk's rows, progress and geocoding answers are kept, if still ours.
        _hold(session, claim, lease_until=now_utc() + timedelta(seconds=lease_seconds))
        session.commit()

    try:
        plan_batch(session, batch, locate, checkpoint)
        _hold(session, claim, lease_token=None, lease_until=None)
        session.commit()
    except LeaseLost:
        session.rollback()
        logger.warning("import %s: planning taken over by another worker", claim.batch_id)
    except ImportFileError as error:
        # Our own words about the file (checked at upload; only a stranger file gets here).
        session.rollback()
        _end(session, claim, ImportStatus.FAILED, str(error))
    except Exception as error:
        session.rollback()
        logger.exception("import %s: planning failed", claim.batch_id)
        _end(session, claim, ImportStatus.FAILED, type(error).__name__)
    else:
        logger.info("import %s planned: %s", claim.batch_id, batch.summary)


def _apply(session: Session, claim: Claim) -> None:
    batch = session.get(ImportBatch, claim.batch_id)
    assert batch is not None
    actor: StaffUser | str = batch.apply_requested_by or UNKNOWN_ACTOR
    try:
        counts = apply_batch(session, batch, actor, lease_token=claim.token)
        session.commit()
    except BatchAlreadyApplied:
        session.rollback()
        logger.warning("import %s: applied already, or taken over", claim.batch_id)
    except Exception as error:
        session.rollback()
        logger.exception("import %s failed; nothing was written", claim.batch_id)
        # Nothing was written: back to planned, so staff can try again.
        _end(session, claim, ImportStatus.PLANNED, type(error).__name__)
    else:
        logger.info("import %s applied: %s", claim.batch_id, counts)


def run_claim(
    session: Session,
    claim: Claim,
    *,
    geocoder: ThrottledGeocoder | None,
    geocoding_budget: float | None,
    lease_seconds: float,
) -> None:
    """Run one claimed job to its end (planned or applied), or record why it failed."""
    if claim.step == "plan":
        # Without a geocoder every address goes to its postcode's centre: nothing to look up.
        locate = (
            AddressLocator(session, geocoder, time_budget=geocoding_budget)
            if geocoder is not None
            else None
        )
        _plan(session, claim, locate, lease_seconds)
    else:
        _apply(session, claim)


def run_pending(limit: int | None = None) -> int:
    """Run waiting jobs one after another until none is left (or ``limit``); count them.

    Needs an app context: it uses the app's session, geocoder and settings.
    """
    config = current_app.config
    ran = 0
    while limit is None or ran < limit:
        try:
            claim = claim_next(db.session, config["JOBS_LEASE_SECONDS"])
        except OperationalError:
            # SQLite: another process holds the single write lock (a long apply); the
            # job waits for the next run.
            db.session.rollback()
            logger.info("jobs: the database is busy; trying again later")
            break
        if claim is None:
            break
        run_claim(
            db.session,
            claim,
            geocoder=current_geocoder(),
            geocoding_budget=config["IMPORT_GEOCODING_BUDGET_SECONDS"],
            lease_seconds=config["JOBS_LEASE_SECONDS"],
        )
        ran += 1
    if ran:
        # An import's clinics beyond what its commit stored (public_json.REFRESH_PER_COMMIT).
        try:
            refresh_all_stale(db.session)
        except OperationalError:
            db.session.rollback()
            logger.info("jobs: the database is busy; the API's JSON is stored later")
    return ran


# --- the worker thread for development and tests ----------------------------------------

_workers: weakref.WeakSet[InProcessWorker] = weakref.WeakSet()


class InProcessWorker:
    """A thread of this process that runs waiting jobs, started when one is queued.

    It runs until the queue is empty and then ends, so an idle site has no thread; a job
    queued while it runs is picked up before it ends.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        _workers.add(self)

    def kick(self) -> None:
        """Make sure the thread runs (and looks at the queue once more)."""
        with self._lock:
            self._again = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="clinic-finder-jobs", daemon=True
                )
                self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait until the thread has ended; False if it still runs after ``timeout`` s."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        with self.app.app_context():
            while True:
                with self._lock:
                    self._again = False
                try:
                    run_pending()
                except Exception:
                    # The database away, say: the jobs wait, claimed or not, for the next
                    # kick (a claimed one when its lease runs out).
                    logger.exception("jobs: the worker thread stopped")
                    try:
                        db.session.rollback()
                    except Exception:  # noqa: BLE001 - nothing more to do here
                        logger.warning("jobs: could not roll back")
                with self._lock:
                    if not self._again:
                        self._thread = None
                        return


def start_in_process() -> None:
    """Run waiting jobs in a thread of this process, if the app is set up to (after commit)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["JOBS_RUN_IN_PROCESS"]:
        return
    worker = app.extensions.get(EXTENSION_KEY)
    if worker is None:
        worker = app.extensions.setdefault(EXTENSION_KEY, InProcessWorker(app))
    worker.kick()


def wait_for_in_process_workers(timeout: float) -> bool:
    """Wait for every in-process worker thread to end (tests, before they clean up)."""
    return all(worker.wait(timeout) for worker in list(_workers))
