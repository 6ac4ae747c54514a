"""Small formatting helpers shared by pages and maps."""

from __future__ import annotations


def format_km(distance_km: float) -> str:
    """Format a distance in kilometres with one decimal, e.g. ``2.4 km``."""
    return f"{distance_km:.1f} km"


def http_url(url: str | None) -> str | None:
    """Return the URL if it is an http(s) address, else None, so no ``javascript:`` link is made."""
    if not url:
        return None
    candidate = url.strip()
    scheme = candidate.split(":", 1)[0].lower()
    return candidate if scheme in {"http", "https"} and "://" in candidate else None
