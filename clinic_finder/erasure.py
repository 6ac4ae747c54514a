"""Making deleted personal data unreadable on disk, not only unreachable by queries.

A row SQL deletes stays in the database files until its space is reused: on SQLite in the
write-ahead log and the page it lived on, on PostgreSQL as a dead tuple. After a GDPR
delete or the retention purge we want the words gone:

- SQLite: every connection runs with ``secure_delete`` on (the factory sets it), so freed
  pages are overwritten with zeros; a ``wal_checkpoint(TRUNCATE)`` then writes those pages
  to the main file and empties the log, where the old pages still were.
- PostgreSQL: ``VACUUM`` frees the dead tuples for reuse (its bytes stay until reused);
  ``VACUUM FULL`` rewrites the tables without them, holding an exclusive lock meanwhile.
  WAL segments and backups keep older bytes until they age out (docs/security.md).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

logger = logging.getLogger(__name__)

# Where contact requests and everything about them live.
REQUEST_TABLES = ("contact_request", "request_event", "referral", "outbox_message")


def erase_deleted_rows(engine: Engine, *, full: bool = False) -> None:
    """Push deleted rows out of the database files; call after the deleting commit.

    ``full`` (PostgreSQL) rewrites the request tables (VACUUM FULL) instead of only freeing
    their dead tuples.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            busy, _log_pages, _moved = connection.execute(
                text("PRAGMA wal_checkpoint(TRUNCATE)")
            ).one()
        if busy:
            # A reader still holds an older snapshot; the next checkpoint finishes the job.
            logger.warning("WAL checkpoint after a delete could not finish (busy)")
        return
    if engine.dialect.name == "postgresql":
        verb = "VACUUM (FULL, ANALYZE)" if full else "VACUUM (ANALYZE)"
        # VACUUM cannot run inside a transaction block.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in REQUEST_TABLES:
                connection.execute(text(f"{verb} {table}"))
