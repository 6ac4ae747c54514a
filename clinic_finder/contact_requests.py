"""Contact requests: a patient asks for help, staff answer and refer them to a clinic.

What patients write is health information (GDPR art. 9). It is stored first and only then
announced; emails carry a reference and a link, never the description of the complaint
(except to a clinic the patient allowed to see it); staff views are audited; everything
about a request is deleted once the retention period is over.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import unicodedata
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session
from stdnum.no import fodselsnummer

from .audit import record
from .i18n import format_moment
from .mail import queue_email, render_email
from .models import (
    ContactRequest,
    OutboxMessage,
    Profession,
    Referral,
    RequestEvent,
    RequestStatus,
    StaffUser,
    now_utc,
)
from .validation import email_spellings

# Bump when the privacy notice's wording changes. What a request stores is notice_version():
# this plus the retention period, the one setting the notice's text shows.
NOTICE_VERSION = "2026-12-06"
MAX_MESSAGE_LENGTH = 2000
ANSWER_PROMISE = _l("within 24–48 hours (weekdays)")

DURATIONS = {
    "days": _l("A few days"),
    "weeks": _l("1–4 weeks"),
    "months": _l("1–3 months"),
    "longer": _l("More than 3 months"),
}
CONTACT_TIMES = {
    "any": _l("Any time"),
    "morning": _l("Morning (08–12)"),
    "afternoon": _l("Afternoon (12–16)"),
    "evening": _l("Evening (16–20)"),
}

# Letters and digits that cannot be mistaken for each other when read over the phone.
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Eleven digits, perhaps written 6 + 5 with a dot or dash between (spaces are gone by then).
_ELEVEN_DIGITS = re.compile(r"(?<![0-9])([0-9]{6})[.-]?([0-9]{5})(?![0-9])")
# Spaces of any width, and invisible format characters, between two digits.
_BETWEEN_DIGITS = re.compile(
    r"(?<=[0-9])[\s\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+(?=[0-9])"
)


def in_language(language: str | None):
    """Write what follows in this language (``None``: the current request's)."""
    return force_locale(language) if language else nullcontext()


class ContactRequestError(ValueError):
    """Staff asked for something a request cannot do (e.g. refer to a clinic without email)."""


@dataclass(frozen=True)
class ContactDetails:
    """What a patient submitted, already validated."""

    name: str
    email: str | None
    phone: str | None
    postcode: str
    profession: Profession | None
    message: str
    duration: str = ""
    contact_time: str = ""
    clinic_id: int | None = None
    share_message_with_clinic: bool = False
    complaint: str | None = None  # the slug of the article's complaint, if any


def notice_version(retention_days: int) -> str:
    """Name the privacy notice shown with this retention period, e.g. ``2026-11-25/180d``."""
    return f"{NOTICE_VERSION}/{retention_days}d"


def contains_fodselsnummer(text: str) -> bool:
    """Whether the text holds a valid Norwegian national identity number, however written.

    Written in any script's digits (Arabic-Indic ٠–٩, fullwidth …), or split by spaces of
    any kind (no-break, thin): all are read as the eleven ASCII digits they stand for.
    """
    return any(
        fodselsnummer.is_valid(first + last)
        for first, last in _ELEVEN_DIGITS.findall(_plain_digits(text))
    )


def _plain_digits(text: str) -> str:
    """The text with every decimal digit in ASCII and no spaces between digits."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(str(unicodedata.decimal(char, "")) or char for char in text)
    return _BETWEEN_DIGITS.sub("", text)


def new_reference(session: Session) -> str:
    """Return an unused reference like ``KF-7K3M9QXA``: random, so it reveals no count."""
    while True:
        reference = "KF-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
        if (
            session.scalar(select(ContactRequest.id).where(ContactRequest.reference == reference))
            is None
        ):
            return reference


def staff_notification(request: ContactRequest, base_url: str) -> tuple[str, str]:
    """Subject and body telling staff a request arrived: a reference and a link, no content."""
    return render_email(
        "request_staff.txt",
        reference=request.reference,
        received=format_moment(request.created_at),
        url=f"{base_url.rstrip('/')}/staff/requests/{request.id}",
    )


def patient_confirmation(request: ContactRequest) -> tuple[str, str]:
    """Subject and body confirming receipt to the patient, with nothing they typed in them.

    Anyone can type someone else's address into the form; this email must then carry
    nothing of theirs to it — so its template gets the reference and nothing else.
    """
    return render_email(
        "request_confirmation.txt", reference=request.reference, promise=ANSWER_PROMISE
    )


def create_contact_request(
    session: Session,
    details: ContactDetails,
    *,
    staff_inbox: str,
    base_url: str,
    retention_days: int | None = None,
    source: str = "form",
    patient_language: str | None = None,
    staff_language: str | None = None,
) -> tuple[ContactRequest, list[OutboxMessage]]:
    """Store a request with its consent record and queue its notifications; caller commits.

    ``retention_days`` is the period the privacy notice promised (by default the app's
    REQUEST_RETENTION_DAYS), so the stored notice version names the text the patient
    agreed to. The emails are written in the given
    languages (by default, the current request's).
    """
    if retention_days is None:
        retention_days = current_app.config["REQUEST_RETENTION_DAYS"]
    request = ContactRequest(
        **dataclasses.asdict(details),
        reference=new_reference(session),
        source=source,
        consent_given_at=now_utc(),
        consent_notice_version=notice_version(retention_days),
        status=RequestStatus.NEW,
        language=patient_language or _current_language(),
    )
    session.add(request)
    session.flush()
    messages = [
        _queue(
            session,
            request,
            "request.staff",
            staff_inbox,
            staff_language,
            lambda: staff_notification(request, base_url),
        )
    ]
    if request.email:
        messages.append(
            _queue(
                session,
                request,
                "request.confirmation",
                request.email,
                patient_language,
                lambda: patient_confirmation(request),
            )
        )
    session.flush()
    return request, messages


def _current_language() -> str | None:
    """The language of the page being answered, if any."""
    locale = get_locale()
    return str(locale) if locale is not None else None


def _queue(
    session: Session,
    request: ContactRequest,
    kind: str,
    to: str,
    language: str | None,
    write: Callable[[], tuple[str, str]],
) -> OutboxMessage:
    """Queue an email about a request, written (subject, body) in the given language."""
    with in_language(language):
        subject, body = write()
    return queue_email(session, to=to, subject=subject, body=body, kind=kind, request_id=request.id)


def change_status(
    session: Session,
    actor: StaffUser,
    request: ContactRequest,
    status: RequestStatus,
    note: str = "",
) -> RequestEvent | None:
    """Move a request on (recording who and when); any move out of "new" counts as an answer.

    Audited like every staff action on a request, by reference and status, never the note.
    """
    if status is request.status and not note:
        return None
    event = RequestEvent(
        request=request,
        actor=actor,
        kind="status" if status is not request.status else "note",
        from_status=request.status.value,
        to_status=status.value,
        text=note,
    )
    if status is request.status:
        _record_note(session, actor, request)
    else:
        record(
            session,
            actor,
            "request.status",
            "contact_request",
            request.id,
            {"status": [request.status.value, status.value]},
            summary=request.reference,
        )
    now = now_utc()
    if status is not RequestStatus.NEW and request.first_response_at is None:
        request.first_response_at = now
    request.closed_at = now if status is RequestStatus.CLOSED else None
    request.status = status
    session.add(event)
    return event


def add_note(
    session: Session, actor: StaffUser, request: ContactRequest, text: str
) -> RequestEvent:
    """Add a staff note to a request's history (audited without its text)."""
    event = RequestEvent(request=request, actor=actor, kind="note", text=text)
    session.add(event)
    _record_note(session, actor, request)
    return event


def _record_note(session: Session, actor: StaffUser, request: ContactRequest) -> None:
    # A note may quote the patient: the audit log says that one was written, not what.
    record(session, actor, "request.note", "contact_request", request.id, {}, request.reference)


def record_view(session: Session, actor: StaffUser, request: ContactRequest) -> None:
    """Audit that a staff member opened a request's details."""
    record(session, actor, "request.view", "contact_request", request.id, {}, request.reference)


def _delete_requests(session: Session, request_ids: list[int]) -> None:
    if not request_ids:
        return
    for model in (OutboxMessage, RequestEvent, Referral):
        session.execute(delete(model).where(model.request_id.in_(request_ids)))
    session.execute(delete(ContactRequest).where(ContactRequest.id.in_(request_ids)))


def purge_expired(
    session: Session, retention_days: int, *, now: datetime | None = None, dry_run: bool = False
) -> int:
    """Delete every request received more than ``retention_days`` ago, with all about it."""
    cutoff = (now or now_utc()) - timedelta(days=retention_days)
    ids = list(session.scalars(select(ContactRequest.id).where(ContactRequest.created_at < cutoff)))
    if not dry_run:
        _delete_requests(session, ids)
        record(
            session,
            "command line",
            "request.purge",
            "contact_request",
            None,
            {"deleted": len(ids), "retention_days": retention_days},
            summary=f"{len(ids)} request(s) older than {retention_days} days deleted",
        )
    return len(ids)


def requests_of_person(
    session: Session, email: str | None, phone: str | None
) -> list[ContactRequest]:
    """Every request that gave this email (case-insensitive, its domain in any form) or phone."""
    conditions = []
    if email:
        spellings = sorted(email_spellings(email))
        conditions.append(func.lower(ContactRequest.email).in_(spellings))
    if phone:
        conditions.append(ContactRequest.phone == phone)
    if not conditions:
        return []
    return list(
        session.scalars(select(ContactRequest).where(or_(*conditions)).order_by(ContactRequest.id))
    )


def _email_status(message: OutboxMessage) -> str:
    if message.sent_at is not None:
        return "sent"
    if message.cancelled_at is not None:
        return "cancelled"
    return "failing" if message.attempts else "waiting"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def emails_about(session: Session, request: ContactRequest) -> list[dict[str, Any]]:
    """Every email queued for or about a request: to whom, what, when, and whether it went."""
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.request_id == request.id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return [
        {
            "kind": message.kind,
            "to": message.to_address,
            "subject": message.subject,
            # A referral's body may quote the patient's description.
            "body": message.body,
            "queued_at": _iso(message.created_at),
            "status": _email_status(message),
            "sent_at": _iso(message.sent_at),
            "attempts": message.attempts,
            "last_error": message.last_error,
        }
        for message in messages
    ]


def request_as_json(session: Session, request: ContactRequest) -> dict[str, Any]:
    """Everything held about one request, for a subject access request (GDPR art. 15)."""
    return {
        "reference": request.reference,
        "received_at": request.created_at.isoformat(),
        "name": request.name,
        "email": request.email,
        "phone": request.phone,
        "postcode": request.postcode,
        "profession_wanted": request.profession.value if request.profession else None,
        "message": request.message,
        "duration": request.duration,
        "contact_time": request.contact_time,
        "clinic_asked_about": request.clinic.name if request.clinic else None,
        "complaint": request.complaint,
        "share_message_with_clinic": request.share_message_with_clinic,
        "consent_given_at": request.consent_given_at.isoformat(),
        "consent_notice_version": request.consent_notice_version,
        "status": request.status.value,
        "language": request.language,
        "history": [
            {
                "at": event.at.isoformat(),
                "kind": event.kind,
                "status": event.to_status,
                "note": event.text,
            }
            for event in request.events
        ],
        "referrals": [
            {
                "at": referral.at.isoformat(),
                "clinic": referral.clinic.name,
                "description_shared": referral.shared_message,
                "cancelled_at": _iso(referral.cancelled_at),
            }
            for referral in request.referrals
        ],
        "emails": emails_about(session, request),
    }


def export_person(
    session: Session, actor: StaffUser, email: str | None, phone: str | None
) -> dict[str, Any]:
    """Everything held about one person, as JSON-ready data; audited."""
    found = requests_of_person(session, email, phone)
    record(
        session,
        actor,
        "person.export",
        "contact_request",
        None,
        {"requests": [request.reference for request in found]},
        summary=f"exported {len(found)} request(s)",
    )
    return {
        "exported_at": now_utc().isoformat(),
        "searched_for": {"email": email or None, "phone": phone or None},
        "contact_requests": [request_as_json(session, request) for request in found],
    }


def delete_person(session: Session, actor: StaffUser, email: str | None, phone: str | None) -> int:
    """Delete everything held about one person (GDPR art. 17); audited by reference only."""
    found = requests_of_person(session, email, phone)
    references = [request.reference for request in found]
    _delete_requests(session, [request.id for request in found])
    record(
        session,
        actor,
        "person.delete",
        "contact_request",
        None,
        {"requests": references},
        summary=f"deleted {len(found)} request(s)",
    )
    return len(found)
