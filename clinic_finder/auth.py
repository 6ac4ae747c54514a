"""Staff sign-in: password checks, session lifetime, and where a sign-in may send people.

Sessions live in Flask's signed cookie. Each carries the account's ``session_version``
(see :meth:`StaffUser.get_id`); signing out or deactivating an account bumps it, which
ends every session of that account everywhere at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from urllib.parse import urlsplit

import pyotp
import qrcode
import qrcode.image.svg
from flask import Flask, current_app, flash, jsonify, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .audit import record
from .extensions import db, login_manager
from .models import (
    LinkPurpose,
    OneTimeLink,
    RecoveryCode,
    SignInPause,
    StaffUser,
    as_utc,
    insert_on_conflict,
    now_utc,
)
from .web.requests import wants_json

# werkzeug's scrypt: N=2**15, r=8, p=1 (about 0.15 s a hash here). Tests may set a cheaper
# PASSWORD_HASH_METHOD in the app's config (never read from the environment; production
# refuses any other).
PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a KDF name, not a password; set on purpose
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128


def _hash_method() -> str:
    return current_app.config.get("PASSWORD_HASH_METHOD", PASSWORD_HASH_METHOD)


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """Checked against when the email is unknown, so both failures take the same time."""
    return generate_password_hash("not-a-real-password", method=method)


class AccountError(ValueError):
    """A staff account cannot be created or changed as asked."""


class PasswordPolicyError(AccountError):
    """The password is too weak or too long."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list of passwords people pick most (lower case)."""
    text = resources.files("clinic_finder").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def check_password_policy(password: str, email: str = "") -> None:
    """Refuse passwords that are too short, too long, common, or made of the email (ASVS 2.1)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            _("Use at least %(count)d characters.", count=MIN_PASSWORD_LENGTH)
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(_("Use at most %(count)d characters.", count=MAX_PASSWORD_LENGTH))
    folded = password.lower()
    if folded in common_passwords() or len(set(folded)) < 4:
        raise PasswordPolicyError(_("That password is too common or too simple; choose another."))
    local_part = email.split("@")[0].lower()
    if len(local_part) >= 4 and local_part in folded:
        raise PasswordPolicyError(_("Don't build the password from the email address."))


def hash_password(password: str, email: str = "") -> str:
    """Hash a new password after checking the policy."""
    check_password_policy(password, email)
    return generate_password_hash(password, method=_hash_method())


# --- pausing an account after repeated failures ------------------------------------------

# Per (account, client): a staff member mistyping, or one attacker's address.
FAILURES_BEFORE_PAUSE = 5
MAX_PAUSE = timedelta(minutes=15)
# Failures further apart than this start the count again.
FAILURE_MEMORY = timedelta(minutes=15)

# Per account, from every client together: an attacker spreading guesses over many
# addresses. Far above the per-client threshold, so the staff member's own typos pause
# only their own address first; after it, each guess costs up to 15 minutes, about 100 a
# day however many addresses guess, and the pause always runs out.
ACCOUNT_WIDE = "*"  # the client_key of the account-wide row (client keys are hex)
ACCOUNT_FAILURES_BEFORE_PAUSE = 20
# Longer than MAX_PAUSE: an attacker who waits out each pause still counts on from 20.
ACCOUNT_FAILURE_MEMORY = timedelta(hours=1)


def client_key(address: str | None) -> str:
    """A keyed hash of a client's address: tells clients apart without storing addresses."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, (address or "unknown").encode(), hashlib.sha256).hexdigest()[:32]


def _pause_for(db_session: Session, user: StaffUser, client: str) -> SignInPause | None:
    return db_session.scalar(
        select(SignInPause)
        .where(SignInPause.user_id == user.id, SignInPause.client_key == client)
        .execution_options(populate_existing=True)
    )


def is_paused(db_session: Session, user: StaffUser, client: str, now: datetime) -> bool:
    """Whether sign-ins to this account are paused, for this client or for every client."""
    pauses = db_session.scalars(
        select(SignInPause).where(
            SignInPause.user_id == user.id,
            SignInPause.client_key.in_([client, ACCOUNT_WIDE]),
        )
    )
    return any(
        pause.paused_until is not None and now < as_utc(pause.paused_until) for pause in pauses
    )


def _count_failure(
    db_session: Session,
    user: StaffUser,
    client: str,
    now: datetime,
    threshold: int,
    memory: timedelta,
) -> SignInPause:
    """Add a failure to the (account, client) row in one statement, then set its pause."""
    insert = insert_on_conflict(db_session)
    this_pair = (SignInPause.user_id == user.id) & (SignInPause.client_key == client)
    # Workers failing the same account at once must neither collide creating the row nor
    # overwrite each other's count: insert-if-missing, then increment in the database. A
    # purge of spent rows may delete the row in between: then it is inserted again.
    failures = None
    while failures is None:
        db_session.execute(
            insert(SignInPause)
            .values(user_id=user.id, client_key=client, failures=0)
            .on_conflict_do_nothing(index_elements=["user_id", "client_key"])
        )
        failures = db_session.scalar(
            update(SignInPause)
            .where(this_pair)
            .values(
                failures=case(
                    (SignInPause.last_failure_at < now - memory, 1),
                    else_=SignInPause.failures + 1,
                ),
                last_failure_at=now,
            )
            .returning(SignInPause.failures)
            .execution_options(synchronize_session=False)
        )
    over = failures - threshold
    if over >= 0:
        # Capped before doubling: timedelta(minutes=2**over) overflows past ~2**40.
        pause_length = min(timedelta(minutes=2 ** min(over, 4)), MAX_PAUSE)
        db_session.execute(
            update(SignInPause)
            .where(this_pair)
            .values(paused_until=now + pause_length)
            .execution_options(synchronize_session=False)
        )
    pause = _pause_for(db_session, user, client)
    assert pause is not None
    return pause


def register_failure(
    db_session: Session, user: StaffUser, client: str, now: datetime
) -> SignInPause:
    """Count a failed password or code for this client and for the account as a whole.

    From the fifth failure in a row from one client, that client pauses; from the 20th in
    a row from any clients, the account pauses for all of them. Each pause starts at a
    minute and doubles with each further failure up to 15 minutes, then runs out by
    itself: an attacker can slow the real staff member down, never lock them out for good.
    Returns the client's own row.
    """
    _count_failure(
        db_session, user, ACCOUNT_WIDE, now, ACCOUNT_FAILURES_BEFORE_PAUSE, ACCOUNT_FAILURE_MEMORY
    )
    pause = _count_failure(db_session, user, client, now, FAILURES_BEFORE_PAUSE, FAILURE_MEMORY)
    purge_spent_pauses(db_session, now, user)
    return pause


def clear_failures(db_session: Session, user: StaffUser, client: str) -> None:
    """Forget this client's and the account's failed attempts after a complete sign-in."""
    # One statement, not a load and delete: a purge may have removed a row meanwhile.
    db_session.execute(
        delete(SignInPause).where(
            SignInPause.user_id == user.id,
            SignInPause.client_key.in_([client, ACCOUNT_WIDE]),
        )
    )
    purge_spent_pauses(db_session, now_utc(), user)


def purge_spent_pauses(db_session: Session, now: datetime, user: StaffUser | None = None) -> int:
    """Delete pause rows whose pause is over and whose failures are forgotten; count them.

    Such a row decides nothing any more (the next failure would count from 1 again), so it
    can go at any time: the account's own at each failure and sign-in, everyone's from
    `flask staff purge-expired`. Otherwise every address that ever mistyped stays a row.
    """
    forgotten = or_(
        SignInPause.last_failure_at.is_(None),
        (SignInPause.client_key == ACCOUNT_WIDE)
        & (SignInPause.last_failure_at < now - ACCOUNT_FAILURE_MEMORY),
        (SignInPause.client_key != ACCOUNT_WIDE)
        & (SignInPause.last_failure_at < now - FAILURE_MEMORY),
    )
    pause_over = or_(SignInPause.paused_until.is_(None), SignInPause.paused_until <= now)
    spent = select(SignInPause.id).where(forgotten, pause_over)
    if user is not None:
        spent = spent.where(SignInPause.user_id == user.id)
    # Rows another worker is counting a failure on are left for next time (PostgreSQL):
    # waiting for them could deadlock with that worker's next row.
    statement = delete(SignInPause).where(
        SignInPause.id.in_(spent.with_for_update(skip_locked=True))
    )
    return db_session.execute(statement.execution_options(synchronize_session=False)).rowcount


# --- the second factor: TOTP and recovery codes ------------------------------------------

TOTP_ISSUER = "Finn klinikk staff"
RECOVERY_CODE_COUNT = 10


def new_totp_secret() -> str:
    """A fresh random TOTP secret (base32)."""
    return pyotp.random_base32()


def provisioning_uri(user: StaffUser) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    assert user.totp_secret is not None
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def qr_code_svg(data: str) -> str:
    """Draw data as an SVG QR code (no image library, nothing loaded from elsewhere)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def verify_totp(user: StaffUser, code: str, now: float | None = None) -> bool:
    """Accept the current code (or one step either side, for clock drift) exactly once."""
    if user.totp_secret is None:
        return False
    code = "".join(code.split())
    if not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(datetime.fromtimestamp(now if now is not None else time.time()))
    for counter in (current - 1, current, current + 1):
        if user.totp_last_counter is not None and counter <= user.totp_last_counter:
            continue
        if hmac.compare_digest(totp.generate_otp(counter), code):
            user.totp_last_counter = counter
            return True
    return False


# Crockford's base32 in lower case: no i, l, o or u, so nothing is mistaken for 1, 0 or v,
# and what people type for them (o for 0, i or l for 1) is read as meant. Ten characters
# from 32 are 50 random bits. Codes issued before this alphabet were 10 hex digits (40 bits);
# hex is part of it, so they keep working until the person enrols again.
RECOVERY_CODE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_CODE_LENGTH = 10
_RECOVERY_LOOK_ALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})


def _recovery_hash(code: str) -> str:
    # 50 random bits and a pause after five wrong codes make guessing online hopeless, so a
    # fast hash is enough here (unlike passwords, which people choose).
    typed = "".join(code.split()).replace("-", "").lower().translate(_RECOVERY_LOOK_ALIKES)
    return hashlib.sha256(typed.encode()).hexdigest()


def issue_recovery_codes(db_session: Session, user: StaffUser) -> list[str]:
    """Replace the account's recovery codes with new ones; return them to show once."""
    user.recovery_codes.clear()
    codes = []
    for _number in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        user.recovery_codes.append(RecoveryCode(code_hash=_recovery_hash(raw)))
    db_session.flush()
    return codes


def use_recovery_code(user: StaffUser, code: str) -> bool:
    """Accept an unused recovery code once."""
    wanted = _recovery_hash(code)
    for recovery in user.recovery_codes:
        if recovery.used_at is None and hmac.compare_digest(recovery.code_hash, wanted):
            recovery.used_at = now_utc()
            return True
    return False


def reset_second_factor(db_session: Session, user: StaffUser, actor: StaffUser | str) -> None:
    """Forget a lost authenticator and end all sessions; enrolling again needs a set-up link."""
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_counter = None
    user.recovery_codes.clear()
    end_all_sessions(user)
    record(db_session, actor, "staff.reset_second_factor", "staff_user", user.id, {}, user.email)


# --- between the password and the second factor ------------------------------------------

PENDING_SIGN_IN_SECONDS = 300


def remember_password_step(user: StaffUser, next_url: str | None) -> None:
    """Note in a fresh session that the password was right; the second factor comes next.

    A set-up link opened before (see :func:`remember_link`) stays for the enrolment.
    """
    link = session.get(LINK_SESSION_KEY)
    session.clear()
    if link is not None:
        session[LINK_SESSION_KEY] = link
    session["pending_sign_in"] = {
        "user_id": user.id,
        "version": user.session_version,
        "at": time.time(),
        "next": next_url if is_safe_next_url(next_url) else None,
    }


def pending_user(db_session: Session) -> StaffUser | None:
    """The account whose password was just given, if that was less than 5 minutes ago."""
    pending = session.get("pending_sign_in")
    if (
        not isinstance(pending, dict)
        or time.time() - pending.get("at", 0) > PENDING_SIGN_IN_SECONDS
    ):
        return None
    user = db_session.get(StaffUser, pending.get("user_id"))
    if user is None or not user.active or user.session_version != pending.get("version"):
        return None
    return user


def pending_next_url() -> str | None:
    """Where to go once signed in."""
    pending = session.get("pending_sign_in") or {}
    return pending.get("next")


def find_staff_by_email(db_session: Session, email: str) -> StaffUser | None:
    """Return the account with this email (case-insensitive), active or not."""
    return db_session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower())
    )


def create_staff_account(
    db_session: Session,
    email: str,
    password: str,
    is_admin: bool = False,
    actor: StaffUser | str = "command line",
) -> StaffUser:
    """Add (and audit) a staff account after checking the email is free and the password.

    The account enrols its authenticator app at its first sign-in.
    """
    email = email.strip().lower()
    if find_staff_by_email(db_session, email) is not None:
        raise AccountError(_("There is already an account for %(email)s.", email=email))
    account = StaffUser(
        email=email, password_hash=hash_password(password, email), is_admin=is_admin
    )
    db_session.add(account)
    db_session.flush()
    changes = {"email": account.email, "is_admin": account.is_admin}
    record(db_session, actor, "staff.create", "staff_user", account.id, changes, account.email)
    return account


def set_account_active(
    db_session: Session, account: StaffUser, active: bool, actor: StaffUser | str
) -> None:
    """Deactivate (ending its sessions everywhere) or reactivate an account, audited."""
    if account.active == active:
        return
    account.active = active
    end_all_sessions(account)
    if not active:
        revoke_links(db_session, account)
    action = "staff.reactivate" if active else "staff.deactivate"
    changes = {"active": [not active, active]}
    record(db_session, actor, action, "staff_user", account.id, changes, account.email)


class CurrentPasswordWrongError(AccountError):
    """The current password given to change it was wrong (and counted, and audited)."""

    def __init__(self, message: str, signed_out: bool) -> None:
        super().__init__(message)
        # True when this failure paused sign-ins, which also ended the account's sessions.
        self.signed_out = signed_out


class SignInPausedError(AccountError):
    """Sign-ins to the account are paused for this client: no password is checked now."""


def change_password(
    db_session: Session,
    user: StaffUser,
    current_password: str,
    new_password: str,
    client: str,
) -> None:
    """Replace the password (the current one must be right); ends the other sessions.

    Guarded like the sign-in, since a stolen session could otherwise test passwords here
    without limit: refused unchecked while sign-ins to the account pause for this client,
    and each wrong current password counts towards that pause and is audited (never what
    was typed). The failure that starts a pause also ends every session of the account.
    """
    now = now_utc()
    if is_paused(db_session, user, client, now):
        raise SignInPausedError(_("Too many failed attempts: please try again in a few minutes."))
    if not check_password_hash(user.password_hash, current_password):
        pause = register_failure(db_session, user, client, now)
        record(
            db_session,
            user,
            "auth.change_password_failed",
            "staff_user",
            user.id,
            {"failures_in_a_row": pause.failures},
            user.email,
        )
        signed_out = is_paused(db_session, user, client, now)
        if signed_out:
            end_all_sessions(user)
            record(
                db_session,
                user,
                "auth.signed_out_after_failures",
                "staff_user",
                user.id,
                summary=user.email,
            )
        raise CurrentPasswordWrongError(
            _("The current password is not right."), signed_out=signed_out
        )
    # The right password ends a run of wrong ones, as a complete sign-in does.
    clear_failures(db_session, user, client)
    user.password_hash = hash_password(new_password, user.email)
    end_all_sessions(user)
    record(db_session, user, "staff.change_password", "staff_user", user.id, {}, user.email)


# --- one-time links from an admin: setting up the second factor, a new password ----------

# Where an opened link waits in the session (as its hash) for the page that uses it.
LINK_SESSION_KEY = "one_time_link"


class LinkError(AccountError):
    """The one-time link is unknown, used or expired (which, nobody is told)."""


@dataclass(frozen=True)
class IssuedLink:
    """A one-time link just made: its token, to show once, and when it stops working."""

    token: str
    purpose: LinkPurpose
    expires_at: datetime


def _token_hash(token: str) -> str:
    # 256 random bits: a fast hash keeps a copy of the database from opening links, and
    # nothing slower is needed against guessing.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(
    db_session: Session,
    user: StaffUser,
    purpose: LinkPurpose,
    actor: StaffUser | str,
    valid_for: timedelta,
) -> IssuedLink:
    """Make a one-time link for the account, audited; only its hash is stored.

    An earlier link of the same purpose stops working: only the newest one given out
    counts. The account's used and expired links are deleted on the way.
    """
    now = now_utc()
    db_session.execute(
        delete(OneTimeLink).where(
            OneTimeLink.user_id == user.id,
            or_(
                OneTimeLink.purpose == purpose,
                OneTimeLink.used_at.is_not(None),
                OneTimeLink.expires_at <= now,
            ),
        )
    )
    token = secrets.token_urlsafe(32)
    link = OneTimeLink(
        user_id=user.id, purpose=purpose, token_hash=_token_hash(token), expires_at=now + valid_for
    )
    db_session.add(link)
    db_session.flush()
    changes = {"purpose": purpose.value, "expires_at": link.expires_at.isoformat()}
    record(db_session, actor, "staff.issue_link", "staff_user", user.id, changes, user.email)
    return IssuedLink(token=token, purpose=purpose, expires_at=link.expires_at)


def issue_enrolment_link(
    db_session: Session, user: StaffUser, actor: StaffUser | str, valid_for: timedelta
) -> IssuedLink:
    """Issue a set-up link for the authenticator app, forgetting any the account had."""
    if user.has_second_factor:
        reset_second_factor(db_session, user, actor)
    else:
        # A secret shown on an enrolment page that was never finished may have been seen.
        user.totp_secret = None
        user.totp_last_counter = None
    return issue_link(db_session, user, LinkPurpose.ENROL, actor, valid_for)


def link_url(token: str) -> str:
    """The link to give the staff member: on PUBLIC_BASE_URL, never the host asked for."""
    path = current_app.url_map.bind("localhost").build("staff.open_link", {"token": token})
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _usable_link(db_session: Session, token_hash: str, now: datetime) -> OneTimeLink | None:
    link = db_session.scalar(select(OneTimeLink).where(OneTimeLink.token_hash == token_hash))
    if link is None or link.used_at is not None or now >= as_utc(link.expires_at):
        return None
    return link if link.user.active else None


def remember_link(db_session: Session, token: str) -> OneTimeLink | None:
    """Start a fresh session holding this link (by its hash), if the link can still be used.

    The link's pages then work at addresses without the token, so it goes on in no Referer
    header and stays in no page the browser keeps (logs hide it: see logs.py).
    """
    link = _usable_link(db_session, _token_hash(token), now_utc())
    if link is not None:
        session.clear()
        session[LINK_SESSION_KEY] = link.token_hash
    return link


def session_link(
    db_session: Session, purpose: LinkPurpose, user: StaffUser | None = None
) -> OneTimeLink | None:
    """The usable link of this purpose (and account) opened in this session, if any."""
    token_hash = session.get(LINK_SESSION_KEY)
    if not isinstance(token_hash, str):
        return None
    link = _usable_link(db_session, token_hash, now_utc())
    if (
        link is None
        or link.purpose is not purpose
        or (user is not None and link.user_id != user.id)
    ):
        return None
    return link


def use_link(db_session: Session, link: OneTimeLink) -> None:
    """Mark the link used, once: of two requests racing with it, only one gets through."""
    now = now_utc()
    used = db_session.execute(
        update(OneTimeLink)
        .where(
            OneTimeLink.id == link.id,
            OneTimeLink.used_at.is_(None),
            OneTimeLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if used != 1:
        raise LinkError(_("This link does not work any more."))
    user = link.user
    changes = {"purpose": link.purpose.value}
    record(db_session, user, "staff.use_link", "staff_user", user.id, changes, user.email)


def confirm_enrolment(db_session: Session, user: StaffUser, link: OneTimeLink) -> list[str]:
    """Count the confirmed authenticator, using up the set-up link; return recovery codes."""
    use_link(db_session, link)
    user.totp_confirmed_at = now_utc()
    codes = issue_recovery_codes(db_session, user)
    record(db_session, user, "staff.enrol_second_factor", "staff_user", user.id, summary=user.email)
    return codes


def reset_password_with_link(db_session: Session, link: OneTimeLink, new_password: str) -> None:
    """Set the password the link was issued for, and end every session of the account.

    The second factor stays: the next sign-in needs the new password and the app's code.
    """
    user = link.user
    password_hash = hash_password(new_password, user.email)  # a refused one keeps the link
    use_link(db_session, link)
    user.password_hash = password_hash
    end_all_sessions(user)
    record(db_session, user, "staff.reset_password", "staff_user", user.id, {}, user.email)


def revoke_links(db_session: Session, user: StaffUser) -> None:
    """Make every unused link of the account stop working (it was deactivated)."""
    db_session.execute(
        delete(OneTimeLink).where(OneTimeLink.user_id == user.id, OneTimeLink.used_at.is_(None))
    )


def purge_spent_links(db_session: Session, now: datetime) -> int:
    """Delete used and expired links (the audit log keeps their story); count them."""
    spent = or_(OneTimeLink.used_at.is_not(None), OneTimeLink.expires_at <= now)
    statement = delete(OneTimeLink).where(spent).execution_options(synchronize_session=False)
    return db_session.execute(statement).rowcount


def authenticate(
    db_session: Session, email: str, password: str, client: str
) -> tuple[StaffUser | None, StaffUser | None]:
    """Check a password: return (the account if it may sign in, the account found at all).

    Takes the same time whether or not the email exists; a wrong password counts
    towards pausing sign-ins to the account from this client.
    """
    user = find_staff_by_email(db_session, email)
    if user is None:
        check_password_hash(_dummy_hash(_hash_method()), password)
        return None, None
    now = now_utc()
    password_ok = check_password_hash(user.password_hash, password)
    if not user.active or is_paused(db_session, user, client, now):
        return None, user
    if not password_ok:
        register_failure(db_session, user, client, now)
        return None, user
    return user, user


def start_staff_session(user: StaffUser) -> None:
    """Sign in with a fresh session: nothing from before sign-in carries over."""
    session.clear()
    login_user(user, remember=False)
    session.permanent = True
    now = time.time()
    session["signed_in_at"] = now
    session["last_seen_at"] = now
    user.last_sign_in_at = now_utc()


def end_all_sessions(user: StaffUser) -> None:
    """Invalidate every session of the account, on every device."""
    user.session_version += 1


def end_this_session() -> None:
    """Sign the current browser out and forget everything in its session."""
    logout_user()
    session.clear()


def is_safe_next_url(target: str | None) -> bool:
    """Whether a ``next=`` value stays on this site: a plain path, nothing else.

    Refuses ``//evil``, ``/\\evil`` (browsers read the backslash as a slash),
    ``https:evil`` and anything with a scheme, a host or control characters.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _session_expired(now: float) -> bool:
    signed_in_at = session.get("signed_in_at")
    last_seen_at = session.get("last_seen_at")
    if not isinstance(signed_in_at, int | float) or not isinstance(last_seen_at, int | float):
        return True
    max_age = current_app.config["STAFF_SESSION_MAX_AGE"].total_seconds()
    idle = current_app.config["STAFF_SESSION_IDLE_TIMEOUT"].total_seconds()
    return now - signed_in_at > max_age or now - last_seen_at > idle


def init_app(app: Flask) -> None:
    """Set up Flask-Login and the checks every staff request goes through."""
    login_manager.init_app(app)
    login_manager.login_view = "staff.sign_in"
    login_manager.login_message = _l("Please sign in to continue.")
    # Flask-Login's own session protection only marks permanent sessions non-fresh; the
    # checks below (session version, idle and absolute limits) are what end sessions.
    login_manager.session_protection = None

    @login_manager.user_loader
    def load_staff_user(identity: str) -> StaffUser | None:
        user_id, _, version = identity.partition(":")
        if not user_id.isdigit():
            return None
        user = db.session.get(StaffUser, int(user_id))
        if user is None or not user.active or str(user.session_version) != version:
            return None
        return user

    @login_manager.unauthorized_handler
    def refuse_anonymous():
        if wants_json() or request.accept_mimetypes.best == "application/json":
            return jsonify({"error": "Unauthorized", "message": "Sign in first."}), 401
        flash(str(login_manager.login_message), "info")
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("staff.sign_in", next=target if is_safe_next_url(target) else None))

    @app.before_request
    def enforce_staff_session_lifetime():
        """End sessions past 12 hours or 30 idle minutes; note activity otherwise."""
        if "_user_id" not in session:
            return None
        now = time.time()
        if _session_expired(now):
            end_this_session()
            flash(_("Your session has ended. Please sign in again."), "info")
            return None
        if current_user.is_authenticated:
            session["last_seen_at"] = now
        return None
