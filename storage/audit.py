"""Append-only audit trail. There is deliberately no update or delete function here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from storage.models import AuditEvent, utcnow


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        at=utcnow(),
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=before,
        after=after,
        reason=reason,
    )
    session.add(event)
    return event


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Append many events in one INSERT (same fields as `record`)."""
    if events:
        at = utcnow()
        session.execute(insert(AuditEvent), [
            {"at": at, "before": None, "after": None, "reason": None, **e,
             "entity_id": str(e["entity_id"])} for e in events])


def history(session: Session, entity: str, entity_id: str | int) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(stmt))


def guard_append_only(session: Session, _flush_context: Any, _instances: Any) -> None:
    """before_flush hook: refuse any UPDATE or DELETE of an audit event."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise PermissionError("audit events are append-only; record a correction instead")
