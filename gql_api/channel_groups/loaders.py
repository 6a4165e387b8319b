"""DataLoaders of the channel_groups area: the sessions of many groups in two statements, and
the channels their entries name in one more."""

from __future__ import annotations

from sqlmodel import col, select

from db.models import Channel
from gql_api.channel_groups.service import GroupSessions, sessions_of
from gql_api.dataloaders import AreaLoader
from gql_api.permissions import Operation, confined_store_pk


class GroupSessionsLoader(AreaLoader[int, GroupSessions]):
    """The current and scheduled session of each group pk, as of this moment (the groups were
    already read in the caller's scope)."""

    context_key = "channel_groups.sessions"

    async def batch_load(self, keys: list[int]) -> list[GroupSessions]:
        async with self.context.db() as db:
            found = await sessions_of(db=db, group_pks=keys)
        return [found[key] for key in keys]


class EntryChannelLoader(AreaLoader[int, Channel | None]):
    """Channels of entries by pk, in the caller's merchant and store scope (None outside it)."""

    context_key = "channel_groups.entry_channels"

    async def batch_load(self, keys: list[int]) -> list[Channel | None]:
        principal = self.context.require_principal()
        statement = select(Channel).where(
            col(Channel.id).in_(keys), col(Channel.merchant_id) == principal.merchant_pk
        )
        own_store = confined_store_pk(principal, Operation.READ)
        if own_store is not None:
            statement = statement.where(col(Channel.store_pk) == own_store)
        async with self.context.db() as db:
            rows = {row.id: row for row in (await db.exec(statement)).all()}
        return [rows.get(key) for key in keys]
