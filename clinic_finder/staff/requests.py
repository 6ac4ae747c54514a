"""The staff inbox of contact requests: read, note, move on, refer; and privacy requests.

Every page here shows health information: each is sent with ``Cache-Control: no-store``,
each view of a request is audited, and nothing identifying goes into a URL.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from urllib.parse import parse_qsl

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from ..clinic_pages import language_name
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
    release,
    requests_of_person,
)
from ..erasure import erase_deleted_rows
from ..extensions import db
from ..i18n import current_language, format_number, status_name
from ..models import (
    Clinic,
    ContactRequest,
    PostalCode,
    Referral,
    RequestStatus,
    StaffUser,
    now_utc,
)
from ..referrals import (
    cancel_referral,
    describe_candidate,
    refer,
    referral_candidates,
    referral_drafts,
    referral_state,
    sends_at,
    still_waiting_for,
)
from ..search import distance_km
from ..web.catalogues import complaint_catalogue
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
    complaint = complaint_catalogue().get(contact_request.complaint or "")
    return render_template(
        "staff/request.html",
        contact_request=contact_request,
        candidates=referral_candidates(db.session, contact_request, complaint, now_utc()),
        complaint=complaint,
        referral_state=referral_state,
        sends_at=sends_at,
        still_waiting_for=still_waiting_for,
        status_form=RequestStatusForm(status=contact_request.status.value),
        note_form=RequestNoteForm(),
        cancel_form=ConfirmForm(),
        durations=DURATIONS,
        contact_times=CONTACT_TIMES,
        language_name=_language_name,
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


def _minutes(minutes: float) -> str:
    """Minutes as the page's language writes a number ("5", "2,5")."""
    return format_number(minutes, 0 if float(minutes).is_integer() else 1)


def _language_name(code: str | None) -> str:
    """A language code named in the page's language ("engelsk")."""
    return language_name(code or current_app.config["DEFAULT_LOCALE"], current_language())


def _referable_clinic(clinic_id: int) -> Clinic | None:
    """The clinic to refer to, if it is still in the directory; else say so."""
    clinic = db.session.get(Clinic, clinic_id)
    if clinic is None or not clinic.active:
        flash(_("That clinic is not in the directory any more."), "error")
        return None
    return clinic


@bp.get("/requests/<int:request_id>/referral/<int:clinic_id>")
def referral_preview(request_id: int, clinic_id: int):
    """Show exactly what a referral to this clinic would send, with the button to send it."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    clinic = _referable_clinic(clinic_id)
    if clinic is None:
        return redirect(url_for("staff.request_detail", request_id=request_id))
    # The preview shows the patient's details and description: opening it is a view.
    record_view(db.session, current_user, contact_request)
    db.session.commit()
    tell_patient = bool(contact_request.email)
    form = ReferralForm(clinic_id=clinic.id, tell_patient=tell_patient)
    problem = None
    drafts = []
    try:
        drafts = referral_drafts(
            contact_request,
            clinic,
            current_user,
            tell_patient=tell_patient,
            clinic_language=current_app.config["DEFAULT_LOCALE"],
        )
    except ContactRequestError as error:
        problem = str(error)
    complaint = complaint_catalogue().get(contact_request.complaint or "")
    origin = db.session.get(PostalCode, contact_request.postcode)
    km = (
        distance_km((origin.latitude, origin.longitude), (clinic.latitude, clinic.longitude))
        if origin is not None
        else None
    )
    return render_template(
        "staff/referral_preview.html",
        contact_request=contact_request,
        clinic=clinic,
        candidate=describe_candidate(contact_request, clinic, km, complaint, now_utc()),
        complaint=complaint,
        drafts={draft.kind: draft for draft in drafts},
        problem=problem,
        form=form,
        hold_minutes=_minutes(current_app.config["REFERRAL_UNDO_MINUTES"]),
        language_name=_language_name,
    )


@bp.post("/requests/<int:request_id>/referral")
def request_referral(request_id: int):
    """Send a previewed referral: queue its emails, held a few minutes so it can be undone."""
    contact_request = db.get_or_404(ContactRequest, request_id)
    form = ReferralForm()
    back = url_for("staff.request_detail", request_id=contact_request.id)
    if not form.validate_on_submit():
        flash(
            _("The referral was not sent: the form had expired or was incomplete. Try again."),
            "error",
        )
        return redirect(back)
    clinic = _referable_clinic(form.clinic_id.data)
    if clinic is None:
        return redirect(back)
    try:
        refer(
            db.session,
            current_user,
            contact_request,
            clinic,
            tell_patient=bool(form.tell_patient.data),
            language=current_app.config["DEFAULT_LOCALE"],
            hold=timedelta(minutes=current_app.config["REFERRAL_UNDO_MINUTES"]),
            again=bool(form.again.data),
        )
    except ContactRequestError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(
            url_for("staff.referral_preview", request_id=contact_request.id, clinic_id=clinic.id)
        )
    db.session.commit()
    flash(
        _(
            "Referred to %(clinic)s. The emails go in a few minutes; until then you can "
            "cancel the referral here.",
            clinic=clinic.name,
        ),
        "success",
    )
    return redirect(back)


@bp.post("/requests/<int:request_id>/referrals/<int:referral_id>/cancel")
def referral_cancel(request_id: int, referral_id: int):
    """Cancel a referral whose emails have not gone yet; say so if it is too late."""
    referral = db.get_or_404(Referral, referral_id)
    back = url_for("staff.request_detail", request_id=request_id)
    if referral.request_id != request_id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        flash(_("Nothing was cancelled: the form had expired. Please try again."), "error")
        return redirect(back)
    clinic_name = referral.clinic.name
    try:
        cancel_referral(db.session, current_user, referral)
    except ContactRequestError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(back)
    db.session.commit()
    flash(
        _(
            "The referral to %(clinic)s is cancelled; no email about it was sent.",
            clinic=clinic_name,
        ),
        "success",
    )
    return redirect(back)


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
