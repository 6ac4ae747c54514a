"""Keeping the directory: clinics, the clinicians who work there (their practices), the
clinicians as people, and where clinics are on the map."""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, or_, select

from .. import hpr
from ..directory import (
    ClinicFilters,
    DirectoryError,
    add_practice,
    create_clinic,
    mark_clinic_verified,
    set_clinic_active,
    set_practice_active,
    staff_clinic_query,
    update_clinic,
    update_clinician,
    update_practice,
)
from ..extensions import db
from ..geocoding import (
    AddressLocator,
    current_geocoder,
    postcode_located_clinics,
    regeocode_postcode_located,
)
from ..i18n import format_moment
from ..models import (
    AuditEntry,
    Clinic,
    Clinician,
    LocationSource,
    Practice,
    Profession,
)
from ..web.requests import page_number
from . import bp
from .forms import (
    ClinicForm,
    ClinicianForm,
    ClinicSearchForm,
    ConfirmForm,
    EditPracticeForm,
    NewPracticeForm,
)
from .licences import check_licence_now

CLINICS_PER_PAGE = 50
HISTORY_LENGTH = 20


def _locator(time_budget: float | None = None) -> AddressLocator:
    return AddressLocator(db.session, current_geocoder(), time_budget=time_budget)


def _show_refusal(form: FlaskForm, error: DirectoryError) -> None:
    """Show a directory rule's refusal beside the field it is about, else above the form."""
    field = form[error.field] if error.field and error.field in form else None
    if field is None:
        form.form_errors.append(str(error))
    else:
        field.errors = [*field.errors, str(error)]


def _history(**ids_by_type: list[int]) -> list[AuditEntry]:
    """The latest audit entries about these objects (by object type), newest first."""
    about = [
        and_(AuditEntry.object_type == kind, AuditEntry.object_id.in_(ids))
        for kind, ids in ids_by_type.items()
        if ids
    ]
    return db.session.scalars(
        select(AuditEntry)
        .where(or_(*about))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(HISTORY_LENGTH)
    ).all()


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
            _show_refusal(form, error)
        else:
            db.session.commit()
            flash(_("Added %(name)s. Now add its clinicians.", name=clinic.name), "success")
            return redirect(url_for("staff.clinic", clinic_id=clinic.id))
    return render_template("staff/clinic_form.html", form=form, clinic=None)


@bp.get("/clinics/<int:clinic_id>")
def clinic(clinic_id: int):
    """Show one clinic with the clinicians who work there and its history."""
    clinic = db.get_or_404(Clinic, clinic_id)
    # Those who work here first; those who left stay listed, for the record.
    practices = sorted(
        clinic.practices, key=lambda practice: (not practice.active, practice.clinician.name)
    )
    history = _history(clinic=[clinic.id], practice=[practice.id for practice in practices])
    return render_template(
        "staff/clinic.html",
        clinic=clinic,
        practices=practices,
        history=history,
        action_form=ConfirmForm(),
    )


@bp.route("/clinics/<int:clinic_id>/edit", methods=["GET", "POST"])
def edit_clinic(clinic_id: int):
    """Change a clinic's details."""
    clinic = db.get_or_404(Clinic, clinic_id)
    form = ClinicForm(obj=clinic)
    if request.method == "GET":
        form.fill_from(clinic)
        if clinic.location_source is not LocationSource.GIVEN:
            form.latitude.data = form.longitude.data = None
    if form.validate_on_submit():
        try:
            changes = update_clinic(db.session, current_user, clinic, form.values(), _locator())
        except DirectoryError as error:
            _show_refusal(form, error)
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


# --- practices: a clinician at a clinic ----------------------------------------------


def _flash_added(practice: Practice) -> None:
    clinician = practice.clinician
    elsewhere = [other.clinic.name for other in clinician.practices if other is not practice]
    if not elsewhere:
        flash(_("Added %(name)s.", name=clinician.name), "success")
        return
    flash(
        _(
            "%(name)s (HPR number %(number)s) also works at %(clinics)s: added here too. "
            "Their name and languages stay as they were; change them on their own page.",
            name=clinician.name,
            number=clinician.hpr_number,
            clinics=", ".join(elsewhere),
        ),
        "success",
    )


@bp.route("/clinics/<int:clinic_id>/clinicians/new", methods=["GET", "POST"])
def new_clinician(clinic_id: int):
    """Add a clinician at a clinic: someone new, or someone who also works elsewhere."""
    clinic = db.get_or_404(Clinic, clinic_id)
    form = NewPracticeForm()
    if form.validate_on_submit():
        try:
            practice = add_practice(db.session, current_user, clinic, form.person(), form.values())
        except DirectoryError as error:
            _show_refusal(form, error)
        else:
            db.session.commit()
            _flash_added(practice)
            check_licence_now(practice.clinician)
            return redirect(url_for("staff.clinic", clinic_id=clinic.id))
    return render_template("staff/practice_form.html", form=form, clinic=clinic, practice=None)


@bp.route("/practices/<int:practice_id>/edit", methods=["GET", "POST"])
def edit_practice(practice_id: int):
    """Change how a clinician works at a clinic."""
    practice = db.get_or_404(Practice, practice_id)
    form = EditPracticeForm(obj=practice)
    if request.method == "GET":
        form.fill_from(practice)
    if form.validate_on_submit():
        try:
            changes = update_practice(db.session, current_user, practice, form.values())
        except DirectoryError as error:
            _show_refusal(form, error)
        else:
            db.session.commit()
            flash(_("Saved.") if changes else _("Nothing changed."), "success")
            check_licence_now(practice.clinician)
            return redirect(url_for("staff.clinic", clinic_id=practice.clinic_id))
    return render_template(
        "staff/practice_form.html", form=form, clinic=practice.clinic, practice=practice
    )


@bp.post("/practices/<int:practice_id>/<any(deactivate, reactivate):action>")
def set_practice_status(practice_id: int, action: str):
    """Mark a clinician as having left one clinic, or back there."""
    practice = db.get_or_404(Practice, practice_id)
    if ConfirmForm().validate_on_submit():
        set_practice_active(db.session, current_user, practice, action == "reactivate")
        db.session.commit()
        names = {"name": practice.clinician.name, "clinic": practice.clinic.name}
        if action == "reactivate":
            flash(_("%(name)s works at %(clinic)s again.", **names))
        else:
            flash(_("%(name)s is marked as having left %(clinic)s.", **names))
    return redirect(url_for("staff.clinic", clinic_id=practice.clinic_id))


# --- clinicians: the people ------------------------------------------------------------


@bp.get("/clinicians/<int:clinician_id>")
def clinician(clinician_id: int):
    """Show a clinician: their licence check, every clinic they work at, their history."""
    clinician = db.get_or_404(Clinician, clinician_id)
    practices = sorted(
        clinician.practices, key=lambda practice: (not practice.active, practice.clinic.name)
    )
    history = _history(clinician=[clinician.id], practice=[practice.id for practice in practices])
    return render_template(
        "staff/clinician.html",
        clinician=clinician,
        practices=practices,
        history=history,
        checks_on=hpr.licence_checks_enabled(),
        action_form=ConfirmForm(),
    )


@bp.route("/clinicians/<int:clinician_id>/edit", methods=["GET", "POST"])
def edit_clinician(clinician_id: int):
    """Change a clinician's name or languages, wherever they work."""
    clinician = db.get_or_404(Clinician, clinician_id)
    form = ClinicianForm(obj=clinician)
    if request.method == "GET":
        form.languages.data = "; ".join(clinician.languages)
    if form.validate_on_submit():
        changes = update_clinician(db.session, current_user, clinician, form.values())
        db.session.commit()
        flash(_("Saved.") if changes else _("Nothing changed."), "success")
        return redirect(url_for("staff.clinician", clinician_id=clinician.id))
    return render_template("staff/clinician_form.html", form=form, clinician=clinician)


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
            report = regeocode_postcode_located(
                db.session, geocoder, current_user, time_budget=budget
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
