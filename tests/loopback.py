"""The part every stand-in for an outside service shares: an HTTP server on 127.0.0.1 at a
free port, served from a thread, stopped without leaving anything running."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHttpServer:
    """Serve ``handler_class`` on 127.0.0.1; ``start`` and ``stop`` around a test."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler]) -> None:
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.daemon_threads = True
        # A short poll interval, so that stopping the server does not cost each test 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes "slow" handlers so nothing outlives the test
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
