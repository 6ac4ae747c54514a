"""The staff area: one blueprint whose routes live in a module per task.

Every staff page needs a signed-in staff member (but the sign-in steps and the one-time
link pages), and none may be cached: they show health data and the directory's internals.
Both rules are set here, once, for every module below.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, Response, abort, current_app, request
from flask_login import current_user

from ..web.requests import no_store

bp = Blueprint("staff", __name__, url_prefix="/staff")

# Reachable before sign-in is complete (the code and enrolment steps need the password
# step first; the link pages need a one-time link from an admin).
OPEN_ENDPOINTS = {
    "staff.sign_in",
    "staff.second_factor",
    "staff.enrol_second_factor",
    "staff.open_link",
    "staff.reset_password",
}


@bp.before_request
def require_staff():
    """Refuse everyone but signed-in staff, except on the sign-in pages."""
    if request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        return None
    return current_app.login_manager.unauthorized()


@bp.after_request
def forbid_caching(response: Response) -> Response:
    """Keep every staff page (health data, the directory's internals) out of every cache."""
    return no_store(response)


def admin_required(view):
    """Let only admins through; other staff get 403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


# The routes, by task. Imported last, as microblog's blueprint packages do: each module adds
# its views to `bp` above, so importing it is what registers them.
from . import (  # noqa: E402, F401
    accounts,
    api,
    clinics,
    embed,
    help,
    home,
    hours,
    imports,
    licences,
    outbox,
    requests,
    sign_in,
)
