"""GraphQL types of channels. Secret credentials are only ever shown masked.

`Channel` and `Store` refer to each other (Channel.store, Store.channels), so `Channel` is
declared in gql_api.stores.types from the fields in gql_api.channels.fields; import it from here.
"""

from __future__ import annotations

from gql_api.channels.fields import ChannelCredential, ChannelFields, ChannelFilter
from gql_api.stores.types import Channel

__all__ = ["Channel", "ChannelCredential", "ChannelFields", "ChannelFilter"]
