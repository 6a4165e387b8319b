"""GraphQL types of the stores area, built from rows by explicit allow-lists.

`Channel` is declared here too: it and `Store` refer to each other (Store.channels,
Channel.store), and two modules doing so would import each other. Its fields are the channels
area's (gql_api.channels.fields); gql_api.channels.types re-exports it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry
from sqlmodel import col

from db.models import ChannelGroup as ChannelGroupRow
from db.models import Store as StoreRow
from gql_api.api_secrets.loaders import SecretCountsLoader, SecretPagesLoader
from gql_api.api_secrets.pages import SecretPageKey
from gql_api.api_secrets.types import ApiSecret
from gql_api.channel_groups import service as channel_groups
from gql_api.channel_groups.fields import (
    ChannelGroupEntryFields,
    ChannelGroupFields,
    ChannelGroupSessionFields,
)
from gql_api.channel_groups.loaders import EntryChannelLoader, GroupSessionsLoader
from gql_api.channels.fields import ChannelFields, ChannelFilter
from gql_api.channels.loaders import ChannelCountsLoader, ChannelPagesLoader
from gql_api.channels.pages import ChannelCountKey, ChannelPageKey, ChannelQuery
from gql_api.context import Info
from gql_api.enums import IntegrationMode, ModuleVersion
from gql_api.node import Node, to_global_id
from gql_api.pagination import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    connection,
    empty_connection,
    to_connection,
)
from gql_api.selections import selects
from gql_api.stores import service
from gql_api.stores.loaders import StoreLoader
from gql_api.webhooks.event_service import EventFilter
from gql_api.webhooks.event_types import (
    From,
    Until,
    WebhookEvent,
    WebhookEventFilter,
    failed_event_count,
    store_events,
)
from gql_api.webhooks.loaders import WebhookSettingsLoader, WebhookSettingsWithSecretsLoader
from gql_api.webhooks.service import EffectiveWebhookSetting
from gql_api.webhooks.types import AdditionalSettings, WebhookSetting

NodeT = TypeVar("NodeT")


@strawberry.type(
    description="상점: the representative store (대표상점) or a sub-store (하위 상점)."
)
class Store(Node):
    store_id: str = strawberry.field(
        description="store-<uuid4>: the value passed as storeId in payment calls."
    )
    name: str = strawberry.field(description="Store name, 1-100 characters, unique per merchant.")
    is_representative: bool = strawberry.field(
        description="True for the 대표상점 created at sign-up; it cannot be deleted."
    )
    created_at: datetime = strawberry.field(description="When it was created (RFC 3339, UTC).")
    row: strawberry.Private[StoreRow]

    @classmethod
    def from_row(cls, row: StoreRow) -> Store:
        assert row.id is not None
        return cls(
            id=to_global_id("Store", row.id),
            store_id=row.store_id,
            name=row.name,
            is_representative=row.is_representative,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(
        description="Sub-stores under the representative store; empty on a sub-store."
    )
    async def sub_stores(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Store]:
        principal = info.context.require_principal()
        statement = service.visible_sub_stores(principal, self.row)
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        if statement is None:
            request.validated()
            return empty_connection()
        found = await connection(
            info.context.db, statement, col(StoreRow.id), request, Store.from_row
        )
        return _sliced(info, found)

    @strawberry.field(description="The store's channels, oldest first, optionally filtered.")
    async def channels(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: Annotated[
            ChannelFilter | None,
            strawberry.argument(description="Only the channels meeting every condition given."),
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Channel]:
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        request.validated()
        query = ChannelQuery(
            mode=filter.mode.value if filter and filter.mode else None,
            purpose=filter.purpose.value if filter and filter.purpose else None,
            pg_provider=filter.pg_provider.value if filter and filter.pg_provider else None,
            search=filter.search if filter else None,
        )
        store_pk = self.row.id
        assert store_pk is not None
        page = await ChannelPagesLoader.of(info.context).load(
            ChannelPageKey(store_pk=store_pk, query=query, request=request)
        )
        catalog = info.context.app.catalog

        def count() -> Awaitable[int]:
            return ChannelCountsLoader.of(info.context).load(ChannelCountKey(store_pk, query))

        found = to_connection(page, lambda row: Channel.from_row(row, catalog), count=count)
        return _sliced(info, found)

    @strawberry.field(description="V2 API secrets of this store: metadata only, never the secret.")
    async def api_secrets(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[ApiSecret]:
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        request.validated()
        store_pk = self.row.id
        assert store_pk is not None
        page = await SecretPagesLoader.of(info.context).load(SecretPageKey(store_pk, request))

        def count() -> Awaitable[int]:
            return SecretCountsLoader.of(info.context).load(store_pk)

        return to_connection(page, ApiSecret.from_row, count=count)

    @strawberry.field(description="결제알림 setting for one module version and mode.")
    async def webhook_setting(
        self,
        info: Info,
        module_version: Annotated[
            ModuleVersion, strawberry.argument(description="V1 or V2 payment module.")
        ],
        mode: Annotated[IntegrationMode, strawberry.argument(description="LIVE or TEST.")],
    ) -> WebhookSetting:
        settings = await self._webhook_settings(info)
        match = next(
            s for s in settings if s.module_version == module_version.value and s.mode == mode
        )
        return WebhookSetting.from_effective(match)

    @strawberry.field(description="All four webhook settings (V1/V2 × LIVE/TEST).")
    async def webhook_settings(self, info: Info) -> list[WebhookSetting]:
        settings = await self._webhook_settings(info)
        return [WebhookSetting.from_effective(s) for s in settings]

    async def _webhook_settings(self, info: Info) -> list[EffectiveWebhookSetting]:
        # Settings asked with their secrets are read with them (see the loader).
        asks_secrets = selects(info, "secrets")
        loader = WebhookSettingsWithSecretsLoader if asks_secrets else WebhookSettingsLoader
        return await loader.of(info.context).load(self.row)

    @strawberry.field(
        description="결제알림 events published for this store, newest first, optionally "
        "filtered; kept for WEBHOOK_DELIVERY_RETENTION_DAYS days."
    )
    async def webhook_events(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: Annotated[
            WebhookEventFilter | None,
            strawberry.argument(description="Only the events meeting every condition given."),
        ] = None,
    ) -> Connection[WebhookEvent]:
        assert self.row.id is not None
        query = filter.as_filter() if filter is not None else EventFilter()
        return await store_events(info, self.row.id, first, after, query)

    @strawberry.field(
        description="How many of this store's events failed: RETRYING (a retry is scheduled) "
        "plus EXHAUSTED (no scheduled attempt left), published within the window."
    )
    async def failed_webhook_event_count(
        self, info: Info, from_: From = None, until: Until = None
    ) -> int:
        assert self.row.id is not None
        return await failed_event_count(info, self.row.id, from_, until)

    @strawberry.field(description="추가 설정 관리.")
    def additional_settings(self) -> AdditionalSettings:
        return AdditionalSettings()

    @strawberry.field(
        description="스마트 라우팅: the store's channel groups, oldest first, optionally of "
        "one mode."
    )
    async def channel_groups(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        mode: Annotated[
            IntegrationMode | None, strawberry.argument(description="Only groups of this mode.")
        ] = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[ChannelGroup]:
        principal = info.context.require_principal()
        statement = channel_groups.visible_groups(principal).where(
            col(ChannelGroupRow.store_pk) == self.row.id
        )
        if mode is not None:
            statement = statement.where(col(ChannelGroupRow.mode) == mode.value)
        request = PageRequest.of(info, first=first, after=after, last=last, before=before)
        return await connection(
            info.context.db, statement, col(ChannelGroupRow.id), request, ChannelGroup.from_row
        )


def _sliced(info: Info, found: Connection[NodeT]) -> Connection[NodeT]:
    """A page a heavy operation completes a slice at a time (gql_api.fairness, rule 3): a page
    of channels or of sub-stores is some ms of graphql-core completing its items."""
    lane = info.context.lane
    if lane is not None:
        found.edges = lane.sliced(found.edges)
        found.nodes = lane.sliced(found.nodes)
    return found


@strawberry.type(description="채널: a PG channel of a store.")
class Channel(ChannelFields):
    @strawberry.field(description="The store the channel belongs to.")
    async def store(self, info: Info) -> Store:
        row = await StoreLoader.of(info.context).load(self.store_pk)
        if row is None:
            raise RuntimeError("channel of a store the caller cannot see")
        return Store.from_row(row)


@strawberry.type(description="A channel of a channel group's session, with its weight.")
class ChannelGroupEntry(ChannelGroupEntryFields):
    @strawberry.field(description="The channel (of the group's store and mode).")
    async def channel(self, info: Info) -> Channel:
        row = await EntryChannelLoader.of(info.context).load(self.channel_pk)
        if row is None:
            raise RuntimeError("entry of a channel the caller cannot see")
        return Channel.from_row(row, info.context.app.catalog)


@strawberry.type(description="A channel group's entries from beginAt on.")
class ChannelGroupSession(ChannelGroupSessionFields):
    @strawberry.field(description="1 to 10 channels with their weights, in the order given.")
    def entries(self) -> list[ChannelGroupEntry]:
        return [ChannelGroupEntry.from_view(entry) for entry in self.view.entries]


@strawberry.type(
    description="스마트 라우팅 channel group: payments made with its channelGroupId are "
    "spread over its channels by weight."
)
class ChannelGroup(ChannelGroupFields):
    @strawberry.field(description="The store the group belongs to.")
    async def store(self, info: Info) -> Store:
        row = await StoreLoader.of(info.context).load(self.store_pk)
        if row is None:
            raise RuntimeError("channel group of a store the caller cannot see")
        return Store.from_row(row)

    @strawberry.field(
        description="The session in force now: the latest that has begun (a scheduled one "
        "takes over at its beginAt); null before the first session begins."
    )
    async def current_session(self, info: Info) -> ChannelGroupSession | None:
        sessions = await GroupSessionsLoader.of(info.context).load(self.pk)
        return ChannelGroupSession.from_view(sessions.current) if sessions.current else None

    @strawberry.field(description="The change scheduled for a future hour, if any (at most one).")
    async def scheduled_session(self, info: Info) -> ChannelGroupSession | None:
        sessions = await GroupSessionsLoader.of(info.context).load(self.pk)
        return ChannelGroupSession.from_view(sessions.scheduled) if sessions.scheduled else None
