"""The audit log: who changed what, and when. Admins read it at /staff/audit."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from .models import AuditEntry, StaffUser


def to_json_value(value: Any) -> Any:
    """Turn a model attribute into something JSON can hold, for the audit log."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    return value


def apply_changes(model: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the values that differ and return them as ``{field: [old, new]}``."""
    changes: dict[str, list[Any]] = {}
    for name, new in values.items():
        old = getattr(model, name)
        if old != new:
            changes[name] = [to_json_value(old), to_json_value(new)]
            setattr(model, name, new)
    return changes


def record(
    session: Session,
    actor: StaffUser | str,
    action: str,
    object_type: str,
    object_id: int | None,
    changes: dict[str, Any] | None = None,
    summary: str = "",
) -> AuditEntry:
    """Add an audit entry; ``actor`` is the staff member, or a label such as ``"cli"``."""
    entry = AuditEntry(
        actor_id=actor.id if isinstance(actor, StaffUser) else None,
        actor_label=actor.email if isinstance(actor, StaffUser) else actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        changes=changes or {},
        summary=summary[:500],
    )
    session.add(entry)
    return entry
