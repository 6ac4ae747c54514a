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
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, case, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload
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
from .working_hours import overdue_cutoff

# Bump when the privacy notice's wording changes. What a request stores is notice_version():
# this plus the retention period, the one setting the notice's text shows. The day of the
# change, and ".2", ".3" … for a second change that day (the notice says "Last updated" on
# the day).
NOTICE_VERSION = "2026-12-06.2"
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


def notice_updated() -> date:
    """The day the privacy notice's wording last changed."""
    return date.fromisoformat(NOTICE_VERSION[:10])


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


class OwnerConflict(ContactRequestError):
    """Someone else took the request between the page being shown and the button pressed."""

    def __init__(self, request: ContactRequest):
        owner = request.owner
        if owner is None:
            message = _(
                "%(reference)s was let go in the meantime; nobody has it now. Look again "
                "before you take it.",
                reference=request.reference,
            )
        else:
            message = _(
                "%(owner)s took %(reference)s in the meantime, so it stays with them. To "
                "take it over, give it to yourself.",
                owner=owner.email,
                reference=request.reference,
            )
        super().__init__(message)


def _set_owner_if_still(
    session: Session, request: ContactRequest, owner: StaffUser | None, *still: Any
) -> None:
    """Set the owner in one conditional UPDATE, or raise OwnerConflict if ``still`` fails.

    The condition is checked by the database as it writes the row, so of two people
    pressing "take" at the same moment, the second is told, not overruled.
    """
    changed = session.execute(
        update(ContactRequest)
        .where(ContactRequest.id == request.id, or_(*still))
        .values(owner_id=owner.id if owner else None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    if changed.rowcount != 1:
        raise OwnerConflict(request)


def _record_owner(
    session: Session,
    actor: StaffUser,
    request: ContactRequest,
    previous: StaffUser | None,
    *,
    action: str,
    note: str,
) -> RequestEvent:
    """Put an owner change in the request's history and in the audit log."""
    event = RequestEvent(request=request, actor=actor, kind="owner", text=note)
    session.add(event)
    owner = request.owner
    record(
        session,
        actor,
        action,
        "contact_request",
        request.id,
        {"owner": [previous.email if previous else None, owner.email if owner else None]},
        summary=request.reference,
    )
    session.flush()
    return event


def claim(
    session: Session, actor: StaffUser, request: ContactRequest, *, seen_owner_id: int | None
) -> RequestEvent | None:
    """Take a request on, unless someone other than the owner shown took it meanwhile.

    ``seen_owner_id`` is the owner the staff member saw (None: nobody). Raises
    OwnerConflict, naming who has it now, when another took it since.
    """
    if request.owner_id == actor.id:
        return None
    previous = request.owner
    still = [ContactRequest.owner_id.is_(None)]
    if seen_owner_id is not None:
        still.append(ContactRequest.owner_id == seen_owner_id)
    _set_owner_if_still(session, request, actor, *still)
    # The history is read by staff, in their own language, like a referral's note.
    return _record_owner(
        session, actor, request, previous, action="request.claim", note=_("Took the request")
    )


def assign(
    session: Session, actor: StaffUser, request: ContactRequest, owner: StaffUser
) -> RequestEvent | None:
    """Give a request to a staff member: an explicit choice, so it may take it from another."""
    if not owner.active:
        raise ContactRequestError(
            _("%(email)s is deactivated; choose someone else.", email=owner.email)
        )
    if request.owner_id == owner.id:
        return None
    previous = request.owner
    request.owner = owner
    note = (
        _("Took the request")
        if owner.id == actor.id
        else _("Assigned the request to %(email)s", email=owner.email)
    )
    return _record_owner(session, actor, request, previous, action="request.assign", note=note)


def release(
    session: Session, actor: StaffUser, request: ContactRequest, *, seen_owner_id: int | None
) -> RequestEvent:
    """Let a request you have go (nobody has it), unless its owner changed since it was
    shown; someone else's is given away with assign, which names the new owner."""
    if seen_owner_id != actor.id:
        raise ContactRequestError(
            _(
                "Only the staff member who has %(reference)s can let it go; give it to "
                "someone instead.",
                reference=request.reference,
            )
        )
    previous = request.owner
    _set_owner_if_still(session, request, None, ContactRequest.owner_id == seen_owner_id)
    return _record_owner(
        session, actor, request, previous, action="request.release", note=_("Let the request go")
    )


@dataclass(frozen=True)
class InboxFilter:
    """Which requests the inbox shows, and in what order (every field from the URL)."""

    status: str = "open"  # "open" (new and in progress), "" (all), or a RequestStatus value
    profession: str = ""  # "", "none" (not sure), or a Profession value
    language: str = ""  # "", "nb", "en", or "unknown" (from before the language was kept)
    clinic: str = ""  # "", "yes" (asked about a clinic), "no"
    owner: str = ""  # "", "me", "none", or a staff member's id
    overdue: bool = False
    sort: str = "status"  # "status" (new first, then oldest), "oldest", "newest"


OPEN_STATUSES = (RequestStatus.NEW, RequestStatus.IN_PROGRESS)
_STATUS_ORDER = case(
    *[(ContactRequest.status == status, number) for number, status in enumerate(RequestStatus)]
)


def _overdue(cutoff: datetime):
    """The SQL twin of ContactRequest.is_overdue, given ``overdue_cutoff(now)``."""
    return (
        (ContactRequest.status == RequestStatus.NEW)
        & ContactRequest.first_response_at.is_(None)
        & (ContactRequest.created_at < cutoff)
    )


def inbox_query(wanted: InboxFilter, *, me: StaffUser, now: datetime) -> Select:
    """Select the requests the inbox shows for these filters, in their order."""
    query = select(ContactRequest).options(
        selectinload(ContactRequest.clinic), selectinload(ContactRequest.owner)
    )
    if wanted.status == "open":
        query = query.where(ContactRequest.status.in_(OPEN_STATUSES))
    elif wanted.status:
        query = query.where(ContactRequest.status == RequestStatus(wanted.status))
    if wanted.profession == "none":
        query = query.where(ContactRequest.profession.is_(None))
    elif wanted.profession:
        query = query.where(ContactRequest.profession == Profession(wanted.profession))
    if wanted.language == "unknown":
        query = query.where(ContactRequest.language.is_(None))
    elif wanted.language:
        query = query.where(ContactRequest.language == wanted.language)
    if wanted.clinic == "yes":
        query = query.where(ContactRequest.clinic_id.is_not(None))
    elif wanted.clinic == "no":
        query = query.where(ContactRequest.clinic_id.is_(None))
    if wanted.owner == "me":
        query = query.where(ContactRequest.owner_id == me.id)
    elif wanted.owner == "none":
        query = query.where(ContactRequest.owner_id.is_(None))
    elif wanted.owner:
        query = query.where(ContactRequest.owner_id == int(wanted.owner))
    if wanted.overdue:
        query = query.where(_overdue(overdue_cutoff(now)))
    if wanted.sort == "newest":
        return query.order_by(ContactRequest.created_at.desc(), ContactRequest.id.desc())
    if wanted.sort == "oldest":
        return query.order_by(ContactRequest.created_at, ContactRequest.id)
    return query.order_by(_STATUS_ORDER, ContactRequest.created_at, ContactRequest.id)


def inbox_counts(session: Session, me: StaffUser, now: datetime) -> dict[str, int]:
    """How many requests are new, overdue, and open and mine: one query."""
    new, overdue, mine = session.execute(
        select(
            func.count().filter(ContactRequest.status == RequestStatus.NEW),
            func.count().filter(_overdue(overdue_cutoff(now))),
            func.count().filter(
                ContactRequest.status.in_(OPEN_STATUSES), ContactRequest.owner_id == me.id
            ),
        ).select_from(ContactRequest)
    ).one()
    return {"new": new, "overdue": overdue, "mine": mine}


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
