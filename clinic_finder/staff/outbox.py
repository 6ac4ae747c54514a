"""Staff: how the outgoing email stands, and an admin's «Send all now» after a mail outage."""

from __future__ import annotations

import time

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from ..extensions import db
from ..mail import SendReport, current_mailer, outbox_status, send_all_now
from . import admin_required, bp
from .forms import ConfirmForm

# One press sends at most this many, and starts no new message after this many seconds, so
# the page answers well inside the server's request timeout (GUNICORN_TIMEOUT, 30 s); what
# is left goes with the next press or the scheduled `flask outbox send`.
SEND_NOW_LIMIT = 200
SEND_NOW_SECONDS = 15.0


@bp.context_processor
def outbox_panel_context():
    """Give staff templates the outbox's counts, counted only where a template asks."""
    return {"current_outbox": lambda: outbox_status(db.session), "outbox_form": ConfirmForm}


@bp.get("/outbox")
@admin_required
def outbox_page():
    """Show how many emails wait and fail, with the button that sends them all now."""
    return render_template("staff/outbox.html")


@bp.post("/outbox/send-now")
@admin_required
def outbox_send_now():
    """Send every waiting email now, ignoring each one's back-off; audited."""
    back = "staff.home" if request.args.get("back") == "home" else "staff.outbox_page"
    # A bad or missing CSRF token never gets here: CSRFProtect refuses it (errors.py).
    if ConfirmForm().validate_on_submit():
        report = send_all_now(
            db.session,
            current_mailer(),
            current_app.config["MAIL_DEFAULT_SENDER"],
            current_user,
            limit=SEND_NOW_LIMIT,
            deadline=time.monotonic() + SEND_NOW_SECONDS,
        )
        db.session.commit()
        _flash_report(report)
    return redirect(url_for(back))


def _flash_report(report: SendReport) -> None:
    counts = {
        "sent": ngettext("%(num)d email sent", "%(num)d emails sent", report.sent),
        "failed": ngettext("%(num)d failed", "%(num)d failed", report.failed),
        "waiting": ngettext("%(num)d still waiting", "%(num)d still waiting", report.remaining),
    }
    if report.server_unreachable:
        message = _(
            "The mail server could not be reached (%(sent)s, %(failed)s, %(waiting)s). "
            "Try again once it is back.",
            **counts,
        )
        flash(message, "error")
    else:
        message = _("%(sent)s, %(failed)s, %(waiting)s.", **counts)
        flash(message, "warning" if report.failed else "success")
