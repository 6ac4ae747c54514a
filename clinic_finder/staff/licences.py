"""Licences: the clinicians hidden from patients by their check against the Health
Personnel Register (HPR), and checking one again."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import hpr, licences
from ..directory import licence_watch
from ..extensions import db
from ..i18n import licence_status_name
from ..models import Clinician, now_utc
from . import bp
from .forms import ConfirmForm


def check_licence_now(clinician: Clinician) -> bool:
    """Check a clinician against HPR at once when checks are on, and commit what it found.

    Called after a staff change is committed, so HPR being unreachable loses nothing:
    staff are told, and `flask clinicians verify-licences` tries again later.
    """
    if not hpr.licence_checks_enabled():
        return False
    try:
        licences.check_clinician(
            db.session, clinician, client=hpr.current_client(), actor=current_user
        )
    except hpr.HprUnavailable:
        db.session.rollback()
        flash(_("HPR could not be reached, so the licence was not checked. Try again later."))
        return False
    db.session.commit()
    return True


@bp.get("/licences")
def licences_page():
    """List the clinicians whose licence check hides them from patients, newest first."""
    return render_template(
        "staff/licences.html",
        clinicians=licences.clinicians_to_look_at(db.session),
        watch=licence_watch(db.session, now_utc()),
        checks_on=hpr.licence_checks_enabled(),
        action_form=ConfirmForm(),
    )


@bp.post("/clinicians/<int:clinician_id>/check-licence")
def check_licence(clinician_id: int):
    """Check one clinician's licence against HPR again, now."""
    clinician = db.get_or_404(Clinician, clinician_id)
    if ConfirmForm().validate_on_submit():
        if not hpr.licence_checks_enabled():
            flash(_("Licence checks are off: HPR_URL is not set."), "error")
        elif check_licence_now(clinician):
            flash(
                _(
                    "Checked %(name)s against HPR: %(status)s.",
                    name=clinician.name,
                    status=licence_status_name(clinician.licence_status),
                ),
                "success",
            )
    # Back to the list the button was on, or to the clinician's own page.
    if request.args.get("back") == "licences":
        return redirect(url_for("staff.licences_page"))
    return redirect(url_for("staff.clinician", clinician_id=clinician.id))
