"""Outgoing email: templates, an outbox table, a mailer behind a seam, a sender that retries.

Each email is a template in ``templates/email/`` with a ``subject`` and a ``body`` block,
rendered by :func:`render_email` as plain text (no HTML escaping) in the current language.

Nothing is ever sent inside the transaction that stores a contact request: the view queues
:class:`~clinic_finder.models.OutboxMessage` rows with :func:`queue_email`, commits, and
only then tries to deliver them (:func:`send_after_commit`). Whatever is not delivered
then is sent by ``flask outbox send`` (cron, or ``--loop``) through :func:`send_due`; a
failed send stays in the outbox with a growing back-off, so a mail server that is down
never loses or blocks a request. Once it is back, ``flask outbox send --retry-now`` (or an
admin's «Send all now» on the staff pages) sends everything at once, ignoring the back-off
but never a message another sender holds.

Headers are built with :mod:`email`'s SMTP policy, which refuses line breaks in header
values, and :func:`queue_email` already refuses them in addresses and folds them out of
subjects, so text a patient typed can never add a header or a recipient. Every address is
checked by the one rule for addresses (``validation.clean_email``), so anything accepted
anywhere can be sent to.

Messages carry health data (GDPR art. 9): logs name message ids, kinds and error types,
never addresses, subjects or bodies.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import sys
import threading
import time
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Protocol, TextIO

from flask import Flask, Response, after_this_request, current_app, has_request_context
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from . import audit
from .extensions import db
from .models import OutboxMessage, StaffUser, as_utc, now_utc
from .validation import clean_email

logger = logging.getLogger(__name__)

EXTENSION_KEY = "clinic_finder.mailer"
TEMPLATES_KEY = "clinic_finder.email_templates"

# OutboxMessage column sizes.
MAX_ADDRESS_LENGTH = 254
MAX_SUBJECT_LENGTH = 200
MAX_KIND_LENGTH = 40

RETRY_FIRST_DELAY = timedelta(minutes=1)
RETRY_MAX_DELAY = timedelta(hours=1)
# A claimed message is not due for others this long; if the sender dies mid-send, the
# message is tried again after it (it may then arrive twice, never zero times).
CLAIM_LEASE = timedelta(minutes=10)

# Failures that concern one message; any other OSError (smtplib's errors are OSErrors too)
# means the server is unreachable or refuses us, so the rest of the run would fail as well.
MESSAGE_ERRORS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
)


class Mailer(Protocol):
    """Something that delivers an email or raises."""

    def send(self, message: EmailMessage) -> None: ...


class MailNotConfiguredError(ConnectionError):
    """Production has no MAIL_SERVER: mail waits in the outbox rather than going to the console."""


class SmtpMailer:
    """Deliver email through an SMTP server, one connection per message."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        use_tls: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.use_tls = use_tls
        self.timeout = timeout
        self._ssl_context = ssl.create_default_context() if use_tls else None

    def send(self, message: EmailMessage) -> None:
        """Send one message; raise on any failure (the outbox keeps it)."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.use_tls:
                smtp.starttls(context=self._ssl_context)
            if self.username:
                smtp.login(self.username, self._password)
            smtp.send_message(message)

    def __repr__(self) -> str:  # never the password
        return f"<SmtpMailer {self.host}:{self.port} tls={self.use_tls}>"


class ConsoleMailer:
    """Print email instead of sending it: development only, because it prints bodies.

    Used only when MAIL_SERVER is empty outside production.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        # None: sys.stderr as it is at send time (pytest swaps it per test).
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, message: EmailMessage) -> None:
        """Print the message's headers and body."""
        stream = self.stream if self.stream is not None else sys.stderr
        headers = "".join(f"{name}: {value}\n" for name, value in message.items())
        text = (
            "----- email not sent (MAIL_SERVER is not set) -----\n"
            f"{headers}\n{message.get_content().rstrip()}\n"
            "----- end of email -----\n"
        )
        with self._lock:  # whole messages, even from several threads
            stream.write(text)
            stream.flush()


class UnconfiguredMailer:
    """Refuse to send: production without MAIL_SERVER keeps mail queued, never prints it."""

    def send(self, message: EmailMessage) -> None:
        """Raise, so the message stays in the outbox until MAIL_SERVER is set."""
        raise MailNotConfiguredError("MAIL_SERVER is not set")


def build_mailer(config: Mapping[str, Any]) -> Mailer:
    """Return the mailer the config asks for: SMTP, or the console without MAIL_SERVER."""
    server = str(config.get("MAIL_SERVER") or "").strip()
    if not server:
        if config.get("APP_ENV") == "production":
            return UnconfiguredMailer()
        return ConsoleMailer()
    return SmtpMailer(
        host=server,
        port=int(config.get("MAIL_PORT") or 587),
        username=config.get("MAIL_USERNAME") or "",
        password=config.get("MAIL_PASSWORD") or "",
        use_tls=bool(config.get("MAIL_USE_TLS", True)),
        timeout=float(config.get("MAIL_TIMEOUT") or 10.0),
    )


def init_app(app: Flask) -> None:
    """Build the app's mailer and its email templates, and keep them in ``app.extensions``."""
    app.extensions[EXTENSION_KEY] = build_mailer(app.config)
    app.extensions[TEMPLATES_KEY] = app.jinja_env.overlay(
        # A text part is not HTML: escaped, "Fysio & Trening" would arrive as "&amp;". An
        # HTML part (a .html template) would be escaped as every page is.
        autoescape=_is_html,
        # Templates laid out line by line, as the emails read.
        trim_blocks=True,
        lstrip_blocks=True,
        cache_size=50,
    )


def _is_html(template_name: str | None) -> bool:
    return (template_name or "").endswith(".html")


def render_email(template_name: str, /, **context: Any) -> tuple[str, str]:
    """Render ``templates/email/<template_name>``: its ``subject`` block on one line, its ``body``.

    Templates see only the ``context`` given here (no request, session or config), and write
    in the current language, as pages do.
    """
    environment = current_app.extensions[TEMPLATES_KEY]
    template = environment.get_template(f"email/{template_name}")
    subject = "".join(template.blocks["subject"](template.new_context(context)))
    body = "".join(template.blocks["body"](template.new_context(context)))
    return one_line(subject), body


def current_mailer() -> Mailer:
    """Return the current app's mailer."""
    try:
        return current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "No mailer set up: call clinic_finder.mail.init_app(app) in create_app."
        ) from None


def one_line(text: str) -> str:
    """Fold line breaks, control characters and runs of spaces into single spaces."""
    spaced = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    # str.split() also splits on U+2028/U+2029 and the other Unicode line breaks.
    return " ".join(spaced.split())


def checked_address(address: str) -> str:
    """Return a single bare email address we can send to, or raise ValueError.

    The same rule as every address we accept (``validation.clean_email``), so an address
    that was accepted can be sent to. Line breaks and control characters are refused
    rather than cleaned: an address that contains them was tampered with, and a guess
    might mail someone else.
    """
    if any(unicodedata.category(char) in {"Cc", "Zl", "Zp"} for char in address):
        raise ValueError("An email address may not contain line breaks or control characters.")
    address = address.strip()
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        raise ValueError(f"An email address has 1 to {MAX_ADDRESS_LENGTH} characters.")
    # One addr-spec only: "a@x, b@y" and "Name <a@x>" are refused too.
    return clean_email(address)


def queue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    request_id: int | None = None,
    referral_id: int | None = None,
    send_at: datetime | None = None,
) -> OutboxMessage:
    """Add an email to the outbox (the caller commits); raise ValueError for a bad address.

    ``send_at`` holds it back until then (e.g. while a referral can still be undone).
    """
    if not kind or len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"An email's kind has 1 to {MAX_KIND_LENGTH} characters.")
    # A patient's name may end up in a subject, so line breaks there are folded, not refused.
    subject = one_line(subject)
    if len(subject) > MAX_SUBJECT_LENGTH:
        subject = subject[: MAX_SUBJECT_LENGTH - 1].rstrip() + "…"
    message = OutboxMessage(
        kind=kind,
        to_address=checked_address(to),
        subject=subject,
        body=body,
        request_id=request_id,
        referral_id=referral_id,
        attempts=0,
        next_attempt_at=send_at or now_utc(),
    )
    session.add(message)
    return message


def build_message(outbox_message: OutboxMessage, sender: str) -> EmailMessage:
    """Build the email for an outbox row; headers refuse line breaks (ValueError)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = Address(addr_spec=checked_address(outbox_message.to_address))
    # Rows are written by queue_email, but the header must be safe whatever is in the table.
    message["Subject"] = one_line(outbox_message.subject)
    message["Date"] = format_datetime(as_utc(outbox_message.created_at or now_utc()))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "clinic-finder.example"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(outbox_message.body, charset="utf-8")
    return message


def retry_delay(attempts: int) -> timedelta:
    """Return how long to wait after this many failed attempts: 1, 2, 4 … minutes, at most 1 h."""
    doublings = min(max(attempts - 1, 0), 16)  # past the cap anyway; keeps the number small
    return min(RETRY_FIRST_DELAY * 2**doublings, RETRY_MAX_DELAY)


def is_server_unreachable(error: BaseException) -> bool:
    """Tell whether a send failed because of the server, not the message."""
    return isinstance(error, OSError) and not isinstance(error, MESSAGE_ERRORS)


@dataclass
class SendReport:
    """What one run of the sender did."""

    sent: int = 0
    failed: int = 0
    # Unsent messages after the run, due or waiting for their next attempt.
    remaining: int = 0
    # The run stopped early because the server could not be reached.
    server_unreachable: bool = False


def _unsent(only_ids: Collection[int] | None):
    query = select(OutboxMessage.id).where(
        OutboxMessage.sent_at.is_(None), OutboxMessage.cancelled_at.is_(None)
    )
    if only_ids is not None:
        query = query.where(OutboxMessage.id.in_(list(only_ids)))
    return query


def _claimable(moment: datetime, ignore_backoff: bool):
    """The rule for a message a sender may claim: unsent, not cancelled, no live claim, and
    due — or, when the back-off is ignored, already tried once.

    Ignoring the back-off never sends a message that was never tried before its time: that
    time is a deliberate hold (a referral that can still be undone), not a back-off.
    """
    conditions = [
        OutboxMessage.sent_at.is_(None),
        # Of a claim and a cancellation (cancel_unsent), exactly one matches.
        OutboxMessage.cancelled_at.is_(None),
        # A claim older than the lease belongs to a sender that died: it may be taken.
        or_(
            OutboxMessage.claimed_at.is_(None),
            OutboxMessage.claimed_at <= moment - CLAIM_LEASE,
        ),
    ]
    due = OutboxMessage.next_attempt_at <= moment
    conditions.append(or_(due, OutboxMessage.attempts > 0) if ignore_backoff else due)
    return and_(*conditions)


def _claim_next(
    session: Session,
    moment: datetime,
    only_ids: Collection[int] | None,
    after_id: int,
    ignore_backoff: bool,
) -> OutboxMessage | None:
    """Claim the oldest claimable message after ``after_id``, so no other sender sends it too."""
    while True:
        # PostgreSQL: rows another sender is claiming are skipped instead of waited for.
        # SQLite does not emit the clause; its single writer serialises the UPDATE below.
        message_id = session.scalar(
            _unsent(only_ids)
            .where(OutboxMessage.id > after_id, _claimable(moment, ignore_backoff))
            .order_by(OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if message_id is None:
            session.commit()
            return None
        # The lease runs from now even when a long run's ``moment`` lies in the past.
        claimed_at = max(moment, now_utc())
        # The claim is a conditional UPDATE: of two senders, exactly one matches the row
        # (PostgreSQL re-checks the condition on the row the first one committed). Pushing
        # next_attempt_at too keeps a claimed message out of every ordinary sender's query.
        claimed = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, _claimable(moment, ignore_backoff))
            .values(next_attempt_at=claimed_at + CLAIM_LEASE, claimed_at=claimed_at)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if claimed.rowcount == 1:
            return session.get(OutboxMessage, message_id)
        after_id = message_id  # another sender has it


def _put_back(session: Session, message: OutboxMessage, moment: datetime, error: Exception) -> None:
    """Release a message whose send failed, to be tried again after its back-off; commit."""
    message.attempts += 1
    message.next_attempt_at = moment + retry_delay(message.attempts)
    message.claimed_at = None  # not on its way: it may be cancelled until tried again
    message.last_error = type(error).__name__[:200]  # never str(error): it may quote
    session.commit()
    logger.warning(
        "outbox message %s (%s) not sent: %s; attempt %s, next in %s",
        message.id,
        message.kind,
        type(error).__name__,
        message.attempts,
        retry_delay(message.attempts),
    )


def send_due(
    session: Session,
    mailer: Mailer,
    sender: str,
    *,
    now: datetime | None = None,
    limit: int | None = 100,
    only_ids: Collection[int] | None = None,
    ignore_backoff: bool = False,
    deadline: float | None = None,
) -> SendReport:
    """Send up to ``limit`` due messages (None: all), oldest first; commits after each one.

    Each message is claimed, sent, and marked sent in its own commit, so a crash never
    re-sends what went out before it, and two senders never send the same message. A
    failure pushes the message back (:func:`retry_delay`); a server that cannot be reached
    ends the run, leaving the rest due for the next one. Each message is tried at most
    once per run.

    ``ignore_backoff`` sends every unsent message, however long its back-off still runs
    (after a mail outage: ``flask outbox send --retry-now``), but never one another sender
    has claimed. ``deadline`` (a ``time.monotonic()`` value) stops the run before the next
    message once passed, for a sender that must answer in time (a web request).
    """
    moment = now or now_utc()
    report = SendReport()
    after_id = 0
    while limit is None or report.sent + report.failed < limit:
        if deadline is not None and time.monotonic() >= deadline:
            break
        message = _claim_next(session, moment, only_ids, after_id, ignore_backoff)
        if message is None:
            break
        after_id = message.id
        try:
            mailer.send(build_message(message, sender))
        except Exception as error:
            _put_back(session, message, moment, error)
            report.failed += 1
            if is_server_unreachable(error):
                report.server_unreachable = True
                break
            continue
        message.sent_at = now_utc()
        session.commit()
        report.sent += 1
        logger.info("outbox message %s (%s) sent", message.id, message.kind)
    report.remaining = session.scalar(
        select(func.count()).select_from(_unsent(only_ids).subquery())
    )
    session.commit()
    return report


def cancel_unsent(session: Session, message_ids: Collection[int]) -> bool:
    """Cancel these messages if no sender has taken any of them; say whether it did.

    One conditional UPDATE, the counterpart of the sender's claim (``_claim_next``): a
    message a sender holds (it may be on its way, or its sender died mid-send), has sent or
    has cancelled already does not match, and whichever of claim and cancellation comes
    second matches nothing. It is all or nothing: when not every message matched, the
    caller must roll back, so none is cancelled. Never commits.
    """
    ids = list(message_ids)
    if not ids:
        return True
    cancelled = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.cancelled_at.is_(None),
            OutboxMessage.claimed_at.is_(None),
        )
        .values(cancelled_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    return cancelled.rowcount == len(ids)


# The audit log's action for a send that ignored the back-off.
SEND_NOW_ACTION = "outbox.send_now"


def send_all_now(
    session: Session,
    mailer: Mailer,
    sender: str,
    actor: StaffUser | str,
    *,
    limit: int | None = None,
    deadline: float | None = None,
) -> SendReport:
    """Send every unsent message now, back-off or not, and audit who asked (the caller commits
    the audit entry; each message is committed as it goes, as in :func:`send_due`)."""
    report = send_due(session, mailer, sender, limit=limit, ignore_backoff=True, deadline=deadline)
    audit.record(
        session,
        actor,
        SEND_NOW_ACTION,
        "outbox",
        None,
        {
            "sent": report.sent,
            "failed": report.failed,
            "remaining": report.remaining,
            "server_unreachable": report.server_unreachable,
        },
        summary=f"sent {report.sent}, failed {report.failed}, {report.remaining} still waiting",
    )
    session.flush()
    return report


@dataclass
class OutboxStatus:
    """How the outbox stands: counts, and how long the oldest unsent message has waited."""

    waiting: int
    failing: int
    sent: int
    oldest_waiting_since: datetime | None


def outbox_status(session: Session) -> OutboxStatus:
    """Count waiting, failing and sent messages, and find the oldest waiting one."""
    unsent = OutboxMessage.sent_at.is_(None) & OutboxMessage.cancelled_at.is_(None)
    waiting, failing, oldest = session.execute(
        select(
            func.count(),
            func.count(case((OutboxMessage.attempts > 0, 1))),
            func.min(OutboxMessage.created_at),
        ).where(unsent)
    ).one()
    sent = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_not(None))
    )
    return OutboxStatus(
        waiting=waiting,
        failing=failing,
        sent=sent or 0,
        oldest_waiting_since=as_utc(oldest) if oldest is not None else None,
    )


def send_after_commit(message_ids: Collection[int]) -> None:
    """Try to deliver just-queued (and committed) messages once the response has gone out.

    In a request, delivery runs after the response is sent, so the patient never waits for
    the mail server; outside one (a CLI command), it runs now. Any failure is logged and
    leaves the messages in the outbox for ``flask outbox send``.
    """
    ids = list(message_ids)
    if not ids:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def deliver() -> None:
        # The request's app context is gone by now: use a fresh one (and a fresh session).
        with app.app_context():
            try:
                send_due(
                    db.session, current_mailer(), app.config["MAIL_DEFAULT_SENDER"], only_ids=ids
                )
            except Exception as error:
                db.session.rollback()
                logger.warning(
                    "sending right away failed (%s); %s message(s) wait in the outbox",
                    type(error).__name__,
                    len(ids),
                )

    if not has_request_context():
        deliver()
        return

    @after_this_request
    def deliver_after_response(response: Response) -> Response:
        response.call_on_close(deliver)
        return response
