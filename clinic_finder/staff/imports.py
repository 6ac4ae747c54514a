"""Clinic lists in and out: upload, check and import (background jobs), rejected rows, export."""

from __future__ import annotations

from flask import (
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from .. import jobs
from ..audit import record
from ..export import export_directory_csv, rejected_rows_file
from ..extensions import db
from ..i18n import current_language
from ..importer import ImportFileError, columns_left_as_they_are
from ..imports import (
    ROW_FILTERS,
    ROWS_PER_PAGE,
    create_batch,
    default_row_filter,
    recent_batches,
    rows_in_filter,
    stored_rejected_rows,
    stored_rows_query,
)
from ..models import ImportBatch
from ..web.requests import page_number
from . import bp
from .forms import (
    ConfirmForm,
    ImportUploadForm,
)

# --- import and export -----------------------------------------------------------------
# Checking a file and importing it are background jobs (jobs.py): these views queue them,
# and show the stored plan and the progress; none of them reads the whole file or waits.


@bp.route("/import", methods=["GET", "POST"])
def import_upload():
    """Upload a clinic list; it is checked in the background and nothing is written yet."""
    form = ImportUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            batch = create_batch(
                db.session,
                upload.filename or "upload.csv",
                upload.read(),
                current_user,
                language=current_language(),
            )
        except ImportFileError as error:
            db.session.rollback()
            form.file.errors.append(str(error))
        else:
            # The upload and its queued job in one commit: neither exists without the other.
            db.session.commit()
            jobs.start_in_process()
            return redirect(url_for("staff.import_preview", batch_id=batch.id))
    return render_template("staff/import.html", form=form, batches=recent_batches(db.session))


@bp.get("/import/<int:batch_id>")
def import_preview(batch_id: int):
    """Show an upload's progress, then what importing it does, 50 rows a page."""
    batch = db.get_or_404(ImportBatch, batch_id)
    if batch.status.is_working:
        # A job left waiting by a restarted development server is taken up again.
        jobs.start_in_process()
    rows = show = None
    if batch.planned_at is not None:
        show = request.args.get("show")
        if show not in ROW_FILTERS:
            show = default_row_filter(batch)
        rows = db.paginate(
            stored_rows_query(batch, show),
            page=page_number(),
            per_page=ROWS_PER_PAGE,
            max_per_page=ROWS_PER_PAGE,
            error_out=False,
            count=False,
        )
        # The plan's counts say how many rows there are: no COUNT over 40,000 rows a page.
        rows.total = rows_in_filter(batch, show)
    return render_template(
        "staff/import_preview.html",
        batch=batch,
        rows=rows,
        left_as_they_are=columns_left_as_they_are(batch.content) if rows is not None else [],
        show=show,
        filters=ROW_FILTERS,
        form=ConfirmForm(),
    )


@bp.get("/import/<int:batch_id>/progress")
def import_progress(batch_id: int):
    """How far the work on an upload is, as JSON, for the preview to show as it goes."""
    batch = db.get_or_404(ImportBatch, batch_id)
    return jsonify(
        {
            "status": batch.status.value,
            "working": batch.status.is_working,
            "rows_total": batch.rows_total,
            "rows_done": batch.rows_done,
            "addresses_total": batch.addresses_total,
            "addresses_done": batch.addresses_done,
            "html": render_template("staff/_import_progress.html", batch=batch).strip(),
        }
    )


@bp.post("/import/<int:batch_id>/apply")
def import_apply(batch_id: int):
    """Queue writing every accepted row of the file, in one transaction, or nothing."""
    batch = db.get_or_404(ImportBatch, batch_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("staff.import_preview", batch_id=batch.id))
    # A conditional update: a double click (or two staff at once) queues it once.
    if not jobs.request_apply(db.session, batch, current_user):
        db.session.rollback()
        flash(_("This file was already imported, or is being imported."), "error")
        return redirect(url_for("staff.import_preview", batch_id=batch.id))
    db.session.commit()
    jobs.start_in_process()
    flash(_("The import has started. You can leave this page and come back."), "success")
    return redirect(url_for("staff.import_preview", batch_id=batch.id))


@bp.get("/import/<int:batch_id>/rejected.csv")
def import_rejected(batch_id: int):
    """Download the rejected rows as the file had them, with their errors, to fix and retry."""
    batch = db.get_or_404(ImportBatch, batch_id)
    if batch.planned_at is None:
        flash(_("The file is still being checked."), "error")
        return redirect(url_for("staff.import_preview", batch_id=batch.id))
    rows = stored_rejected_rows(db.session, batch)
    data, charset = rejected_rows_file(batch.content, batch.encoding, rows)
    response = Response(data, content_type=f"text/csv; charset={charset}")
    response.headers["Content-Disposition"] = f'attachment; filename="rejected-{batch.id}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/export.csv")
def export_csv():
    """Download the whole directory in the import format (audited, like every export)."""
    text = export_directory_csv(db.session)
    record(db.session, current_user, "directory.export", "clinic", None, summary="CSV export")
    db.session.commit()
    return _csv_response(text, "clinics.csv")


def _csv_response(text: str, filename: str) -> Response:
    # The BOM makes Excel read UTF-8 (æ, ø, å) correctly.
    response = Response("\ufeff" + text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
