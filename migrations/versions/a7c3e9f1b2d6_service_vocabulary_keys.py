"""Services as keys of the service vocabulary (data/services.json)

Revision ID: a7c3e9f1b2d6
Revises: a1f3c5e7b9d2
Create Date: 2026-12-06 11:30:00

A practice's services were free text as imported or typed ("exercise therapy",
"Manuell terapi"); they become the vocabulary's keys ("exercise-therapy",
"manual-therapy"), matched the way the importer matches: the key, either name or an
alias, in any case. A text the vocabulary does not know cannot become a key, so it is
left out, but never silently: each practice that loses one gets an audit entry
(``practice.services_unknown``, actor ``migration``) naming the texts, which staff find
in the audit log, and the migration logs how many. Going down writes the English names
back and returns those texts from the audit entries, so nothing is lost either way.

Stored import plans hold services of the old kind, so batches not yet applied are
planned again (as the practices migration did).

The vocabulary is read from data/services.json as it is when the migration runs (a
service added there later maps later imports, not this migration's past run).
"""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "a7c3e9f1b2d6"
down_revision = "a1f3c5e7b9d2"
branch_labels = None
depends_on = None

SERVICES_FILE = Path(__file__).resolve().parents[2] / "data" / "services.json"
UNKNOWN_ACTION = "practice.services_unknown"
logger = logging.getLogger("alembic.runtime.migration")

practice = sa.table(
    "practice",
    sa.column("id", sa.Integer),
    sa.column("services", sa.JSON),
)
audit_entry = sa.table(
    "audit_entry",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor_id", sa.Integer),
    sa.column("actor_label", sa.String),
    sa.column("action", sa.String),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.Integer),
    sa.column("summary", sa.String),
    sa.column("changes", sa.JSON),
)


def _fold(text):
    # services.fold, spelled here so that this migration keeps its meaning.
    return " ".join(text.casefold().replace("-", " ").replace("_", " ").split())


def _vocabulary():
    """(key by folded spelling, English name by key) from the vocabulary file."""
    document = json.loads(SERVICES_FILE.read_text(encoding="utf-8"))
    keys, english = {}, {}
    for service in document["services"]:
        key = service["key"]
        english[key] = service["name"]["en"]
        for spelling in (key, *service["name"].values(), *service.get("aliases", [])):
            keys.setdefault(_fold(spelling), key)
    return keys, english


def _practices(connection):
    return connection.execute(sa.select(practice.c.id, practice.c.services)).all()


def plan_unapplied_imports_again():
    op.execute(
        "DELETE FROM import_row WHERE batch_id IN (SELECT id FROM import_batch "
        "WHERE status IN ('planning', 'planned', 'apply_queued'))"
    )
    op.execute(
        "UPDATE import_batch SET status = 'queued', rows_done = 0, lease_token = NULL, "
        "lease_until = NULL, planned_at = NULL, apply_requested_by_id = NULL "
        "WHERE status IN ('planning', 'planned', 'apply_queued')"
    )


def upgrade():
    connection = op.get_bind()
    keys_by_spelling, _ = _vocabulary()
    now = datetime.now(UTC)
    left_out = 0
    for practice_id, services in _practices(connection):
        keys, unknown = [], []
        for text in services or []:
            key = keys_by_spelling.get(_fold(text))
            if key is None:
                unknown.append(text)
            elif key not in keys:
                keys.append(key)
        if keys != (services or []):
            connection.execute(
                practice.update().where(practice.c.id == practice_id).values(services=keys)
            )
        if unknown:
            left_out += 1
            connection.execute(
                audit_entry.insert().values(
                    at=now,
                    actor_id=None,
                    actor_label="migration",
                    action=UNKNOWN_ACTION,
                    object_type="practice",
                    object_id=practice_id,
                    summary=(
                        "Services not in the service vocabulary, left out: " + "; ".join(unknown)
                    )[:500],
                    changes={"services": [services, keys], "left_out": unknown},
                )
            )
    if left_out:
        logger.warning(
            "%d practices had services not in data/services.json; they are left out and "
            "named in the audit log (action %s)",
            left_out,
            UNKNOWN_ACTION,
        )
    plan_unapplied_imports_again()


def downgrade():
    """Back to free text: each key as its English name, and the texts the upgrade left
    out (from its audit entries) after them."""
    connection = op.get_bind()
    _, english = _vocabulary()
    restored = {}
    query = sa.select(audit_entry.c.object_id, audit_entry.c.changes).where(
        audit_entry.c.action == UNKNOWN_ACTION
    )
    for practice_id, changes in connection.execute(query):
        texts = restored.setdefault(practice_id, [])
        texts.extend(text for text in (changes or {}).get("left_out", []) if text not in texts)
    for practice_id, services in _practices(connection):
        names = [english.get(key, key).lower() for key in services or []]
        names += [text for text in restored.get(practice_id, []) if text not in names]
        if names != (services or []):
            connection.execute(
                practice.update().where(practice.c.id == practice_id).values(services=names)
            )
    plan_unapplied_imports_again()
