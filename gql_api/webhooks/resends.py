"""Manual resends of webhook events: one sent now from the console's request
(webhookEventResend), or every failed event of a store queued for the workers
(webhookEventsResendFailed). Both count against the event's MANUAL_RESEND_LIMIT in the database,
so concurrent requests and workers cannot pass it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import WebhookDelivery, WebhookEvent
from gql_api.i18n import Message
from gql_api.security.encryption import Encryptor
from gql_api.webhooks.events import EventStatus, Trigger
from gql_api.webhooks.outbox import (
    MANUAL_RESEND_LIMIT,
    Claim,
    build_request,
    mark_succeeded,
    record_result,
    unfinished_delivery,
    why_not_deliverable,
)
from gql_api.webhooks.sender import DeliveryResult
from gql_api.webhooks.service import EffectiveWebhookSetting


async def start_manual_resend(
    *,
    db: AsyncSession,
    encryptor: Encryptor,
    event: WebhookEvent,
    setting: EffectiveWebhookSetting,
    now: datetime,
) -> tuple[Claim | None, Message | None]:
    """Count one manual resend of `event` (at most MANUAL_RESEND_LIMIT, counted in the database
    so that concurrent resends cannot pass it) and record it as an unfinished MANUAL attempt,
    sent as `setting` (the setting in force for the event, which the caller has read).

    Returns (None, why) when it cannot be sent now: the limit (why is None then) or the
    setting in force has nowhere to send it (why says so)."""
    assert event.id is not None
    reason = why_not_deliverable(setting, event)
    if reason is not None:
        return None, reason
    counted = await db.exec(
        update(WebhookEvent)
        .where(
            col(WebhookEvent.id) == event.id,
            col(WebhookEvent.manual_resend_count) < MANUAL_RESEND_LIMIT,
        )
        .values(manual_resend_count=col(WebhookEvent.manual_resend_count) + 1)
    )
    if counted.rowcount == 0:
        return None, None
    await db.refresh(event)
    request = await build_request(db, encryptor, setting, event, now)
    delivery = unfinished_delivery(event, request, Trigger.MANUAL, event.manual_resend_count, now)
    db.add(delivery)
    await db.flush()
    assert delivery.id is not None
    return (
        Claim(
            event_pk=event.id,
            merchant_pk=event.merchant_id,
            lease_token="",
            delivery_pk=delivery.id,
            trigger=Trigger.MANUAL,
            attempt_number=event.manual_resend_count,
            published_at=event.published_at,
            request=request,
        ),
        None,
    )


async def finish_manual_resend(
    *, db: AsyncSession, claim: Claim, result: DeliveryResult, now: datetime
) -> tuple[WebhookDelivery | None, WebhookEvent | None, bool]:
    """Record a manual resend; a success ends the event's schedule (SUCCEEDED), a failure
    leaves the event as it was. Returns (delivery, event, first success)."""
    delivery = await db.get(WebhookDelivery, claim.delivery_pk)
    if delivery is not None:
        record_result(delivery, result)
        db.add(delivery)
    event = (
        await db.exec(
            select(WebhookEvent).where(col(WebhookEvent.id) == claim.event_pk).with_for_update()
        )
    ).first()
    first_success = False
    if event is not None and result.succeeded and event.status != EventStatus.SUCCEEDED.value:
        first_success = event.succeeded_at is None
        mark_succeeded(event, now)
        db.add(event)
    await db.flush()
    return delivery, event, first_success


async def queue_failed_resends(
    *,
    db: AsyncSession,
    store_pk: int,
    now: datetime,
    published_from: datetime | None,
    published_until: datetime | None,
) -> int:
    """Bulk resend of a store's failed events (webhookEventsResendFailed), queued for workers.

    RETRYING events have their next attempt brought forward to now. EXHAUSTED events get one
    more attempt, a MANUAL one that counts against their manual-resend limit when it is sent
    (events at the limit are left out); they are RETRYING until it ends. Returns how many were
    queued."""
    window: list[Any] = [col(WebhookEvent.store_pk) == store_pk]
    if published_from is not None:
        window.append(col(WebhookEvent.published_at) >= published_from)
    if published_until is not None:
        window.append(col(WebhookEvent.published_at) < published_until)
    retrying = await db.exec(
        update(WebhookEvent)
        .where(*window, col(WebhookEvent.status) == EventStatus.RETRYING.value)
        .where(col(WebhookEvent.next_attempt_at) > now)
        .values(next_attempt_at=now)
    )
    exhausted = await db.exec(
        update(WebhookEvent)
        .where(
            *window,
            col(WebhookEvent.status) == EventStatus.EXHAUSTED.value,
            col(WebhookEvent.manual_resend_count) < MANUAL_RESEND_LIMIT,
        )
        .values(
            status=EventStatus.RETRYING.value,
            next_attempt_at=now,
            next_trigger=Trigger.MANUAL.value,
        )
    )
    return int(retrying.rowcount) + int(exhausted.rowcount)
