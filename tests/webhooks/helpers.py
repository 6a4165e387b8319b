"""Queries and small helpers shared by the webhook tests."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from db.engine import create_engine
from gql_api.app import create_app
from gql_api.settings import Settings
from tests.conftest import make_settings
from tests.support import Api, GraphQLResponse


@pytest.fixture(name="settings")
def loopback_settings(database_url: str) -> Settings:
    """Settings for modules that send to loopback receivers (127.0.0.0/8 allowed, 1 s
    timeouts): imported into such a module, it replaces the default `settings` fixture."""
    return make_settings(
        database_url,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_read_timeout_seconds=1.0,
        webhook_connect_timeout_seconds=1.0,
    )


SETTING_FIELDS = """
  moduleVersion mode url contentType payloadVersion usesRepresentativeSetting updatedAt
  secrets { id hint createdAt expiredAt }
"""

DELIVERY_FIELDS = """
  id trigger url requestHeaders { name value } requestBody statusCode responseBody error
  durationMs succeeded attemptedAt
"""

SETTING_UPDATE = f"""
mutation SettingUpdate($input: WebhookSettingUpdateInput!) {{
  webhookSettingUpdate(input: $input) {{
    webhookSetting {{ {SETTING_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

SECRET_ISSUE = """
mutation SecretIssue($input: WebhookSecretIssueInput!) {
  webhookSecretIssue(input: $input) {
    webhookSecret { id hint createdAt expiredAt }
    secret
    userErrors { field code message }
  }
}
"""

SECRET_EXPIRE = """
mutation SecretExpire($id: ID!) {
  webhookSecretExpire(input: { id: $id }) {
    webhookSecret { id hint createdAt expiredAt }
    userErrors { field code message }
  }
}
"""

WEBHOOK_TEST = f"""
mutation WebhookTest($input: WebhookTestInput!) {{
  webhookTest(input: $input) {{
    delivery {{ {DELIVERY_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

STORE_SETTING = f"""
query Setting($storeId: String!, $moduleVersion: ModuleVersion!, $mode: IntegrationMode!) {{
  store(storeId: $storeId) {{
    webhookSetting(moduleVersion: $moduleVersion, mode: $mode) {{ {SETTING_FIELDS} }}
  }}
}}
"""

API_SECRET_ISSUE = """
mutation ApiSecretIssue($input: ApiSecretIssueInput!) {
  apiSecretIssue(input: $input) { secret userErrors { field code message } }
}
"""


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def setting_input(
    store_id: str,
    url: str | None,
    *,
    module_version: str = "V2",
    mode: str = "TEST",
    **more: Any,
) -> dict[str, Any]:
    return {"storeId": store_id, "moduleVersion": module_version, "mode": mode, "url": url, **more}


async def update_setting(api: Api, token: str, store_id: str, url: str | None, **more: Any) -> Any:
    """The raw webhookSettingUpdate payload."""
    result = await api.gql(
        SETTING_UPDATE, {"input": setting_input(store_id, url, **more)}, token=token
    )
    return result.data["webhookSettingUpdate"]


async def save_setting(
    api: Api, token: str, store_id: str, url: str | None, **more: Any
) -> dict[str, Any]:
    payload = await update_setting(api, token, store_id, url, **more)
    assert payload["userErrors"] == [], payload
    setting: dict[str, Any] = payload["webhookSetting"]
    return setting


async def read_setting(
    api: Api, token: str, store_id: str, module_version: str = "V2", mode: str = "TEST"
) -> dict[str, Any]:
    result = await api.gql(
        STORE_SETTING,
        {"storeId": store_id, "moduleVersion": module_version, "mode": mode},
        token=token,
    )
    setting: dict[str, Any] = result.data["store"]["webhookSetting"]
    return setting


@dataclass(frozen=True)
class IssuedSecret:
    id: str
    secret: str
    hint: str


async def issue_secret(api: Api, token: str, store_id: str, mode: str = "TEST") -> IssuedSecret:
    result = await api.gql(
        SECRET_ISSUE, {"input": {"storeId": store_id, "mode": mode}}, token=token
    )
    payload = result.data["webhookSecretIssue"]
    assert payload["userErrors"] == [], payload
    return IssuedSecret(
        payload["webhookSecret"]["id"], payload["secret"], payload["webhookSecret"]["hint"]
    )


async def run_test_call(
    api: Api, token: str, store_id: str, module_version: str = "V2", mode: str = "TEST"
) -> GraphQLResponse:
    return await api.gql(
        WEBHOOK_TEST,
        {"input": {"storeId": store_id, "moduleVersion": module_version, "mode": mode}},
        token=token,
    )


async def delivered(
    api: Api, token: str, store_id: str, module_version: str = "V2", mode: str = "TEST"
) -> dict[str, Any]:
    """The delivery of a test call that must have been recorded."""
    result = await run_test_call(api, token, store_id, module_version, mode)
    payload = result.data["webhookTest"]
    assert payload["userErrors"] == [], payload
    delivery: dict[str, Any] = payload["delivery"]
    assert delivery is not None
    return delivery


def header_map(delivery: dict[str, Any]) -> dict[str, str]:
    return {h["name"].lower(): h["value"] for h in delivery["requestHeaders"]}


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_"), secret
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


async def issue_api_secret(api: Api, token: str, store_id: str) -> str:
    result = await api.gql(
        API_SECRET_ISSUE, {"input": {"storeId": store_id, "name": "Webhook bot"}}, token=token
    )
    payload = result.data["apiSecretIssue"]
    assert payload["userErrors"] == [], payload
    secret: str = payload["secret"]
    return secret


async def database_text(database_url: str) -> str:
    """Every value of every row of every table, as one string (to look for plaintext)."""
    engine = create_engine(database_url)
    parts: list[str] = []
    try:
        async with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                for row in (await conn.execute(select(table))).all():
                    parts.extend(repr(value) for value in row)
    finally:
        await engine.dispose()
    return "\n".join(parts)


@asynccontextmanager
async def other_instance(settings: Settings) -> AsyncIterator[Api]:
    """Another process of the service on the same database, with other settings."""
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http)
    finally:
        await application.state.app_state.engine.dispose()


@dataclass
class Caller:
    """Credentials to act with: a session token or an `Authorization` header value."""

    token: str | None = None
    authorization: str | None = None

    async def gql(self, api: Api, query: str, variables: dict[str, Any]) -> GraphQLResponse:
        return await api.gql(query, variables, token=self.token, authorization=self.authorization)
