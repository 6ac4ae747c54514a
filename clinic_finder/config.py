"""Configuration: safe development defaults, everything else from the environment."""

from __future__ import annotations

import math
import os
import secrets
import zlib
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

# The only two environments. Anything else (a typo such as "prod") is refused at start: a
# mistyped production must never quietly run with development's settings.
APP_ENVIRONMENTS = ("development", "production")
# Without SECRET_KEY, development signs sessions with a key made at process start: no fixed
# development string exists that could sign a forged staff cookie. Sessions end at restart.
PROCESS_SECRET_KEY = secrets.token_hex(32)
# A production key must be long and varied: "x" * 64 is 64 characters of nothing.
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128

DEFAULT_TILES_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILES_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


# The geocoder's settings and their defaults: config_from_environment reads each from the
# environment variable of the same name; build_geocoder falls back on them for a partial
# mapping. The type of each default is the type of the setting.
GEOCODER_DEFAULTS: dict[str, Any] = {
    "GEOCODER": "nominatim",
    "GEOCODER_DOMAIN": "nominatim.openstreetmap.org",
    "GEOCODER_SCHEME": "https",
    "GEOCODER_USER_AGENT": (
        "clinic_finder/0.1 (set GEOCODER_USER_AGENT to your site and a contact address)"
    ),
    "GEOCODER_TIMEOUT": 5.0,
    "GEOCODER_MIN_INTERVAL": 1.0,
    "GEOCODER_RETRIES": 2,
    # After the geocoder could not be reached, nobody asks it again for this long.
    "GEOCODER_DOWN_SECONDS": 300.0,
}


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


def _env_list(environ: Mapping[str, str], name: str) -> list[str] | None:
    value = environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or None


def app_environment(environ: Mapping[str, str]) -> str:
    """Return APP_ENV (development when unset); refuse any value but the two we know."""
    value = (environ.get("APP_ENV") or "").strip().lower() or "development"
    if value not in APP_ENVIRONMENTS:
        raise ConfigError(
            f"APP_ENV={environ.get('APP_ENV')!r} is not known: set APP_ENV=production on a "
            "production site, or leave it unset (development)."
        )
    return value


def _port(environ: Mapping[str, str]) -> int:
    value = (environ.get("PORT") or "5000").strip()
    if not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
        raise ConfigError(f"PORT={value!r} must be a port number from 1 to 65535.")
    return int(value)


# zlib's header, checksum and code tables around even a one-byte text.
_ZLIB_OVERHEAD_BYTES = 11


def secret_key_bits(secret: str) -> float:
    """Estimate a key's randomness, generously: the lower of two upper bounds.

    One is its length times the entropy of its characters' mix (a repeated character
    scores 0); the other what zlib leaves of it (a repeated word compresses to little).
    A hex or base64 key from ``secrets`` scores far above what production asks.
    """
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_character = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    compressed = len(zlib.compress(secret.encode("utf-8"), 9)) - _ZLIB_OVERHEAD_BYTES
    return min(per_character * len(secret), 8.0 * max(compressed, 0))


def config_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables.

    ``DATABASE_URL`` unset means a SQLite file in the instance folder; the factory fills
    that in because only it knows where the instance folder is.
    """
    environ = os.environ if environ is None else environ
    app_env = app_environment(environ)
    production = app_env == "production"
    config: dict[str, Any] = {
        "APP_ENV": app_env,
        "SECRET_KEY": environ.get("SECRET_KEY") or (None if production else PROCESS_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": (
            normalise_database_url(environ["DATABASE_URL"]) if environ.get("DATABASE_URL") else None
        ),
        # The language for visitors whose browser asks for neither nb nor en.
        "DEFAULT_LOCALE": environ.get("DEFAULT_LOCALE", "nb"),
        "MAP_TILES_URL": environ.get("MAP_TILES_URL", DEFAULT_TILES_URL),
        "MAP_TILES_ATTRIBUTION": environ.get("MAP_TILES_ATTRIBUTION", DEFAULT_TILES_ATTRIBUTION),
        # Flask's cookie defaults are not enough for a site that handles health data.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool(environ, "SESSION_COOKIE_SECURE", production),
        # HSTS: browsers come back only over HTTPS for this long (a year in production;
        # off in development, where the site is plain http://127.0.0.1).
        "HSTS_MAX_AGE": int(environ.get("HSTS_MAX_AGE", "31536000" if production else "0")),
        # Logs: one JSON object per line in production, readable text in development.
        "LOG_FORMAT": environ.get("LOG_FORMAT", "json" if production else "text"),
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").upper(),
        # API search answers may be cached this long, then revalidated with their ETag.
        "API_CACHE_MAX_AGE": int(environ.get("API_CACHE_MAX_AGE", "60")),
        # Each process keeps the postcode register in memory and rereads it this often.
        "POSTCODE_CACHE_SECONDS": float(environ.get("POSTCODE_CACHE_SECONDS", "300")),
        "WTF_CSRF_ENABLED": True,
        # Tokens last as long as the browser session: a patient writing slowly must not
        # lose their message to an expired token.
        "WTF_CSRF_TIME_LIMIT": None,
        # Never put statement parameters (patients' words) into error messages or logs.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
        # How many proxies (load balancer, TLS terminator) sit in front of the app. Their
        # X-Forwarded-For tells the client's address, which the rate limits count by.
        "PROXY_COUNT": int(environ.get("PROXY_COUNT", "0")),
        # Nothing patients send is large; staff uploads get their own limit later.
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "SEARCH_PAGE_SIZE": 20,
        "API_MAX_LIMIT": 100,
        # Staff sessions: at most 12 hours, and over after 30 minutes without a request.
        "STAFF_SESSION_MAX_AGE": timedelta(hours=12),
        "STAFF_SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=30),
        "SESSION_REFRESH_EACH_REQUEST": True,
        # Flask-Login's "remember me" would outlive both limits; we never set it, and say so.
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        # Hosts this app answers for (Host header); required in production.
        "TRUSTED_HOSTS": _env_list(environ, "TRUSTED_HOSTS"),
        # Rate limits (Flask-Limiter). memory:// is per process; use redis://… for several.
        # Production has no default: each of several workers would count alone unnoticed.
        "RATELIMIT_STORAGE_URI": environ.get(
            "RATELIMIT_STORAGE_URI", None if production else "memory://"
        ),
        # Only for benchmarks and load tests on a closed machine; never in production.
        "RATELIMIT_ENABLED": _env_bool(environ, "RATELIMIT_ENABLED", True),
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Hosts that share one Redis share limits only when they use the same prefix.
        "RATELIMIT_KEY_PREFIX": environ.get("RATELIMIT_KEY_PREFIX", "clinic_finder"),
        # A Redis that stops answering must not hold requests: redis-py waits forever by
        # default. Passed to the storage (memory:// ignores them); the geocoder's turns too.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
        # If Redis goes away, keep limiting in this process instead of failing requests.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "SIGN_IN_RATE_LIMIT": environ.get("SIGN_IN_RATE_LIMIT", "5 per minute;30 per hour"),
        # Geocoding street addresses (geopy's Nominatim unless GEOCODER=none); the defaults
        # are GEOCODER_DEFAULTS, which geocoding.py also falls back on.
        **{
            name: type(default)(environ.get(name, default))
            for name, default in GEOCODER_DEFAULTS.items()
        },
        # Outgoing mail. No MAIL_SERVER: development prints mail to the console instead.
        "MAIL_SERVER": environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": int(environ.get("MAIL_PORT", "587")),
        "MAIL_USERNAME": environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": environ.get("MAIL_PASSWORD", ""),
        "MAIL_USE_TLS": _env_bool(environ, "MAIL_USE_TLS", True),
        "MAIL_TIMEOUT": float(environ.get("MAIL_TIMEOUT", "10")),
        "MAIL_DEFAULT_SENDER": environ.get(
            "MAIL_DEFAULT_SENDER", "Finn klinikk <no-reply@clinic-finder.example>"
        ),
        "STAFF_INBOX_EMAIL": environ.get("STAFF_INBOX_EMAIL", "staff@clinic-finder.example"),
        # The site's public address, for links in emails (no request is there to tell it).
        # Production has no default: a wrong one would go out in every email and sitemap.
        # Development follows PORT, as `make run PORT=8080` serves there.
        "PUBLIC_BASE_URL": environ.get(
            "PUBLIC_BASE_URL", None if production else f"http://127.0.0.1:{_port(environ)}"
        ),
        # How long a one-time link from an admin (to set up the authenticator app, or to
        # choose a new password) works, in hours, if it is not used first.
        "STAFF_LINK_VALID_HOURS": float(environ.get("STAFF_LINK_VALID_HOURS", "24")),
        # Contact requests: how long they are kept, and how often one address may send.
        "REQUEST_RETENTION_DAYS": int(environ.get("REQUEST_RETENTION_DAYS", "180")),
        "CONTACT_RATE_LIMIT": environ.get("CONTACT_RATE_LIMIT", "5 per hour;20 per day"),
        # Article sites allowed to post contact requests from the embedded finder.
        "CONTACT_ALLOWED_ORIGINS": _env_list(environ, "CONTACT_ALLOWED_ORIGINS") or [],
        # Article sites (scheme://host[:port], comma-separated) that may frame /embed, read
        # the API from a browser (CORS) and post contact requests; the setting above still
        # counts and adds to this list (see origins.py). Checked at start (headers.py).
        "EMBED_ALLOWED_ORIGINS": _env_list(environ, "EMBED_ALLOWED_ORIGINS") or [],
        # A web import geocodes for at most this long; the rest wait at postcode precision.
        "IMPORT_GEOCODING_BUDGET_SECONDS": float(environ.get("IMPORT_GEOCODING_BUDGET", "20")),
        # Imports are planned and applied by background jobs (jobs.py). Outside production a
        # thread of the web process runs them, so `make run` needs nothing else; production
        # runs `flask jobs work --loop` as a service instead, unless this says otherwise.
        "JOBS_RUN_IN_PROCESS": _env_bool(environ, "JOBS_RUN_IN_PROCESS", not production),
        # How long a claimed job is a worker's: a worker that dies leaves it to be picked up
        # again after this. Planning renews it as it goes; see jobs.py for applying.
        "JOBS_LEASE_SECONDS": float(environ.get("JOBS_LEASE_SECONDS", "300")),
    }
    return config


def check_production_config(config: Mapping[str, Any]) -> None:
    """Refuse to run in production with settings that are only fit for development."""
    if config.get("APP_ENV") != "production":
        return
    secret = config.get("SECRET_KEY") or ""
    if len(secret) < MIN_SECRET_KEY_LENGTH or secret_key_bits(secret) < MIN_SECRET_KEY_BITS:
        raise ConfigError(
            "APP_ENV=production needs SECRET_KEY set to a random value of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters (this one is missing, short or too "
            'repetitive), e.g. python -c "import secrets; print(secrets.token_hex(32))"'
        )
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError("APP_ENV=production needs DATABASE_URL (PostgreSQL).")
    if config.get("PASSWORD_HASH_METHOD", "scrypt") != "scrypt":
        raise ConfigError("APP_ENV=production hashes passwords with the default scrypt cost.")
    if not config.get("RATELIMIT_ENABLED", True):
        raise ConfigError("APP_ENV=production refuses RATELIMIT_ENABLED=false.")
    if not config.get("TRUSTED_HOSTS"):
        raise ConfigError(
            "APP_ENV=production needs TRUSTED_HOSTS, the host names the site answers for "
            "(comma-separated, e.g. finnklinikk.example,www.finnklinikk.example)."
        )
    if not (config.get("RATELIMIT_STORAGE_URI") or "").strip():
        raise ConfigError(
            "APP_ENV=production needs RATELIMIT_STORAGE_URI, where every worker and host "
            "counts rate limits together, e.g. redis://redis.internal:6379/0. Only a site "
            "served by exactly one process may set memory:// (each process counts alone)."
        )
    if not _is_https_url(config.get("PUBLIC_BASE_URL") or ""):
        raise ConfigError(
            "APP_ENV=production needs PUBLIC_BASE_URL, the site's public https:// address "
            "(e.g. https://finnklinikk.example), for links in emails and the sitemap."
        )


def _is_https_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 address
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and not (parts.username or parts.password or parts.query or parts.fragment)
        and not any(char.isspace() for char in url)
    )
