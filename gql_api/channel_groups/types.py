"""GraphQL types of channel groups.

`ChannelGroup`, `ChannelGroupSession` and `ChannelGroupEntry` refer to `Store` and `Channel`
(and Store.channelGroups to them), so they are declared in gql_api.stores.types from the
fields in gql_api.channel_groups.fields; import them from here.
"""

from __future__ import annotations

from gql_api.channel_groups.fields import ChannelGroupEntryInput
from gql_api.stores.types import ChannelGroup, ChannelGroupEntry, ChannelGroupSession

__all__ = ["ChannelGroup", "ChannelGroupEntry", "ChannelGroupEntryInput", "ChannelGroupSession"]
