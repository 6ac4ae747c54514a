"""Licence checks against Norway's Health Personnel Register (Helsepersonellregisteret, HPR).

A clinician may be listed only while their HPR number belongs to a person holding a valid
authorisation for their profession: chiropractor (category ``KI``), physiotherapist
(``FT``) or manual therapist (``MT``), from code list 9060. :class:`HprClient` asks NHN's
HPR v2 web service (SOAP, the "Basic" endpoint with HTTP Basic authentication, operation
``HentPerson``) about one number; :func:`judge_person` turns the answer into a
:class:`LicenceCheck` without asking anything, so the rules can be tested on their own.

The service is described by the WSDL shipped in ``clinic_finder/data/hpr/``; zeep reads
it from there and posts to ``HPR_URL``, and never loads a WSDL over the network. Calls
are spaced at least ``1 / HPR_REQUESTS_PER_SECOND`` seconds apart in this process. Every
way of getting no usable answer (unreachable, too slow, HTTP errors, refused credentials,
an answer that is not the service's XML) raises :class:`HprUnavailable`; only the
service's own "HPR-nummer ikke funnet" fault means the number is unknown.

With ``HPR_URL`` unset the check is off: :func:`current_client` returns None.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app
from zeep import Client, Settings
from zeep import exceptions as zeep_exceptions
from zeep.transports import Transport

from .config import HPR_DEFAULTS, ConfigError

EXTENSION_KEY = "hpr"

WSDL_PATH = Path(__file__).resolve().parent / "data" / "hpr" / "HPRService2.wsdl"
_HPR_NAMESPACE = "http://schemas.nhn.no/reg/HPRv2"
_BINDING = f"{{{_HPR_NAMESPACE}}}BasicHttpBinding_IHPR2Service"
_FAULT_NAMESPACE = "http://register.nhn.no/Common"
_FAULT_MESSAGE_PATH = f"{{{_FAULT_NAMESPACE}}}GenericFault/{{{_FAULT_NAMESPACE}}}Message"
# What the service says, in faultstring and in the GenericFault's Message, for a number
# it does not know ("ArgumentException: HPR-nummer ikke funnet").
NOT_FOUND_FAULT = "HPR-nummer ikke funnet"
# HentPerson takes the number as an xs:int; HPR numbers have at most nine digits.
MAX_HPR_DIGITS = 9
# A fault's text goes into our error message, cut short.
MAX_FAULT_TEXT = 200


class LicenceStatus(StrEnum):
    """What HPR says about a clinician's authorisation today."""

    VALID = "valid"
    NOT_FOUND = "not_found"
    NO_AUTHORISATION_FOR_PROFESSION = "no_authorisation_for_profession"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    UNCHECKED = "unchecked"


# Worst first: a person's status is the worst of their required categories'.
_SEVERITY = {
    LicenceStatus.NOT_FOUND: 4,
    LicenceStatus.SUSPENDED: 3,
    LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION: 2,
    LicenceStatus.EXPIRED: 1,
    LicenceStatus.VALID: 0,
}
# Among one category's approvals, the one in force wins; a suspended one says more about
# today than one that ran out.
_PREFERENCE = {LicenceStatus.VALID: 0, LicenceStatus.SUSPENDED: 1, LicenceStatus.EXPIRED: 2}


@dataclass(frozen=True)
class LicenceCheck:
    """The outcome of checking one HPR number for the categories a clinician needs.

    ``categories`` is every category HPR lists for the person, in force or not (sorted
    codes, e.g. ``("FT", "MT")``);
    ``valid_from`` and ``valid_to`` are the Norwegian dates of the authorisation that
    decided the status (for a valid one, the one that ends first; ``valid_to`` None is
    open-ended), both None when there is none.
    """

    status: LicenceStatus
    categories: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None


class HprUnavailable(RuntimeError):
    """HPR gave no usable answer: unreachable, too slow, refusing us, or talking nonsense."""


@dataclass(frozen=True)
class Period:
    """A Periode from the register: ``start`` (Fra) and ``end`` (Til, None when open-ended)."""

    start: datetime | None
    end: datetime | None

    def covers(self, day: date) -> bool:
        """Whether ``day`` (a Norwegian date) falls in the period, both ends included."""
        start = norwegian_date(self.start) if self.start is not None else None
        end = norwegian_date(self.end) if self.end is not None else None
        return (start is None or start <= day) and (end is None or day <= end)


@dataclass(frozen=True)
class Approval:
    """One Godkjenning: an authorisation (or licence) for one category of health personnel."""

    category: str  # Helsepersonellkategori, code list 9060: KI, FT, MT …
    valid: Period | None  # Gyldig; None when the register gives no period
    suspensions: tuple[Period, ...] = ()  # Suspensjonsperioder
    authorisation: str | None = None  # Autorisasjon, code list 7704 (1 = autorisasjon)


@dataclass(frozen=True)
class HprPerson:
    """The part of HPR's Person a licence check reads."""

    hpr_number: str
    approvals: tuple[Approval, ...] = ()


def norwegian_date(moment: datetime) -> date:
    """The date in Norway at ``moment``; a time without an offset is taken as Norway's."""
    # Imported here: models.py imports this module for LicenceStatus.
    from .models import NORWAY

    return moment.astimezone(NORWAY).date() if moment.tzinfo is not None else moment.date()


@dataclass(frozen=True)
class _Verdict:
    status: LicenceStatus
    valid_from: date | None = None
    valid_to: date | None = None


def _judge_approval(approval: Approval, today: date) -> _Verdict:
    period = approval.valid
    valid_from = norwegian_date(period.start) if period and period.start else None
    valid_to = norwegian_date(period.end) if period and period.end else None
    if any(suspension.covers(today) for suspension in approval.suspensions):
        status = LicenceStatus.SUSPENDED
    elif period is None or not period.covers(today):
        # Without a period nothing shows the authorisation is in force.
        status = LicenceStatus.EXPIRED
    else:
        status = LicenceStatus.VALID
    return _Verdict(status, valid_from, valid_to)


def _judge_category(approvals: Iterable[Approval], category: str, today: date) -> _Verdict:
    verdicts = [_judge_approval(a, today) for a in approvals if a.category == category]
    if not verdicts:
        return _Verdict(LicenceStatus.NO_AUTHORISATION_FOR_PROFESSION)
    return min(
        verdicts,
        key=lambda v: (_PREFERENCE[v.status], -(v.valid_to or date.max).toordinal()),
    )


def judge_person(
    person: HprPerson | None, required_categories: frozenset[str], today: date
) -> LicenceCheck:
    """Judge what HPR said about a person (None: not found) for the categories required.

    Each required category is valid, suspended (a suspension covers ``today``), expired
    (its period ended before ``today`` or starts after it) or missing; the person is valid
    only when every one is, and otherwise takes the worst: not found, suspended, no
    authorisation for the profession, expired. ``today`` is a Norwegian date; the
    register's times are compared as Norwegian dates, so an authorisation ending today is
    still valid today.
    """
    if not required_categories:
        raise ValueError("judge_person needs at least one required category")
    if person is None:
        return LicenceCheck(LicenceStatus.NOT_FOUND)
    held = tuple(sorted({approval.category for approval in person.approvals}))
    verdicts = [_judge_category(person.approvals, c, today) for c in sorted(required_categories)]
    worst = max(verdicts, key=lambda v: _SEVERITY[v.status])
    if worst.status is LicenceStatus.VALID:
        # Valid until the first of them ends.
        worst = min(verdicts, key=lambda v: v.valid_to or date.max)
    return LicenceCheck(worst.status, held, worst.valid_from, worst.valid_to)


# --- talking to HPR ------------------------------------------------------------------------


class _Throttle:
    """Start calls at least ``interval`` seconds apart, whichever thread makes them."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last = -math.inf

    def wait(self) -> None:
        """Wait for this call's turn."""
        # The lock is held while sleeping, so waiting callers queue up one interval apart,
        # measured from when each actually went.
        with self._lock:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last = time.monotonic()


class _HprTransport(Transport):
    """zeep's transport, reading only the shipped WSDL and saying plainly when HTTP fails."""

    def load(self, url: str) -> bytes:
        # The WSDL and its schemas are all in clinic_finder/data/hpr; nothing is fetched.
        if urlsplit(url).scheme:
            raise ConfigError(f"The HPR WSDL refers to {url}; every part must be shipped.")
        return super().load(url)

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        try:
            response = super().post(address, message, headers)
        except requests.Timeout as error:
            raise HprUnavailable(
                f"HPR at {address} did not answer within {self.operation_timeout:g} s"
            ) from error
        except requests.RequestException as error:
            raise HprUnavailable(f"HPR at {address} could not be reached: {error}") from error
        if response.status_code in (401, 403):
            raise HprUnavailable(
                f"HPR refused HPR_USERNAME and HPR_PASSWORD (HTTP {response.status_code})"
            )
        # A SOAP fault comes with 500; anything else but 200 is no answer.
        if response.status_code not in (200, 500):
            raise HprUnavailable(f"HPR answered HTTP {response.status_code}")
        return response


class HprClient:
    """HPR's web service through zeep: HTTP Basic auth, a timeout, and calls spaced out."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        timeout_seconds: float,
        requests_per_second: float,
    ) -> None:
        if timeout_seconds <= 0 or requests_per_second <= 0:
            raise ConfigError("HPR_TIMEOUT_SECONDS and HPR_REQUESTS_PER_SECOND must be positive.")
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.throttle = _Throttle(1.0 / requests_per_second)
        session = requests.Session()
        session.auth = (username, password)
        transport = _HprTransport(
            session=session, timeout=timeout_seconds, operation_timeout=timeout_seconds
        )
        # Strict: an element the WSDL does not know fails the call instead of being skipped.
        settings = Settings(strict=True, forbid_dtd=True, forbid_entities=True)
        client = Client(str(WSDL_PATH), transport=transport, settings=settings)
        self._service = client.create_service(_BINDING, url)

    def __repr__(self) -> str:
        return f"HprClient({self.url!r})"  # never the password

    def check(
        self, hpr_number: str | int, required_categories: frozenset[str], today: date
    ) -> LicenceCheck:
        """Ask HPR about one HPR number and judge the answer for the categories required."""
        return judge_person(self.find_person(hpr_number), required_categories, today)

    def find_person(self, hpr_number: str | int) -> HprPerson | None:
        """Return what HPR holds on an HPR number, or None when it knows no such number.

        Raises :class:`HprUnavailable` when HPR gives no usable answer, and ValueError for
        a number that is not 1 to 9 digits.
        """
        number = _hpr_number(hpr_number)
        self.throttle.wait()
        try:
            # "As of now", as the service's other clients ask.
            result = self._service.HentPerson(
                **{"hprNummer": number, "påTidspunkt": datetime.now(UTC)}
            )
        except zeep_exceptions.Fault as fault:
            if _is_not_found(fault):
                return None
            text = (fault.message or "no reason given")[:MAX_FAULT_TEXT]
            raise HprUnavailable(f"HPR answered with a fault: {text}") from fault
        except zeep_exceptions.TransportError as error:
            # Its message would quote the whole body; the status says enough.
            raise HprUnavailable(
                f"HPR answered HTTP {error.status_code} with a body that is not SOAP"
            ) from error
        except (zeep_exceptions.Error, ValueError, TypeError) as error:
            # ValueError: a value zeep could not convert, such as a malformed date.
            raise HprUnavailable(f"HPR's answer could not be read: {error}") from error
        if result is None:
            return None
        try:
            return _person_from(result, number)
        except (AttributeError, TypeError, ValueError) as error:
            raise HprUnavailable(f"HPR's answer could not be read: {error!r}") from error


def _hpr_number(value: str | int) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_HPR_DIGITS):
        raise ValueError(f"an HPR number is 1 to {MAX_HPR_DIGITS} digits, not {value!r}")
    return int(text)


def _is_not_found(fault: zeep_exceptions.Fault) -> bool:
    texts = [fault.message or ""]
    if fault.detail is not None:
        found = fault.detail.find(_FAULT_MESSAGE_PATH)
        if found is not None and found.text:
            texts.append(found.text)
    return any(NOT_FOUND_FAULT.casefold() in text.casefold() for text in texts)


def _items(array: Any, name: str) -> list[Any]:
    # An ArrayOfX holds its items in X; a nil array or a nil item is nothing.
    if array is None:
        return []
    return [item for item in getattr(array, name) or [] if item is not None]


def _period_from(periode: Any) -> Period | None:
    return None if periode is None else Period(periode.Fra, periode.Til)


def _approval_from(godkjenning: Any) -> Approval | None:
    category = godkjenning.Helsepersonellkategori
    if category is None or not category.Verdi:
        return None  # an approval for no category cannot count for any
    authorisation = godkjenning.Autorisasjon
    return Approval(
        category=category.Verdi.strip(),
        valid=_period_from(godkjenning.Gyldig),
        suspensions=tuple(
            period
            for suspension in _items(godkjenning.Suspensjonsperioder, "Suspensjonsperiode")
            if (period := _period_from(suspension.Periode)) is not None
        ),
        authorisation=authorisation.Verdi if authorisation is not None else None,
    )


def _person_from(result: Any, number: int) -> HprPerson:
    approvals = (_approval_from(g) for g in _items(result.Godkjenninger, "Godkjenning"))
    return HprPerson(str(result.HPRNummer or number), tuple(a for a in approvals if a))


# --- the app's client -----------------------------------------------------------------------


def _url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError as error:
        raise ConfigError(f"HPR_URL={value!r} is not a URL: {error}") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"HPR_URL={value!r} must be an http:// or https:// address.")
    if parts.username or parts.password:
        raise ConfigError("HPR_URL must not hold credentials: set HPR_USERNAME and HPR_PASSWORD.")
    return value


def _number(config: Mapping[str, Any], key: str) -> float:
    value = config.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        value = HPR_DEFAULTS[key]
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}={value!r} is not a number.") from error


def build_client(config: Mapping[str, Any]) -> HprClient | None:
    """Build the HPR client the config asks for; None when ``HPR_URL`` is unset (no checks)."""
    url = (config.get("HPR_URL") or "").strip()
    if not url:
        return None
    return HprClient(
        _url(url),
        config.get("HPR_USERNAME") or "",
        config.get("HPR_PASSWORD") or "",
        timeout_seconds=_number(config, "HPR_TIMEOUT_SECONDS"),
        requests_per_second=_number(config, "HPR_REQUESTS_PER_SECOND"),
    )


def init_app(app: Flask) -> None:
    """Build the app's HPR client from its config and keep it in ``app.extensions``."""
    app.extensions[EXTENSION_KEY] = build_client(app.config)


def current_client() -> HprClient | None:
    """Return the current app's HPR client (None when licence checks are off)."""
    try:
        return current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "No HPR client set up: call clinic_finder.hpr.init_app(app) in create_app."
        ) from None


def licence_checks_enabled() -> bool:
    """Whether the current app checks licences against HPR (``HPR_URL`` is set)."""
    return current_client() is not None
