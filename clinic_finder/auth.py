"""Staff sign-in: password checks, session lifetime, and where a sign-in may send people.

Sessions live in Flask's signed cookie. Each carries the account's ``session_version``
(see :meth:`StaffUser.get_id`); signing out or deactivating an account bumps it, which
ends every session of that account everywhere at its next request.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, jsonify, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .audit import record
from .extensions import db, login_manager
from .models import StaffUser, now_utc

PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a KDF name, not a password; set on purpose
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# Checked against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=PASSWORD_HASH_METHOD)


class AccountError(ValueError):
    """A staff account cannot be created or changed as asked."""


class PasswordPolicyError(AccountError):
    """The password is too weak or too long."""


def hash_password(password: str) -> str:
    """Hash a new password after checking the policy (length: ASVS 2.1.1 and 2.1.2)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


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
    """Add (and audit) a staff account after checking the email is free and the password."""
    email = email.strip().lower()
    if find_staff_by_email(db_session, email) is not None:
        raise AccountError(f"There is already an account for {email}.")
    account = StaffUser(email=email, password_hash=hash_password(password), is_admin=is_admin)
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
    action = "staff.reactivate" if active else "staff.deactivate"
    changes = {"active": [not active, active]}
    record(db_session, actor, action, "staff_user", account.id, changes, account.email)


def authenticate(db_session: Session, email: str, password: str) -> StaffUser | None:
    """Return the active account whose password matches, else None (same time either way)."""
    user = find_staff_by_email(db_session, email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


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
    login_manager.login_message = "Please sign in to continue."
    # Flask-Login's "strong" mode drops a session whose browser fingerprint changes.
    login_manager.session_protection = "strong"

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
        if request.path.startswith("/staff/api/") or request.accept_mimetypes.best == (
            "application/json"
        ):
            return jsonify({"error": "Unauthorized", "message": "Sign in first."}), 401
        flash(login_manager.login_message, "info")
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
            flash("Your session has ended. Please sign in again.", "info")
            return None
        if current_user.is_authenticated:
            session["last_seen_at"] = now
        return None
