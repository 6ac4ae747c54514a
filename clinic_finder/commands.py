"""Operator commands: `flask postcodes …` and `flask clinics …`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from .extensions import db
from .importer import ImportFileError, RowStatus, apply_import, decode_upload, plan_import
from .models import Clinic, PostalCode
from .postcodes import PostcodeFileError, load_postcodes

postcodes_cli = AppGroup("postcodes", help="Manage the postcode register.")
clinics_cli = AppGroup("clinics", help="Manage the clinic directory.")


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


@clinics_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and classify every row; write nothing.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the directory has clinics.")
def import_clinics_command(path: Path, dry_run: bool, if_empty: bool) -> None:
    """Import a clinic list in the import format (see the README); safe to run twice."""
    if if_empty and not _table_is_empty(Clinic):
        click.echo("The directory already has clinics; nothing to do.")
        return
    if _table_is_empty(PostalCode):
        raise click.ClickException("Load the postcodes first: flask postcodes load")
    try:
        report = plan_import(db.session, decode_upload(path.read_bytes()))
    except ImportFileError as error:
        raise click.ClickException(f"{path}: {error}") from error

    if report.unknown_columns:
        click.echo("Ignored unknown columns: " + ", ".join(report.unknown_columns))
    for row in report.rejected:
        click.echo(f"Line {row.line}: rejected: {'; '.join(row.errors)}", err=True)
    if dry_run:
        db.session.rollback()
    else:
        # One transaction: if anything fails, nothing of this file is kept.
        apply_import(db.session, report)
        db.session.commit()
    counts = report.counts
    click.echo(
        f"{'Dry run — nothing written. ' if dry_run else ''}"
        f"{len(report.rows)} rows: {counts['new']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['rejected']} rejected."
    )
    if report.count(RowStatus.REJECTED) and not report.accepted:
        raise SystemExit(1)
