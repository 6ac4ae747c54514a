"""The staff inbox of contact requests: read, note, move on, refer; and privacy requests.

Every page here shows health information: each is sent with ``Cache-Control: no-store``,
each view of a request is audited, and nothing identifying goes into a URL.
"""

from __future__ import annotations

import json

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import case, select

from ..contact_requests import (
    CONTACT_TIMES,
    DURATIONS,
    ContactRequestError,
    add_note,
    change_status,
    delete_person,
    export_person,
    record_view,
    refer,
    requests_of_person,
)
from ..erasure import erase_deleted_rows
from ..extensions import db
from ..i18n import status_name
from ..mail import send_after_commit
from ..models import Clinic, ContactRequest, PostalCode, Profession, RequestStatus, now_utc
from ..search import find_clinics_near
from ..web.requests import page_number
from . import admin_required, bp
from .forms import (
    ConfirmForm,
    PersonLookupForm,
    ReferralForm,
    RequestFilterForm,
    RequestNoteForm,
    RequestStatusForm,
)

REQUESTS_PER_PAGE = 50
REFERRAL_CANDIDATES = 10


@bp.get("/requests")
def requests_inbox():
    """List contact requests: new ones first, oldest new at the top; overdue marked."""
    form = RequestFilterForm(request.args)
    valid = form.validate()  # a bad value is put back to its default, and says so
    query = select(ContactRequest)
    if form.status.data == "open":
        query = query.where(
            ContactRequest.status.in_([RequestStatus.NEW, RequestStatus.IN_PROGRESS])
        )
    elif form.status.data:
        query = query.where(ContactRequest.status == RequestStatus(form.status.data))
    if form.profession.data == "none":
        query = query.where(ContactRequest.profession.is_(None))
    elif form.profession.data:
        query = query.where(ContactRequest.profession == Profession(form.profession.data))
    new_first = case((ContactRequest.status == RequestStatus.NEW, 0), else_=1)
    query = query.order_by(new_first, ContactRequest.created_at, ContactRequest.id)
    page = db.paginate(
        query, page=page_number(), per_page=REQUESTS_PER_PAGE, max_per_page=REQUESTS_PER_PAGE
    )
    return (
        render_template("staff/requests.html", form=form, page=page, now=now_utc()),
        200 if valid else 400,
    )


@bp.get("/requests/<int:request_id>")
def request_detail(request_id: int):
    """Show one request with its history and clinics to refer to; the view is audited."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    record_view(db.session, current_user, contact_request)
    db.session.commit()
    candidates = []
    origin = db.session.get(PostalCode, contact_request.postcode)
    if origin is not None:
        candidates = find_clinics_near(
            db.session,
            origin,
            radius_km=25,
            profession=contact_request.profession,
            limit=REFERRAL_CANDIDATES,
        )
    return render_template(
        "staff/request.html",
        contact_request=contact_request,
        candidates=candidates,
        status_form=RequestStatusForm(status=contact_request.status.value),
        note_form=RequestNoteForm(),
        referral_form=ReferralForm(),
        durations=DURATIONS,
        contact_times=CONTACT_TIMES,
        now=now_utc(),
    )


@bp.post("/requests/<int:request_id>/status")
def request_status(request_id: int):
    """Move a request on (new, in progress, referred, closed), with a note."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    form = RequestStatusForm()
    if form.validate_on_submit():
        change_status(
            db.session,
            current_user,
            contact_request,
            RequestStatus(form.status.data),
            form.note.data or "",
        )
        db.session.commit()
        flash(
            _(
                "%(reference)s is now %(status)s.",
                reference=contact_request.reference,
                status=status_name(contact_request.status).lower(),
            ),
            "success",
        )
    return redirect(url_for("staff.request_detail", request_id=contact_request.id))


@bp.post("/requests/<int:request_id>/notes")
def request_note(request_id: int):
    """Add a note to a request's history."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    form = RequestNoteForm()
    if form.validate_on_submit():
        add_note(db.session, current_user, contact_request, form.text.data)
        db.session.commit()
        flash(_("Note added."), "success")
    else:
        flash(_("Write a note first (at most 5,000 characters)."), "error")
    return redirect(url_for("staff.request_detail", request_id=contact_request.id))


@bp.post("/requests/<int:request_id>/referral")
def request_referral(request_id: int):
    """Refer the patient to the chosen clinic by email and mark the request referred."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    form = ReferralForm()
    if form.validate_on_submit():
        clinic = db.session.get(Clinic, form.clinic_id.data)
        if clinic is None or not clinic.active:
            flash(_("That clinic is not in the directory any more."), "error")
        else:
            try:
                _referral, messages = refer(
                    db.session,
                    current_user,
                    contact_request,
                    clinic,
                    tell_patient=bool(form.tell_patient.data),
                    # Clinics read the site's language; the patient's own is not stored.
                    language=current_app.config["DEFAULT_LOCALE"],
                )
            except ContactRequestError as error:
                db.session.rollback()
                flash(str(error), "error")
            else:
                db.session.commit()
                send_after_commit([message.id for message in messages])
                flash(
                    _("Referred to %(clinic)s; the clinic is being emailed.", clinic=clinic.name),
                    "success",
                )
    return redirect(url_for("staff.request_detail", request_id=contact_request.id))


@bp.route("/privacy", methods=["GET", "POST"])
@admin_required
def privacy():
    """Find what is held about one person (by email or phone), to export or delete it."""
    form = PersonLookupForm()
    found = None
    if form.validate_on_submit():
        found = requests_of_person(db.session, form.email.data, form.phone.data)
    return render_template("staff/privacy.html", form=form, found=found, action_form=ConfirmForm())


@bp.post("/privacy/export")
@admin_required
def privacy_export():
    """Download everything held about one person as JSON (GDPR art. 15); audited."""
    form = PersonLookupForm()
    if not form.validate_on_submit():
        flash(_("Give an email address or a phone number."), "error")
        return redirect(url_for("staff.privacy"))
    data = export_person(db.session, current_user, form.email.data, form.phone.data)
    db.session.commit()
    response = Response(json.dumps(data, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="personal-data.json"'
    return response


@bp.post("/privacy/delete")
@admin_required
def privacy_delete():
    """Delete everything held about one person (GDPR art. 17); audited."""
    form = PersonLookupForm()
    if form.validate_on_submit():
        count = delete_person(db.session, current_user, form.email.data, form.phone.data)
        db.session.commit()
        erase_deleted_rows(db.engine)
        flash(
            ngettext(
                "Deleted %(num)d request and everything about it.",
                "Deleted %(num)d requests and everything about them.",
                count,
            ),
            "success",
        )
    return redirect(url_for("staff.privacy"))
