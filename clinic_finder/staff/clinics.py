"""Keeping the directory: clinics, their clinicians, and where they are on the map."""

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
from sqlalchemy import select

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
    Profession,
)
from ..web.requests import page_number
from . import bp
from .forms import (
    ClinicForm,
    ClinicianForm,
    ClinicSearchForm,
    ConfirmForm,
)

CLINICS_PER_PAGE = 50


def _locator(time_budget: float | None = None) -> AddressLocator:
    return AddressLocator(db.session, current_geocoder(), time_budget=time_budget)


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
