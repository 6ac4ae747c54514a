"""The contact request form: a patient asks for help finding a clinician."""

from __future__ import annotations

import math
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

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
from flask_babel import lazy_gettext as _l

from ..contact_requests import ANSWER_PROMISE, create_contact_request, notice_version
from ..extensions import db, limiter
from ..i18n import current_language, format_clock, format_day, visitor_language
from ..mail import send_after_commit
from ..models import ContactRequest, now_utc
from ..public.forms import complaint_catalogue
from .forms import ContactForm

bp = Blueprint("contact", __name__, url_prefix="/contact")

NOT_STORED_MESSAGE = _l(
    "We are sorry: we could not store your request just now, so nothing was sent. What you "
    "wrote is still here. Please try sending it again in a minute."
)
# Seconds after which an API client may try again when storing failed.
NOT_STORED_RETRY_AFTER = 60
_PACKAGE = str(Path(__file__).resolve().parent.parent)


def contact_rate_limit() -> str:
    """Per-address limit on contact requests (form and API share it)."""
    return current_app.config["CONTACT_RATE_LIMIT"]


def request_was_stored(response: Response) -> bool:
    """Whether this is the answer given after storing a request: the only kind that counts."""
    if response.status_code == 201:  # the API's
        return True
    return response.status_code == 302 and response.location == url_for("contact.sent")


# One limit for the form and the API together. Only stored requests use it up: a refused
# post (no consent, a foreign Origin) costs nothing, so another web page cannot use up a
# visitor's requests by making their browser post for it.
contact_requests_limit = limiter.shared_limit(
    contact_rate_limit,
    scope="contact-requests",
    methods=["POST"],
    deduct_when=request_was_stored,
)


class RequestNotStoredError(Exception):
    """Storing a validated request failed; nothing of it was kept."""


def submit_contact_request(form: ContactForm, source: str) -> ContactRequest:
    """Store the request, commit, and only then try to send its notifications.

    However storing fails, it is rolled back and :class:`RequestNotStoredError` raised, so
    the views give the patient back what they sent instead of a 500 that loses it.
    """
    try:
        contact_request, messages = create_contact_request(
            db.session,
            form.details(),
            staff_inbox=current_app.config["STAFF_INBOX_EMAIL"],
            base_url=current_app.config["PUBLIC_BASE_URL"],
            retention_days=current_app.config["REQUEST_RETENTION_DAYS"],
            source=source,
            # The patient's confirmation goes out in the language they wrote in (even via
            # the API, whose answers are English: the article site's visitor sends
            # Accept-Language).
            patient_language=visitor_language(),
            staff_language=current_app.config["DEFAULT_LOCALE"],
        )
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        _log_not_stored(error, source)
        raise RequestNotStoredError from error
    send_after_commit([message.id for message in messages])
    current_app.logger.info("contact request %s stored (%s)", contact_request.id, source)
    return contact_request


def _log_not_stored(error: Exception, source: str) -> None:
    # The error's type and our line that met it, never its text: a database error quotes
    # the values it was given, and those are the patient's.
    ours = [
        frame for frame in traceback.extract_tb(error.__traceback__) if _PACKAGE in frame.filename
    ]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    current_app.logger.error(
        "contact request not stored (%s): %s at %s", source, type(error).__name__, where
    )


def _no_store(response):
    # What a patient typed must not stay in a shared computer's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_page(form: ContactForm, status: int, **extra) -> Response:
    """The form page, with what was sent in it, not to be cached."""
    page = render_template(
        "contact/form.html",
        form=form,
        # Set by the form: a clinic patients can find, or None once found wrong.
        clinic=form.clinic,
        retention_days=current_app.config["REQUEST_RETENTION_DAYS"],
        notice_version=notice_version(current_app.config["REQUEST_RETENTION_DAYS"]),
        **extra,
    )
    return _no_store(current_app.make_response((page, status)))


@bp.route("", methods=["GET", "POST"])
@contact_requests_limit
def contact():
    """Show the form (prefilled from the search), and store a request sent with it."""
    form = ContactForm()
    if request.method == "GET":
        form.postcode.data = request.args.get("postcode", "")[:4]
        form.profession.data = request.args.get("profession", "")
        form.prefill_clinic(request.args.get("clinic", ""))
        complaint = complaint_catalogue().get(request.args.get("complaint", ""))
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
    response = current_app.make_response(
        render_template("contact/sent.html", reference=reference, promise=ANSWER_PROMISE)
    )
    return _no_store(response)
