"""The staff inbox of contact requests: read, note, move on, refer; and privacy requests.

Every page here shows health information: each is sent with ``Cache-Control: no-store``,
each view of a request is audited, and nothing identifying goes into a URL.
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import parse_qsl

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from ..contact_requests import (
    CONTACT_TIMES,
    DURATIONS,
    ContactRequestError,
    InboxFilter,
    add_note,
    assign,
    change_status,
    claim,
    delete_person,
    export_person,
    inbox_query,
    record_view,
    refer,
    release,
    requests_of_person,
)
from ..erasure import erase_deleted_rows
from ..extensions import db
from ..i18n import status_name
from ..mail import send_after_commit
from ..models import Clinic, ContactRequest, PostalCode, RequestStatus, StaffUser, now_utc
from ..search import find_clinics_near
from ..web.requests import page_number
from ..working_hours import overdue_cutoff, working_time
from . import admin_required, bp
from .forms import (
    ConfirmForm,
    PersonLookupForm,
    ReferralForm,
    RequestFilterForm,
    RequestNoteForm,
    RequestOwnerForm,
    RequestStatusForm,
)

REQUESTS_PER_PAGE = 50
REFERRAL_CANDIDATES = 10


@bp.context_processor
def owner_choices():
    """Let any staff template offer the active staff members to give a request to."""

    def active_staff() -> list[StaffUser]:
        return list(
            db.session.scalars(
                select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.email)
            )
        )

    return {"active_staff": active_staff}


@bp.get("/requests")
def requests_inbox():
    """List contact requests as the URL's filters and order say; overdue marked."""
    staff = list(db.session.scalars(select(StaffUser).order_by(StaffUser.email)))
    form = RequestFilterForm(request.args).with_staff(staff)
    valid = form.validate()  # a bad value is put back to its default, and says so
    wanted = InboxFilter(
        **{field.name: form[field.name].data for field in dataclasses.fields(InboxFilter)}
    )
    now = now_utc()
    page = db.paginate(
        inbox_query(wanted, me=current_user, now=now),
        page=page_number(),
        per_page=REQUESTS_PER_PAGE,
        max_per_page=REQUESTS_PER_PAGE,
    )
    waited = {item.id: working_time(item.created_at, now) for item in page.items}
    return (
        render_template(
            "staff/requests.html",
            form=form,
            page=page,
            now=now,
            cutoff=overdue_cutoff(now),
            waited_hours={key: int(value.total_seconds() // 3600) for key, value in waited.items()},
            args=form.query_args(),
            staff=[user for user in staff if user.active],
        ),
        200 if valid else 400,
    )


@bp.post("/requests/<int:request_id>/owner")
def request_owner(request_id: int):
    """Take a request, give it to a staff member, or let it go; each audited."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    form = RequestOwnerForm()
    if not form.validate_on_submit():
        flash(_("That did not work; the page was out of date. Try again."), "error")
        return redirect(_back(form, contact_request))
    action, seen = form.action.data, form.seen_owner.data
    try:
        if action == "claim":
            claim(db.session, current_user, contact_request, seen_owner_id=seen)
            done = _("You have taken %(reference)s.", reference=contact_request.reference)
        elif action == "release":
            release(db.session, current_user, contact_request, seen_owner_id=seen)
            done = _(
                "You let %(reference)s go; nobody has it now.",
                reference=contact_request.reference,
            )
        else:
            owner = db.session.get(StaffUser, form.owner.data) if form.owner.data else None
            if owner is None:
                raise ContactRequestError(_("Choose whom to give the request to."))
            assign(db.session, current_user, contact_request, owner)
            done = _(
                "%(reference)s is now with %(email)s.",
                reference=contact_request.reference,
                email=owner.email,
            )
    except ContactRequestError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(done, "success")
    return redirect(_back(form, contact_request))


def _back(form: RequestOwnerForm, contact_request: ContactRequest) -> str:
    """The page the owner form was on: the request's, or the inbox with its filters."""
    if form.back.data == "request":
        return url_for("staff.request_detail", request_id=contact_request.id)
    # Only the inbox's own filters are carried back (never a URL from the form).
    known = {field.name for field in dataclasses.fields(InboxFilter)} | {"page"}
    args = {key: value for key, value in parse_qsl(form.back.data or "") if key in known}
    return url_for("staff.requests_inbox", **args)


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
