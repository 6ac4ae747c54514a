"""Configuration: safe development defaults, everything else from the environment."""

from __future__ import annotations

import math
import os
import secrets
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


# --- the settings ------------------------------------------------------------------------

_SAME = object()  # a production default that is development's


@dataclass(frozen=True)
class FromEnvironment:
    """A default worked out from the environment (e.g. PUBLIC_BASE_URL from PORT)."""

    compute: Callable[[Mapping[str, str]], Any]


@dataclass(frozen=True)
class Setting:
    """One setting: its config key, which is also the environment variable that sets it.

    ``default`` applies in development, and in production too unless ``production``
    gives another (``None``: no default, production refuses to start without it, or the
    feature is off). An unset or empty variable means the default.
    """

    name: str
    parse: Callable[[str], Any]
    default: Any = None
    production: Any = _SAME
    doc: str = ""

    def default_for(self, production: bool, environ: Mapping[str, str]) -> Any:
        value = self.default if not production or self.production is _SAME else self.production
        return value.compute(environ) if isinstance(value, FromEnvironment) else value


def flag(value: str) -> bool:
    """yes/true/1/on is on, anything else off."""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def comma_list(value: str) -> list[str] | None:
    """Comma-separated values, blanks dropped (None when nothing is left)."""
    return [item.strip() for item in value.split(",") if item.strip()] or None


def _development_base_url(environ: Mapping[str, str]) -> str:
    # `make run PORT=8080` serves there, so links in emails and pages must point there.
    return f"http://127.0.0.1:{_port(environ)}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SECRET_KEY",
        str,
        FromEnvironment(lambda _: PROCESS_SECRET_KEY),
        None,
        "signs sessions and CSRF tokens; required in production",
    ),
    Setting(
        "SQLALCHEMY_DATABASE_URI",
        normalise_database_url,
        None,
        doc="set by DATABASE_URL (see below); unset: SQLite in the instance folder",
    ),
    Setting(
        "DEFAULT_LOCALE",
        str,
        "nb",
        doc="the language for visitors whose browser asks for neither nb nor en",
    ),
    Setting("MAP_TILES_URL", str, DEFAULT_TILES_URL, doc="the map tiles' URL template"),
    Setting(
        "MAP_TILES_ATTRIBUTION",
        str,
        DEFAULT_TILES_ATTRIBUTION,
        doc="the tiles' credit (HTML, operator-supplied)",
    ),
    Setting("SESSION_COOKIE_SECURE", flag, False, True, doc="the session cookie only over HTTPS"),
    Setting(
        "HSTS_MAX_AGE",
        int,
        0,
        31_536_000,
        doc="seconds browsers keep to HTTPS (a year in production; off on plain http)",
    ),
    Setting("LOG_FORMAT", str, "text", "json", doc="json: one JSON object per line"),
    Setting("LOG_LEVEL", lambda value: value.upper(), "INFO"),
    Setting(
        "API_CACHE_MAX_AGE",
        int,
        60,
        doc="seconds an API search answer may be cached, then revalidated (ETag)",
    ),
    Setting(
        "DATABASE_PING_AFTER_IDLE_SECONDS",
        float,
        1.0,
        doc="PostgreSQL: a pooled connection idle this long is pinged before use (see "
        "clinic_finder/database.py); 0 pings every time",
    ),
    Setting(
        "POSTCODE_CACHE_SECONDS",
        float,
        300.0,
        doc="how often each process rereads the postcode register it keeps in memory",
    ),
    Setting(
        "PROXY_COUNT", int, 0, doc="proxies in front whose X-Forwarded-For the rate limits trust"
    ),
    Setting("TRUSTED_HOSTS", comma_list, None, doc="host names the site answers for"),
    Setting(
        "RATELIMIT_STORAGE_URI",
        str,
        "memory://",
        None,
        doc="where rate limits are counted: redis://… when several processes serve",
    ),
    Setting(
        "RATELIMIT_ENABLED",
        flag,
        True,
        doc="off only for benchmarks on a closed machine; production refuses it",
    ),
    Setting(
        "RATELIMIT_KEY_PREFIX",
        str,
        "clinic_finder",
        doc="hosts sharing one Redis share limits when they share this prefix",
    ),
    Setting("SIGN_IN_RATE_LIMIT", str, "5 per minute;30 per hour"),
    Setting("GEOCODER", str, "nominatim", doc="nominatim, or none"),
    Setting("GEOCODER_DOMAIN", str, "nominatim.openstreetmap.org"),
    Setting("GEOCODER_SCHEME", str, "https"),
    Setting(
        "GEOCODER_USER_AGENT",
        str,
        "clinic_finder/0.1 (set GEOCODER_USER_AGENT to your site and a contact address)",
    ),
    Setting("GEOCODER_TIMEOUT", float, 5.0),
    Setting(
        "GEOCODER_MIN_INTERVAL",
        float,
        1.0,
        doc="seconds between requests, for the whole site (Nominatim allows one a second)",
    ),
    Setting("GEOCODER_RETRIES", int, 2),
    Setting(
        "GEOCODER_DOWN_SECONDS",
        float,
        300.0,
        doc="after the geocoder could not be reached, nobody asks it again for this long",
    ),
    Setting(
        "MAIL_SERVER",
        str,
        "",
        doc="SMTP relay; unset: development prints mail, production keeps it queued",
    ),
    Setting("MAIL_PORT", int, 587),
    Setting("MAIL_USERNAME", str, ""),
    Setting("MAIL_PASSWORD", str, ""),
    Setting("MAIL_USE_TLS", flag, True),
    Setting("MAIL_TIMEOUT", float, 10.0),
    Setting("MAIL_DEFAULT_SENDER", str, "Finn klinikk <no-reply@clinic-finder.example>"),
    Setting(
        "STAFF_INBOX_EMAIL", str, "staff@clinic-finder.example", doc="where new-request notices go"
    ),
    Setting(
        "PUBLIC_BASE_URL",
        str,
        FromEnvironment(_development_base_url),
        None,
        doc="the site's public address, for links in emails, pages and the sitemap",
    ),
    Setting(
        "STAFF_LINK_VALID_HOURS",
        float,
        24.0,
        doc="how long an admin's one-time link (set-up, new password) works",
    ),
    Setting(
        "REQUEST_RETENTION_DAYS",
        int,
        180,
        doc="contact requests older than this are deleted by flask requests purge",
    ),
    Setting(
        "REFERRAL_UNDO_MINUTES",
        float,
        5.0,
        doc="how long a referral's emails wait in the outbox, so staff can cancel it",
    ),
    Setting(
        "CONTACT_RATE_LIMIT",
        str,
        "5 per hour;20 per day",
        doc="stored contact requests per address, form and API together",
    ),
    Setting(
        "CONTACT_ALLOWED_ORIGINS",
        comma_list,
        None,
        doc="older name for article sites that may post requests; adds to the next",
    ),
    Setting(
        "EMBED_ALLOWED_ORIGINS",
        comma_list,
        None,
        doc="article sites that may frame /embed, read the API and post requests",
    ),
    Setting(
        "IMPORT_GEOCODING_BUDGET_SECONDS",
        float,
        20.0,
        doc="how long checking a web upload may geocode; the rest wait at postcodes",
    ),
    Setting(
        "STATIC_LINK_RECHECK_SECONDS",
        float,
        2.0,
        doc="how long a page's link to a static file is trusted before the file is looked at again",
    ),
    Setting(
        "JOBS_RUN_IN_PROCESS",
        flag,
        True,
        False,
        doc="a thread of the web process runs imports; production runs flask jobs work",
    ),
    Setting(
        "JOBS_LEASE_SECONDS",
        float,
        300.0,
        doc="a claimed job is a worker's for this long; a dead worker's is taken over",
    ),
    Setting(
        "HPR_URL",
        str,
        None,
        doc="HPR's web service (its Basic endpoint); unset: licences are not checked",
    ),
    Setting("HPR_USERNAME", str, "", doc="our user at HPR's web service"),
    Setting("HPR_PASSWORD", str, "", doc="its password (a secret: never logged or shown)"),
    Setting("HPR_TIMEOUT_SECONDS", float, 10.0, doc="seconds to wait for HPR before giving up"),
    Setting(
        "HPR_REQUESTS_PER_SECOND",
        float,
        5.0,
        doc="the most calls to HPR a second, from each process",
    ),
)

# Settings that are not the operator's to choose: Flask's and its extensions' defaults,
# set on purpose for a site that handles health data.
FIXED_SETTINGS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_ENABLED": True,
    # Tokens last as long as the browser session: a patient writing slowly must not lose
    # their message to an expired token.
    "WTF_CSRF_TIME_LIMIT": None,
    # Never put statement parameters (patients' words) into error messages or logs.
    "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
    # Nothing patients send is large; a staff upload is at most this too.
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    "SEARCH_PAGE_SIZE": 20,
    # Staff sessions: at most 12 hours, and over after 30 minutes without a request.
    "STAFF_SESSION_MAX_AGE": timedelta(hours=12),
    "STAFF_SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
    "PERMANENT_SESSION_LIFETIME": timedelta(minutes=30),
    "SESSION_REFRESH_EACH_REQUEST": True,
    # Flask-Login's "remember me" would outlive both limits; we never set it, and say so.
    "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
    "RATELIMIT_STRATEGY": "moving-window",
    "RATELIMIT_HEADERS_ENABLED": True,
    # A Redis that stops answering must not hold requests: redis-py waits forever by
    # default. Passed to the storage (memory:// ignores them); the geocoder's turns too.
    "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    # If Redis goes away, keep limiting in this process instead of failing requests.
    "RATELIMIT_SWALLOW_ERRORS": True,
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
}
# The one setting whose environment variable has another name: hosting platforms call it so.
ENVIRONMENT_NAMES = {"SQLALCHEMY_DATABASE_URI": "DATABASE_URL"}

# build_geocoder falls back on these for a partial mapping (tests build one from a few keys).
GEOCODER_DEFAULTS: dict[str, Any] = {
    setting.name: setting.default for setting in SETTINGS if setting.name.startswith("GEOCODER")
}
# The same for the HPR client (hpr.build_client).
HPR_DEFAULTS: dict[str, Any] = {
    setting.name: setting.default for setting in SETTINGS if setting.name.startswith("HPR_")
}


def _read(setting: Setting, environ: Mapping[str, str], production: bool) -> Any:
    variable = ENVIRONMENT_NAMES.get(setting.name, setting.name)
    raw = environ.get(variable)
    if raw is None or raw == "":
        return setting.default_for(production, environ)
    try:
        return setting.parse(raw)
    except ValueError as error:
        raise ConfigError(f"{variable}={raw!r} is not valid: {error}") from error


def config_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables (SETTINGS) and FIXED_SETTINGS.

    ``DATABASE_URL`` unset means a SQLite file in the instance folder; the factory fills
    that in because only it knows where the instance folder is.
    """
    environ = os.environ if environ is None else environ
    app_env = app_environment(environ)
    production = app_env == "production"
    config: dict[str, Any] = {"APP_ENV": app_env, **FIXED_SETTINGS}
    for setting in SETTINGS:
        config[setting.name] = _read(setting, environ, production)
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
    _check_hpr_production_config(config)


def _check_hpr_production_config(config: Mapping[str, Any]) -> None:
    # Unset, licences are not checked; set, the password must only ever travel over TLS.
    url = (config.get("HPR_URL") or "").strip()
    if not url:
        return
    if not _is_https_url(url):
        raise ConfigError(
            "APP_ENV=production needs HPR_URL to be an https:// address without query or "
            "credentials (e.g. https://ws.nhn.no/v2/HPR/Basic), or unset."
        )
    if not (config.get("HPR_USERNAME") and config.get("HPR_PASSWORD")):
        raise ConfigError("APP_ENV=production with HPR_URL needs HPR_USERNAME and HPR_PASSWORD.")


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
