"""Pooled PostgreSQL connections that the server has closed are replaced before use.

A database restart or failover closes every connection in the pool. SQLAlchemy's
``pool_pre_ping`` finds them by sending a statement on each checkout: one more round
trip on every request, a sixth of an API search's. An idle connection has nothing to
read, though, and a server that ends it sends a last message ("terminating connection")
and closes the socket, so the socket turns readable: checking that costs no round trip.
A connection found readable is given up and the pool opens a new one, so a restart costs
no request. A readable socket could in principle also hold a notice for a healthy
connection (none of ours LISTEN); giving that one up costs a reconnect, never an error.

What this cannot see — a server gone without closing the socket (a host that lost power,
a cut network) — a ping would not have answered either, before the TCP timeouts; the
request then fails with "try again shortly", and the broken connection leaves the pool.
"""

from __future__ import annotations

import select

from sqlalchemy.exc import DisconnectionError


def server_closed(dbapi_connection) -> bool:
    """Whether this idle psycopg connection is closed, broken, or has the server's goodbye
    (or anything else) waiting on its socket."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.pgconn.socket, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except Exception:  # noqa: BLE001 - any doubt about the socket: a new connection
        return True


def drop_closed_connection(dbapi_connection, _connection_record, _connection_proxy) -> None:
    """Pool ``checkout`` listener: raising DisconnectionError makes the pool discard the
    connection and check out another (SQLAlchemy's documented way)."""
    if server_closed(dbapi_connection):
        raise DisconnectionError("the database server closed this pooled connection")
