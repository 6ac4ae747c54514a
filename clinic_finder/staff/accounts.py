"""Admins only: staff accounts, their one-time links, and the audit log."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import auth
from ..extensions import db
from ..models import (
    AuditEntry,
    LinkPurpose,
)
from ..models import StaffUser as StaffAccount
from ..web.requests import page_number
from . import admin_required, bp
from .forms import (
    ConfirmForm,
    StaffUserForm,
)

AUDIT_PER_PAGE = 100


# --- admin: staff accounts and audit log -----------------------------------------------


@bp.get("/audit")
@admin_required
def audit_log():
    """Show the audit log, newest first."""
    page = db.paginate(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()),
        page=page_number(),
        per_page=AUDIT_PER_PAGE,
        max_per_page=AUDIT_PER_PAGE,
    )
    return render_template("staff/audit.html", page=page)


@bp.get("/users")
@admin_required
def users():
    """List staff accounts."""
    accounts = db.session.scalars(select(StaffAccount).order_by(StaffAccount.email)).all()
    return render_template("staff/users.html", accounts=accounts, form=ConfirmForm())


def _link_lifetime() -> timedelta:
    return timedelta(hours=current_app.config["STAFF_LINK_VALID_HOURS"])


def _show_link(account: StaffAccount, issued: auth.IssuedLink):
    """Show a one-time link to the admin who issued it, this once (never logged, never sent)."""
    return render_template(
        "staff/link_issued.html", account=account, issued=issued, url=auth.link_url(issued.token)
    )


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    """Create a staff account, and show the set-up link for its authenticator app."""
    form = StaffUserForm()
    if form.validate_on_submit():
        try:
            account = auth.create_staff_account(
                db.session,
                form.email.data,
                form.password.data,
                bool(form.is_admin.data),
                actor=current_user,
            )
        except auth.AccountError as error:
            form.form_errors.append(str(error))
        else:
            issued = auth.issue_enrolment_link(db.session, account, current_user, _link_lifetime())
            db.session.commit()
            flash(_("Created %(email)s.", email=account.email), "success")
            return _show_link(account, issued)
    return render_template("staff/user_form.html", form=form)


def _account_for_link(user_id: int) -> StaffAccount | None:
    """The account an admin asked a link for, if a link for it makes sense."""
    account = db.get_or_404(StaffAccount, user_id)
    if not ConfirmForm().validate_on_submit():
        return None
    if account.id == current_user.id:
        flash(_("Ask another admin to do this for your own account."), "error")
        return None
    if not account.active:
        flash(_("%(email)s is deactivated; reactivate it first.", email=account.email), "error")
        return None
    return account


@bp.post("/users/<int:user_id>/<any(deactivate, reactivate):action>")
@admin_required
def set_user_status(user_id: int, action: str):
    """Deactivate an account (ending its sessions everywhere) or reactivate it."""
    account = db.get_or_404(StaffAccount, user_id)
    if ConfirmForm().validate_on_submit():
        if account.id == current_user.id:
            flash(_("You cannot deactivate your own account."), "error")
            return redirect(url_for("staff.users"))
        active = action == "reactivate"
        auth.set_account_active(db.session, account, active, current_user)
        db.session.commit()
        if active:
            flash(_("%(email)s is active.", email=account.email), "success")
        else:
            flash(_("%(email)s is deactivated.", email=account.email), "success")
    return redirect(url_for("staff.users"))


@bp.post("/users/<int:user_id>/reset-second-factor")
@admin_required
def reset_second_factor(user_id: int):
    """Forget a staff member's authenticator (if any); show a set-up link to enrol anew."""
    account = _account_for_link(user_id)
    if account is None:
        return redirect(url_for("staff.users"))
    issued = auth.issue_enrolment_link(db.session, account, current_user, _link_lifetime())
    db.session.commit()
    return _show_link(account, issued)


@bp.post("/users/<int:user_id>/reset-password")
@admin_required
def issue_password_link(user_id: int):
    """Show a one-time link with which a staff member chooses a new password themselves."""
    account = _account_for_link(user_id)
    if account is None:
        return redirect(url_for("staff.users"))
    issued = auth.issue_link(
        db.session, account, LinkPurpose.RESET_PASSWORD, current_user, _link_lifetime()
    )
    db.session.commit()
    return _show_link(account, issued)
