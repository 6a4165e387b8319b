"""Only the key id, an argon2id hash and a hint are kept; the plaintext is nowhere: not in any
table, not in the SQLite files, not in any log line, not in any later query result."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import argon2
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from db.models import User
from tests.api_secrets.helpers import (
    LOGIN,
    REFRESH,
    STORE_SECRETS,
    WHO_AM_I,
    Issued,
    connect,
    delete,
    flip_one_character,
    issue,
    near_miss,
    portone,
    random_part,
    secret_row,
)
from tests.support import Api, GraphQLResponse, create_store

TYPE_FIELDS = """
query TypeFields($name: String!) {
  __type(name: $name) {
    fields {
      name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
    }
  }
}
"""

AUDIT = """
{
  merchant {
    auditEvents(first: 100) {
      nodes { id action actor storeId targetId summary occurredAt }
    }
  }
}
"""


# --- what is stored ------------------------------------------------------------------------


async def test_the_row_holds_the_key_id_an_argon2id_hash_and_a_hint(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up(email="storage-owner@example.com")

    # when
    issued = await issue(api, owner.token, owner.representative_store_id, expiration_days=90)

    # then
    row = await secret_row(database_url, issued.pk)
    assert row["key_id"] in issued.secret
    assert row["secret_hash"].startswith("$argon2id$")
    assert argon2.PasswordHasher().verify(row["secret_hash"], issued.secret)
    assert row["hint"] == issued.node["hint"]
    assert row["name"] == "Partner integration"
    assert row["created_at"] is not None
    assert row["expires_at"] is not None
    assert row["last_used_at"] is None
    async with connect(database_url) as conn:
        creator = (
            await conn.execute(
                select(User.__table__.c.id).where(  # type: ignore[attr-defined]
                    User.__table__.c.email == "storage-owner@example.com"  # type: ignore[attr-defined]
                )
            )
        ).scalar_one()
    assert row["created_by"] == creator
    # and: no column holds the secret or its random part
    for column, value in row.items():
        assert issued.random_part not in str(value), column
    # and: the hint is not enough to use it
    assert len(row["hint"]) < 32


async def test_a_used_secret_records_last_used_at(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)

    # when
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200

    # then
    assert (await secret_row(database_url, issued.pk))["last_used_at"] is not None


# --- nowhere in the database or the logs -------------------------------------------------


def capture_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
        logger = logging.getLogger(name)
        if not logger.propagate and caplog.handler not in logger.handlers:
            logger.addHandler(caplog.handler)


def release_loggers(caplog: pytest.LogCaptureFixture) -> None:
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        if caplog.handler in logger.handlers:
            logger.removeHandler(caplog.handler)


def log_haystack(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(vars(record)))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def sqlite_files(database: str) -> str:
    """The raw bytes of the database file and its WAL, shared-memory and journal files."""
    blob = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(database + suffix)
        if path.exists():
            blob += path.read_bytes()
    return blob.decode("latin-1")


async def database_haystack(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        return sqlite_files(url.database)
    values: list[str] = []
    async with connect(database_url) as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND data_type IN "
                    "('text', 'character varying', 'character', 'json', 'jsonb')"
                )
            )
        ).all()
        assert columns
        for table, column in columns:
            rows = await conn.execute(text(f'SELECT "{column}"::text FROM "{table}"'))
            values.extend(str(value) for (value,) in rows if value is not None)
    return "\n".join(values)


def needles(*secrets: str) -> dict[str, str]:
    """Each secret and the part of it after the public key id."""
    found: dict[str, str] = {}
    for secret in secrets:
        found[secret] = secret
        found[f"random part of {secret}"] = random_part(secret)
    return found


async def use_secrets_every_way(api: Api) -> tuple[Issued, list[str], list[GraphQLResponse]]:
    """Issue, use, fail, exchange and delete; the secrets and tokens seen, and every response."""
    responses: list[GraphQLResponse] = []

    async def call(query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        result = await api.gql(query, variables, **kw)
        responses.append(result)
        return result

    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    main = await issue(api, owner.token, owner.representative_store_id, name="Main")
    sub = await issue(api, owner.token, sub_store, name="Sub", expiration_days=5)
    wrong = near_miss(main.secret)
    flipped = flip_one_character(main.secret)
    for secret in (main.secret, main.secret, sub.secret):
        assert (await call(WHO_AM_I, authorization=portone(secret))).status == 200
    for _ in range(6):
        assert (await call(WHO_AM_I, authorization=portone(wrong))).status == 401
    for bad in (flipped, main.secret[:-3], f"Basic {main.secret}"):
        await call(WHO_AM_I, authorization=bad if bad.startswith("Basic") else portone(bad))
    await call(LOGIN, {"apiSecret": wrong})
    login = (await call(LOGIN, {"apiSecret": sub.secret})).data["apiSecretLogin"]
    rotated = (await call(REFRESH, {"refreshToken": login["refreshToken"]})).data[
        "accessTokenRefresh"
    ]
    assert (await call(WHO_AM_I, token=rotated["accessToken"])).status == 200
    for store in (owner.representative_store_id, sub_store):
        await call(STORE_SECRETS, {"storeId": store}, token=owner.token)
    await call(AUDIT, token=owner.token)
    assert (await delete(api, owner.token, sub.id))["userErrors"] == []
    assert (await call(WHO_AM_I, authorization=portone(sub.secret))).status == 401
    seen = [
        main.secret,
        sub.secret,
        wrong,
        flipped,
        login["accessToken"],
        login["refreshToken"],
        rotated["accessToken"],
        rotated["refreshToken"],
    ]
    return main, seen, responses


async def test_no_secret_or_token_is_in_the_database_or_the_logs(
    api: Api, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    capture_every_logger(caplog)
    try:
        # when
        main, seen, responses = await use_secrets_every_way(api)
        database = await database_haystack(database_url)
        logs = log_haystack(caplog)
    finally:
        release_loggers(caplog)

    # then: the scans do see the data around the secrets
    key_id = (await secret_row(database_url, main.pk))["key_id"]
    assert key_id in database
    assert "failed API secret use" in logs
    assert "sqlalchemy.engine.Engine" in {record.name for record in caplog.records}
    # and: but not a secret, a near miss or a token
    for label, needle in needles(*seen).items():
        assert needle not in database, f"{label} is stored in the database"
        assert needle not in logs, f"{label} is in the logs"
    # and: no error message or later result echoes one
    for response in responses:
        for label, needle in needles(*seen[:4]).items():
            assert needle not in repr(response.body), label


# --- show once -----------------------------------------------------------------------------


async def every_field(api: Api, type_name: str, token: str, depth: int = 1) -> str:
    """A selection of every field of `type_name` (objects: their scalar fields)."""
    result = await api.gql(TYPE_FIELDS, {"name": type_name}, token=token)
    selection = []
    for field in result.data["__type"]["fields"]:
        kind = field["type"]
        while kind["kind"] in ("NON_NULL", "LIST"):
            kind = kind["ofType"]
        if kind["kind"] in ("SCALAR", "ENUM"):
            selection.append(field["name"])
        elif kind["kind"] == "OBJECT" and depth > 0:
            inner = await every_field(api, kind["name"], token, depth - 1)
            selection.append(f"{field['name']} {{ {inner} }}")
    assert selection
    return " ".join(selection)


async def test_no_query_returns_the_secret_or_its_hash(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id
    issued = await issue(api, owner.token, store, name="Shown once", expiration_days=3)
    secret_hash = (await secret_row(database_url, issued.pk))["secret_hash"]
    access = (await api.gql(LOGIN, {"apiSecret": issued.secret})).data["apiSecretLogin"]
    fields = await every_field(api, "ApiSecret", owner.token)
    list_query = f"""
    query Secrets($storeId: String!) {{
      store(storeId: $storeId) {{
        apiSecrets {{ edges {{ cursor node {{ {fields} }} }} nodes {{ {fields} }} }}
      }}
    }}"""
    node_query = (
        f"query Node($id: ID!) {{ node(id: $id) {{ id ... on ApiSecret {{ {fields} }} }} }}"
    )
    viewer_query = f"{{ viewer {{ apiSecret {{ {fields} }} }} }}"
    later = await issue(api, owner.token, store, name="Another")

    # when
    results = [
        await api.gql(list_query, {"storeId": store}, token=owner.token),
        await api.gql(list_query, {"storeId": store}, authorization=portone(issued.secret)),
        await api.gql(STORE_SECRETS, {"storeId": store}, token=owner.token),
        await api.gql(node_query, {"id": issued.id}, token=owner.token),
        await api.gql(node_query, {"id": issued.id}, authorization=portone(issued.secret)),
        await api.gql(viewer_query, authorization=portone(issued.secret)),
        await api.gql(viewer_query, token=access["accessToken"]),
        await api.gql(AUDIT, token=owner.token),
    ]

    # then: every query answered, with the metadata
    for result in results:
        assert result.status == 200
        assert result.body.get("errors") is None, result.body
        assert "Shown once" in repr(result.body)
    # and: never the secret, its random part or its hash (not even the salt or digest)
    hash_parts = [part for part in secret_hash.split("$") if len(part) >= 16]
    assert hash_parts
    for result in [*results, GraphQLResponse(200, later.node, results[0].headers)]:
        body = repr(result.body)
        assert issued.secret not in body
        assert issued.random_part not in body
        assert "$argon2" not in body
        for part in hash_parts:
            assert part not in body


async def test_the_api_secret_type_has_no_field_for_the_secret_or_hash(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(TYPE_FIELDS, {"name": "ApiSecret"}, token=owner.token)

    # then
    names = {field["name"] for field in result.data["__type"]["fields"]}
    assert {"id", "name", "hint", "createdBy", "createdAt", "expiresAt", "lastUsedAt"} <= names
    assert "isExpired" in names
    assert not {name for name in names if "hash" in name.lower() or "secret" in name.lower()}
