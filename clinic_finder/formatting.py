"""Small formatting helpers shared by pages and maps."""

from __future__ import annotations


def format_km(distance_km: float) -> str:
    """A distance in kilometres with one decimal in the page's language: 2,4 km / 2.4 km."""
    from .i18n import format_number

    return f"{format_number(distance_km)} km"


def http_url(url: str | None) -> str | None:
    """Return the URL if it is an http(s) address, else None, so no ``javascript:`` link is made."""
    if not url:
        return None
    candidate = url.strip()
    scheme = candidate.split(":", 1)[0].lower()
    return candidate if scheme in {"http", "https"} and "://" in candidate else None
