"""DataLoaders of the channels area: the channel pages of many stores in one statement, and
their totalCounts in one more."""

from __future__ import annotations

from gql_api.channels.pages import (
    ChannelCountKey,
    ChannelPageKey,
    ChannelRecord,
    load_channel_counts,
    load_channel_pages,
)
from gql_api.dataloaders import AreaLoader
from gql_api.pagination import Page


class ChannelPagesLoader(AreaLoader[ChannelPageKey, Page[ChannelRecord]]):
    """A page of a store's channels per key, scoped by gql_api.channels.service's channel scope."""

    context_key = "channels.pages"

    async def batch_load(self, keys: list[ChannelPageKey]) -> list[Page[ChannelRecord]]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await load_channel_pages(await db.connection(), principal, keys)


class ChannelCountsLoader(AreaLoader[ChannelCountKey, int]):
    """Store.channels' totalCount per key, in the same scope and with the same filters as the
    pages (gql_api.channels.pages): the counts of a whole page of stores in one statement."""

    context_key = "channels.counts"

    async def batch_load(self, keys: list[ChannelCountKey]) -> list[int]:
        principal = self.context.require_principal()
        async with self.context.db() as db:
            return await load_channel_counts(await db.connection(), principal, keys)
