"""A cursor names the connection that returned it: another connection refuses it (BAD_REQUEST,
saying whose cursor it is), even one listing the same type in the same order."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_api.settings import Settings
from tests.channels.helpers import create_channel, inicis_live_input, kcp_shared_test_input
from tests.factories import Seeded, seed_merchant
from tests.support import Api

PAGE = "pageInfo { startCursor endCursor }"

# One query per connection, each taking $after and $before (and a store's, $storeId).
QUERIES = {
    "Merchant.stores": f"""
      query($after: String, $before: String) {{
        merchant {{ stores(first: 2, after: $after, before: $before) {{ {PAGE} }} }}
      }}""",
    "Merchant.members": f"""
      query($after: String, $before: String) {{
        merchant {{ members(first: 1, after: $after, before: $before) {{ {PAGE} }} }}
      }}""",
    "Merchant.auditEvents": f"""
      query($after: String, $before: String) {{
        merchant {{ auditEvents(first: 1, after: $after, before: $before) {{ {PAGE} }} }}
      }}""",
    "Store.subStores": f"""
      query($storeId: String!, $after: String, $before: String) {{
        store(storeId: $storeId) {{
          subStores(first: 1, after: $after, before: $before) {{ {PAGE} }}
        }}
      }}""",
    "Store.channels": f"""
      query($storeId: String!, $after: String, $before: String) {{
        store(storeId: $storeId) {{
          channels(first: 1, after: $after, before: $before) {{ nodes {{ name }} {PAGE} }}
        }}
      }}""",
    "Store.apiSecrets": f"""
      query($storeId: String!, $after: String, $before: String) {{
        store(storeId: $storeId) {{
          apiSecrets(first: 1, after: $after, before: $before) {{ {PAGE} }}
        }}
      }}""",
}


@pytest.fixture
async def seeded(api: Api, db_engine: AsyncEngine, settings: Settings) -> Seeded:
    """A representative store and sub-stores A and B; A has 2 channels; 2 audit events."""
    seeded = await seed_merchant(
        db_engine, roles=("DEVELOPER",), stores=("A", "B"), settings=settings
    )
    token, store = seeded.owner.token, seeded.stores["A"]
    await create_channel(api, token, kcp_shared_test_input(store, "KCP test"))
    await create_channel(api, token, inicis_live_input(store, "INICIS live"))
    return seeded


async def ask(
    api: Api, seeded: Seeded, connection: str, **arguments: str
) -> tuple[list[str], list[str], dict[str, Any] | None]:
    """(error codes, messages, the connection's data) of `connection` asked with `arguments`:
    a store's connection of sub-store A, subStores of the representative store."""
    parent, field = connection.split(".")
    variables: dict[str, Any] = dict(arguments)
    if parent == "Store":
        rep = field == "subStores"
        variables["storeId"] = seeded.owner.representative_store_id if rep else seeded.stores["A"]
    result = await api.gql(QUERIES[connection], variables, token=seeded.owner.token)
    messages = [error["message"] for error in result.body.get("errors") or []]
    data = result.body.get("data")
    found = data[parent.lower()][field] if data and data.get(parent.lower()) else None
    return result.error_codes, messages, found


async def cursor_of(api: Api, seeded: Seeded, connection: str) -> str:
    """The end cursor of the first page of `connection` ("Type.field")."""
    codes, _, data = await ask(api, seeded, connection)
    assert codes == [] and data is not None
    cursor: str = data["pageInfo"]["endCursor"]
    assert cursor is not None
    return cursor


MIXED_UP = [
    ("Store.channels", "Merchant.stores", "after"),
    ("Store.channels", "Store.apiSecrets", "after"),
    ("Merchant.stores", "Store.subStores", "after"),  # both list stores by id
    ("Store.subStores", "Merchant.stores", "before"),
    ("Merchant.members", "Merchant.auditEvents", "before"),
    ("Merchant.auditEvents", "Store.channels", "after"),
]


@pytest.mark.parametrize(("source", "target", "argument"), MIXED_UP)
async def test_a_cursor_goes_on_in_its_own_connection_and_is_refused_by_another(
    api: Api, seeded: Seeded, source: str, target: str, argument: str
) -> None:
    # given
    cursor = await cursor_of(api, seeded, source)

    # when
    own_codes, _, _ = await ask(api, seeded, source, **{argument: cursor})
    codes, messages, _ = await ask(api, seeded, target, **{argument: cursor})

    # then
    assert own_codes == []
    assert codes == ["BAD_REQUEST"]
    assert messages == [
        f"`{argument}` is a cursor of {source}, not of {target}: pass a cursor that this "
        "connection returned."
    ]


GARBAGE = [
    "garbage",
    "aGVsbG8gd29ybGQ",  # base64 of something else
    "azE6Mw",  # k1:3, a cursor from before cursors named their connection
    "azI6PGI-eDwvYj46MQ",  # k2:<b>x</b>:1
    "azI6TWVyY2hhbnQuc3RvcmVzOjk5OTk5OTk5OTk5",  # Merchant.stores:99999999999
    "azI6TWVyY2hhbnQuc3RvcmVzOi0x",  # Merchant.stores:-1
]


@pytest.mark.parametrize("connection", ["Merchant.stores", "Store.channels"])
async def test_garbage_is_a_bad_request_as_before_and_so_is_an_old_cursor(
    api: Api, seeded: Seeded, connection: str
) -> None:
    # when
    answers = [await ask(api, seeded, connection, after=garbage) for garbage in GARBAGE]

    # then
    for codes, messages, _ in answers:
        assert codes == ["BAD_REQUEST"]
        assert messages == ["`after` is not a cursor returned by this connection."]
