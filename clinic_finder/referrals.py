"""Referring a patient to a clinic: the candidates, the emails as they will read, sending,
and undoing it until the emails have gone.

Candidates come from the patient's own search (``finder.find``, the default radius, the
wanted profession, the complaint's order), with the clinic the patient asked about pinned
first. For each, staff see the facts of the clinicians who practise the wanted profession
there (every listed clinician when the patient is not sure): agreement, new patients and
languages are theirs, practice by practice, as the directory stores them.

A referral's emails are drafted by one function (:func:`referral_drafts`), which both the
preview and :func:`refer` call, so staff read exactly what will be queued. They are held in
the outbox for a short while (the view passes the hold), and until a sender takes them
:func:`cancel_referral` can stop them; which of the two comes first is decided by the
database (``mail.cancel_unsent``), never by a check and a write apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .audit import record
from .complaints import Complaint
from .contact_requests import (
    CONTACT_TIMES,
    DURATIONS,
    ContactRequestError,
    add_note,
    change_status,
    in_language,
)
from .finder import FinderQuery, find
from .i18n import profession_name
from .mail import cancel_unsent, checked_address, queue_email, render_email
from .models import (
    Clinic,
    ContactRequest,
    OutboxMessage,
    PostalCode,
    Practice,
    Profession,
    Referral,
    RequestStatus,
    StaffUser,
    now_utc,
)
from .search import DEFAULT_RADIUS_KM, distance_km

REFERRAL_CANDIDATES = 10


class ReferralNotCancellableError(ContactRequestError):
    """The referral's emails have gone, are going, or it was cancelled already."""


# --- candidates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A clinic staff may refer to, with what they need to choose it."""

    clinic: Clinic
    distance_km: float | None  # None when the patient's postcode is not in the register
    asked_about: bool  # the clinic the patient asked about
    # The listed clinicians the facts are about: of the wanted profession (all when the
    # patient is not sure). Empty for a pinned clinic without any.
    practices: tuple[Practice, ...]
    professions: tuple[Profession, ...]  # of every listed clinician here
    new_patients: bool | None  # someone takes new patients; no one does; nobody told us
    with_agreement: tuple[Practice, ...]  # of ``practices``, those with a public agreement
    languages: tuple[str, ...]  # spoken by ``practices``' clinicians
    speaks_patient_language: bool
    suiting_services: tuple[str, ...]  # service keys of ``practices`` suiting the complaint
    live_referral: Referral | None  # a referral here not cancelled, the latest

    @property
    def has_wanted_profession(self) -> bool:
        return bool(self.practices)


def _relevant_practices(clinic: Clinic, profession: Profession | None) -> list[Practice]:
    return [
        practice
        for practice in clinic.listed_practices
        if profession is None or practice.profession is profession
    ]


def _new_patients(practices: list[Practice], now: datetime) -> bool | None:
    """True if one says yes (lately), False if every one said no (lately), else None."""
    answers = [practice.accepts_new_patients_as_of(now) for practice in practices]
    if any(answer is True for answer in answers):
        return True
    if answers and all(answer is False for answer in answers):
        return False
    return None


def describe_candidate(
    request: ContactRequest,
    clinic: Clinic,
    distance: float | None,
    complaint: Complaint | None,
    now: datetime,
) -> Candidate:
    """The facts staff read about one clinic for this request."""
    practices = _relevant_practices(clinic, request.profession)
    languages: list[str] = []
    for practice in practices:
        for code in practice.clinician.languages or []:
            if code not in languages:
                languages.append(code)
    suiting: list[str] = []
    if complaint is not None:
        for practice in practices:
            for service in practice.services or []:
                if complaint.suits_service(service) and service not in suiting:
                    suiting.append(service)
    live = [referral for referral in request.referrals if referral.clinic_id == clinic.id]
    live = [referral for referral in live if referral.cancelled_at is None]
    return Candidate(
        clinic=clinic,
        distance_km=distance,
        asked_about=clinic.id == request.clinic_id,
        practices=tuple(practices),
        professions=tuple(clinic.professions),
        new_patients=_new_patients(practices, now),
        with_agreement=tuple(practice for practice in practices if practice.public_agreement),
        languages=tuple(languages),
        speaks_patient_language=bool(request.language) and request.language in languages,
        suiting_services=tuple(suiting),
        live_referral=live[-1] if live else None,
    )


@dataclass(frozen=True)
class Candidates:
    """The clinics offered for a referral, the one the patient asked about first."""

    items: list[Candidate]
    within_radius: bool  # False: nothing of the profession within the radius, the nearest
    radius_km: float


def referral_candidates(
    session: Session,
    request: ContactRequest,
    complaint: Complaint | None,
    now: datetime,
    limit: int = REFERRAL_CANDIDATES,
) -> Candidates:
    """Clinics for a referral: the patient's own search, the asked-about clinic first.

    The search is the finder's (``finder.find``): within the default radius of the
    patient's postcode, clinics with a listed clinician of the wanted profession (any when
    not sure), ordered by the complaint's ring rule. The clinic the patient asked about
    comes first whatever it is, even far away or without that profession.
    """
    origin = session.get(PostalCode, request.postcode)
    hits: list[tuple[Clinic, float | None]] = []
    within_radius = True
    if origin is not None:
        query = FinderQuery(
            radius_km=DEFAULT_RADIUS_KM,
            professions=frozenset([request.profession]) if request.profession else frozenset(),
            complaint=complaint,
        )
        found = find(session, origin, query, limit=limit, offset=0, now=now).search
        within_radius = found.within_radius
        hits = [(hit.clinic, hit.distance_km) for hit in found.hits]
    asked = request.clinic
    if asked is not None:
        hits = [(clinic, km) for clinic, km in hits if clinic.id != asked.id]
        km = None
        if origin is not None:
            km = distance_km((origin.latitude, origin.longitude), (asked.latitude, asked.longitude))
        hits.insert(0, (asked, km))
    items = [describe_candidate(request, clinic, km, complaint, now) for clinic, km in hits]
    return Candidates(items, within_radius, DEFAULT_RADIUS_KM)


# --- the emails -----------------------------------------------------------------------


@dataclass(frozen=True)
class EmailDraft:
    """One email of a referral as it will be queued: to whom, in which language, what."""

    kind: str  # referral.clinic, referral.patient
    to: str
    language: str | None
    subject: str
    body: str


def referral_email(request: ContactRequest, clinic: Clinic, staff: StaffUser) -> tuple[str, str]:
    """Subject and body of a referral: the description only if the patient allowed it."""
    return render_email(
        "referral_clinic.txt",
        request=request,
        clinic=clinic,
        wanted=(
            profession_name(request.profession).lower()
            if request.profession
            else _("not sure (advise them)")
        ),
        contact_time=CONTACT_TIMES.get(request.contact_time, CONTACT_TIMES["any"]),
        duration=DURATIONS.get(request.duration) or _("not given"),
        staff_email=staff.email,
    )


def referral_patient_email(request: ContactRequest, clinic: Clinic) -> tuple[str, str]:
    """Subject and body telling the patient which clinic has their request; nothing they typed."""
    return render_email("referral_patient.txt", reference=request.reference, clinic=clinic)


def referral_drafts(
    request: ContactRequest,
    clinic: Clinic,
    staff: StaffUser,
    *,
    tell_patient: bool,
    clinic_language: str | None,
    fallback_language: str | None = None,
) -> list[EmailDraft]:
    """The emails a referral sends: to the clinic in ``clinic_language``, and (asked, and
    with an address) to the patient in the language they wrote in (else the fallback).

    The preview shows these and :func:`refer` queues these: what staff read is what goes.
    """
    _check_referral_addresses(request, clinic, tell_patient)
    drafts = [
        _draft(
            "referral.clinic",
            clinic.email,
            clinic_language,
            lambda: referral_email(request, clinic, staff),
        )
    ]
    if tell_patient and request.email:
        drafts.append(
            _draft(
                "referral.patient",
                request.email,
                request.language or fallback_language or clinic_language,
                lambda: referral_patient_email(request, clinic),
            )
        )
    return drafts


def _draft(kind: str, to: str, language: str | None, write) -> EmailDraft:
    with in_language(language):
        subject, body = write()
    return EmailDraft(kind, to, language, subject, body)


def _unsendable_clinic_address(clinic: Clinic) -> str | None:
    """Say why the clinic cannot be emailed (no address, or one we cannot send to), or None."""
    if not clinic.email:
        if clinic.phone:
            return _(
                "%(clinic)s has no email address in the directory; call them (%(phone)s) or "
                "add one first.",
                clinic=clinic.name,
                phone=clinic.phone,
            )
        return _(
            "%(clinic)s has no email address in the directory (and no phone either); "
            "add one first.",
            clinic=clinic.name,
        )
    try:
        checked_address(clinic.email)
    except ValueError:
        # Stored before addresses had to be ones we can send to (or by hand, in the database).
        if clinic.phone:
            return _(
                "We cannot send email to %(clinic)s at the address in the directory "
                "(%(email)s); call them (%(phone)s) or correct the address first.",
                clinic=clinic.name,
                email=clinic.email,
                phone=clinic.phone,
            )
        return _(
            "We cannot send email to %(clinic)s at the address in the directory "
            "(%(email)s); correct the address first.",
            clinic=clinic.name,
            email=clinic.email,
        )
    return None


def _check_referral_addresses(request: ContactRequest, clinic: Clinic, tell_patient: bool):
    """Refuse a referral whose emails could not be sent, saying what to do instead."""
    problem = _unsendable_clinic_address(clinic)
    if problem is not None:
        raise ContactRequestError(problem)
    if tell_patient and request.email:
        try:
            checked_address(request.email)
        except ValueError:
            raise ContactRequestError(
                _(
                    "We cannot send email to the patient's address (%(email)s). Untick "
                    "“Also email the patient the clinic's name” and tell them by phone.",
                    email=request.email,
                )
            ) from None


# --- referring and undoing ------------------------------------------------------------


def live_referral_to(request: ContactRequest, clinic: Clinic) -> Referral | None:
    """The latest referral of this request to this clinic that was not cancelled."""
    live = [
        referral
        for referral in request.referrals
        if referral.clinic_id == clinic.id and referral.cancelled_at is None
    ]
    return live[-1] if live else None


def refer(
    session: Session,
    actor: StaffUser,
    request: ContactRequest,
    clinic: Clinic,
    *,
    tell_patient: bool,
    language: str | None = None,
    hold: timedelta = timedelta(0),
    again: bool = False,
) -> tuple[Referral, list[OutboxMessage]]:
    """Refer the patient to a clinic by email, record it, and mark the request referred.

    The emails are :func:`referral_drafts`' (the clinic's in ``language``, the patient's in
    their own), held in the outbox for ``hold`` so the referral can be cancelled meanwhile.
    A second referral to a clinic that has one not cancelled needs ``again``.
    """
    if live_referral_to(request, clinic) is not None and not again:
        raise ContactRequestError(
            _(
                "%(clinic)s has this referral already. Confirm that you want to send it again.",
                clinic=clinic.name,
            )
        )
    drafts = referral_drafts(
        request, clinic, actor, tell_patient=tell_patient, clinic_language=language
    )
    referral = Referral(
        request=request,
        clinic=clinic,
        referred_by=actor,
        shared_message=request.share_message_with_clinic,
    )
    session.add(referral)
    session.flush()
    send_at = now_utc() + hold
    messages = [
        queue_email(
            session,
            to=draft.to,
            subject=draft.subject,
            body=draft.body,
            kind=draft.kind,
            request_id=request.id,
            referral_id=referral.id,
            send_at=send_at,
        )
        for draft in drafts
    ]
    # A note in the request's history, which staff read in their own language.
    note = _("Referred to %(clinic)s", clinic=clinic.name)
    change_status(session, actor, request, RequestStatus.REFERRED, note=note)
    _record_referral(session, actor, referral, patient_told=len(messages) > 1)
    session.flush()
    return referral, messages


def _record_referral(
    session: Session, actor: StaffUser, referral: Referral, *, patient_told: bool
) -> None:
    request, clinic = referral.request, referral.clinic
    record(
        session,
        actor,
        "request.referral",
        "contact_request",
        request.id,
        {
            "clinic_id": clinic.id,
            "clinic": clinic.name,
            "description_shared": referral.shared_message,
            "patient_told": patient_told,
        },
        summary=f"{request.reference} referred to {clinic.name}",
    )


class ReferralState(enum.Enum):
    """Where a referral's emails are."""

    WAITING = "waiting"  # held or queued, no sender has them: it can be cancelled
    SENDING = "sending"  # a sender has taken one: it may be on its way
    # One went, and another waits to be tried again (it failed, or is not due yet).
    PARTLY_SENT = "partly_sent"
    SENT = "sent"  # every email went
    CANCELLED = "cancelled"
    EARLIER = "earlier"  # made before referrals could be undone: its emails are not linked


def referral_state(referral: Referral) -> ReferralState:
    """Where the referral's emails are (from the outbox rows as loaded)."""
    if referral.cancelled_at is not None:
        return ReferralState.CANCELLED
    messages = referral.messages
    if not messages:
        return ReferralState.EARLIER
    if all(message.sent_at is not None for message in messages):
        return ReferralState.SENT
    if any(message.sent_at is None and message.claimed_at is not None for message in messages):
        return ReferralState.SENDING
    if any(message.sent_at is not None for message in messages):
        return ReferralState.PARTLY_SENT
    return ReferralState.WAITING


def still_waiting_for(referral: Referral) -> str | None:
    """Whose email of the referral has not gone yet: "clinic", "patient", or None."""
    unsent = {message.kind for message in referral.messages if message.sent_at is None}
    if "referral.clinic" in unsent:
        return "clinic"
    return "patient" if "referral.patient" in unsent else None


def sends_at(referral: Referral) -> datetime | None:
    """When the outbox will next try the referral's first unsent email."""
    unsent = [m.next_attempt_at for m in referral.messages if m.sent_at is None]
    return min(unsent) if unsent else None


def _too_late(referral: Referral) -> str:
    """Why a referral that a sender has taken or sent can no longer be cancelled."""
    clinic = referral.clinic.name
    state = referral_state(referral)
    if state is ReferralState.SENT:
        return _(
            "Too late to cancel: the referral to %(clinic)s has been sent. Phone the "
            "clinic if it must be stopped.",
            clinic=clinic,
        )
    if state is ReferralState.PARTLY_SENT:
        return _(
            "Too late to cancel: an email of the referral to %(clinic)s has gone. "
            "Phone the clinic if it must be stopped.",
            clinic=clinic,
        )
    return _(
        "Too late to cancel: the referral to %(clinic)s is being sent right now. "
        "Phone the clinic if it must be stopped.",
        clinic=clinic,
    )


def cancel_referral(session: Session, actor: StaffUser, referral: Referral) -> None:
    """Cancel a referral whose emails no sender has taken yet; record it; caller commits.

    Raises :class:`ReferralNotCancellableError` (the caller then rolls back) when it was
    cancelled already, an email of it has been sent, or a sender holds one right now:
    then nothing is cancelled. The referral is kept, marked cancelled, and the request's
    history and the audit log say who cancelled it and when.
    """
    if referral.cancelled_at is not None:
        raise ReferralNotCancellableError(_("This referral was cancelled already."))
    messages = list(referral.messages)
    if not messages:
        raise ReferralNotCancellableError(
            _("This referral was made before referrals could be undone; its emails have gone.")
        )
    if not cancel_unsent(session, [message.id for message in messages]):
        for message in messages:
            session.refresh(message)
        if referral.cancelled_at is None:
            session.refresh(referral)
        if referral.cancelled_at is not None:
            raise ReferralNotCancellableError(_("This referral was cancelled already."))
        raise ReferralNotCancellableError(_too_late(referral))
    for message in messages:
        session.refresh(message)  # the UPDATE bypassed the loaded rows
    request, clinic = referral.request, referral.clinic
    referral.cancelled_at = now_utc()
    referral.cancelled_by = actor
    note = _("Referral to %(clinic)s cancelled before it was sent", clinic=clinic.name)
    others = [r for r in request.referrals if r is not referral and r.cancelled_at is None]
    if request.status is RequestStatus.REFERRED and not others:
        change_status(session, actor, request, RequestStatus.IN_PROGRESS, note=note)
    else:
        add_note(session, actor, request, note)
    record(
        session,
        actor,
        "request.referral_cancelled",
        "contact_request",
        request.id,
        {"clinic_id": clinic.id, "clinic": clinic.name, "referral_id": referral.id},
        summary=f"{request.reference}: referral to {clinic.name} cancelled",
    )
    session.flush()
