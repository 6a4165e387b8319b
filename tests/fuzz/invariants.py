"""What must still hold after any sequence of operations: read from the database directly, and
through the API as each of A's callers. Each check returns the violations it found (empty:
the invariant holds), so that a failure lists all of them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Channel
from gql_api.channels.rules import (
    IntegrationMode,
    check_pg_merchant_id,
    check_purpose,
    check_required,
    classify_mid,
    resolve_module,
)
from gql_api.errors import Problems
from gql_api.pg_catalog.catalog import ChannelPurpose, PgProvider, load_catalog
from tests.fuzz.world import World
from tests.support import Api

# Each query lists rows breaking one invariant; any row is a violation.
SQL_INVARIANTS = {
    "every merchant has exactly one owner": """
        SELECT m.id, COUNT(u.id) FROM merchants m
        LEFT JOIN users u ON u.merchant_id = m.id AND u.role = 'OWNER' AND u.removed_at IS NULL
        GROUP BY m.id HAVING COUNT(u.id) <> 1
    """,
    "at most 2 active webhook secrets per store and mode": """
        SELECT store_pk, mode, COUNT(*) FROM webhook_secrets WHERE expired_at IS NULL
        GROUP BY store_pk, mode HAVING COUNT(*) > 2
    """,
    "the enabled weights of every channel group session sum to 100": """
        SELECT s.id, SUM(CASE WHEN e.enabled THEN e.weight ELSE 0 END)
        FROM channel_group_sessions s LEFT JOIN channel_group_entries e ON e.session_pk = s.id
        GROUP BY s.id
        HAVING COALESCE(SUM(CASE WHEN e.enabled THEN e.weight ELSE 0 END), 0) <> 100
    """,
    "a channel belongs to its store's merchant": """
        SELECT c.id FROM channels c JOIN stores s ON s.id = c.store_pk
        WHERE c.merchant_id <> s.merchant_id
    """,
    "a channel group's channels are live channels of its own store and mode": """
        SELECT g.id, c.id FROM channel_groups g
        JOIN channel_group_sessions s ON s.group_pk = g.id
        JOIN channel_group_entries e ON e.session_pk = s.id
        JOIN channels c ON c.id = e.channel_pk
        WHERE c.store_pk <> g.store_pk OR c.mode <> g.mode OR c.deleted_at IS NOT NULL
            OR g.merchant_id <> c.merchant_id
    """,
    "a webhook secret belongs to its store's merchant": """
        SELECT w.id FROM webhook_secrets w JOIN stores s ON s.id = w.store_pk
        WHERE w.merchant_id <> s.merchant_id
    """,
    "a store-scoped member is bound to a store of its own merchant": """
        SELECT u.id FROM users u LEFT JOIN stores s ON s.id = u.store_pk
        WHERE (u.role IN ('STORE_MANAGER', 'STORE_READ_ONLY')) <> (u.store_pk IS NOT NULL)
            OR (u.store_pk IS NOT NULL AND s.merchant_id <> u.merchant_id)
    """,
}


async def database_violations(engine: AsyncEngine) -> list[str]:
    violations = []
    async with engine.connect() as connection:
        for invariant, query in SQL_INVARIANTS.items():
            rows = (await connection.execute(text(query))).all()
            if rows:
                violations.append(f"{invariant}: {[tuple(row) for row in rows]}")
    async with AsyncSession(engine) as db:
        live = await db.exec(select(Channel).where(col(Channel.deleted_at).is_(None)))
        violations.extend(
            f"channel {channel.channel_key} is not valid against the catalog: {problem}"
            for channel in live.all()
            for problem in catalog_problems(channel)
        )
    return violations


def catalog_problems(channel: Channel) -> list[str]:
    """What the PG catalog refuses in a stored channel, by the rules channelCreate applies."""
    problems = Problems()
    catalog = load_catalog()
    try:
        provider = PgProvider(channel.pg_provider)
        purpose = ChannelPurpose(channel.purpose)
    except ValueError as error:
        return [str(error)]
    resolved = resolve_module(problems, catalog, provider, channel.module_code)
    if resolved is not None:
        _, module = resolved
        check_purpose(problems, module, purpose)
        mode = IntegrationMode(channel.mode)
        shared = classify_mid(problems, catalog, module, mode, channel.pg_merchant_id)
        if shared != channel.shared_test:
            return [f"stored as shared_test={channel.shared_test}, the catalog says {shared}"]
        check_pg_merchant_id(problems, module, channel.pg_merchant_id, shared=shared)
        check_required(problems, module, channel.credentials, shared=shared)
    return [f"{error.code} at {error.field}" for error in problems.errors]


# A's view of what it can list (pages small enough for the query cost limit): none of it may
# be B's or secret. Members apart: API secrets may not read them (FORBIDDEN).
LISTINGS = {
    "stores": """
{
  merchant {
    id name
    stores(first: 20) {
      nodes {
        id storeId name
        channels(first: 20) {
          nodes { id channelKey name pgMerchantId credentials { key value maskedValue } }
        }
        channelGroups(first: 20) { nodes { id channelGroupId name } }
        webhookSettings { url secrets { id hint } }
      }
    }
  }
}
""",
    "members": "{ merchant { members(first: 100) { nodes { id user { id email name } } } } }",
}
# What a listing may fail with: the anonymous caller, a member the fuzz removed (memberRemove
# of an ID from the pool), an API secret on members.
EXCUSED = {"UNAUTHENTICATED", "FORBIDDEN"}

# Every way to name one object: each of B's identifiers must find nothing for A's callers.
LOOK_UPS = """
query($id: ID!, $key: String!) {
  node(id: $id) { id }
  store(storeId: $key) { id }
  channelGroupPick(channelGroupId: $key) { id }
}
"""


async def api_violations(api: Api, world: World) -> list[str]:
    """Through the API, as each caller of A: no listed row is B's or shows a secret, and none
    of B's identifiers finds anything. A listing refused for another reason (say the query
    cost limit) is a violation too: it would make this check see nothing."""
    violations = []
    for name, authorization in world.callers.items():
        for b_id in sorted(world.b_ids):
            result = await api.gql(LOOK_UPS, {"id": b_id, "key": b_id}, authorization=authorization)
            found = {key: value for key, value in (result.body.get("data") or {}).items() if value}
            if found:
                violations.append(f"{name} finds B's {b_id}: {found}")
        for listing, query in LISTINGS.items():
            result = await api.gql(query, authorization=authorization)
            if set(result.error_codes) - EXCUSED:
                violations.append(f"{name} cannot list {listing}: {result.body}")
            shown = readable(result.body)
            leaked = sorted(value for value in world.b_markers | world.secrets if value in shown)
            if leaked:
                violations.append(f"{name} sees B's or secret values in {listing}: {leaked}")
            # B's identifiers may be a name now (a fuzzed storeCreate): look at identifiers.
            ids = {
                value
                for key in ("id", "storeId", "channelGroupId")
                for value in _values(result.body, key)
            }
            if ids & world.b_ids:
                violations.append(f"{name} lists B's nodes: {sorted(ids & world.b_ids)}")
    return violations


def readable(tree: Any) -> str:
    """Every string of a JSON body, as a client reads it (escapes such as \\n undone), one a
    line: a planted secret spanning lines is found as it is."""
    if isinstance(tree, dict):
        return "\n".join(f"{key}\n{readable(value)}" for key, value in tree.items())
    if isinstance(tree, list):
        return "\n".join(readable(value) for value in tree)
    return tree if isinstance(tree, str) else json.dumps(tree)


def _values(tree: Any, key: str) -> list[Any]:
    if isinstance(tree, dict):
        found = [value for name, value in tree.items() if name == key]
        return found + [item for value in tree.values() for item in _values(value, key)]
    if isinstance(tree, list):
        return [item for value in tree for item in _values(value, key)]
    return []
