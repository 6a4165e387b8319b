"""Upkeep of the outbox by the workers: the backlog they report, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import WebhookDelivery, WebhookEvent
from gql_api.webhooks.outbox import due

PRUNE_BATCH = 500


@dataclass(frozen=True)
class Backlog:
    due: int
    oldest_due_seconds: float


async def backlog(db: AsyncSession, now: datetime) -> Backlog:
    """Events due now and not leased, and how long the oldest of them has waited."""
    row = (
        await db.exec(
            select(func.count(), func.min(col(WebhookEvent.next_attempt_at))).where(
                *due(now, set())
            )
        )
    ).one()
    count, oldest = row
    waited = (now - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(due=int(count), oldest_due_seconds=max(0.0, waited))


@dataclass(frozen=True)
class Pruned:
    removed: int  # rows deleted
    more: bool  # a batch was full: there may be more to delete now


async def prune(*, db: AsyncSession, older_than: datetime) -> Pruned:
    """Delete one small batch of events (with their attempts) and of test calls older than
    `older_than` (the retention), in the caller's write transaction; events still scheduled
    are kept. Rows another worker is pruning are skipped (SKIP LOCKED), so workers pruning at
    once share the work rather than repeat it."""
    old_events = (
        await db.exec(
            select(WebhookEvent.id)
            .where(
                col(WebhookEvent.published_at) < older_than,
                col(WebhookEvent.next_attempt_at).is_(None),
                col(WebhookEvent.locked_until).is_(None),
            )
            .order_by(col(WebhookEvent.id))
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    removed = 0
    if old_events:
        attempts = await db.exec(
            delete(WebhookDelivery).where(col(WebhookDelivery.event_pk).in_(old_events))
        )
        events = await db.exec(delete(WebhookEvent).where(col(WebhookEvent.id).in_(old_events)))
        removed += int(attempts.rowcount) + int(events.rowcount)
    old_calls = (
        await db.exec(
            select(WebhookDelivery.id)
            .where(
                col(WebhookDelivery.attempted_at) < older_than,
                col(WebhookDelivery.event_pk).is_(None),  # test calls: attempts go with events
            )
            .order_by(col(WebhookDelivery.id))
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if old_calls:
        calls = await db.exec(delete(WebhookDelivery).where(col(WebhookDelivery.id).in_(old_calls)))
        removed += int(calls.rowcount)
    return Pruned(
        removed=removed, more=len(old_events) == PRUNE_BATCH or len(old_calls) == PRUNE_BATCH
    )
