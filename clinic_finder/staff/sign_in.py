"""Signing in and out: password, second factor, enrolment, one-time links, password change."""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from .. import auth
from ..audit import record
from ..extensions import db, limiter
from ..models import LinkPurpose
from . import bp
from .forms import (
    ChangePasswordForm,
    ConfirmForm,
    SecondFactorForm,
    SetPasswordForm,
    SignInForm,
)


def _sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def _record_refused_sign_in(account_id: int | None, step: str) -> None:
    """Audit a refused sign-in step, naming the account only when it exists."""
    record(db.session, "anonymous", "auth.sign_in_failed", "staff_user", account_id, summary=step)


# --- signing in and out ----------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def sign_in():
    """Check email and password; then ask for the second factor (or enrol one)."""
    form = SignInForm()
    if form.validate_on_submit():
        client = auth.client_key(request.remote_addr)
        user, found = auth.authenticate(db.session, form.email.data, form.password.data, client)
        if (
            user is not None
            and not user.has_second_factor
            and auth.session_link(db.session, LinkPurpose.ENROL, user) is None
        ):
            # The password alone must not reach enrolment: whoever got there first would
            # own the account. A set-up link from an admin must have been opened first.
            _record_refused_sign_in(user.id, "no set-up link")
            db.session.commit()
            flash(str(NEEDS_SET_UP_LINK), "error")
            return render_template("staff/sign_in.html", form=form)
        if user is not None:
            auth.remember_password_step(user, request.args.get("next"))
            db.session.commit()
            step = "staff.second_factor" if user.has_second_factor else "staff.enrol_second_factor"
            return redirect(url_for(step))
        # Only a known account is named: what was typed might be a password in the wrong box.
        _record_refused_sign_in(found.id if found is not None else None, "password step")
        db.session.commit()
        current_app.logger.info("staff sign-in refused")
        flash(str(SIGN_IN_REFUSED), "error")
    return render_template("staff/sign_in.html", form=form)


SIGN_IN_REFUSED = _l(
    "That did not match an active staff account. After several failed attempts an account "
    "pauses for a few minutes."
)
NEEDS_SET_UP_LINK = _l(
    "Your account has no authenticator app set up yet. Ask an admin for a set-up link, "
    "open it, and sign in again."
)


def _finish_sign_in(user):
    """Start the real session, audit it, and go where the sign-in was heading."""
    target = auth.pending_next_url()
    auth.clear_failures(db.session, user, auth.client_key(request.remote_addr))
    auth.start_staff_session(user)
    record(db.session, user, "auth.sign_in", "staff_user", user.id, summary=user.email)
    db.session.commit()
    current_app.logger.info("staff sign-in: account %s", user.id)
    return redirect(target if auth.is_safe_next_url(target) else url_for("staff.home"))


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def second_factor():
    """Ask for the authenticator code (or a recovery code) after the password."""
    user = auth.pending_user(db.session)
    if user is None or not user.has_second_factor:
        flash(_("Please sign in again."), "info")
        return redirect(url_for("staff.sign_in"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        now = auth.now_utc()
        code = form.code.data
        client = auth.client_key(request.remote_addr)
        if not auth.is_paused(db.session, user, client, now) and (
            auth.verify_totp(user, code) or auth.use_recovery_code(user, code)
        ):
            return _finish_sign_in(user)
        auth.register_failure(db.session, user, client, now)
        _record_refused_sign_in(user.id, "second factor")
        db.session.commit()
        flash(_("That code did not work. Codes change every 30 seconds; try the newest."), "error")
    return render_template("staff/second_factor.html", form=form)


@bp.route("/sign-in/enrol", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def enrol_second_factor():
    """Set up the authenticator app, with a set-up link from an admin and the password."""
    user = auth.pending_user(db.session)
    if user is None or user.has_second_factor:
        return redirect(url_for("staff.sign_in"))
    link = auth.session_link(db.session, LinkPurpose.ENROL, user)
    if link is None:
        return link_not_working()
    if user.totp_secret is None:
        user.totp_secret = auth.new_totp_secret()
        db.session.commit()
    form = SecondFactorForm()
    if form.validate_on_submit():
        if auth.verify_totp(user, form.code.data):
            try:
                codes = auth.confirm_enrolment(db.session, user, link)
            except auth.LinkError:  # used meanwhile, in another tab or by someone else
                db.session.rollback()
                return link_not_working()
            response = _finish_sign_in(user)
            response = current_app.make_response(
                render_template(
                    "staff/recovery_codes.html", codes=codes, continue_url=response.location
                )
            )
            response.headers["Cache-Control"] = "no-store"
            return response
        flash(
            _("That code did not work. Check the app shows Finn klinikk and try the newest."),
            "error",
        )
    uri = auth.provisioning_uri(user)
    response = current_app.make_response(
        render_template(
            "staff/enrol.html",
            form=form,
            qr_svg=Markup(auth.qr_code_svg(uri)),  # noqa: S704  # nosec B704  # qrcode's own paths
            secret=user.totp_secret,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- one-time links from an admin -------------------------------------------------------


def link_not_working():
    """The one answer for a link that is unknown, used or expired: which, nobody learns."""
    response = current_app.make_response((render_template("staff/link_invalid.html"), 404))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/link/<token>")
def open_link(token: str):
    """Take a one-time link into a fresh session, then go on at an address without it."""
    link = auth.remember_link(db.session, token)
    if link is None:
        current_app.logger.info("a one-time link that does not work was opened")
        response = link_not_working()
    else:
        current_app.logger.info("%s link opened for account %s", link.purpose.value, link.user_id)
        if link.purpose is LinkPurpose.ENROL:
            flash(_("Sign in with your password; then you set up your authenticator app."), "info")
            response = redirect(url_for("staff.sign_in"), 303)
        else:
            response = redirect(url_for("staff.reset_password"), 303)
    # The token is in this address: the next page must not be told it (nor any cache).
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/reset-password", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def reset_password():
    """Choose a new password with a one-time link from an admin; every session ends."""
    link = auth.session_link(db.session, LinkPurpose.RESET_PASSWORD)
    if link is None:
        return link_not_working()
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            auth.reset_password_with_link(db.session, link, form.new_password.data)
        except auth.LinkError:
            db.session.rollback()
            return link_not_working()
        except auth.AccountError as error:
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            auth.end_this_session()
            flash(
                _(
                    "Your new password is set, and every session of your account has ended. "
                    "Sign in with it and a code from your authenticator app."
                ),
                "success",
            )
            return redirect(url_for("staff.sign_in"))
    return render_template("staff/reset_password.html", form=form, account=link.user)


@bp.post("/sign-out")
def sign_out():
    """Sign out here and end this account's sessions everywhere."""
    form = ConfirmForm()
    if form.validate_on_submit():
        auth.end_all_sessions(current_user)
        db.session.commit()
        auth.end_this_session()
        flash(_("You are signed out."), "info")
    return redirect(url_for("staff.sign_in"))


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def change_password():
    """Change your own password; your other sessions end, this one goes on."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            auth.change_password(
                db.session,
                user,
                form.current_password.data,
                form.new_password.data,
                auth.client_key(request.remote_addr),
            )
        except auth.CurrentPasswordWrongError as error:
            db.session.commit()  # the failure counts, and is audited, though nothing changed
            if error.signed_out:
                auth.end_this_session()
                flash(str(SIGNED_OUT_AFTER_FAILURES), "error")
                return redirect(url_for("staff.sign_in"))
            form.form_errors.append(str(error))
        except auth.AccountError as error:
            db.session.commit()  # a right current password still ends a run of wrong ones
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            auth.start_staff_session(user)  # a fresh session under the new session version
            db.session.commit()
            flash(_("Your password is changed; any other sessions have ended."), "success")
            return redirect(url_for("staff.home"))
    return render_template("staff/change_password.html", form=form)


SIGNED_OUT_AFTER_FAILURES = _l(
    "The current password was wrong too many times in a row, so you are signed out "
    "everywhere. Sign in again when the pause is over, in a few minutes."
)
