"""Shared queries and helpers for the V2 API secret tests."""

from __future__ import annotations

import asyncio
import string
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import argon2
import httpx
import pytest
from sqlalchemy import select, update

from db.models import ApiSecret
from gql_api.app import create_app
from gql_api.ids import pk_of
from tests.conftest import make_settings
from tests.support import Api, GraphQLResponse, connect

SECRET_FIELDS = """
  id name hint createdBy { id email name } createdAt expiresAt lastUsedAt isExpired
"""

ISSUE = f"""
mutation Issue($input: ApiSecretIssueInput!) {{
  apiSecretIssue(input: $input) {{
    apiSecret {{ {SECRET_FIELDS} }}
    secret
    userErrors {{ field code message }}
  }}
}}
"""

DELETE = """
mutation Delete($id: ID!) {
  apiSecretDelete(input: { id: $id }) {
    deletedApiSecretId
    userErrors { field code message }
  }
}
"""

LOGIN = """
mutation Login($apiSecret: String!) {
  apiSecretLogin(input: { apiSecret: $apiSecret }) {
    accessToken refreshToken accessTokenExpiresAt
    userErrors { field code message }
  }
}
"""

REFRESH = """
mutation Refresh($refreshToken: String!) {
  accessTokenRefresh(input: { refreshToken: $refreshToken }) {
    accessToken refreshToken accessTokenExpiresAt
    userErrors { field code message }
  }
}
"""

STORE_SECRETS = f"""
query Secrets($storeId: String!) {{
  store(storeId: $storeId) {{
    apiSecrets {{
      edges {{ cursor node {{ {SECRET_FIELDS} }} }}
      nodes {{ {SECRET_FIELDS} }}
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    }}
  }}
}}
"""

WHO_AM_I = "{ viewer { merchant { name } } }"

PREFIX = "portone_sk_"
CHECKSUM_LENGTH = 6  # CRC32 needs at least 6 base62 characters (62**5 < 2**32 <= 62**6)
_ALPHABETS = (
    string.digits + string.ascii_letters,
    string.digits + string.ascii_uppercase + string.ascii_lowercase,
)


@dataclass
class Issued:
    secret: str
    id: str
    node: dict[str, Any]

    @property
    def pk(self) -> int:
        pk = pk_of(self.id, "ApiSecret")
        assert pk is not None
        return pk

    @property
    def random_part(self) -> str:
        """Everything after the public key id: the randomness and the checksum."""
        return random_part(self.secret)


def random_part(value: str) -> str:
    """The unguessable part of a secret (after its key id) or token (after its prefix)."""
    if value.startswith(PREFIX):
        return value.rsplit("_", 1)[-1]
    prefix, _, rest = value.partition("_")
    return rest if len(prefix) <= 4 and len(rest) >= 16 else value


def portone(secret: str) -> str:
    return f"PortOne {secret}"


async def issue(
    api: Api,
    token: str,
    store_id: str,
    name: str = "Partner integration",
    expiration_days: int | None = None,
) -> Issued:
    result = await api.gql(
        ISSUE,
        {"input": {"storeId": store_id, "name": name, "expirationDays": expiration_days}},
        token=token,
    )
    payload = result.data["apiSecretIssue"]
    assert payload["userErrors"] == [], payload
    assert isinstance(payload["secret"], str)
    return Issued(payload["secret"], payload["apiSecret"]["id"], payload["apiSecret"])


async def delete(api: Api, token: str, secret_id: str) -> dict[str, Any]:
    result = await api.gql(DELETE, {"id": secret_id}, token=token)
    payload: dict[str, Any] = result.data["apiSecretDelete"]
    return payload


async def listed(api: Api, token: str, store_id: str) -> list[dict[str, Any]]:
    result = await api.gql(STORE_SECRETS, {"storeId": store_id}, token=token)
    nodes: list[dict[str, Any]] = result.data["store"]["apiSecrets"]["nodes"]
    return nodes


def codes_and_fields(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def assert_refused(result: GraphQLResponse, reason: str | None, *secrets: str) -> None:
    """HTTP 401, one UNAUTHENTICATED error with `reason`, and no secret echoed anywhere."""
    assert result.status == 401, result.body
    assert result.body.get("data") is None
    assert len(result.body["errors"]) == 1, result.body
    error = result.body["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    if reason is not None:
        assert error["extensions"]["reason"] == reason, error
    assert error["message"]
    assert_nothing_echoed(result, *secrets)


def assert_forbidden(result: GraphQLResponse) -> None:
    assert result.error_codes == ["FORBIDDEN"], result.body
    assert len(result.body["errors"]) == 1


def assert_nothing_echoed(result: GraphQLResponse, *secrets: str) -> None:
    text = repr(result.body) + repr(dict(result.headers))
    for secret in secrets:
        assert secret not in text
        assert random_part(secret) not in text


def _base62(number: int, width: int, alphabet: str) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(alphabet[remainder])
    assert number == 0
    return "".join(reversed(digits))


def checksum_alphabet(secret: str) -> str | None:
    """The base62 alphabet under which the last characters are the CRC32 of the rest."""
    body, checksum = secret[:-CHECKSUM_LENGTH], secret[-CHECKSUM_LENGTH:]
    crc = zlib.crc32(body.encode("ascii"))
    for alphabet in _ALPHABETS:
        if _base62(crc, CHECKSUM_LENGTH, alphabet) == checksum:
            return alphabet
    return None


def near_miss(secret: str, index: int = -1) -> str:
    """A valid checksum, but the character at `index` of the rest changed (by default the
    last random character: same key id, wrong secret)."""
    alphabet = checksum_alphabet(secret)
    assert alphabet is not None
    body = list(secret[:-CHECKSUM_LENGTH])
    body[index] = "A" if body[index] != "A" else "B"
    changed = "".join(body)
    return changed + _base62(zlib.crc32(changed.encode("ascii")), CHECKSUM_LENGTH, alphabet)


def flip_one_character(secret: str) -> str:
    """One random character changed and the checksum left as it was."""
    index = len(secret) - CHECKSUM_LENGTH - 5
    replacement = "x" if secret[index] != "x" else "y"
    return secret[:index] + replacement + secret[index + 1 :]


async def secret_row(database_url: str, pk: int) -> dict[str, Any]:
    async with connect(database_url) as conn:
        table = ApiSecret.__table__  # type: ignore[attr-defined]
        row = (await conn.execute(select(table).where(table.c.id == pk))).mappings().one()
    return dict(row)


async def set_secret_columns(database_url: str, pk: int, **values: datetime | str | None) -> None:
    async with connect(database_url) as conn:
        await conn.execute(update(ApiSecret).where(ApiSecret.id == pk).values(**values))  # type: ignore[arg-type]


@asynccontextmanager
async def second_instance(database_url: str) -> AsyncIterator[Api]:
    """Another process of the service on the same database, with its own memory."""
    application = create_app(make_settings(database_url))
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http)
    finally:
        await application.state.app_state.engine.dispose()


@dataclass
class Argon2Calls:
    """Calls of argon2's verify and hash: for each, whether it ran on the event loop's thread."""

    verify: list[bool] = field(default_factory=list)
    hash: list[bool] = field(default_factory=list)

    def clear(self) -> None:
        self.verify.clear()
        self.hash.clear()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def instrument_argon2(monkeypatch: pytest.MonkeyPatch) -> Argon2Calls:
    calls = Argon2Calls()
    original_verify = argon2.PasswordHasher.verify
    original_hash = argon2.PasswordHasher.hash

    def verify(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.verify.append(_on_event_loop())
        return original_verify(self, hash, password)

    def hash_(self: argon2.PasswordHasher, password: str | bytes, **kwargs: Any) -> str:
        calls.hash.append(_on_event_loop())
        return original_hash(self, password, **kwargs)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    monkeypatch.setattr(argon2.PasswordHasher, "hash", hash_)
    return calls
