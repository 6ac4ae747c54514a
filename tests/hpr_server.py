"""A small HPR on loopback: zeep talks real SOAP over HTTP to it, and tests read what it heard.

It speaks the part of NHN's HPR v2 web service (Helsepersonellregisteret) that
clinic_finder uses, the way its Basic endpoint (a WCF ``BasicHttpBinding``, SOAP 1.1) does:

- ``POST /v2/HPR/Basic`` with ``SOAPAction: "http://schemas.nhn.no/reg/HPRv2/IHPR2Service/
  HentPerson"`` and a ``HentPerson`` body answers 200 with a ``HentPersonResponse`` holding
  the person: every element of ``Person`` and ``Godkjenning`` in the contract's order, nil
  where the register has nothing, times as Norwegian local times with their offset;
- a number not in the register answers 500 with the service's fault: ``faultcode``
  ``s:Client``, ``faultstring`` ``ArgumentException: HPR-nummer ikke funnet``, and a
  ``GenericFault`` (``http://register.nhn.no/Common``) saying the same in its ``Message``;
- ``GET /v2/HPR/Basic?wsdl`` answers the WSDL clinic_finder ships, its address pointing here;
- without the configured Basic credentials, anything answers 401 (as IIS does, in HTML);
- another SOAP action answers WCF's ``ActionNotSupported`` fault, another content type 415.

It can be told to misbehave (:meth:`HprServer.fail`): ``error`` (500 with WCF's internal
error fault), ``down`` (503 from a load balancer, in HTML), ``slow`` (answers only after the
client has given up), ``garbage`` (200 with an HTML page), ``empty_error`` (500 with a SOAP
envelope but no fault in it) and ``changed`` (the person with an element the contract does
not have, as a new version of the service might send); after a number of good answers,
and for a number of requests, so a run can be broken off and resumed. Every request is
recorded with its arrival time (:attr:`HprServer.requests`).

The register's JSON format (:func:`load_register`; e.g. ``data/demo_hpr_register.json``)
is one object whose keys are HPR numbers (1 to 9 digits, as strings) and whose values are
people::

    {
      "9144889": {
        "first_name": "Kari",
        "last_name": "Nordmann",
        "approvals": [
          {"category": "FT", "valid_from": "2012-06-20", "valid_to": null},
          {"category": "MT", "valid_from": "2018-01-15", "valid_to": "2030-12-31",
           "suspensions": [{"from": "2024-01-01", "to": "2024-03-31"}]}
        ]
      }
    }

- ``first_name``, ``last_name``: optional text;
- ``approvals``: the person's authorisations (HPR's ``Godkjenninger``), possibly none;
- ``category``: the health personnel category, a code from code list 9060 (``KI``
  chiropractor, ``FT`` physiotherapist, ``MT`` manual therapist, or any other, e.g. ``LE``);
- ``valid_from``: the first day it is valid (``YYYY-MM-DD``, a Norwegian date);
- ``valid_to``: the last day it is valid; ``null`` or left out when open-ended;
- ``suspensions``: optional periods in which it is suspended, each ``{"from": date,
  "to": date or null}`` (both days included; ``null`` while the suspension lasts);
- ``authorisation``: optional, the kind from code list 7704 (default ``"1"``, autorisasjon).

Any other key is refused, so a typo cannot quietly change what the register says.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree

from .loopback import LoopbackHttpServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WSDL_FILE = PROJECT_ROOT / "clinic_finder" / "data" / "hpr" / "HPRService2.wsdl"
ENDPOINT_PATH = "/v2/HPR/Basic"
SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"
HENT_PERSON_ACTION = "http://schemas.nhn.no/reg/HPRv2/IHPR2Service/HentPerson"
TEST_USERNAME = "clinic_finder_test"
TEST_PASSWORD = "hpr-test-password-1"  # noqa: S105 - the loopback server's, not a real one
CLIENT_TIMEOUT = 0.5
MODES = ("ok", "error", "down", "slow", "garbage", "changed", "empty_error")

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
HPR = "http://schemas.nhn.no/reg/HPRv2"
KODEVERK = "http://schemas.nhn.no/reg/Common/no"
COMMON = "http://register.nhn.no/Common"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NOT_FOUND_REASON = "ArgumentException: HPR-nummer ikke funnet"
NO_NUMBER_REASON = "ArgumentException: HPR-nummer må oppgis"
INTERNAL_ERROR_REASON = (
    "The server was unable to process the request due to an internal error. For more "
    "information about the error, either turn on IncludeExceptionDetailInFaults (either from "
    "ServiceBehaviorAttribute or from the <serviceDebug> configuration behavior) on the server "
    "in order to send the exception information back to the client, or turn on tracing as per "
    "the Microsoft .NET Framework SDK documentation and inspect the server trace logs."
)
WCF_DISPATCHER = (
    "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
)
WCF_ADDRESSING_NONE = "http://schemas.microsoft.com/ws/2005/05/addressing/none"
NORWAY = ZoneInfo("Europe/Oslo")  # where the register keeps its times
CATEGORY_NAMES = {
    "KI": "Kiropraktor",
    "FT": "Fysioterapeut",
    "MT": "Manuellterapeut",
    "LE": "Lege",
    "SP": "Sykepleier",
}
AUTHORISATION_NAMES = {"1": "Autorisasjon", "2": "Lisens"}


# --- the register ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Suspension:
    """A period in which an approval is suspended (both days included; ``end`` None: ongoing)."""

    start: date
    end: date | None = None


@dataclass(frozen=True)
class RegisteredApproval:
    """One Godkjenning in the register: a category, its period, its suspensions."""

    category: str
    valid_from: date
    valid_to: date | None = None
    suspensions: tuple[Suspension, ...] = ()
    authorisation: str = "1"


@dataclass(frozen=True)
class RegisteredPerson:
    """A person in the register."""

    approvals: tuple[RegisteredApproval, ...] = ()
    first_name: str = "Test"
    last_name: str = "Person"


def _date(value: Any, where: str, *, optional: bool = False) -> date | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: a date YYYY-MM-DD is needed, not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _only(data: Any, keys: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: an object is needed, not {data!r}")
    unknown = set(data) - keys
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    return data


def _approval(data: Any, where: str) -> RegisteredApproval:
    keys = {"category", "valid_from", "valid_to", "suspensions", "authorisation"}
    data = _only(data, keys, where)
    category = data.get("category")
    if not isinstance(category, str) or not category.strip():
        raise ValueError(f"{where}.category: a code from code list 9060 is needed")
    suspensions = []
    for number, item in enumerate(data.get("suspensions") or []):
        item = _only(item, {"from", "to"}, f"{where}.suspensions[{number}]")
        start = _date(item.get("from"), f"{where}.suspensions[{number}].from")
        end = _date(item.get("to"), f"{where}.suspensions[{number}].to", optional=True)
        suspensions.append(Suspension(start, end))
    return RegisteredApproval(
        category=category.strip(),
        valid_from=_date(data.get("valid_from"), f"{where}.valid_from"),
        valid_to=_date(data.get("valid_to"), f"{where}.valid_to", optional=True),
        suspensions=tuple(suspensions),
        authorisation=str(data.get("authorisation", "1")),
    )


def register_from_json(data: Any) -> dict[str, RegisteredPerson]:
    """Read a register in the JSON format above (already parsed) into people by HPR number."""
    if not isinstance(data, Mapping):
        raise ValueError("the register is an object of HPR numbers")
    register = {}
    for number, person in data.items():
        if not (number.isascii() and number.isdigit() and len(number) <= 9):
            raise ValueError(f"{number!r}: an HPR number is 1 to 9 digits")
        person = _only(person, {"first_name", "last_name", "approvals"}, number)
        register[str(int(number))] = RegisteredPerson(
            approvals=tuple(
                _approval(item, f"{number}.approvals[{index}]")
                for index, item in enumerate(person.get("approvals") or [])
            ),
            first_name=str(person.get("first_name", "")),
            last_name=str(person.get("last_name", "")),
        )
    return register


def load_register(path: str | Path) -> dict[str, RegisteredPerson]:
    """Read a register file in the JSON format above."""
    return register_from_json(json.loads(Path(path).read_text(encoding="utf-8")))


# --- the SOAP answers -----------------------------------------------------------------------


def _wcf_time(day: date) -> str:
    # The register's dates travel as local midnight with Norway's offset of that day.
    return datetime(day.year, day.month, day.day, tzinfo=NORWAY).isoformat()


def _sub(parent: etree._Element, namespace: str, name: str, text: str | None = None):
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    element.text = text
    return element


def _nil(parent: etree._Element, namespace: str, name: str) -> etree._Element:
    element = _sub(parent, namespace, name)
    element.set(f"{{{XSI}}}nil", "true")
    return element


def _kode(parent: etree._Element, name: str, oid: int, value: str, description: str) -> None:
    kode = _sub(parent, HPR, name)
    _sub(kode, KODEVERK, "Aktiv", "true")
    _sub(kode, KODEVERK, "Beskrivelse", description)
    _nil(kode, KODEVERK, "Kodegruppenavn")
    _sub(kode, KODEVERK, "OID", str(oid))
    _sub(kode, KODEVERK, "Verdi", value)


def _periode(parent: etree._Element, name: str, start: date, end: date | None) -> None:
    periode = _sub(parent, HPR, name)
    _sub(periode, KODEVERK, "Fra", _wcf_time(start))
    if end is None:
        _nil(periode, KODEVERK, "Til")
    else:
        _sub(periode, KODEVERK, "Til", _wcf_time(end))


def _godkjenning(parent: etree._Element, approval: RegisteredApproval, ident: int) -> None:
    godkjenning = _sub(parent, HPR, "Godkjenning")
    _sub(godkjenning, HPR, "AdministrativeReaksjoner")
    _kode(
        godkjenning,
        "Autorisasjon",
        7704,
        approval.authorisation,
        AUTHORISATION_NAMES.get(approval.authorisation, approval.authorisation),
    )
    _nil(godkjenning, HPR, "AvsluttetStatus")
    _sub(godkjenning, HPR, "ETag", f"etag-{ident}")
    _nil(godkjenning, HPR, "GodkjentTurnus")
    _periode(godkjenning, "Gyldig", approval.valid_from, approval.valid_to)
    category = approval.category
    _kode(godkjenning, "Helsepersonellkategori", 9060, category, CATEGORY_NAMES.get(category, ""))
    _sub(godkjenning, HPR, "Id", str(ident))
    _nil(godkjenning, HPR, "KonvertertFraLand")
    _sub(godkjenning, HPR, "Rekvisisjonsretter")
    _sub(godkjenning, HPR, "Spesialiteter")
    periods = _sub(godkjenning, HPR, "Suspensjonsperioder")
    for number, suspension in enumerate(approval.suspensions, start=1):
        item = _sub(periods, HPR, "Suspensjonsperiode")
        _sub(item, HPR, "ETag", f"etag-{ident}-{number}")
        _sub(item, HPR, "Id", str(ident * 100 + number))
        _periode(item, "Periode", suspension.start, suspension.end)
    _sub(godkjenning, HPR, "Tilleggskompetanser")
    _sub(godkjenning, HPR, "Utdannelser")
    _sub(godkjenning, HPR, "Vilkår")


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"s": SOAP_ENV})
    return envelope, _sub(envelope, SOAP_ENV, "Body")


def person_response(number: str, person: RegisteredPerson, changed: bool = False) -> bytes:
    """The body of HentPerson's answer for a person in the register.

    ``changed`` adds an element the contract does not have, as a new version might.
    """
    envelope, body = _envelope()
    response = etree.SubElement(body, f"{{{HPR}}}HentPersonResponse", nsmap={None: HPR})
    result = etree.SubElement(
        response, f"{{{HPR}}}HentPersonResult", nsmap={"a": KODEVERK, "i": XSI}
    )
    _sub(result, HPR, "AdministrativeReaksjoner")
    _sub(result, HPR, "AlternativeIder")
    _nil(result, HPR, "Dødsdato")
    _sub(result, HPR, "ETag", f"person-{number}")
    _nil(result, HPR, "ErstattetAvHprNummer")
    _sub(result, HPR, "Etternavn", person.last_name)
    _sub(result, HPR, "Fornavn", person.first_name)
    _sub(result, HPR, "FysiskeAdresser")
    _nil(result, HPR, "Fødselsdato")
    if changed:
        _sub(result, HPR, "Fødselsnummer", "01019012345")
    approvals = _sub(result, HPR, "Godkjenninger")
    for ident, approval in enumerate(person.approvals, start=1):
        _godkjenning(approvals, approval, int(number) * 10 + ident)
    _sub(result, HPR, "HPRNummer", number)
    _nil(result, HPR, "Kjønn")
    _sub(result, HPR, "ManglerNIN", "true")
    _nil(result, HPR, "Mellomnavn")
    _nil(result, HPR, "NIN")
    _sub(result, HPR, "SistOppdatert", "2024-05-02T10:15:00.123+02:00")
    _nil(result, HPR, "Statsborgerskap")
    # Something under an element clinic_finder never reads (the WSDL's xs:anyType).
    education = _sub(_sub(result, HPR, "Utdannelser"), HPR, "Utdannelse")
    _sub(education, HPR, "Id", "1")
    return etree.tostring(envelope, xml_declaration=False, encoding="utf-8")


def fault_response(code: tuple[str, str], reason: str, generic: bool = True) -> bytes:
    """A SOAP 1.1 fault as WCF writes it: ``code`` is (namespace, local name)."""
    envelope, body = _envelope()
    fault = _sub(body, SOAP_ENV, "Fault")
    namespace, name = code
    faultcode = etree.SubElement(fault, "faultcode", nsmap={"a": namespace})
    faultcode.text = f"{'s' if namespace == SOAP_ENV else 'a'}:{name}"
    faultstring = etree.SubElement(fault, "faultstring")
    faultstring.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    faultstring.text = reason
    if generic:
        detail = etree.SubElement(fault, "detail")
        generic_fault = etree.SubElement(
            detail, f"{{{COMMON}}}GenericFault", nsmap={None: COMMON, "i": XSI}
        )
        # The code the service puts here for an unknown number is not documented.
        _nil(generic_fault, COMMON, "ErrorCode")
        _sub(generic_fault, COMMON, "Message", reason)
    return etree.tostring(envelope, encoding="utf-8")


def not_found_fault(reason: str = NOT_FOUND_REASON) -> bytes:
    """The fault HentPerson answers for a number the register does not know."""
    return fault_response((SOAP_ENV, "Client"), reason)


def hent_person_number(body: bytes) -> str | None:
    """The HPR number a HentPerson request asks about: None if it is not XML, "" if none."""
    try:
        document = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    found = document.find(f"{{{SOAP_ENV}}}Body/{{{HPR}}}HentPerson/{{{HPR}}}hprNummer")
    number = (found.text or "").strip() if found is not None else ""
    return str(int(number)) if number.isascii() and number.isdigit() else ""


def wsdl_for(url: str) -> bytes:
    """The shipped WSDL, with the service's address pointing at ``url`` (as WCF does)."""
    document = etree.parse(str(WSDL_FILE))
    for address in document.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
        address.set("location", url)
    return etree.tostring(document, xml_declaration=True, encoding="utf-8")


# --- the server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    authorised: bool
    hpr_number: str | None  # what a HentPerson asked for
    at: float  # time.monotonic() on arrival; the client runs in the same process


@dataclass
class _Failure:
    mode: str = "ok"
    after: int = 0  # good answers still to give first
    times: int | None = None  # failing answers still to give (None: until told otherwise)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_mode(self) -> str:
        with self.lock:
            if self.mode == "ok":
                return "ok"
            if self.after > 0:
                self.after -= 1
                return "ok"
            mode = self.mode
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.mode, self.times = "ok", None
            return mode


class HprServer(LoopbackHttpServer):
    """HPR's Basic endpoint on 127.0.0.1: a register in memory, Basic auth, failures on cue."""

    def __init__(
        self,
        register: Mapping[str, RegisteredPerson] | None = None,
        username: str = TEST_USERNAME,
        password: str = TEST_PASSWORD,
    ) -> None:
        self.register: dict[str, RegisteredPerson] = dict(register or {})
        self.username, self.password = username, password
        self.requests: list[RecordedRequest] = []
        self.slow_seconds = CLIENT_TIMEOUT + 1.0
        self._failure = _Failure()
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{ENDPOINT_PATH}"

    def fail(self, mode: str, *, after: int = 0, times: int | None = None) -> None:
        """Answer HentPerson in ``mode`` after ``after`` good answers, ``times`` times (None:
        until :meth:`recover`)."""
        assert mode in MODES, mode
        with self._failure.lock:
            self._failure.mode, self._failure.after, self._failure.times = mode, after, times

    def recover(self) -> None:
        """Answer properly again."""
        self.fail("ok")

    def config(self, **overrides: Any) -> dict[str, Any]:
        """HPR_* settings that point clinic_finder at this server, fast enough for tests."""
        return {
            "HPR_URL": self.url,
            "HPR_USERNAME": self.username,
            "HPR_PASSWORD": self.password,
            "HPR_TIMEOUT_SECONDS": CLIENT_TIMEOUT,
            "HPR_REQUESTS_PER_SECOND": 1000.0,
            **overrides,
        }

    @property
    def calls(self) -> list[RecordedRequest]:
        """The authorised HentPerson requests, in the order they arrived."""
        with self._lock:
            return [r for r in self.requests if r.authorised and r.hpr_number is not None]

    def asked_for(self) -> list[str]:
        """The HPR numbers HentPerson was asked about, in order (repeats included)."""
        return [request.hpr_number for request in self.calls]

    def _authorised(self, header: str | None) -> bool:
        expected = f"{self.username}:{self.password}".encode()
        return header == "Basic " + base64.b64encode(expected).decode("ascii")

    def answer(self, number: str | None) -> tuple[int, bytes, str]:
        """(status, body, content type) answering a HentPerson for ``number``.

        ``number`` is None when the request was not XML, empty when it named no number.
        """
        if number is None:
            return 400, b"Bad Request", "text/html"
        if not number:
            return 500, not_found_fault(NO_NUMBER_REASON), SOAP_CONTENT_TYPE
        mode = self._failure.next_mode()
        if mode == "slow":
            self._stopping.wait(self.slow_seconds)
        elif mode == "error":
            code = (WCF_DISPATCHER, "InternalServiceFault")
            return 500, fault_response(code, INTERNAL_ERROR_REASON, False), SOAP_CONTENT_TYPE
        elif mode == "empty_error":
            return 500, etree.tostring(_envelope()[0]), SOAP_CONTENT_TYPE
        elif mode == "down":
            return 503, _DOWN_PAGE, "text/html"
        elif mode == "garbage":
            return 200, _GARBAGE_PAGE, "text/html; charset=utf-8"
        person = self.register.get(number)
        if person is None:
            return 500, not_found_fault(), SOAP_CONTENT_TYPE
        return 200, person_response(number, person, mode == "changed"), SOAP_CONTENT_TYPE

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)


_UNAUTHORISED_PAGE = (
    b"<!DOCTYPE html><html><head><title>401 - Unauthorized: Access is denied due to invalid "
    b"credentials.</title></head><body><h2>401 - Unauthorized</h2></body></html>"
)
_DOWN_PAGE = b"<html><body><h1>503 Service Unavailable</h1>No server is available.</body></html>"
_GARBAGE_PAGE = "<!DOCTYPE html><html><body><p>Vedlikehold pågår.</p></body></html>".encode()


def _handler_for(server: HprServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self, hpr_number: str | None, authorised: bool) -> None:
            request = RecordedRequest(
                self.command, urlsplit(self.path).path, authorised, hpr_number, time.monotonic()
            )
            with server._lock:
                server.requests.append(request)

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and hung up, which is the point of "slow"

        def _refuse_unauthorised(self) -> bool:
            if server._authorised(self.headers.get("Authorization")):
                return False
            self._record(None, authorised=False)
            self._send(
                401,
                _UNAUTHORISED_PAGE,
                "text/html",
                WWW_Authenticate='Basic realm="ws.nhn.no"',
            )
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self._refuse_unauthorised():
                return
            self._record(None, authorised=True)
            url = urlsplit(self.path)
            if url.path != ENDPOINT_PATH or url.query.lower() != "wsdl":
                self._send(404, b"Not Found", "text/html")
                return
            self._send(200, wsdl_for(server.url), SOAP_CONTENT_TYPE)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self._refuse_unauthorised():
                return
            self._answer_post(body)

        def _answer_post(self, body: bytes) -> None:
            action = (self.headers.get("SOAPAction") or "").strip('"')
            content_type = self.headers.get("Content-Type") or ""
            if urlsplit(self.path).path != ENDPOINT_PATH:
                self._record(None, authorised=True)
                self._send(404, b"Not Found", "text/html")
            elif not content_type.startswith("text/xml"):
                self._record(None, authorised=True)
                self._send(415, b"", "text/html")
            elif action != HENT_PERSON_ACTION:
                self._record(None, authorised=True)
                reason = f"The message with Action '{action}' cannot be processed at the receiver."
                fault = fault_response((WCF_ADDRESSING_NONE, "ActionNotSupported"), reason, False)
                self._send(500, fault, SOAP_CONTENT_TYPE)
            else:
                self._answer_hent_person(body)

        def _answer_hent_person(self, body: bytes) -> None:
            number = hent_person_number(body)
            self._record(number, authorised=True)
            self._send(*server.answer(number))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def running_hpr(register: Mapping[str, RegisteredPerson] | None = None) -> Iterator[HprServer]:
    """Run an :class:`HprServer` for the duration of a ``with`` block."""
    server = HprServer(register)
    server.start()
    try:
        yield server
    finally:
        server.stop()
