"""Queries and shortcuts of the channel-group tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from db.models import ChannelGroupSession
from db.types import utcnow
from tests.channels.helpers import create_channel, kcp_shared_test_input
from tests.support import Api

SESSION = "beginAt entries { weight enabled channel { id name mode } }"
GROUP_FIELDS = f"""
  id channelGroupId name mode createdAt store {{ storeId }}
  currentSession {{ {SESSION} }}
  scheduledSession {{ {SESSION} }}
"""

GROUP_CREATE = f"""
mutation($input: ChannelGroupCreateInput!) {{
  channelGroupCreate(input: $input) {{
    channelGroup {{ {GROUP_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

GROUP_UPDATE = f"""
mutation($input: ChannelGroupUpdateInput!) {{
  channelGroupUpdate(input: $input) {{
    channelGroup {{ {GROUP_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

SCHEDULED_DELETE = f"""
mutation($input: ChannelGroupScheduledSessionDeleteInput!) {{
  channelGroupScheduledSessionDelete(input: $input) {{
    channelGroup {{ {GROUP_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

GROUP_DELETE = """
mutation($input: ChannelGroupDeleteInput!) {
  channelGroupDelete(input: $input) {
    deletedChannelGroupId
    userErrors { field code message }
  }
}
"""

STORE_GROUPS = f"""
query($storeId: String!, $first: Int, $after: String, $mode: IntegrationMode) {{
  store(storeId: $storeId) {{
    channelGroups(first: $first, after: $after, mode: $mode) {{
      edges {{ cursor node {{ {GROUP_FIELDS} }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""

PICK = """
query($g: String!) { channelGroupPick(channelGroupId: $g) { id name } }
"""

NODE = f"""
query($id: ID!) {{ node(id: $id) {{ __typename ... on ChannelGroup {{ {GROUP_FIELDS} }} }} }}
"""


async def make_channels(api: Api, token: str, store_id: str, *names: str) -> list[str]:
    """Global IDs of new TEST channels (KCP, shared test MID) of the store."""
    return [
        (await create_channel(api, token, kcp_shared_test_input(store_id, name)))["id"]
        for name in names
    ]


def entries(*pairs: tuple[str, int] | tuple[str, int, bool]) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for pair in pairs:
        entry: dict[str, Any] = {"channelId": pair[0], "weight": pair[1]}
        if len(pair) == 3:
            entry["enabled"] = pair[2]
        made.append(entry)
    return made


async def try_group_create(api: Api, token: str, group_input: dict[str, Any]) -> dict[str, Any]:
    result = await api.gql(GROUP_CREATE, {"input": group_input}, token=token)
    payload: dict[str, Any] = result.data["channelGroupCreate"]
    return payload


async def create_group(
    api: Api, token: str, store_id: str, name: str, group_entries: list[dict[str, Any]]
) -> dict[str, Any]:
    payload = await try_group_create(
        api, token, {"storeId": store_id, "mode": "TEST", "name": name, "entries": group_entries}
    )
    assert payload["userErrors"] == [], payload
    group: dict[str, Any] = payload["channelGroup"]
    return group


async def mutate(
    api: Api, token: str, query: str, payload_name: str, /, **input: Any
) -> dict[str, Any]:
    """The payload `payload_name` of the mutation `query` with `input`."""
    result = await api.gql(query, {"input": input}, token=token)
    payload: dict[str, Any] = result.data[payload_name]
    return payload


def next_hours(hours: int) -> datetime:
    """The start of the hour `hours` hours after the current one (UTC)."""
    return utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)


async def let_scheduled_begin(app: Starlette, hours: int = 3) -> None:
    """Time passes: every session's beginAt moves `hours` hours back, as the rows would be read
    that much later (sessions scheduled within `hours` hours have begun then)."""
    async with AsyncSession(app.state.app_state.engine) as db:
        for row in (await db.exec(select(ChannelGroupSession))).all():
            row.begin_at -= timedelta(hours=hours)
            db.add(row)
        await db.commit()


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]
