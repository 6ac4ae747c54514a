"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can go down.

``stop()`` closes the listening socket, so clients get ``ConnectionRefusedError`` as from a
mail server that is down; ``start()`` brings it back on the same port.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server received it: the envelope, the parsed message, the bytes."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class _Collector:
    """aiosmtpd handler that accepts every message and keeps it."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        if address in self.server.refused_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        raw = envelope.original_content
        # Read as a mail client would: CRLF, SMTP's line ending, is just a line ending.
        message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        self.server._record(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 Message accepted for delivery"


async def _session_count() -> int:
    # Every task in the server's loop but this one is a client's SMTP session.
    return len(asyncio.all_tasks() - {asyncio.current_task()})


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def connection_refused(port: int) -> bool:
    """Tell whether connecting to the port on loopback is refused."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


class SmtpServer:
    """An SMTP server on 127.0.0.1 that collects messages and can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[ReceivedMail] = []
        self.delay = 0.0  # seconds each message takes, to make senders overlap
        self.refused_recipients: set[str] = set()  # answered "550 No such user"
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Listen (again) on this server's port."""
        assert self._controller is None, "already running"
        controller = Controller(
            _Collector(self), hostname=HOST, port=self.port, server_hostname="smtp.test"
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the port: from now on connections are refused."""
        assert self._controller is not None, "not running"
        self._wait_for_sessions_to_end(self._controller)
        self._controller.stop()
        self._controller = None
        assert connection_refused(self.port), f"port {self.port} still accepts connections"

    @staticmethod
    def _wait_for_sessions_to_end(controller: Controller, timeout: float = 2.0) -> None:
        # Stopping cancels the sessions' tasks and closes the loop before they finish,
        # which asyncio reports as "Task was destroyed"; a client that has hung up is
        # usually a moment away from its session ending, so give it that moment.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sessions = asyncio.run_coroutine_threadsafe(_session_count(), controller.loop)
            if sessions.result(timeout=timeout) == 0:
                return
            time.sleep(0.005)

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received.append(mail)

    @property
    def messages(self) -> list[EmailMessage]:
        """The messages received so far, in arrival order."""
        with self._lock:
            return [mail.message for mail in self.received]

    def config(self, **overrides: Any) -> dict[str, Any]:
        """MAIL_* settings that point clinic_finder at this server."""
        return {
            "MAIL_SERVER": HOST,
            "MAIL_PORT": self.port,
            "MAIL_USE_TLS": False,
            "MAIL_USERNAME": "",
            "MAIL_PASSWORD": "",
            "MAIL_TIMEOUT": 2,
            **overrides,
        }


@contextmanager
def running_smtp() -> Iterator[SmtpServer]:
    """Run an :class:`SmtpServer` for the duration of a ``with`` block."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        if server.running:
            server.stop()
