"""Security headers on every response: a Content-Security-Policy, HSTS and friends.

Written here rather than with Flask-Talisman: Talisman also rewrites the session cookie
settings and redirects to HTTPS, which config.py and the TLS-terminating proxy already
own; what is left is a few headers, kept in one place and asserted by tests.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from .origins import allowed_origins, check_allowed_origins

# Kept in the WSGI environ, which belongs to one request: `g` belongs to the app context,
# which a test (or a CLI command) may hold open across several requests.
_NONCE_KEY = "clinic_finder.csp_nonce"


def csp_nonce() -> str:
    """The nonce for this response's inline scripts (the folium map); made on first use."""
    nonce = request.environ.get(_NONCE_KEY)
    if nonce is None:
        nonce = request.environ[_NONCE_KEY] = secrets.token_urlsafe(18)
    return nonce


@lru_cache(maxsize=16)
def tile_source(tiles_url: str) -> str:
    """The CSP source that admits a Leaflet tile URL template, e.g. https://*.tile.osm.org.

    Leaflet fills ``{s}`` with a subdomain letter, so a placeholder in the host becomes a
    wildcard; the path and the other placeholders don't matter to CSP.
    """
    parts = urlsplit(tiles_url)
    host = re.sub(r"\{[^}]*\}", "*", parts.netloc)
    return f"{parts.scheme}://{host}"


def frameable_by_article_sites(view: Callable) -> Callable:
    """Mark a view whose pages the article sites (EMBED_ALLOWED_ORIGINS) may frame."""
    view.frameable_by_article_sites = True  # type: ignore[attr-defined]
    return view


def _frame_ancestors() -> str | None:
    """This response's frame-ancestors sources when it may be framed at all, else None.

    Only views marked frameable, and only while article sites are configured: with no
    list, even /embed refuses every frame, as the rest of the site always does.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, "frameable_by_article_sites", False):
        return None
    origins = allowed_origins(current_app.config)
    return " ".join(["'self'", *origins]) if origins else None


def content_security_policy(
    *, nonce: str | None, tiles: str, frame_ancestors: str | None = None
) -> str:
    """Scripts and styles from our origin only (plus this response's nonce); tiles from
    the configured tile server; nobody may frame us (except the given frame-ancestors);
    forms post only to us."""
    script_src = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    directives = {
        "default-src": "'self'",
        "script-src": script_src,
        "style-src": "'self'",
        # data: is Leaflet's blank image for tiles it cancels.
        "img-src": f"'self' data: {tiles}",
        # The tile server too: static/js/tile-probe.js asks it whether it answers.
        "connect-src": f"'self' {tiles}",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": frame_ancestors or "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


@lru_cache(maxsize=64)
def _policy_without_nonce(tiles: str, frame_ancestors: str | None) -> str:
    # Most responses (JSON, pages without the map) carry no nonce: the same few policies.
    return content_security_policy(nonce=None, tiles=tiles, frame_ancestors=frame_ancestors)


def register(app: Flask) -> None:
    """Add the security headers to every response, whatever the view or error."""
    # A malformed article-site origin would silently never match: refuse to start instead.
    check_allowed_origins(app.config)
    app.add_template_global(csp_nonce)

    @app.after_request
    def set_security_headers(response):
        config = current_app.config
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        frame_ancestors = _frame_ancestors()
        if frame_ancestors is None:
            # Nobody may frame us; old browsers that ignore frame-ancestors honour this.
            # (X-Frame-Options cannot name a list of sites, so frameable pages go without
            # it: browsers old enough to lack frame-ancestors are then unprotected there.)
            response.headers.setdefault("X-Frame-Options", "DENY")
        nonce = request.environ.get(_NONCE_KEY)
        tiles = tile_source(config["MAP_TILES_URL"])
        response.headers.setdefault(
            "Content-Security-Policy",
            content_security_policy(nonce=nonce, tiles=tiles, frame_ancestors=frame_ancestors)
            if nonce
            else _policy_without_nonce(tiles, frame_ancestors),
        )
        response.headers.setdefault(
            # Geolocation for our own pages only ("use my location"), never for a frame.
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(self), payment=()",
        )
        if config["HSTS_MAX_AGE"] > 0:
            response.headers.setdefault(
                "Strict-Transport-Security",
                f"max-age={config['HSTS_MAX_AGE']}; includeSubDomains",
            )
        return response
