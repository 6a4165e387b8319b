"""GraphQL types of webhook events (결제알림 delivery), built from rows by an allow-list: an
event's data is not shown, its attempts are WebhookDelivery records."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated

import strawberry
from sqlmodel import col

from db.models import WebhookEvent as EventRow
from gql_api.channels import rules
from gql_api.context import Info
from gql_api.enums import IntegrationMode, ModuleVersion, WebhookEventStatus
from gql_api.node import Node, to_global_id
from gql_api.pagination import (
    After,
    Connection,
    First,
    PageRequest,
    connection,
    empty_connection,
    to_connection,
)
from gql_api.stores.loaders import StoreLoader
from gql_api.webhooks import event_service, outbox, payloads
from gql_api.webhooks.event_service import (
    AttemptCountKey,
    AttemptPageKey,
    EventFilter,
    FailedCountKey,
)
from gql_api.webhooks.loaders import (
    FailedWebhookEventCountLoader,
    WebhookAttemptCountsLoader,
    WebhookAttemptPagesLoader,
    WebhookSettingsLoader,
)
from gql_api.webhooks.service import EffectiveWebhookSetting
from gql_api.webhooks.types import WebhookDelivery

_TIME = "A time without an offset is read as UTC."


@strawberry.type(
    description="A payment event published for a store (결제알림), and where its delivery "
    "stands. It goes to the store's setting in force for its module version and mode."
)
class WebhookEvent(Node):
    event_id: str = strawberry.field(
        description="The publisher's id: the idempotency key within the store."
    )
    type: str = strawberry.field(
        description='The event type, e.g. "Transaction.Paid" (V2) or "paid" (V1).'
    )
    module_version: ModuleVersion = strawberry.field(
        description="The payment module version whose webhook setting receives it."
    )
    mode: IntegrationMode = strawberry.field(description="LIVE or TEST payments.")
    status: WebhookEventStatus = strawberry.field(description="Where its delivery stands.")
    published_at: datetime = strawberry.field(
        description="When it was accepted; the V2 body's timestamp, the same on every attempt."
    )
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next attempt is due; null when nothing is scheduled."
    )
    attempt_count: int = strawberry.field(
        description="Attempts of the retry schedule made so far (trigger EVENT): 6 at most on "
        "PortOne's schedule (the first at once, then after 1, 4, 16, 64 and 256 minutes)."
    )
    manual_resend_count: int = strawberry.field(
        description="Resends so far (trigger MANUAL), immediate or queued: "
        f"{outbox.MANUAL_RESEND_LIMIT} at most."
    )
    row: strawberry.Private[EventRow]

    @classmethod
    def from_row(cls, row: EventRow) -> WebhookEvent:
        assert row.id is not None
        return cls(
            id=to_global_id("WebhookEvent", row.id),
            event_id=row.event_id,
            type=row.type,
            module_version=ModuleVersion(row.module_version),
            mode=rules.IntegrationMode(row.mode),
            status=WebhookEventStatus(row.status),
            published_at=row.published_at,
            next_attempt_at=row.next_attempt_at,
            attempt_count=row.attempt_count,
            manual_resend_count=row.manual_resend_count,
            row=row,
        )

    @strawberry.field(
        description="Why the event is SKIPPED or EXHAUSTED, or why its last attempt failed, in "
        "English words recorded when it happened (whatever Accept-Language asks: much of it is "
        "the receiver's or the network's own words); null otherwise. A store-scoped caller "
        "reads a failure's reason only for events published since its store's own setting was "
        "last saved (as for the attempts)."
    )
    async def status_reason(self, info: Info) -> str | None:
        if self.row.status_reason is None:
            return None
        setting = await self._setting(info)
        if setting is None:
            return None
        principal = info.context.require_principal()
        return event_service.status_reason_for(principal, setting, self.row)

    @strawberry.field(
        description="Attempts at sending this event, oldest first (attempt 1, 2, …, with "
        "resends where they were made): trigger EVENT for the retry schedule's, MANUAL for "
        "resends. A store-scoped caller sees none made while its store followed the "
        "representative store's setting, and only those made since the store's own setting "
        "was last saved."
    )
    async def attempts(
        self, info: Info, first: First = None, after: After = None
    ) -> Connection[WebhookDelivery]:
        request = PageRequest.of(info, first=first, after=after)
        request.validated()  # a bad argument fails this field, not the batch it would join
        setting = await self._setting(info)
        if setting is None:
            return empty_connection()
        event_pk = self.row.id
        assert event_pk is not None
        page = await WebhookAttemptPagesLoader.of(info.context).load(
            AttemptPageKey(event_pk=event_pk, request=request, setting=setting)
        )

        def count() -> Awaitable[int]:
            key = AttemptCountKey(event_pk=event_pk, setting=setting)
            return WebhookAttemptCountsLoader.of(info.context).load(key)

        return to_connection(page, WebhookDelivery.from_row, count=count)

    async def _setting(self, info: Info) -> EffectiveWebhookSetting | None:
        """The setting in force for the event, as the caller sees it; None if the caller
        cannot see the event's store."""
        store = await StoreLoader.of(info.context).load(self.row.store_pk)
        if store is None:
            return None
        settings = await WebhookSettingsLoader.of(info.context).load(store)
        return next(
            (
                s
                for s in settings
                if s.module_version.value == self.row.module_version
                and s.mode.value == self.row.mode
            ),
            None,
        )


@strawberry.input(description="Narrows Store.webhookEvents: every condition given must hold.")
class WebhookEventFilter:
    status: WebhookEventStatus | None = strawberry.field(
        default=None, description="Only events in this status."
    )
    type: str | None = strawberry.field(
        default=None, description='The exact event type, e.g. "Transaction.Paid".'
    )
    mode: IntegrationMode | None = strawberry.field(
        default=None, description="Only LIVE or only TEST events."
    )
    module_version: ModuleVersion | None = strawberry.field(
        default=None, description="Only V1 or only V2 events."
    )
    from_: datetime | None = strawberry.field(
        name="from", default=None, description=f"Published at or after this time. {_TIME}"
    )
    until: datetime | None = strawberry.field(
        default=None, description=f"Published before this time (exclusive). {_TIME}"
    )

    def as_filter(self) -> EventFilter:
        return EventFilter(
            status=self.status,
            type=self.type,
            mode=self.mode,
            module_version=(
                payloads.ModuleVersionValue(self.module_version)
                if self.module_version is not None
                else None
            ),
            published_from=event_service.as_utc(self.from_),
            published_until=event_service.as_utc(self.until),
        )


From = Annotated[
    datetime | None,
    strawberry.argument(name="from", description=f"Published at or after this time. {_TIME}"),
]
Until = Annotated[
    datetime | None,
    strawberry.argument(description=f"Published before this time (exclusive). {_TIME}"),
]


async def store_events(
    info: Info, store_pk: int, first: int | None, after: str | None, filter: EventFilter
) -> Connection[WebhookEvent]:
    """Store.webhookEvents: one page, newest first."""
    principal = info.context.require_principal()
    statement = event_service.events_query(principal=principal, store_pk=store_pk, filter=filter)
    return await connection(
        info.context.db,
        statement,
        col(EventRow.id),
        PageRequest.of(info, first=first, after=after),
        WebhookEvent.from_row,
        newest_first=True,
    )


async def failed_event_count(
    info: Info, store_pk: int, published_from: datetime | None, published_until: datetime | None
) -> int:
    """Store.failedWebhookEventCount, batched across the stores of a query."""
    key = FailedCountKey(
        store_pk=store_pk,
        published_from=event_service.as_utc(published_from),
        published_until=event_service.as_utc(published_until),
    )
    return await FailedWebhookEventCountLoader.of(info.context).load(key)
