"""Shared queries, inputs and database peeks for the channel tests."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette

from tests.support import Api, GraphQLResponse

CHANNEL_FIELDS = """
  id channelKey name mode type pgProvider moduleCode moduleVersions purpose pgMerchantId
  taxType version createdAt updatedAt
  credentials { key label secret value maskedValue }
  store { storeId }
"""

CHANNEL_CREATE = f"""
mutation ChannelCreate($input: ChannelCreateInput!) {{
  channelCreate(input: $input) {{
    channel {{ {CHANNEL_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

CHANNEL_UPDATE = f"""
mutation ChannelUpdate($input: ChannelUpdateInput!) {{
  channelUpdate(input: $input) {{
    channel {{ {CHANNEL_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

CHANNEL_DELETE = """
mutation ChannelDelete($input: ChannelDeleteInput!) {
  channelDelete(input: $input) {
    deletedChannelId
    userErrors { field code message }
  }
}
"""

STORE_CHANNELS = f"""
query StoreChannels(
  $storeId: String!, $first: Int, $after: String, $last: Int, $before: String,
  $filter: ChannelFilter
) {{
  store(storeId: $storeId) {{
    channels(first: $first, after: $after, last: $last, before: $before, filter: $filter) {{
      edges {{ cursor node {{ {CHANNEL_FIELDS} }} }}
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    }}
  }}
}}
"""

NODE = f"""
query Node($id: ID!) {{
  node(id: $id) {{ __typename ... on Channel {{ {CHANNEL_FIELDS} }} }}
}}
"""

AUDIT_EVENTS = """
query Audit($action: String) {
  merchant {
    auditEvents(first: 100, action: $action) {
      nodes { action actor storeId targetId summary }
    }
  }
}
"""

CHANNEL_KEY = re.compile(
    r"^channel-key-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
MASK = "••••"

# Long, distinctive secrets: easy to find in a dump of the database, and masked with a tail.
KCP_CERTIFICATE = (
    "-----BEGIN CERTIFICATE-----\nMIIDkcpCertSecretBody0001\n-----END CERTIFICATE-----"
)
KCP_PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEkcpPrivateKeySecret0002\n-----END PRIVATE KEY-----"
)
INICIS_SIGN_KEY = "SU5JTElURV9UUklQTEVERVNfS0VZU1RSsignKey0003"
INICIS_API_KEY = "inicisApiKeySecretValue0004"
INICIS_API_IV = "inicisIvSecret05"


def kcp_shared_test_input(
    store_id: str, name: str = "KCP test", **overrides: Any
) -> dict[str, Any]:
    """A KCP V2 TEST channel on the shared public test MID T0000 (no credentials)."""
    return {
        "storeId": store_id,
        "mode": "TEST",
        "pgProvider": "KCP_V2",
        "moduleCode": "KCP_V2_PAYMENT",
        "name": name,
        "pgMerchantId": "T0000",
        **overrides,
    }


def kcp_live_input(store_id: str, name: str = "KCP live", **overrides: Any) -> dict[str, Any]:
    return {
        "storeId": store_id,
        "mode": "LIVE",
        "pgProvider": "KCP_V2",
        "moduleCode": "KCP_V2_PAYMENT",
        "name": name,
        "pgMerchantId": "IP5Q1",
        "credentials": [
            {"key": "certificate", "value": KCP_CERTIFICATE},
            {"key": "privateKey", "value": KCP_PRIVATE_KEY},
            {"key": "privateKeyPassword", "value": "kcpPrivateKeyPassword0006"},
            {"key": "groupId", "value": "A52Q7GROUP"},
        ],
        **overrides,
    }


def inicis_credentials(**extra: str) -> list[dict[str, str]]:
    values = {"signKey": INICIS_SIGN_KEY, "iniApiKey": INICIS_API_KEY, **extra}
    return [{"key": key, "value": value} for key, value in values.items()]


def inicis_live_input(store_id: str, name: str = "INICIS live", **overrides: Any) -> dict[str, Any]:
    """An INICIS V2 LIVE channel with its own MID and credentials."""
    return {
        "storeId": store_id,
        "mode": "LIVE",
        "pgProvider": "INICIS_V2",
        "moduleCode": "INICIS_V2_PAYMENT",
        "name": name,
        "pgMerchantId": "MOIportone",
        "credentials": inicis_credentials(iniApiIv=INICIS_API_IV),
        "taxType": "TAXABLE",
        **overrides,
    }


async def create_channel(api: Api, token: str, channel_input: dict[str, Any]) -> dict[str, Any]:
    result = await api.gql(CHANNEL_CREATE, {"input": channel_input}, token=token)
    payload = result.data["channelCreate"]
    assert payload["userErrors"] == [], payload
    channel: dict[str, Any] = payload["channel"]
    return channel


async def try_create(api: Api, token: str, channel_input: dict[str, Any]) -> dict[str, Any]:
    result = await api.gql(CHANNEL_CREATE, {"input": channel_input}, token=token)
    payload: dict[str, Any] = result.data["channelCreate"]
    return payload


async def update_channel(api: Api, token: str, update: dict[str, Any]) -> dict[str, Any]:
    result = await api.gql(CHANNEL_UPDATE, {"input": update}, token=token)
    payload: dict[str, Any] = result.data["channelUpdate"]
    return payload


async def delete_channel(api: Api, token: str, channel_id: str) -> dict[str, Any]:
    result = await api.gql(CHANNEL_DELETE, {"input": {"id": channel_id}}, token=token)
    payload: dict[str, Any] = result.data["channelDelete"]
    return payload


async def list_channels(api: Api, token: str, store_id: str, **arguments: Any) -> GraphQLResponse:
    return await api.gql(STORE_CHANNELS, {"storeId": store_id, **arguments}, token=token)


async def channel_names(api: Api, token: str, store_id: str, **arguments: Any) -> list[str]:
    result = await list_channels(api, token, store_id, **arguments)
    return [edge["node"]["name"] for edge in result.data["store"]["channels"]["edges"]]


async def audit_events(api: Api, token: str, action: str | None = None) -> list[dict[str, Any]]:
    result = await api.gql(AUDIT_EVENTS, {"action": action}, token=token)
    events: list[dict[str, Any]] = result.data["merchant"]["auditEvents"]["nodes"]
    return events


def errors(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """(code, field) of each user error, in order."""
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


def credentials_by_key(channel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {credential["key"]: credential for credential in channel["credentials"]}


# --- the database, read directly ------------------------------------------------------------


async def count_rows(app: Starlette, table: str) -> int:
    engine = app.state.app_state.engine
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def stored_credentials(app: Starlette, channel_key: str) -> dict[str, dict[str, str]]:
    """The `credentials` JSON column of a channel, as stored."""
    engine = app.state.app_state.engine
    async with engine.connect() as conn:
        raw = (
            await conn.execute(
                text("SELECT credentials FROM channels WHERE channel_key = :key"),
                {"key": channel_key},
            )
        ).scalar_one()
    value: dict[str, dict[str, str]] = json.loads(raw) if isinstance(raw, str) else raw
    return value


def decrypt(app: Starlette, channel_key: str, key: str, cipher: str) -> str:
    encryptor = app.state.app_state.encryptor
    plain: str = encryptor.decrypt(cipher, context=f"channel:{channel_key}:{key}")
    return plain


async def gql_in(
    api: Api, language: str, query: str, variables: dict[str, Any], *, token: str
) -> dict[str, Any]:
    """The data of `query` sent as a client reading `language` sends it (Accept-Language)."""
    response = await api.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "Accept-Language": language},
    )
    body = response.json()
    assert response.status_code == 200 and body.get("errors") is None, body
    assert response.headers["content-language"] == language.split("-")[0]
    data: dict[str, Any] = body["data"]
    return data
