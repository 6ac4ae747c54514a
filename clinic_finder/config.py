"""Configuration: safe development defaults, everything else from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULT_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - refused in production below

DEFAULT_TILES_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILES_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


class ConfigError(RuntimeError):
    """The configuration is not safe or not usable; the app refuses to start."""


def normalise_database_url(url: str) -> str:
    """Return a SQLAlchemy URL that uses psycopg 3 for PostgreSQL.

    Hosting platforms hand out ``postgres://`` URLs; SQLAlchemy wants a driver name.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def config_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables.

    ``DATABASE_URL`` unset means a SQLite file in the instance folder; the factory fills
    that in because only it knows where the instance folder is.
    """
    environ = os.environ if environ is None else environ
    production = environ.get("APP_ENV", "development").strip().lower() == "production"
    config: dict[str, Any] = {
        "APP_ENV": "production" if production else "development",
        "SECRET_KEY": environ.get("SECRET_KEY", DEFAULT_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": (
            normalise_database_url(environ["DATABASE_URL"]) if environ.get("DATABASE_URL") else None
        ),
        "MAP_TILES_URL": environ.get("MAP_TILES_URL", DEFAULT_TILES_URL),
        "MAP_TILES_ATTRIBUTION": environ.get("MAP_TILES_ATTRIBUTION", DEFAULT_TILES_ATTRIBUTION),
        # Flask's cookie defaults are not enough for a site that handles health data.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool(environ, "SESSION_COOKIE_SECURE", production),
        "WTF_CSRF_ENABLED": True,
        # Nothing patients send is large; staff uploads get their own limit later.
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "SEARCH_PAGE_SIZE": 20,
        "API_MAX_LIMIT": 100,
    }
    return config


def check_production_config(config: Mapping[str, Any]) -> None:
    """Refuse to run in production with settings that are only fit for development."""
    if config.get("APP_ENV") != "production":
        return
    secret = config.get("SECRET_KEY") or ""
    if secret == DEFAULT_SECRET_KEY or len(secret) < 32:
        raise ConfigError(
            "APP_ENV=production needs SECRET_KEY set to a random value of at least 32 "
            'characters, e.g. python -c "import secrets; print(secrets.token_hex(32))"'
        )
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError("APP_ENV=production needs DATABASE_URL (PostgreSQL).")
