"""The staff area: sign-in, the directory, imports and exports, staff accounts, audit log."""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select

from .. import auth, jobs
from ..api.views import clinic_json
from ..audit import record
from ..directory import (
    ClinicFilters,
    DirectoryError,
    add_clinician,
    create_clinic,
    mark_clinic_verified,
    set_clinic_active,
    set_clinician_active,
    staff_clinic_query,
    update_clinic,
    update_clinician,
)
from ..export import export_directory_csv, rejected_rows_csv
from ..extensions import db, limiter
from ..geocoding import (
    AddressLocator,
    current_geocoder,
    postcode_located_clinics,
    regeocode_postcode_located,
)
from ..i18n import format_moment
from ..importer import ImportFileError
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
from ..models import (
    AuditEntry,
    Clinic,
    Clinician,
    ImportBatch,
    LinkPurpose,
    LocationSource,
    Profession,
)
from ..models import StaffUser as StaffAccount
from .forms import (
    ChangePasswordForm,
    ClinicForm,
    ClinicianForm,
    ClinicSearchForm,
    ConfirmForm,
    ImportUploadForm,
    SecondFactorForm,
    SetPasswordForm,
    SignInForm,
    StaffUserForm,
)

bp = Blueprint("staff", __name__, url_prefix="/staff")

# Reachable before sign-in is complete (the code and enrolment steps need the password
# step first; the link pages need a one-time link from an admin).
OPEN_ENDPOINTS = {
    "staff.sign_in",
    "staff.second_factor",
    "staff.enrol_second_factor",
    "staff.open_link",
    "staff.reset_password",
}
CLINICS_PER_PAGE = 50
AUDIT_PER_PAGE = 100


@bp.before_request
def require_staff():
    """Refuse everyone but signed-in staff, except on the sign-in page."""
    if request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        return None
    return current_app.login_manager.unauthorized()


def admin_required(view):
    """Let only admins through; other staff get 403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def page_number() -> int:
    """The ``page`` query parameter, 1 when missing or not a sensible page number."""
    page = request.args.get("page", "1")
    return int(page) if page.isdigit() and 0 < len(page) <= 6 and int(page) >= 1 else 1


def _sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def _locator(time_budget: float | None = None) -> AddressLocator:
    return AddressLocator(db.session, current_geocoder(), time_budget=time_budget)


# --- signing in and out ----------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def sign_in():
    """Check email and password; then ask for the second factor (or enrol one)."""
    form = SignInForm()
    if form.validate_on_submit():
        client = auth.client_key(request.remote_addr)
        user, found = auth.authenticate(db.session, form.email.data, form.password.data, client)
        if (
            user is not None
            and not user.has_second_factor
            and auth.session_link(db.session, LinkPurpose.ENROL, user) is None
        ):
            # The password alone must not reach enrolment: whoever got there first would
            # own the account. A set-up link from an admin must have been opened first.
            record(
                db.session,
                "anonymous",
                "auth.sign_in_failed",
                "staff_user",
                user.id,
                summary="no set-up link",
            )
            db.session.commit()
            flash(str(NEEDS_SET_UP_LINK), "error")
            return render_template("staff/sign_in.html", form=form)
        if user is not None:
            auth.remember_password_step(user, request.args.get("next"))
            db.session.commit()
            step = "staff.second_factor" if user.has_second_factor else "staff.enrol_second_factor"
            return redirect(url_for(step))
        # Only a known account is named: what was typed might be a password in the wrong box.
        record(
            db.session,
            "anonymous",
            "auth.sign_in_failed",
            "staff_user",
            found.id if found is not None else None,
            summary="password step",
        )
        db.session.commit()
        current_app.logger.info("staff sign-in refused")
        flash(str(SIGN_IN_REFUSED), "error")
    return render_template("staff/sign_in.html", form=form)


SIGN_IN_REFUSED = _l(
    "That did not match an active staff account. After several failed attempts an account "
    "pauses for a few minutes."
)
NEEDS_SET_UP_LINK = _l(
    "Your account has no authenticator app set up yet. Ask an admin for a set-up link, "
    "open it, and sign in again."
)


def _finish_sign_in(user):
    """Start the real session, audit it, and go where the sign-in was heading."""
    target = auth.pending_next_url()
    auth.clear_failures(db.session, user, auth.client_key(request.remote_addr))
    auth.start_staff_session(user)
    record(db.session, user, "auth.sign_in", "staff_user", user.id, summary=user.email)
    db.session.commit()
    current_app.logger.info("staff sign-in: account %s", user.id)
    return redirect(target if auth.is_safe_next_url(target) else url_for("staff.home"))


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def second_factor():
    """Ask for the authenticator code (or a recovery code) after the password."""
    user = auth.pending_user(db.session)
    if user is None or not user.has_second_factor:
        flash(_("Please sign in again."), "info")
        return redirect(url_for("staff.sign_in"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        now = auth.now_utc()
        code = form.code.data
        client = auth.client_key(request.remote_addr)
        if not auth.is_paused(db.session, user, client, now) and (
            auth.verify_totp(user, code) or auth.use_recovery_code(user, code)
        ):
            return _finish_sign_in(user)
        auth.register_failure(db.session, user, client, now)
        record(
            db.session,
            "anonymous",
            "auth.sign_in_failed",
            "staff_user",
            user.id,
            summary="second factor",
        )
        db.session.commit()
        flash(_("That code did not work. Codes change every 30 seconds; try the newest."), "error")
    return render_template("staff/second_factor.html", form=form)


@bp.route("/sign-in/enrol", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def enrol_second_factor():
    """Set up the authenticator app, with a set-up link from an admin and the password."""
    user = auth.pending_user(db.session)
    if user is None or user.has_second_factor:
        return redirect(url_for("staff.sign_in"))
    link = auth.session_link(db.session, LinkPurpose.ENROL, user)
    if link is None:
        return link_not_working()
    if user.totp_secret is None:
        user.totp_secret = auth.new_totp_secret()
        db.session.commit()
    form = SecondFactorForm()
    if form.validate_on_submit():
        if auth.verify_totp(user, form.code.data):
            try:
                codes = auth.confirm_enrolment(db.session, user, link)
            except auth.LinkError:  # used meanwhile, in another tab or by someone else
                db.session.rollback()
                return link_not_working()
            response = _finish_sign_in(user)
            response = current_app.make_response(
                render_template(
                    "staff/recovery_codes.html", codes=codes, continue_url=response.location
                )
            )
            response.headers["Cache-Control"] = "no-store"
            return response
        flash(
            _("That code did not work. Check the app shows Finn klinikk and try the newest."),
            "error",
        )
    uri = auth.provisioning_uri(user)
    response = current_app.make_response(
        render_template(
            "staff/enrol.html",
            form=form,
            qr_svg=Markup(auth.qr_code_svg(uri)),  # noqa: S704  # nosec B704  # qrcode's own paths
            secret=user.totp_secret,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- one-time links from an admin -------------------------------------------------------


def link_not_working():
    """The one answer for a link that is unknown, used or expired: which, nobody learns."""
    response = current_app.make_response((render_template("staff/link_invalid.html"), 404))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/link/<token>")
def open_link(token: str):
    """Take a one-time link into a fresh session, then go on at an address without it."""
    link = auth.remember_link(db.session, token)
    if link is None:
        current_app.logger.info("a one-time link that does not work was opened")
        response = link_not_working()
    else:
        current_app.logger.info("%s link opened for account %s", link.purpose.value, link.user_id)
        if link.purpose is LinkPurpose.ENROL:
            flash(_("Sign in with your password; then you set up your authenticator app."), "info")
            response = redirect(url_for("staff.sign_in"), 303)
        else:
            response = redirect(url_for("staff.reset_password"), 303)
    # The token is in this address: the next page must not be told it (nor any cache).
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/reset-password", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def reset_password():
    """Choose a new password with a one-time link from an admin; every session ends."""
    link = auth.session_link(db.session, LinkPurpose.RESET_PASSWORD)
    if link is None:
        return link_not_working()
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            auth.reset_password_with_link(db.session, link, form.new_password.data)
        except auth.LinkError:
            db.session.rollback()
            return link_not_working()
        except auth.AccountError as error:
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            auth.end_this_session()
            flash(
                _(
                    "Your new password is set, and every session of your account has ended. "
                    "Sign in with it and a code from your authenticator app."
                ),
                "success",
            )
            return redirect(url_for("staff.sign_in"))
    return render_template("staff/reset_password.html", form=form, account=link.user)


@bp.post("/sign-out")
def sign_out():
    """Sign out here and end this account's sessions everywhere."""
    form = ConfirmForm()
    if form.validate_on_submit():
        auth.end_all_sessions(current_user)
        db.session.commit()
        auth.end_this_session()
        flash(_("You are signed out."), "info")
    return redirect(url_for("staff.sign_in"))


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def change_password():
    """Change your own password; your other sessions end, this one goes on."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            auth.change_password(
                db.session,
                user,
                form.current_password.data,
                form.new_password.data,
                auth.client_key(request.remote_addr),
            )
        except auth.CurrentPasswordWrongError as error:
            db.session.commit()  # the failure counts, and is audited, though nothing changed
            if error.signed_out:
                auth.end_this_session()
                flash(str(SIGNED_OUT_AFTER_FAILURES), "error")
                return redirect(url_for("staff.sign_in"))
            form.form_errors.append(str(error))
        except auth.AccountError as error:
            db.session.commit()  # a right current password still ends a run of wrong ones
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            auth.start_staff_session(user)  # a fresh session under the new session version
            db.session.commit()
            flash(_("Your password is changed; any other sessions have ended."), "success")
            return redirect(url_for("staff.home"))
    return render_template("staff/change_password.html", form=form)


SIGNED_OUT_AFTER_FAILURES = _l(
    "The current password was wrong too many times in a row, so you are signed out "
    "everywhere. Sign in again when the pause is over, in a few minutes."
)


@bp.get("/")
def home():
    """The staff start page: what needs attention."""
    counts = {
        "active": db.session.scalar(select(func.count()).where(Clinic.active.is_(True))),
        "inactive": db.session.scalar(select(func.count()).where(Clinic.active.is_(False))),
        "postcode_located": len(postcode_located_clinics(db.session)),
    }
    return render_template(
        "staff/home.html", counts=counts, batches=recent_batches(db.session, limit=5)
    )


# --- clinics ---------------------------------------------------------------------------


@bp.get("/clinics")
def clinics():
    """List clinics with search and filters."""
    form = ClinicSearchForm(request.args)
    valid = form.validate()  # a bad value is put back to its default, and says so
    filters = ClinicFilters(
        text=form.q.data or "",
        profession=Profession(form.profession.data) if form.profession.data else None,
        active={"active": True, "inactive": False}.get(form.status.data or "active"),
        precision=LocationSource(form.precision.data) if form.precision.data else None,
    )
    page = db.paginate(
        staff_clinic_query(filters),
        page=page_number(),
        per_page=CLINICS_PER_PAGE,
        max_per_page=CLINICS_PER_PAGE,
    )
    # The next page's link keeps the filters, but not a value just refused.
    refused = {field.name for field in form if field.errors}
    filter_args = {
        key: value for key, value in request.args.items() if key != "page" and key not in refused
    }
    return (
        render_template("staff/clinics.html", form=form, page=page, filter_args=filter_args),
        200 if valid else 400,
    )


@bp.route("/clinics/new", methods=["GET", "POST"])
def new_clinic():
    """Add a clinic."""
    form = ClinicForm()
    if form.validate_on_submit():
        try:
            clinic = create_clinic(db.session, current_user, form.values(), _locator())
        except DirectoryError as error:
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Added %(name)s. Now add its clinicians.", name=clinic.name), "success")
            return redirect(url_for("staff.clinic", clinic_id=clinic.id))
    return render_template("staff/clinic_form.html", form=form, clinic=None)


@bp.get("/clinics/<int:clinic_id>")
def clinic(clinic_id: int):
    """Show one clinic with its clinicians and its history."""
    clinic = db.get_or_404(Clinic, clinic_id)
    history = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_type == "clinic", AuditEntry.object_id == clinic.id)
        .order_by(AuditEntry.at.desc())
        .limit(20)
    ).all()
    return render_template(
        "staff/clinic.html", clinic=clinic, history=history, action_form=ConfirmForm()
    )


@bp.route("/clinics/<int:clinic_id>/edit", methods=["GET", "POST"])
def edit_clinic(clinic_id: int):
    """Change a clinic's details."""
    clinic = db.get_or_404(Clinic, clinic_id)
    form = ClinicForm(obj=clinic)
    if request.method == "GET":
        form.accepts_new_patients.data = {True: "yes", False: "no"}.get(
            clinic.accepts_new_patients, ""
        )
        if clinic.location_source is not LocationSource.GIVEN:
            form.latitude.data = form.longitude.data = None
    if form.validate_on_submit():
        try:
            changes = update_clinic(db.session, current_user, clinic, form.values(), _locator())
        except DirectoryError as error:
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Saved.") if changes else _("Nothing changed."), "success")
            return redirect(url_for("staff.clinic", clinic_id=clinic.id))
    return render_template("staff/clinic_form.html", form=form, clinic=clinic)


def _clinic_action(clinic_id: int, action, message: str):
    clinic = db.get_or_404(Clinic, clinic_id)
    if ConfirmForm().validate_on_submit():
        action(clinic)
        db.session.commit()
        flash(str(message) % {"name": clinic.name}, "success")
    return redirect(url_for("staff.clinic", clinic_id=clinic.id))


@bp.post("/clinics/<int:clinic_id>/<any(deactivate, reactivate):action>")
def set_clinic_status(clinic_id: int, action: str):
    """Take a clinic out of search (kept, not deleted), or put it back."""
    active = action == "reactivate"
    return _clinic_action(
        clinic_id,
        lambda clinic: set_clinic_active(db.session, current_user, clinic, active),
        _l("%(name)s is active again.")
        if active
        else _l("%(name)s is deactivated and no longer found by search."),
    )


@bp.post("/clinics/<int:clinic_id>/verify")
def verify_clinic(clinic_id: int):
    """Record that the entry was checked with the clinic today."""
    return _clinic_action(
        clinic_id,
        lambda clinic: mark_clinic_verified(db.session, current_user, clinic),
        _l("%(name)s is marked as verified today."),
    )


# --- clinicians ------------------------------------------------------------------------


@bp.route("/clinics/<int:clinic_id>/clinicians/new", methods=["GET", "POST"])
def new_clinician(clinic_id: int):
    """Add a clinician to a clinic."""
    clinic = db.get_or_404(Clinic, clinic_id)
    form = ClinicianForm()
    if form.validate_on_submit():
        try:
            add_clinician(db.session, current_user, clinic, form.values())
        except DirectoryError as error:
            form.hpr_number.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Added %(name)s.", name=form.name.data), "success")
            return redirect(url_for("staff.clinic", clinic_id=clinic.id))
    return render_template("staff/clinician_form.html", form=form, clinic=clinic, clinician=None)


@bp.route("/clinicians/<int:clinician_id>/edit", methods=["GET", "POST"])
def edit_clinician(clinician_id: int):
    """Change a clinician's details."""
    clinician = db.get_or_404(Clinician, clinician_id)
    form = ClinicianForm(obj=clinician)
    if request.method == "GET":
        form.profession.data = clinician.profession.value
        form.languages.data = "; ".join(clinician.languages)
        form.services.data = "; ".join(clinician.services)
    if form.validate_on_submit():
        try:
            update_clinician(db.session, current_user, clinician, form.values())
        except DirectoryError as error:
            form.hpr_number.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Saved %(name)s.", name=clinician.name), "success")
            return redirect(url_for("staff.clinic", clinic_id=clinician.clinic_id))
    return render_template(
        "staff/clinician_form.html", form=form, clinic=clinician.clinic, clinician=clinician
    )


@bp.post("/clinicians/<int:clinician_id>/<any(deactivate, reactivate):action>")
def set_clinician_status(clinician_id: int, action: str):
    """Mark a clinician as having left, or back."""
    clinician = db.get_or_404(Clinician, clinician_id)
    if ConfirmForm().validate_on_submit():
        set_clinician_active(db.session, current_user, clinician, action == "reactivate")
        db.session.commit()
        if action == "reactivate":
            flash(_("%(name)s is back.", name=clinician.name))
        else:
            flash(_("%(name)s is marked as left.", name=clinician.name))
    return redirect(url_for("staff.clinic", clinic_id=clinician.clinic_id))


# --- locations -------------------------------------------------------------------------


@bp.get("/locations/postcode-only")
def postcode_located():
    """List active clinics placed only at their postcode's centre."""
    return render_template(
        "staff/postcode_located.html",
        clinics=postcode_located_clinics(db.session),
        form=ConfirmForm(),
    )


@bp.post("/locations/regeocode")
def regeocode():
    """Look those clinics' addresses up again with the geocoder."""
    if ConfirmForm().validate_on_submit():
        geocoder = current_geocoder()
        if geocoder is None:
            flash(_("No geocoder is configured (GEOCODER=none)."), "error")
        else:
            budget = current_app.config["IMPORT_GEOCODING_BUDGET_SECONDS"]
            report = regeocode_postcode_located(db.session, geocoder, time_budget=budget)
            record(
                db.session,
                current_user,
                "clinic.regeocode",
                "clinic",
                None,
                {"updated": report.updated, "still_postcode": report.still_postcode},
                summary=f"{report.updated} clinic(s) placed by street address",
            )
            db.session.commit()
            message = _(
                "%(updated)s clinic(s) now placed by street address; "
                "%(still)s still at their postcode.",
                updated=report.updated,
                still=report.still_postcode,
            )
            if report.unavailable and geocoder.is_down() and geocoder.down_until_utc:
                # Remembered, so the button does not make staff wait on a dead service.
                message += " " + _(
                    "The geocoder could not be reached; it is asked again from %(moment)s.",
                    moment=format_moment(geocoder.down_until_utc),
                )
            elif report.unavailable:
                message += " " + _("The geocoder could not be reached; try again later.")
            elif report.out_of_time:
                message += " " + _("Press the button again to go on with the rest.")
            flash(message, "error" if report.unavailable else "success")
    return redirect(url_for("staff.postcode_located"))


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
                db.session, upload.filename or "upload.csv", upload.read(), current_user
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
        show=show,
        filters=ROW_FILTERS,
        form=ConfirmForm(),
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
    """Download the rejected rows, in the import format with the reasons, to fix and retry."""
    batch = db.get_or_404(ImportBatch, batch_id)
    if batch.planned_at is None:
        flash(_("The file is still being checked."), "error")
        return redirect(url_for("staff.import_preview", batch_id=batch.id))
    rows = stored_rejected_rows(db.session, batch)
    return _csv_response(rejected_rows_csv(rows), f"rejected-{batch.id}.csv")


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


# --- admin: staff accounts and audit log -----------------------------------------------


@bp.get("/audit")
@admin_required
def audit_log():
    """Show the audit log, newest first."""
    page = db.paginate(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()),
        page=page_number(),
        per_page=AUDIT_PER_PAGE,
        max_per_page=AUDIT_PER_PAGE,
    )
    return render_template("staff/audit.html", page=page)


@bp.get("/users")
@admin_required
def users():
    """List staff accounts."""
    accounts = db.session.scalars(select(StaffAccount).order_by(StaffAccount.email)).all()
    return render_template("staff/users.html", accounts=accounts, form=ConfirmForm())


def _link_lifetime() -> timedelta:
    return timedelta(hours=current_app.config["STAFF_LINK_VALID_HOURS"])


def _show_link(account: StaffAccount, issued: auth.IssuedLink):
    """Show a one-time link to the admin who issued it, this once (never logged, never sent)."""
    return render_template(
        "staff/link_issued.html", account=account, issued=issued, url=auth.link_url(issued.token)
    )


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    """Create a staff account, and show the set-up link for its authenticator app."""
    form = StaffUserForm()
    if form.validate_on_submit():
        try:
            account = auth.create_staff_account(
                db.session,
                form.email.data,
                form.password.data,
                bool(form.is_admin.data),
                actor=current_user,
            )
        except auth.AccountError as error:
            form.form_errors.append(str(error))
        else:
            issued = auth.issue_enrolment_link(db.session, account, current_user, _link_lifetime())
            db.session.commit()
            flash(_("Created %(email)s.", email=account.email), "success")
            return _show_link(account, issued)
    return render_template("staff/user_form.html", form=form)


def _account_for_link(user_id: int) -> StaffAccount | None:
    """The account an admin asked a link for, if a link for it makes sense."""
    account = db.get_or_404(StaffAccount, user_id)
    if not ConfirmForm().validate_on_submit():
        return None
    if account.id == current_user.id:
        flash(_("Ask another admin to do this for your own account."), "error")
        return None
    if not account.active:
        flash(_("%(email)s is deactivated; reactivate it first.", email=account.email), "error")
        return None
    return account


@bp.post("/users/<int:user_id>/<any(deactivate, reactivate):action>")
@admin_required
def set_user_status(user_id: int, action: str):
    """Deactivate an account (ending its sessions everywhere) or reactivate it."""
    account = db.get_or_404(StaffAccount, user_id)
    if ConfirmForm().validate_on_submit():
        if account.id == current_user.id:
            flash(_("You cannot deactivate your own account."), "error")
            return redirect(url_for("staff.users"))
        active = action == "reactivate"
        auth.set_account_active(db.session, account, active, current_user)
        db.session.commit()
        if active:
            flash(_("%(email)s is active.", email=account.email), "success")
        else:
            flash(_("%(email)s is deactivated.", email=account.email), "success")
    return redirect(url_for("staff.users"))


@bp.post("/users/<int:user_id>/reset-second-factor")
@admin_required
def reset_second_factor(user_id: int):
    """Forget a staff member's authenticator (if any); show a set-up link to enrol anew."""
    account = _account_for_link(user_id)
    if account is None:
        return redirect(url_for("staff.users"))
    issued = auth.issue_enrolment_link(db.session, account, current_user, _link_lifetime())
    db.session.commit()
    return _show_link(account, issued)


@bp.post("/users/<int:user_id>/reset-password")
@admin_required
def issue_password_link(user_id: int):
    """Show a one-time link with which a staff member chooses a new password themselves."""
    account = _account_for_link(user_id)
    if account is None:
        return redirect(url_for("staff.users"))
    issued = auth.issue_link(
        db.session, account, LinkPurpose.RESET_PASSWORD, current_user, _link_lifetime()
    )
    db.session.commit()
    return _show_link(account, issued)


# --- staff JSON ------------------------------------------------------------------------


@bp.get("/api/clinics/<int:clinic_id>")
def api_clinic(clinic_id: int):
    """One clinic as JSON, active or not, for staff tools."""
    clinic = db.get_or_404(Clinic, clinic_id)
    return jsonify(
        {
            **clinic_json(clinic),
            "active": clinic.active,
            "verified_at": clinic.verified_at.isoformat() if clinic.verified_at else None,
        }
    )
