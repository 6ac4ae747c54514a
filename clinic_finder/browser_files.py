"""The files browsers ask for at fixed paths: ``/favicon.ico`` and ``/manifest.webmanifest``.

Both live among our static files (``static/icons/``, ``static/manifest.webmanifest``,
made by ``scripts/make_icons.py``); pages link the other icons under hashed names. These
two paths cannot be hashed, since browsers ask for them by name, so they are cached for a
day and revalidated by their ETag after that.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Response, current_app, request

bp = Blueprint("browser_files", __name__)

# A day: a new icon reaches returning visitors within one, without a request on every page.
MAX_AGE = 24 * 60 * 60


def static_file(view):
    """Mark a view as sending a static file: like one, it never sets or varies on a cookie."""
    view.static_file = True
    return view


def _send(filename: str, mimetype: str) -> Response:
    # A few kilobytes, read whole: no open file left behind when the browser goes away.
    body = (Path(current_app.static_folder) / filename).read_bytes()
    response = Response(body, mimetype=mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.set_etag(hashlib.sha256(body).hexdigest()[:16])
    return response.make_conditional(request)


@bp.get("/favicon.ico")
@static_file
def favicon():
    """Send the site's icon, for browsers that ask for it without a link."""
    return _send("icons/favicon.ico", "image/vnd.microsoft.icon")


@bp.get("/manifest.webmanifest")
@static_file
def web_app_manifest():
    """Send the web app manifest: the name, colours and icons for a home screen."""
    return _send("manifest.webmanifest", "application/manifest+json")
