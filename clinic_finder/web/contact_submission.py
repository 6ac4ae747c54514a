"""Storing a patient's contact request, for the form and the API alike: one rate limit that
only stored requests use up, and a failure to store that loses nothing the patient typed."""

from __future__ import annotations

import traceback
from pathlib import Path

from flask import Response, current_app, url_for
from flask_babel import lazy_gettext as _l

from ..contact_requests import create_contact_request
from ..extensions import db, limiter
from ..i18n import visitor_language
from ..mail import send_after_commit
from ..models import ContactRequest
from .contact_form import ContactForm

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
