"""Pooled PostgreSQL connections that cannot serve are replaced before a request uses them.

A database restart, a failover or an idle timeout leaves dead connections in the pool.
SQLAlchemy's ``pool_pre_ping`` finds them by sending a statement on every checkout: one
round trip more on every request, a sixth of an API search's. Here:

- **Every checkout looks at the socket**, which costs no round trip. A server that ends a
  connection (a restart, ``pg_terminate_backend``, ``idle_session_timeout``) sends a last
  message and closes it, so the idle connection's socket turns readable. A readable socket
  could in principle also hold a notice for a healthy connection (none of ours LISTEN);
  giving that one up costs a reconnect, never an error.
- **A connection idle for ``DATABASE_PING_AFTER_IDLE_SECONDS`` (1 s) is pinged as well.**
  When a server's host is gone without closing anything — it lost power, or a virtual
  address moved to a new primary — the socket stays quiet, and only the first packet sent
  on it finds out (the new host answers with a reset). The ping takes that packet, so the
  request gets a new connection. A connection used within the last second is not pinged:
  under load, where the round trip costs most, the pool's connections are all that fresh.
  Then a host gone silently costs each dead connection one request answered "try again
  shortly" (503) — at most the pool's size (5) per process, at the moment of a failover
  whose own downtime fails requests anyway — and the connection leaves the pool.
  ``DATABASE_PING_AFTER_IDLE_SECONDS=0`` pings on every checkout, as ``pool_pre_ping``
  did, and no request is lost that way.

Only psycopg connections are looked at; any other driver gets SQLAlchemy's ping on every
checkout (the factory turns ``pool_pre_ping`` on for it).
"""

from __future__ import annotations

import select
import time

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

# When a pooled connection was last given back, in the pool's record of it.
_RETURNED_AT = "clinic_finder_returned_at"


def uses_psycopg(database_url: str) -> bool:
    """Whether the URL's driver is psycopg (3), the one whose sockets this module reads."""
    return database_url.startswith("postgresql+psycopg://")


def server_closed(dbapi_connection) -> bool:
    """Whether this idle psycopg connection is closed, broken, or has the server's goodbye
    (or anything else) waiting on its socket."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        socket = dbapi_connection.pgconn.socket
    except Exception:  # noqa: BLE001 - psycopg says the connection is bad
        return True
    poller = select.poll()
    poller.register(socket, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def watch(app: Flask, engine: Engine) -> None:
    """Check each connection ``engine``'s pool hands out (see the module's notes)."""
    idle_limit = float(app.config.get("DATABASE_PING_AFTER_IDLE_SECONDS", 1.0))

    @event.listens_for(engine, "checkin")
    def remember_return(_dbapi_connection, connection_record) -> None:
        connection_record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def replace_dead(dbapi_connection, connection_record, _connection_proxy) -> None:
        # Raising DisconnectionError makes the pool drop this connection and check out
        # another (SQLAlchemy's documented way).
        if server_closed(dbapi_connection):
            raise DisconnectionError("the database server closed this pooled connection")
        returned_at = connection_record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < idle_limit:
            return  # new, or used a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("the database server did not answer a ping") from error
        if not alive:
            raise DisconnectionError("the database server did not answer a ping")
