"""Operator commands: `flask postcodes …`, `flask clinics …`, `flask jobs …` and the rest."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .auth import (
    AccountError,
    IssuedLink,
    create_staff_account,
    find_staff_by_email,
    issue_enrolment_link,
    issue_link,
    link_url,
    purge_spent_links,
    purge_spent_pauses,
    set_account_active,
)
from .contact_requests import purge_expired
from .erasure import erase_deleted_rows
from .export import export_rows, rows_to_csv
from .extensions import db
from .geocoding import AddressLocator, current_geocoder, regeocode_postcode_located
from .hpr import current_client as current_hpr_client
from .importer import ImportFileError, RowResult
from .imports import (
    apply_batch,
    create_batch,
    discard_batch,
    plan_batch,
    stored_rejected_rows,
    stored_warnings,
)
from .jobs import run_pending
from .licences import DEFAULT_STALE_DAYS, LicenceRunSummary, check_clinicians, due_for_check
from .mail import SendReport, current_mailer, outbox_status, send_all_now, send_due
from .models import (
    Clinic,
    ImportBatch,
    ImportStatus,
    LinkPurpose,
    PostalCode,
    StaffUser,
    now_utc,
)
from .postcodes import PostcodeFileError, load_postcodes
from .public_json import refresh_all_stale

postcodes_cli = AppGroup("postcodes", help="Manage the postcode register.")
clinics_cli = AppGroup("clinics", help="Manage the clinic directory.")
staff_cli = AppGroup("staff", help="Manage staff accounts.")
requests_cli = AppGroup("requests", help="Look after patients' contact requests.")


def _table_is_empty(model) -> bool:
    return not db.session.scalar(select(func.count()).select_from(model))


@postcodes_cli.command("load")
@click.argument(
    "path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--if-empty", is_flag=True, help="Do nothing when postcodes are already loaded.")
def load_postcodes_command(path: Path | None, if_empty: bool) -> None:
    """Load the postcode register (default: data/postnummer-koordinatar.tsv)."""
    if if_empty and not _table_is_empty(PostalCode):
        click.echo("Postcodes already loaded; nothing to do.")
        return
    path = path or current_app.config["DATA_DIR"] / "postnummer-koordinatar.tsv"
    try:
        report = load_postcodes(db.session, path)
    except PostcodeFileError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(
        f"Postcodes: {report.total} read, {report.created} new, "
        f"{report.updated} updated, {report.unchanged} unchanged."
    )


def _echo_rejected_and_warnings(batch: ImportBatch) -> list[RowResult]:
    """Say why each rejected row was, and what each warning was; return the rejected rows."""
    rejected = stored_rejected_rows(db.session, batch)
    for row in rejected:
        click.echo(f"Line {row.line}: rejected: {'; '.join(row.errors)}", err=True)
    for line, warnings in stored_warnings(db.session, batch):
        click.echo(f"Line {line}: warning: {'; '.join(warnings)}", err=True)
    return rejected


@clinics_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and classify every row; write nothing.")
@click.option("--strict", is_flag=True, help="Write nothing and exit 1 if any row is rejected.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the directory has clinics.")
def import_clinics_command(path: Path, dry_run: bool, strict: bool, if_empty: bool) -> None:
    """Import a clinic list (the format: docs/staff-guide.md#import-format); safe to run twice."""
    if if_empty and not _table_is_empty(Clinic):
        click.echo("The directory already has clinics; nothing to do.")
        return
    if _table_is_empty(PostalCode):
        raise click.ClickException("Load the postcodes first: flask postcodes load")
    locator = AddressLocator(db.session, current_geocoder())
    # The web upload's path, run in one go and in one transaction: the file is kept as a
    # batch, planned into stored rows, and applied from them (imports.py).
    try:
        batch = create_batch(db.session, path.name, path.read_bytes())
        with click.progressbar(
            length=batch.rows_total, label="Checking rows", file=sys.stderr
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.pos)

            counts = plan_batch(db.session, batch, locator, progress)
            bar.update(batch.rows_total - bar.pos)
    except ImportFileError as error:
        db.session.rollback()
        raise click.ClickException(f"{path}: {error}") from error

    if batch.unknown_columns:
        click.echo("Ignored unknown columns: " + ", ".join(batch.unknown_columns))
    rejected = _echo_rejected_and_warnings(batch)
    if locator.looked_up or locator.unavailable:
        click.echo(
            f"Geocoding: {locator.looked_up} address(es) looked up, {locator.from_cache} from "
            f"the cache, {locator.fell_back} placed at their postcode's centre"
            + (" (the geocoder could not be reached)." if locator.unavailable else ".")
        )
    refused = strict and bool(rejected)
    if dry_run or refused:
        discard_batch(db.session, batch)
        db.session.commit()  # keeps geocoding answers only; the directory is untouched
    else:
        # One transaction: if anything fails, nothing of this file is kept.
        try:
            apply_batch(db.session, batch, "command line")
            db.session.commit()
        except SQLAlchemyError as error:
            db.session.rollback()
            raise click.ClickException(
                f"The database refused the import ({type(error).__name__}); nothing was "
                "written. Run it again; if it fails again, check the database."
            ) from error
        # The commit stored a bounded number of the clinics' API JSON; the rest now.
        refresh_all_stale(db.session)
    prefix = "Dry run — nothing written. " if dry_run else ""
    if refused and not dry_run:
        prefix = "--strict: rows were rejected, so nothing was written. "
    click.echo(
        f"{prefix}{batch.rows_total} rows: {counts['new']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['rejected']} rejected."
    )
    if refused or (rejected and batch.rows_total == len(rejected)):
        raise SystemExit(1)


@clinics_cli.command("refresh-json")
def refresh_clinic_json_command() -> None:
    """Store the public JSON of every clinic whose stored copy is stale (after an upgrade)."""
    stored = refresh_all_stale(db.session)
    click.echo(f"Stored the JSON of {stored} clinics.")


@clinics_cli.command("regeocode")
def regeocode_clinics_command() -> None:
    """Look up again the addresses of clinics placed only at their postcode's centre."""
    report = regeocode_postcode_located(db.session, current_geocoder())
    db.session.commit()
    click.echo(
        f"{report.updated} clinic(s) now placed by street address; "
        f"{report.still_postcode} still at their postcode's centre."
        + (" The geocoder could not be reached." if report.unavailable else "")
    )
    if report.unavailable:
        raise SystemExit(1)


@clinics_cli.command("export")
@click.argument(
    "path", required=False, type=click.Path(dir_okay=False, allow_dash=True, path_type=Path)
)
def export_clinics_command(path: Path | None) -> None:
    """Write the directory as CSV in the import format to PATH (default: stdout)."""
    rows = list(export_rows(db.session))
    text = rows_to_csv(rows)
    if path is None or str(path) == "-":
        click.echo(text, nl=False)
        where = "standard output"
    else:
        # The byte-order mark makes Excel read UTF-8; the importer skips it.
        path.write_text("\ufeff" + text, encoding="utf-8", newline="")
        where = str(path)
    click.echo(
        f"Exported {len(rows)} rows (one per clinician at each clinic) to {where}.", err=True
    )


def _link_lifetime() -> timedelta:
    return timedelta(hours=current_app.config["STAFF_LINK_VALID_HOURS"])


def _echo_link(what: str, issued: IssuedLink) -> None:
    # Shown here once, to the operator; the database keeps only its hash.
    until = issued.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"{what} (works once, until {until}; give it to them yourself):")
    click.echo(link_url(issued.token))


def _staff_account(email: str) -> StaffUser:
    account = find_staff_by_email(db.session, email)
    if account is None:
        raise click.ClickException(f"No staff account {email}.")
    if not account.active:
        raise click.ClickException(f"{account.email} is deactivated.")
    return account


@staff_cli.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Also manages staff accounts and reads the audit log.")
def create_staff_command(email: str, admin: bool) -> None:
    """Create a staff account; the password is prompted for (twice), never an argument.

    Prints the one-time link with which they set up their authenticator app.
    """
    # Prompted inside the command, not declared as an option: an option would also accept
    # --password on the command line, where shell history and `ps` would keep it.
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        account = create_staff_account(db.session, email, password, is_admin=admin)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    issued = issue_enrolment_link(db.session, account, "command line", _link_lifetime())
    db.session.commit()
    click.echo(f"Created {'admin' if admin else 'staff'} account {account.email}.")
    _echo_link("Set-up link for the authenticator app", issued)


@staff_cli.command("reset-second-factor")
@click.argument("email")
def reset_second_factor_command(email: str) -> None:
    """Forget a lost authenticator (ending their sessions) and print a new set-up link."""
    account = _staff_account(email)
    issued = issue_enrolment_link(db.session, account, "command line", _link_lifetime())
    db.session.commit()
    _echo_link(f"Set-up link for {account.email}", issued)


@staff_cli.command("reset-password")
@click.argument("email")
def reset_password_command(email: str) -> None:
    """Print a one-time link with which a staff member chooses a new password."""
    account = _staff_account(email)
    issued = issue_link(
        db.session, account, LinkPurpose.RESET_PASSWORD, "command line", _link_lifetime()
    )
    db.session.commit()
    _echo_link(f"Password link for {account.email}", issued)


@staff_cli.command("deactivate")
@click.argument("email")
def deactivate_staff_command(email: str) -> None:
    """Deactivate a staff account and end its sessions everywhere."""
    account = find_staff_by_email(db.session, email)
    if account is None:
        raise click.ClickException(f"No staff account {email}.")
    set_account_active(db.session, account, False, "command line")
    db.session.commit()
    click.echo(f"Deactivated {account.email}; its sessions have ended.")


@staff_cli.command("list")
def list_staff_command() -> None:
    """List staff accounts with their role and status."""
    for account in db.session.scalars(select(StaffUser).order_by(StaffUser.email)):
        role = "admin" if account.is_admin else "staff"
        status = "active" if account.active else "deactivated"
        click.echo(f"{account.email}\t{role}\t{status}")


@staff_cli.command("purge-expired")
def purge_expired_staff_command() -> None:
    """Delete sign-in pauses that have run out, and one-time links used or expired."""
    now = now_utc()
    pauses = purge_spent_pauses(db.session, now)
    links = purge_spent_links(db.session, now)
    db.session.commit()
    click.echo(f"{pauses} sign-in pause(s) and {links} used or expired link(s) deleted.")


@requests_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--vacuum-full",
    is_flag=True,
    help="PostgreSQL: rewrite the request tables (VACUUM FULL; locks them meanwhile).",
)
def purge_requests_command(dry_run: bool, vacuum_full: bool) -> None:
    """Delete contact requests older than REQUEST_RETENTION_DAYS, with all about them."""
    days = current_app.config["REQUEST_RETENTION_DAYS"]
    count = purge_expired(db.session, days, dry_run=dry_run)
    db.session.commit()
    if not dry_run:
        erase_deleted_rows(db.engine, full=vacuum_full)
    verb = "would be deleted" if dry_run else "deleted"
    click.echo(f"{count} request(s) received more than {days} days ago {verb}.")


def loop_options(loop_help: str, *, interval: float):
    """--loop, --interval and (for tests) --max-runs, for a command that can keep at it."""

    def decorate(command):
        # For tests: stop --loop after this many runs (0: run until stopped).
        command = click.option("--max-runs", type=click.IntRange(min=0), default=0, hidden=True)(
            command
        )
        command = click.option(
            "--interval",
            type=click.FloatRange(min=0),
            default=interval,
            show_default=True,
            help="Seconds between runs with --loop.",
        )(command)
        return click.option("--loop", is_flag=True, help=loop_help)(command)

    return decorate


def _repeat(run_once: Callable[[int], None], *, loop: bool, interval: float, max_runs: int) -> None:
    """Run once, or with ``loop`` every ``interval`` seconds until stopped.

    A loop outlives a database restart: a database error is reported and the next run
    tries again (a single run lets it fail, so cron sees it). systemd stops a service with
    SIGTERM: it ends the loop as Ctrl-C does, rolling back what runs (an email or a job
    left claimed is taken up again when its lease runs out). ``max_runs`` is for tests.
    """
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    runs = 0
    try:
        while True:
            try:
                run_once(runs)
            except SQLAlchemyError as error:
                if not loop:
                    raise
                db.session.rollback()
                click.echo(f"Database error ({type(error).__name__}); trying again.", err=True)
            runs += 1
            if not loop or (max_runs and runs >= max_runs):
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        db.session.rollback()
        click.echo("Stopped.")
    finally:
        signal.signal(signal.SIGTERM, previous)


outbox_cli = AppGroup("outbox", help="Send queued email.")

# Messages per send_due call; a run goes on until nothing is due.
OUTBOX_BATCH = 100


def _send_everything_due() -> SendReport:
    """Run send_due in batches until nothing is due or the server cannot be reached."""
    total = SendReport()
    while True:
        report = send_due(
            db.session,
            current_mailer(),
            current_app.config["MAIL_DEFAULT_SENDER"],
            limit=OUTBOX_BATCH,
        )
        total.sent += report.sent
        total.failed += report.failed
        total.remaining = report.remaining
        total.server_unreachable = report.server_unreachable
        # Failed messages are not due again in this run, so a short batch means done.
        if report.server_unreachable or report.sent + report.failed < OUTBOX_BATCH:
            return total


def _echo_send_report(report: SendReport) -> None:
    click.echo(f"Sent {report.sent}, failed {report.failed}, {report.remaining} still waiting.")
    if report.server_unreachable:
        click.echo(
            "The mail server could not be reached; the rest wait for the next run.", err=True
        )


@outbox_cli.command("send")
@loop_options("Keep sending every --interval seconds (Ctrl-C stops).", interval=30.0)
@click.option(
    "--retry-now",
    is_flag=True,
    help="Send every queued email now, ignoring each one's back-off (after a mail outage). "
    "A one-off run; safe beside a running --loop sender.",
)
def send_outbox_command(loop: bool, interval: float, max_runs: int, retry_now: bool) -> None:
    """Send the queued email that is due; failures wait with back-off (cron, or --loop)."""
    if retry_now:
        if loop:
            raise click.UsageError("--retry-now is a one-off run; leave out --loop.")
        report = send_all_now(
            db.session, current_mailer(), current_app.config["MAIL_DEFAULT_SENDER"], "command line"
        )
        db.session.commit()
        _echo_send_report(report)
        return

    def send_once(run: int) -> None:
        report = _send_everything_due()
        # Quiet while idle, so a service's log holds only runs that did something.
        if run == 0 or report.sent or report.failed:
            _echo_send_report(report)

    _repeat(send_once, loop=loop, interval=interval, max_runs=max_runs)


def _format_age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@outbox_cli.command("status")
def outbox_status_command() -> None:
    """Show how many emails wait, are failing and were sent, and the oldest wait."""
    status = outbox_status(db.session)
    click.echo(f"Waiting: {status.waiting}")
    click.echo(f"Failing: {status.failing}")
    click.echo(f"Sent: {status.sent}")
    if status.oldest_waiting_since is not None:
        age = (now_utc() - status.oldest_waiting_since).total_seconds()
        click.echo(f"Oldest waiting: {_format_age(age)}")


jobs_cli = AppGroup("jobs", help="Run background jobs (planning and applying imports).")


@jobs_cli.command("work")
@loop_options("Keep looking for jobs every --interval seconds.", interval=2.0)
def work_command(loop: bool, interval: float, max_runs: int) -> None:
    """Run the queued jobs (uploads to check, imports to apply); --loop keeps at it."""

    # At start (after a deploy's upgrade, which leaves every clinic's API JSON stale),
    # then after each import (run_pending), the stale JSON is stored in short commits.
    backlog = [True]

    def work_once(_run: int) -> None:
        if backlog[0]:
            stored = refresh_all_stale(db.session)
            backlog[0] = False
            if stored:
                click.echo(f"Stored the JSON of {stored} clinics.")
        ran = run_pending()
        if ran or not loop:
            click.echo(f"Ran {ran} job(s).")

    _repeat(work_once, loop=loop, interval=interval, max_runs=max_runs)


@jobs_cli.command("status")
def jobs_status_command() -> None:
    """Show the imports waiting for, or being worked on by, a job."""
    working_statuses = [status for status in ImportStatus if status.is_working]
    working = db.session.scalars(
        select(ImportBatch).where(ImportBatch.status.in_(working_statuses)).order_by(ImportBatch.id)
    ).all()
    click.echo(f"Jobs waiting or running: {len(working)}")
    for batch in working:
        lease = batch.lease_until.isoformat() if batch.lease_until else "-"
        click.echo(
            f"import {batch.id}\t{batch.status.value}\t{batch.rows_done}/{batch.rows_total} "
            f"rows\tlease until {lease}\tattempts {batch.attempts}"
        )


clinicians_cli = AppGroup("clinicians", help="Look after clinicians and their licences.")


def _echo_licence_summary(summary: LicenceRunSummary) -> None:
    click.echo(f"Checked {summary.checked} clinician(s) against the Health Personnel Register.")
    for status, count in sorted(summary.by_status.items()):
        click.echo(f"  {status.value}: {count}")
    if summary.hidden:
        click.echo(
            f"{summary.hidden} clinician(s) are now hidden from patients: "
            "see 'Licences to look at' on the staff pages."
        )
    if summary.unavailable:
        click.echo(
            f"HPR gave no usable answer for {summary.unavailable} clinician(s); their status "
            "is unchanged: run the command again later to check them."
        )
    if summary.stopped_because:
        click.echo(
            f"Stopped ({summary.stopped_because}) with {summary.not_reached} clinician(s) "
            "not reached: run the command again to go on where it stopped."
        )


@clinicians_cli.command("verify-licences")
@click.option(
    "--stale-days",
    type=click.IntRange(min=0),
    default=DEFAULT_STALE_DAYS,
    show_default=True,
    help="Check clinicians never checked, or last checked more than this many days ago.",
)
def verify_licences_command(stale_days: int) -> None:
    """Check clinicians' authorisations against the Health Personnel Register (HPR).

    Paced by HPR_REQUESTS_PER_SECOND; each answer is saved at once, so an interrupted run
    resumes where it stopped. Clinicians found not valid are hidden from patients.
    """
    client = current_hpr_client()
    if client is None:
        raise click.ClickException("The licence check is off: set HPR_URL (docs/hpr.md).")
    due = list(db.session.scalars(due_for_check(stale_days)))
    if not due:
        click.echo(f"Every clinician was checked within the last {stale_days} day(s).")
        return
    with click.progressbar(length=len(due), label="Checking licences") as progress:

        def save_and_advance(_clinician) -> None:
            db.session.commit()
            progress.update(1)

        summary = check_clinicians(db.session, due, client=client, after_each=save_and_advance)
    db.session.commit()
    _echo_licence_summary(summary)
    if summary.stopped_because or summary.unavailable:
        sys.exit(1)
