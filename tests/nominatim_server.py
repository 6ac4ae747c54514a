"""A small Nominatim on loopback: geopy talks real HTTP to it, and tests read what it heard.

It answers ``GET /search?q=…&format=json&limit=1&countrycodes=no`` the way
nominatim.openstreetmap.org does (a JSON array of places, ``[]`` for nothing found), and can
be told to misbehave: ``down`` (503), ``slow`` (answers after the client has given up),
``garbage`` (200 with an HTML body) and ``error_then_ok`` (the first few requests fail).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .loopback import LoopbackHttpServer

MODES = ("ok", "down", "slow", "garbage", "error_then_ok")
TEST_USER_AGENT = "clinic_finder-tests/1.0 (tests@clinic-finder.example)"
CLIENT_TIMEOUT = 0.5


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    path: str
    params: dict[str, str]
    user_agent: str | None
    at: float  # time.monotonic() on arrival; the client runs in the same process


class NominatimServer(LoopbackHttpServer):
    """Nominatim's search API on 127.0.0.1, with known addresses and switchable failures."""

    def __init__(self, places: dict[str, tuple[float, float]] | None = None) -> None:
        # Matched as a case-insensitive substring of the query's ``q``.
        self.places: dict[str, tuple[float, float]] = dict(places or {})
        self.mode = "ok"
        self.failures = 0  # for error_then_ok: how many requests still fail
        self.error_status = 500
        self.slow_seconds = CLIENT_TIMEOUT + 1.0
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fail(self, mode: str, *, times: int = 1, status: int = 500) -> None:
        """Switch to a failure mode (``times``/``status`` apply to error_then_ok)."""
        assert mode in MODES, mode
        self.mode, self.failures, self.error_status = mode, times, status

    def config(self, **overrides: Any) -> dict[str, Any]:
        """GEOCODER_* settings that point clinic_finder at this server, fast enough for tests."""
        return {
            "GEOCODER": "nominatim",
            "GEOCODER_SCHEME": "http",
            "GEOCODER_DOMAIN": self.domain,
            "GEOCODER_USER_AGENT": TEST_USER_AGENT,
            "GEOCODER_TIMEOUT": CLIENT_TIMEOUT,
            "GEOCODER_MIN_INTERVAL": 0.05,
            "GEOCODER_RETRIES": 1,
            **overrides,
        }

    def answer(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Return (status, headers, body) for a request, as the current mode dictates."""
        with self._lock:
            mode = self.mode
            if mode == "error_then_ok" and self.failures > 0:
                self.failures -= 1
                return self.error_status, {"Retry-After": "0"}, b"Internal error"
        if mode == "down":
            return 503, {}, b"Service Unavailable"
        if mode == "garbage":
            return 200, {"Content-Type": "text/html"}, b"<html><body>Welcome!</body></html>"
        if mode == "slow":
            self._stopping.wait(self.slow_seconds)
        if "q" not in params:
            return 400, {}, json.dumps({"error": "Nothing to search for"}).encode()
        query = params["q"].casefold()
        results = [
            _place(number, address, point)
            for number, (address, point) in enumerate(self.places.items(), start=1)
            if address.casefold() in query
        ][: int(params.get("limit", "10"))]
        return (
            200,
            {"Content-Type": "application/json; charset=utf-8"},
            json.dumps(results).encode(),
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                params = dict(parse_qsl(url.query))
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            url.path, params, self.headers.get("User-Agent"), time.monotonic()
                        )
                    )
                if url.path != "/search":
                    status, headers, body = 404, {}, b"Not Found"
                else:
                    status, headers, body = server.answer(params)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up, which is the point of "slow"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def _place(place_id: int, address: str, point: tuple[float, float]) -> dict[str, Any]:
    latitude, longitude = point
    return {
        "place_id": place_id,
        "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
        "osm_type": "node",
        "osm_id": 1000 + place_id,
        "lat": f"{latitude:.7f}",
        "lon": f"{longitude:.7f}",
        "class": "place",
        "type": "house",
        "place_rank": 30,
        "importance": 0.1,
        "addresstype": "place",
        "name": "",
        "display_name": f"{address}, Norge",
        "boundingbox": [
            f"{latitude - 0.0001:.7f}",
            f"{latitude + 0.0001:.7f}",
            f"{longitude - 0.0001:.7f}",
            f"{longitude + 0.0001:.7f}",
        ],
    }


@contextmanager
def running_nominatim(
    places: dict[str, tuple[float, float]] | None = None,
) -> Iterator[NominatimServer]:
    """Run a :class:`NominatimServer` for the duration of a ``with`` block."""
    server = NominatimServer(places)
    server.start()
    try:
        yield server
    finally:
        server.stop()
