"""A TCP proxy on 127.0.0.1 in front of a database server, whose server side can vanish
the way a crashed host or a moved virtual address does: nothing reaches the client (no
FIN, no reset) until it next sends, and then a reset answers it."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time


class VanishingProxy:
    """Forward each connection to ``target``; ``vanish()`` cuts every one so far silently."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._servers: dict[socket.socket, socket.socket] = {}  # client → its server side
        self._vanished: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connections = 0  # accepted so far

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> None:
        self._spawn(self._accept)

    def vanish(self) -> None:
        """Drop every server side now; each client learns it only from a reset when it sends."""
        with self._lock:
            self._vanished.update(self._servers)
        time.sleep(0.2)  # each pump closes its server side at its next turn (every 0.05 s)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)  # closing a socket does not wake a blocked accept
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(self._target)
            with self._lock:
                self._servers[client] = server
                self.connections += 1
            self._spawn(self._pump, client, server)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                with self._lock:
                    gone = client in self._vanished
                if gone and server.fileno() != -1:
                    server.close()  # the database sees the connection end; the client not
                readable, _, _ = select.select([client] if gone else [client, server], [], [], 0.05)
                for ready in readable:
                    data = ready.recv(65536)
                    if ready is client and gone:
                        # Another host answers a packet for a connection it never had.
                        client.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        return
                    if not data:
                        return
                    (server if ready is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()
