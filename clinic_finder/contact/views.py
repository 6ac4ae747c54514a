"""The contact request form: a patient asks for help finding a clinician."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from ..contact_requests import ANSWER_PROMISE, notice_updated
from ..extensions import limiter
from ..i18n import current_language, format_clock, format_day
from ..models import now_utc
from ..web.catalogues import complaint_catalogue
from ..web.contact_form import ContactForm
from ..web.contact_submission import (
    NOT_STORED_MESSAGE,
    RequestNotStoredError,
    contact_requests_limit,
    submit_contact_request,
)
from ..web.page_meta import contact_description, page_meta, privacy_description
from ..web.requests import no_store

bp = Blueprint("contact", __name__, url_prefix="/contact")


def _form_page(form: ContactForm, status: int, **extra) -> Response:
    """The form page, with what was sent in it, not to be cached."""
    page = render_template(
        "contact/form.html",
        form=form,
        # Set by the form: a clinic patients can find, or None once found wrong.
        clinic=form.clinic,
        complaint=form.about_complaint,
        retention_days=current_app.config["REQUEST_RETENTION_DAYS"],
        page_meta=page_meta(contact_description()),
        **extra,
    )
    return no_store(current_app.make_response((page, status)))


@bp.route("", methods=["GET", "POST"])
@contact_requests_limit
def contact():
    """Show the form (prefilled from the search), and store a request sent with it."""
    form = ContactForm()
    if request.method == "GET":
        form.postcode.data = request.args.get("postcode", "")[:4]
        form.prefill_clinic(request.args.get("clinic", ""))
        form.prefill_profession(request.args.get("profession", ""))
        form.complaint.data = request.args.get("complaint", "")
        complaint = form.about_complaint
        if complaint is not None:
            # A start the patient can edit: what the article was about, in their language.
            form.message.data = complaint.name(current_language()) + ": "
    if form.validate_on_submit():
        if form.is_bot:
            form.form_errors.append(
                _(
                    "Your request could not be sent because the hidden field "
                    '"Leave this field empty" was filled in. Please empty it and send again.'
                )
            )
        else:
            try:
                contact_request = submit_contact_request(form, "form")
            except RequestNotStoredError:
                return _form_page(form, 503, not_stored=NOT_STORED_MESSAGE)
            session["contact_reference"] = contact_request.reference
            # Only for the urgent-care advice on the confirmation; never in the URL.
            session["contact_complaint"] = form.complaint.data if form.about_complaint else None
            return redirect(url_for("contact.sent"))
    return _form_page(form, 400 if form.errors or form.form_errors else 200)


@bp.errorhandler(429)
def too_many_requests(error):
    """Show the form again as it was sent, saying when it can go, and whom to phone instead."""
    form = ContactForm()  # what was posted, shown as it was: nothing is validated or stored
    form.prefill_clinic(request.form.get("clinic_id", ""))
    form.clinic_id.raw_data = []  # carried on only if it is a clinic patients can find
    retry_at = _retry_at()
    response = _form_page(form, 429, rate_limited=True, try_again=_when_to_try_again(retry_at))
    if retry_at is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_at.timestamp() - time.time())))
    return response


def _retry_at() -> datetime | None:
    """When the limit this request ran into lets the next request through."""
    limit = limiter.current_limit
    if limit is None:
        return None
    try:
        return datetime.fromtimestamp(limit.reset_at, UTC)
    except Exception:  # the limit's storage went away since; the page is still shown
        return None


def _when_to_try_again(retry_at: datetime | None) -> str:
    if retry_at is None:
        return _("Please wait a while before you send it.")
    if format_day(retry_at) == format_day(now_utc()):
        return _("You can send it at %(time)s.", time=format_clock(retry_at))
    return _(
        "You can send it on %(day)s at %(time)s.",
        day=format_day(retry_at),
        time=format_clock(retry_at),
    )


@bp.get("/sent")
def sent():
    """Confirm the request with its reference (kept in the session, not the URL)."""
    reference = session.get("contact_reference")
    if reference is None:
        return redirect(url_for("contact.contact"))
    complaint = complaint_catalogue().get(session.get("contact_complaint") or "")
    response = current_app.make_response(
        render_template(
            "contact/sent.html", reference=reference, promise=ANSWER_PROMISE, complaint=complaint
        )
    )
    return no_store(response)


@bp.get("/privacy")
def privacy():
    """The full privacy notice for contact requests, as a page of its own."""
    page = render_template(
        "contact/privacy.html",
        retention_days=current_app.config["REQUEST_RETENTION_DAYS"],
        updated=notice_updated(),
        page_meta=page_meta(privacy_description()),
    )
    return current_app.make_response(page)
