"""What the GraphQL channel-group types show, apart from their store and channels.

`ChannelGroup`, `ChannelGroupSession` and `ChannelGroupEntry` are declared beside `Store` and
`Channel` in gql_api.stores.types (Store.channelGroups, ChannelGroup.store, entry channels
refer to each other there), from these fields; gql_api.channel_groups.types re-exports them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from db.models import ChannelGroup as ChannelGroupRow
from gql_api.channel_groups import rules
from gql_api.channel_groups.service import EntryView, SessionView
from gql_api.enums import IntegrationMode
from gql_api.node import Node, to_global_id


@strawberry.input(description="A channel of a channel group, with its weight.")
class ChannelGroupEntryInput:
    channel_id: strawberry.ID = strawberry.field(
        description="The Channel's global ID: a live channel of the group's store and mode."
    )
    weight: int = strawberry.field(
        description="Share of payments, a whole percentage 0-100; the enabled entries' "
        "weights sum to exactly 100."
    )
    enabled: bool = strawberry.field(
        default=True,
        description="A disabled entry is skipped whatever its weight (and its weight does not "
        "count towards 100).",
    )

    def draft(self) -> rules.EntryDraft:
        return rules.EntryDraft(
            channel_id=str(self.channel_id), weight=self.weight, enabled=self.enabled
        )


@strawberry.type
class ChannelGroupEntryFields:
    """The fields of gql_api.stores.types.ChannelGroupEntry but its channel."""

    weight: int = strawberry.field(description="Share of payments, a whole percentage.")
    enabled: bool = strawberry.field(description="False: skipped whatever its weight.")
    channel_pk: strawberry.Private[int]

    @classmethod
    def from_view(cls, view: EntryView) -> Self:
        return cls(weight=view.weight, enabled=view.enabled, channel_pk=view.channel_pk)


@strawberry.type
class ChannelGroupSessionFields:
    """The fields of gql_api.stores.types.ChannelGroupSession but its entries."""

    begin_at: datetime | None = strawberry.field(
        description="When the session begins (or began), RFC 3339, UTC."
    )
    view: strawberry.Private[SessionView]

    @classmethod
    def from_view(cls, view: SessionView) -> Self:
        return cls(begin_at=view.begin_at, view=view)


@strawberry.type
class ChannelGroupFields(Node):
    """The fields of gql_api.stores.types.ChannelGroup but its store and sessions."""

    channel_group_id: str = strawberry.field(
        description="channel-group-live-<uuid4> or channel-group-test-<uuid4>: pass it as "
        "channelGroupId in SDK payment calls instead of a channelKey."
    )
    name: str = strawberry.field(description="1-100 characters, unique per store.")
    mode: IntegrationMode = strawberry.field(
        description="LIVE or TEST, fixed at creation: only channels of this mode can be in it."
    )
    created_at: datetime = strawberry.field(description="When it was created (RFC 3339, UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (RFC 3339, UTC).")
    pk: strawberry.Private[int]
    store_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ChannelGroupRow) -> Self:
        assert row.id is not None
        return cls(
            id=to_global_id("ChannelGroup", row.id),
            channel_group_id=row.channel_group_id,
            name=row.name,
            mode=IntegrationMode(row.mode),
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            store_pk=row.store_pk,
        )
