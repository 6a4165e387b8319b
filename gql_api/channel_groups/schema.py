"""Channel-group mutations, channelGroupPick, and channel-group lookup by node ID."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import ChannelGroup as ChannelGroupRow
from gql_api.channel_groups import rules, service
from gql_api.channel_groups.types import ChannelGroup, ChannelGroupEntryInput
from gql_api.channels.rules import IntegrationMode as Mode
from gql_api.channels.types import Channel
from gql_api.context import Info
from gql_api.enums import IntegrationMode
from gql_api.input_limits import limited_list
from gql_api.mutations import mutate
from gql_api.user_errors import UserError

_ENTRIES = (
    "The group's channels with their weights: 1-10 entries, the enabled entries' weights "
    "summing to exactly 100."
)


@strawberry.input(description="Create a channel group (스마트 라우팅) in a store.")
class ChannelGroupCreateInput:
    store_id: str = strawberry.field(description="`store-<uuid>` of the store.")
    mode: IntegrationMode = strawberry.field(
        description="LIVE or TEST, fixed: only channels of this mode can be in the group."
    )
    name: str = strawberry.field(description="1-100 characters, unique per store.")
    entries: list[ChannelGroupEntryInput] = limited_list(
        max_items=rules.MAX_ENTRIES, description=_ENTRIES
    )


@strawberry.type(description="Result of channelGroupCreate.")
class ChannelGroupCreatePayload:
    channel_group: ChannelGroup | None = strawberry.field(
        description="The new group, its first session in force at once; null when userErrors "
        "is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(
    description="Rename a channel group and/or give it new entries, now or from beginAt on."
)
class ChannelGroupUpdateInput:
    id: strawberry.ID = strawberry.field(description="The ChannelGroup's global ID.")
    name: str | None = strawberry.field(
        default=None, description="New name, 1-100 characters, unique per store."
    )
    entries: list[ChannelGroupEntryInput] | None = limited_list(
        max_items=rules.MAX_ENTRIES,
        description=f"{_ENTRIES} Without beginAt they replace the current session now.",
        default=None,
    )
    begin_at: datetime | None = strawberry.field(
        default=None,
        description="Schedule the entries instead: on the hour, in the future (at most 366 "
        "days ahead); they replace the current session then, and any change scheduled before "
        "this one is dropped. Absent: now.",
    )


@strawberry.type(description="Result of channelGroupUpdate.")
class ChannelGroupUpdatePayload:
    channel_group: ChannelGroup | None = strawberry.field(
        description="The group as changed; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Cancel a channel group's scheduled change.")
class ChannelGroupScheduledSessionDeleteInput:
    id: strawberry.ID = strawberry.field(description="The ChannelGroup's global ID.")


@strawberry.type(description="Result of channelGroupScheduledSessionDelete.")
class ChannelGroupScheduledSessionDeletePayload:
    channel_group: ChannelGroup | None = strawberry.field(
        description="The group without its scheduled session; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.input(description="Delete a channel group; this cannot be undone.")
class ChannelGroupDeleteInput:
    id: strawberry.ID = strawberry.field(description="The ChannelGroup's global ID.")


@strawberry.type(description="Result of channelGroupDelete.")
class ChannelGroupDeletePayload:
    deleted_channel_group_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the deleted group; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


def _group(row: ChannelGroupRow | None) -> ChannelGroup | None:
    return ChannelGroup.from_row(row) if row else None


@strawberry.type
class Query:
    @strawberry.field(
        description="The channel a payment with this channelGroupId goes to now: drawn at "
        "random by the weights of the group's current session (disabled entries skipped). "
        "null if the group does not exist or the caller cannot see it. For a payment "
        "backend with an API secret of the store, and console users who may read it."
    )
    async def channel_group_pick(
        self,
        info: Info,
        channel_group_id: Annotated[
            str,
            strawberry.argument(
                description="channel-group-live-<uuid> or channel-group-test-<uuid>."
            ),
        ],
    ) -> Channel | None:
        principal = info.context.require_principal()
        async with info.context.db() as db:
            row = await service.pick_channel(
                db=db, principal=principal, channel_group_id=channel_group_id
            )
        return Channel.from_row(row, info.context.app.catalog) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a channel group (스마트 라우팅) in a store.")
    async def channel_group_create(
        self, info: Info, input: ChannelGroupCreateInput
    ) -> ChannelGroupCreatePayload:
        principal = info.context.require_principal()
        draft = service.GroupDraft(
            store_id=input.store_id,
            mode=Mode(input.mode),
            name=input.name,
            entries=[entry.draft() for entry in input.entries],
        )

        async def action(db: AsyncSession) -> ChannelGroupRow:
            return await service.create_group(db=db, principal=principal, draft=draft)

        row, errors = await mutate(info, action)
        return ChannelGroupCreatePayload(channel_group=_group(row), user_errors=errors)

    @strawberry.mutation(
        description="Rename a channel group and/or change its entries, now or at beginAt."
    )
    async def channel_group_update(
        self, info: Info, input: ChannelGroupUpdateInput
    ) -> ChannelGroupUpdatePayload:
        principal = info.context.require_principal()
        changes = service.GroupChanges(
            group_id=str(input.id),
            name=input.name,
            entries=[entry.draft() for entry in input.entries]
            if input.entries is not None
            else None,
            begin_at=input.begin_at,
        )

        async def action(db: AsyncSession) -> ChannelGroupRow:
            return await service.update_group(db=db, principal=principal, changes=changes)

        row, errors = await mutate(info, action)
        return ChannelGroupUpdatePayload(channel_group=_group(row), user_errors=errors)

    @strawberry.mutation(description="Cancel a channel group's scheduled change.")
    async def channel_group_scheduled_session_delete(
        self, info: Info, input: ChannelGroupScheduledSessionDeleteInput
    ) -> ChannelGroupScheduledSessionDeletePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> ChannelGroupRow:
            return await service.delete_scheduled_session(
                db=db, principal=principal, group_id=str(input.id)
            )

        row, errors = await mutate(info, action)
        return ChannelGroupScheduledSessionDeletePayload(
            channel_group=_group(row), user_errors=errors
        )

    @strawberry.mutation(description="Delete a channel group; this cannot be undone.")
    async def channel_group_delete(
        self, info: Info, input: ChannelGroupDeleteInput
    ) -> ChannelGroupDeletePayload:
        principal = info.context.require_principal()

        async def action(db: AsyncSession) -> ChannelGroupRow:
            return await service.delete_group(db=db, principal=principal, group_id=str(input.id))

        row, errors = await mutate(info, action)
        return ChannelGroupDeletePayload(
            deleted_channel_group_id=input.id if row else None, user_errors=errors
        )


async def resolve_channel_group_node(info: Info, pk: int) -> ChannelGroup | None:
    principal = info.context.require_principal()
    async with info.context.db() as db:
        row = await service.group_by_pk(db=db, principal=principal, pk=pk)
    return _group(row)


NODE_RESOLVERS = {"ChannelGroup": resolve_channel_group_node}
