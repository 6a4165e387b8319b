"""Mutations of webhook events (resend one now, queue the failed ones) and node(id:) for them."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.clock import database_now
from gql_api.context import Info
from gql_api.mutations import mutate
from gql_api.user_errors import UserError
from gql_api.webhooks import event_service, outbox
from gql_api.webhooks.event_service import Resent, StartedResend
from gql_api.webhooks.event_types import WebhookEvent
from gql_api.webhooks.sender import check_and_send
from gql_api.webhooks.types import WebhookDelivery
from gql_api.webhooks.worker import WorkerConfig, status_class

_TIME = "A time without an offset is read as UTC."


@strawberry.input(description="Resend one webhook event now.")
class WebhookEventResendInput:
    id: strawberry.ID = strawberry.field(description="The WebhookEvent's global ID.")


@strawberry.type(description="Result of webhookEventResend.")
class WebhookEventResendPayload:
    event: WebhookEvent | None = strawberry.field(description="The event after the resend.")
    delivery: WebhookDelivery | None = strawberry.field(
        description="The attempt the resend made (trigger MANUAL), whatever the receiver did."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Queue a resend of a store's failed events (RETRYING, EXHAUSTED).")
class WebhookEventsResendFailedInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the store.")
    from_: datetime | None = strawberry.field(
        name="from", default=None, description=f"Published at or after this time. {_TIME}"
    )
    until: datetime | None = strawberry.field(
        default=None,
        description=f"Published before this time (exclusive); after `from`. {_TIME}",
    )


@strawberry.type(description="Result of webhookEventsResendFailed.")
class WebhookEventsResendFailedPayload:
    queued_count: int | None = strawberry.field(
        description="How many events were queued; null when nothing was done (userErrors)."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Send an event again now, outside its schedule, to the setting in force, "
        "and record the attempt (trigger MANUAL) whatever the receiver does; a success ends "
        f"the schedule (SUCCEEDED). At most {outbox.MANUAL_RESEND_LIMIT} resends per event "
        "(MAX_WEBHOOK_RETRY_COUNT_REACHED), and at most "
        f"{event_service.RESENDS_PER_MINUTE} resends a minute per store "
        "(WEBHOOK_RESEND_RATE_LIMITED: every MANUAL attempt of the store's events counts, "
        "those of webhookEventsResendFailed included; a refused resend is not one of the "
        "event's). "
        "A store that follows the representative store's setting can be resent to by "
        "merchant-wide callers only (WEBHOOK_REPRESENTATIVE_SETTING)."
    )
    async def webhook_event_resend(
        self, info: Info, input: WebhookEventResendInput
    ) -> WebhookEventResendPayload:
        principal = info.context.require_principal()
        app = info.context.app

        async def start(db: AsyncSession) -> StartedResend:
            return await event_service.start_resend(
                db=db,
                principal=principal,
                encryptor=app.encryptor,
                event_id=str(input.id),
                now=await database_now(db),
            )

        # No transaction stays open while the receiver takes its time.
        started, errors = await mutate(info, start)
        if started is None:
            return WebhookEventResendPayload(event=None, delivery=None, user_errors=errors)
        config = WorkerConfig.from_settings(app.settings)
        request = started.claim.request
        result = await check_and_send(
            request.url,
            require_https=request.require_https,
            headers=request.headers,
            body=request.body,
            allowed=config.allowed,
            limits=config.limits,
        )
        finished_at = started.claim.published_at

        async def finish(db: AsyncSession) -> Resent:
            nonlocal finished_at
            finished_at = await database_now(db)
            return await event_service.finish_resend(
                db=db, principal=principal, started=started, result=result, now=finished_at
            )

        resent, errors = await mutate(info, finish)
        metrics = app.metrics
        metrics.webhook_attempts.labels(trigger="MANUAL", status_class=status_class(result)).inc()
        if resent is None:
            return WebhookEventResendPayload(event=None, delivery=None, user_errors=errors)
        if resent.first_success:
            metrics.webhook_messages.labels(outcome="succeeded").inc()
            latency = (finished_at - started.claim.published_at).total_seconds()
            metrics.webhook_delivery_latency.observe(max(0.0, latency))
        return WebhookEventResendPayload(
            event=WebhookEvent.from_row(resent.event),
            delivery=WebhookDelivery.from_row(resent.delivery),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Queue one more attempt for a store's failed events published within the "
        "window: RETRYING events become due at once; EXHAUSTED events get a MANUAL attempt "
        f"that counts toward their {outbox.MANUAL_RESEND_LIMIT} resends (those at the limit "
        "are left out) and are RETRYING until it ends. The delivery workers send them."
    )
    async def webhook_events_resend_failed(
        self, info: Info, input: WebhookEventsResendFailedInput
    ) -> WebhookEventsResendFailedPayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> int:
            return await event_service.resend_failed(
                db=db,
                principal=principal,
                store_id=input.store_id,
                published_from=input.from_,
                published_until=input.until,
                now=await database_now(db),
            )

        queued, errors = await mutate(info, action)
        return WebhookEventsResendFailedPayload(queued_count=queued, user_errors=errors)


async def resolve_event_node(info: Info, pk: int) -> WebhookEvent | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        found = await event_service.event_by_pk(db=db, principal=principal, pk=pk)
    return WebhookEvent.from_row(found[0]) if found else None


NODE_RESOLVERS = {"WebhookEvent": resolve_event_node}
