"""Street addresses → coordinates: a geopy geocoder behind a small seam, with cache and fallback.

Rows of a clinic list without coordinates are placed by :class:`AddressLocator`: first the
``geocode_cache`` table, then the configured geocoder (Nominatim by default), and when that
finds nothing or cannot be reached, the postcode's centre, marked ``postcode`` precision.
The geocoder never blocks an import: after the first failure a locator stops asking it.

Requests go through :class:`ThrottledGeocoder`, which starts requests at least
``GEOCODER_MIN_INTERVAL`` apart (Nominatim's usage policy allows one a second) for the whole
site: each takes its turn from a moving window in the rate-limit storage
(``RATELIMIT_STORAGE_URI``: ``memory://`` is one process, ``redis://`` every worker and host).
It retries with a back-off, and turns every failure into :class:`GeocoderUnavailable` instead
of the silent ``None`` that geopy's ``RateLimiter`` would give.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from geopy import exc as geopy_exc
from geopy.adapters import RequestsAdapter, URLLibAdapter
from geopy.distance import great_circle
from geopy.geocoders import Nominatim
from geopy.geocoders.base import Geocoder
from limits import RateLimitItemPerSecond
from limits.errors import ConfigurationError as StorageConfigurationError
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select
from sqlalchemy.orm import Session

from .audit import record
from .config import GEOCODER_DEFAULTS, ConfigError
from .importer import MAX_KM_FROM_POSTCODE, Location, Postcode, locate_at_postcode, normalise_key
from .models import Clinic, GeocodeCacheEntry, LocationSource, StaffUser, now_utc

logger = logging.getLogger(__name__)

EXTENSION_KEY = "clinic_finder.geocoder"

PUBLIC_NOMINATIM_DOMAIN = "nominatim.openstreetmap.org"
DEFAULTS: dict[str, Any] = GEOCODER_DEFAULTS
DEFAULT_USER_AGENT: str = DEFAULTS["GEOCODER_USER_AGENT"]

# A server asking us to wait longer than this is treated as down: an import does not wait.
MAX_RETRY_DELAY = 10.0
# GeocodeCacheEntry.query is a String(500); longer queries are not geocoded at all.
MAX_QUERY_LENGTH = 500

Point = tuple[float, float]


# How often a request waiting for its turn asks again.
TURN_POLL_SECONDS = 0.05


class GeocoderUnavailable(RuntimeError):
    """The geocoder gave no usable answer (down, too slow, refusing us, or talking nonsense)."""


class GeocoderBusy(GeocoderUnavailable):
    """Others (other workers, other hosts) had the geocoder's turns for longer than we wait."""


class GeocoderDown(GeocoderUnavailable):
    """The geocoder could not be reached a short while ago, so it is not asked yet again."""


class _Process:
    """What stays per process: one request at a time here, and the back-off after failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Set after a failure or a 429, so every caller backs off, not just the one that failed.
        self.penalty_until = -math.inf


_process = _Process()
_memory_storages: dict[str, Storage] = {}
_memory_storages_lock = threading.Lock()


def _memory_storage(uri: str = "memory://") -> Storage:
    # One per process, as Flask-Limiter's memory:// would be: every app and geocoder of the
    # process shares its turns (several per process would each go at the full rate).
    with _memory_storages_lock:
        if uri not in _memory_storages:
            _memory_storages[uri] = storage_from_string(uri)
        return _memory_storages[uri]


class _Every(RateLimitItemPerSecond):
    """One hit per ``seconds``, which may be a fraction of a second (limits' items cannot)."""

    __slots__ = ["seconds"]

    def __init__(self, seconds: float) -> None:
        super().__init__(1, 1, namespace="GEOCODER")
        self.seconds = seconds

    def get_expiry(self) -> float:  # type: ignore[override]
        # Whole seconds as an int: Redis's EXPIRE refuses "1.0".
        return int(self.seconds) if float(self.seconds).is_integer() else self.seconds


class GeocoderTurns:
    """Geocoder requests at most one per ``interval`` for all who share the storage.

    The storage is the one the rate limits use (``RATELIMIT_STORAGE_URI``, with
    ``RATELIMIT_KEY_PREFIX`` in the key): ``memory://`` spaces the requests of this process,
    ``redis://`` those of every worker and host using that Redis and prefix. A request's
    turn is a hit on a moving window of one per interval, key ``geocoder``. Redis keeps its
    window in whole seconds, so there an interval is rounded up (never faster than asked).
    If the storage fails, turns are counted in this process until it answers again.
    """

    def __init__(
        self,
        interval: float,
        storage_uri: str = "memory://",
        key_prefix: str = "clinic_finder",
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.interval = interval
        if storage_uri.startswith("memory://"):
            self.storage = _memory_storage(storage_uri)
        else:
            self.storage = storage_from_string(
                storage_uri, wrap_exceptions=True, **dict(storage_options or {})
            )
        exact = isinstance(self.storage, MemoryStorage)
        self.window = _Every(interval if exact else float(math.ceil(interval)))
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.fallback = MovingWindowRateLimiter(_memory_storage())
        self.fallback_window = _Every(interval)
        self.key = (key_prefix, "geocoder")

    def take(self, deadline: float) -> bool:
        """Wait for the next turn (polling); False if ``deadline`` (monotonic) comes first."""
        if self.interval <= 0:
            return True
        while not self._hit():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(TURN_POLL_SECONDS, remaining))
        return True

    def _hit(self) -> bool:
        try:
            return self.limiter.hit(self.window, *self.key)
        except StorageError as error:
            # Redis away: stay polite within this process rather than stop geocoding.
            logger.warning("geocoder turns counted in this process only: %r", error)
            return self.fallback.hit(self.fallback_window, *self.key)


class ThrottledGeocoder:
    """A geopy geocoder that is polite (throttled, retried) and says clearly when it fails."""

    def __init__(
        self,
        geocoder: Geocoder,
        *,
        provider: str = "nominatim",
        min_interval: float = 1.0,
        retries: int = 2,
        country_codes: str = "no",
        turns: GeocoderTurns | None = None,
        down_seconds: float = 0.0,
    ) -> None:
        self.geocoder = geocoder
        self.provider = provider
        self.min_interval = min_interval
        self.retries = retries
        self.country_codes = country_codes
        self.turns = turns or GeocoderTurns(min_interval)
        self.down_seconds = down_seconds
        # Until when (time.monotonic()) the geocoder counts as down, and the same as a UTC
        # time for people. One geocoder serves a whole process (the app's extension), so
        # every request and job of the process remembers an outage, not only one import.
        self._down_until = -math.inf
        self.down_until_utc: datetime | None = None

    def is_down(self) -> bool:
        """Whether the geocoder failed less than ``down_seconds`` ago (and is left alone)."""
        return time.monotonic() < self._down_until

    def _mark_down(self) -> None:
        if self.down_seconds > 0:
            self._down_until = time.monotonic() + self.down_seconds
            self.down_until_utc = now_utc() + timedelta(seconds=self.down_seconds)

    def lookup(self, query: str, deadline: float | None = None) -> Point | None:
        """Return the coordinates of an address, or None when the service found nothing.

        Waits for its turn at most the request timeout, and not past ``deadline``
        (``time.monotonic()``). Raises :class:`GeocoderBusy` when no turn came in time,
        :class:`GeocoderUnavailable` when no answer came after the retries, and
        :class:`GeocoderDown`, asking nothing, for ``down_seconds`` after that.
        """
        if self.is_down():
            raise GeocoderDown(f"{self.provider} could not be reached a moment ago")
        try:
            return self._lookup(query, deadline)
        except GeocoderBusy:
            raise  # others are using it: not an outage
        except GeocoderUnavailable:
            self._mark_down()
            raise

    def _lookup(self, query: str, deadline: float | None) -> Point | None:
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return self._request(query, deadline)
            except (
                geopy_exc.GeopyError,
                ValueError,
                TypeError,
                KeyError,
                IndexError,
                AttributeError,
            ) as error:
                # geopy raises the parser's own errors when a body is not Nominatim's JSON.
                delay = max(self.min_interval * 2**attempt, _retry_after(error))
                self._penalise(delay)
                logger.warning(
                    "geocoder %s failed (attempt %d of %d): %r",
                    self.provider,
                    attempt + 1,
                    attempts,
                    error,
                )
                if _is_permanent(error) or delay > MAX_RETRY_DELAY or attempt + 1 == attempts:
                    raise GeocoderUnavailable(f"{self.provider}: {error}") from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_until(self, deadline: float | None) -> float:
        # A turn is worth waiting for as long as the request itself may take, no longer.
        wait_until = time.monotonic() + float(self.geocoder.timeout or DEFAULTS["GEOCODER_TIMEOUT"])
        return wait_until if deadline is None else min(wait_until, deadline)

    def _request(self, query: str, deadline: float | None) -> Point | None:
        # Held for the whole request, so this process's requests never overlap.
        locked = _process.lock.acquire(
            timeout=max(self._wait_until(deadline) - time.monotonic(), 0)
        )
        if not locked:
            raise GeocoderBusy(f"{self.provider}: this process's other requests took the time")
        try:
            penalty = _process.penalty_until - time.monotonic()
            if penalty > MAX_RETRY_DELAY:
                # Still inside a long Retry-After: neither wait for it nor ask anyway.
                raise GeocoderUnavailable(f"{self.provider} asked us to wait {penalty:.0f} s")
            if penalty > 0:
                time.sleep(penalty)
            if not self.turns.take(self._wait_until(deadline)):
                raise GeocoderBusy(f"{self.provider}: no turn free in time (others geocoding)")
            location = self.geocoder.geocode(
                query, exactly_one=True, country_codes=self.country_codes
            )
        finally:
            _process.lock.release()
        if location is None:
            return None
        latitude, longitude = float(location.latitude), float(location.longitude)
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError(f"coordinates out of range: {latitude}, {longitude}")
        return latitude, longitude

    def _penalise(self, delay: float) -> None:
        with _process.lock:
            _process.penalty_until = max(_process.penalty_until, time.monotonic() + delay)


def _retry_after(error: Exception) -> float:
    if isinstance(error, geopy_exc.GeocoderRateLimited) and error.retry_after:
        return float(error.retry_after)
    return 0.0


def _is_permanent(error: Exception) -> bool:
    # Asking again will not change a refusal (bad query, blocked user agent, no quota).
    if isinstance(error, geopy_exc.GeocoderRateLimited):
        return False
    return isinstance(
        error,
        geopy_exc.GeocoderQueryError
        | geopy_exc.GeocoderAuthenticationFailure
        | geopy_exc.GeocoderInsufficientPrivileges
        | geopy_exc.GeocoderQuotaExceeded
        | geopy_exc.ConfigurationError,
    )


def _setting(config: Mapping[str, Any], key: str, convert: Callable[[Any], Any]) -> Any:
    value = config.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        value = DEFAULTS[key]
    try:
        return convert(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}={value!r} is not valid: {error}") from error


def build_geocoder(config: Mapping[str, Any]) -> ThrottledGeocoder | None:
    """Build the geocoder the config asks for; None when ``GEOCODER`` is ``none``."""
    kind = _setting(config, "GEOCODER", str).lower()
    if kind == "none":
        return None
    if kind != "nominatim":
        raise ConfigError(f"GEOCODER={kind!r} is not supported: use 'nominatim' or 'none'.")
    domain = _setting(config, "GEOCODER_DOMAIN", str)
    scheme = _setting(config, "GEOCODER_SCHEME", str).lower()
    user_agent = _setting(config, "GEOCODER_USER_AGENT", str)
    timeout = _setting(config, "GEOCODER_TIMEOUT", float)
    min_interval = _setting(config, "GEOCODER_MIN_INTERVAL", float)
    retries = _setting(config, "GEOCODER_RETRIES", int)
    down_seconds = _setting(config, "GEOCODER_DOWN_SECONDS", float)
    if scheme not in {"http", "https"}:
        raise ConfigError(f"GEOCODER_SCHEME={scheme!r} must be http or https.")
    if timeout <= 0 or min_interval < 0 or retries < 0 or down_seconds < 0:
        raise ConfigError(
            "GEOCODER_TIMEOUT must be positive; GEOCODER_MIN_INTERVAL, GEOCODER_RETRIES and "
            "GEOCODER_DOWN_SECONDS must not be negative."
        )
    if domain == PUBLIC_NOMINATIM_DOMAIN and min_interval < 1.0:
        raise ConfigError(
            "The public Nominatim server allows at most one request a second: "
            "GEOCODER_MIN_INTERVAL must be at least 1."
        )
    # urllib3's own retries would resend behind our throttle's back; ours are the only ones.
    adapter_factory = (
        functools.partial(RequestsAdapter, max_retries=0)
        if RequestsAdapter.is_available
        else URLLibAdapter
    )
    try:
        nominatim = Nominatim(
            domain=domain,
            scheme=scheme,
            user_agent=user_agent,
            timeout=timeout,
            adapter_factory=adapter_factory,
        )
    except geopy_exc.ConfigurationError as error:
        raise ConfigError(f"The geocoder cannot be set up: {error}") from error
    try:
        turns = GeocoderTurns(
            min_interval,
            storage_uri=config.get("RATELIMIT_STORAGE_URI") or "memory://",
            key_prefix=config.get("RATELIMIT_KEY_PREFIX") or "clinic_finder",
            storage_options=config.get("RATELIMIT_STORAGE_OPTIONS"),
        )
    except StorageConfigurationError as error:
        raise ConfigError(f"RATELIMIT_STORAGE_URI cannot be used: {error}") from error
    return ThrottledGeocoder(
        nominatim,
        provider=kind,
        min_interval=min_interval,
        retries=retries,
        country_codes="no",
        turns=turns,
        down_seconds=down_seconds,
    )


def geocode_query(address: str, postal: Postcode, city: str) -> str:
    """Return the text the geocoder is asked for an address (its cache key, normalised)."""
    address, city = " ".join(address.split()), " ".join(city.split())
    return f"{address}, {postal.postcode} {city or postal.place}, Norway"


def _near_postcode(point: Point | None, postal: Postcode) -> Point | None:
    # A point far from the postcode is more likely a namesake street elsewhere than the clinic.
    if point is None:
        return None
    if great_circle(point, (postal.latitude, postal.longitude)).km > MAX_KM_FROM_POSTCODE:
        return None
    return point


class AddressLocator:
    """Place street addresses for an import: cache, then geocoder, else the postcode's centre.

    Matches the importer's ``Locate``. The caller owns the transaction: new cache entries
    are added and flushed, never committed. Once the geocoder has failed, this locator
    stops asking it (cached answers are still used), so one import never waits on a dead
    service row after row. With ``recheck_misses`` a cached answer that did not place the
    address (nothing found, or too far away) is asked again and replaced.
    """

    def __init__(
        self,
        session: Session,
        geocoder: ThrottledGeocoder | None,
        *,
        recheck_misses: bool = False,
        time_budget: float | None = None,
    ) -> None:
        self.session = session
        self.geocoder = geocoder
        self.recheck_misses = recheck_misses
        # A web request cannot wait for a geocoder limited to one address a second: after
        # the budget, only cached answers are used (the rest can be re-geocoded later).
        self.deadline = None if time_budget is None else time.monotonic() + time_budget
        self.unavailable = False
        self.out_of_time = False
        self.looked_up = 0  # answers from the geocoder (found or not)
        self.from_cache = 0  # answers from the geocode cache
        self.fell_back = 0  # addresses placed at their postcode's centre

    def __call__(self, address: str, postal: Postcode, city: str) -> Location:
        """Return the coordinates of an address and how they were found."""
        point = self._find(address, postal, city)
        if point is None:
            self.fell_back += 1
            return locate_at_postcode(address, postal, city)
        return point[0], point[1], LocationSource.GEOCODED

    def _find(self, address: str, postal: Postcode, city: str) -> Point | None:
        if not address.strip() or self.geocoder is None:
            return None
        query = geocode_query(address, postal, city)
        key = normalise_key(query)
        if len(key) > MAX_QUERY_LENGTH:
            return None
        entry = self.session.scalar(select(GeocodeCacheEntry).where(GeocodeCacheEntry.query == key))
        if entry is not None:
            cached = _near_postcode(_entry_point(entry), postal)
            if cached is not None or not self.recheck_misses:
                self.from_cache += 1
                return cached
        if self.unavailable:
            return None
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.out_of_time = True
            return None
        try:
            point = self.geocoder.lookup(query, deadline=self.deadline)
        except GeocoderBusy as error:
            # Out of our own time while others geocoded: the rest can be re-geocoded later.
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.out_of_time = True
            else:
                self.unavailable = True
            logger.warning("geocoding stopped for this run: %s", error)
            return None
        except GeocoderUnavailable as error:
            self.unavailable = True
            logger.warning(
                "geocoding stopped for this run; postcode centres from now on: %s", error
            )
            return None
        self.looked_up += 1
        latitude, longitude = point if point is not None else (None, None)
        if entry is None:
            entry = GeocodeCacheEntry(query=key, provider=self.geocoder.provider)
            self.session.add(entry)
        entry.latitude, entry.longitude = latitude, longitude
        entry.provider = self.geocoder.provider
        entry.created_at = now_utc()
        self.session.flush()
        return _near_postcode(point, postal)


def _entry_point(entry: GeocodeCacheEntry) -> Point | None:
    if entry.latitude is None or entry.longitude is None:
        return None
    return entry.latitude, entry.longitude


@dataclass
class RegeocodeReport:
    """What re-geocoding the postcode-placed clinics did."""

    updated: int = 0
    # Every listed clinic still at its postcode's centre afterwards, for whatever reason.
    still_postcode: int = 0
    # The geocoder failed (or is switched off), so some clinics were not asked about.
    unavailable: bool = False
    # The time budget ran out; the rest wait for the next run.
    out_of_time: bool = False


def postcode_located_clinics(session: Session) -> list[Clinic]:
    """List the active clinics placed only at their postcode's centre, by name."""
    return list(
        session.scalars(
            select(Clinic)
            .where(Clinic.active, Clinic.location_source == LocationSource.POSTCODE)
            .order_by(Clinic.name, Clinic.id)
        )
    )


def regeocode_postcode_located(
    session: Session,
    geocoder: ThrottledGeocoder | None,
    actor: StaffUser | str = "command line",
    time_budget: float | None = None,
) -> RegeocodeReport:
    """Look up the postcode-placed clinics' addresses again and move those found; no commit.

    With a ``time_budget`` (seconds) it stops asking when that runs out; what is done so
    far is kept once the caller commits, and the next run goes on from there. The run is
    audited as ``actor``'s.
    """
    report = RegeocodeReport(unavailable=geocoder is None)
    locator = AddressLocator(session, geocoder, recheck_misses=True, time_budget=time_budget)
    for clinic in postcode_located_clinics(session):
        if (
            not clinic.address.strip()
            or geocoder is None
            or locator.unavailable
            or locator.out_of_time
        ):
            report.still_postcode += 1
            continue
        latitude, longitude, source = locator(clinic.address, clinic.postal_code, clinic.city)
        if source is LocationSource.GEOCODED:
            clinic.latitude, clinic.longitude = latitude, longitude
            clinic.location_source = source
            report.updated += 1
        else:
            report.still_postcode += 1
    report.unavailable = report.unavailable or locator.unavailable
    report.out_of_time = locator.out_of_time
    record(
        session,
        actor,
        "clinic.regeocode",
        "clinic",
        None,
        {"updated": report.updated, "still_postcode": report.still_postcode},
        summary=f"{report.updated} clinic(s) placed by street address",
    )
    session.flush()
    return report


def init_app(app: Flask) -> None:
    """Build the app's geocoder from its config and keep it in ``app.extensions``."""
    app.extensions[EXTENSION_KEY] = build_geocoder(app.config)


def current_geocoder() -> ThrottledGeocoder | None:
    """Return the current app's geocoder (None when geocoding is switched off)."""
    try:
        return current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "No geocoder set up: call clinic_finder.geocoding.init_app(app) in create_app."
        ) from None
