"""apiSecretIssue: OWNER and ADMIN get the secret once, beside its metadata; nobody else."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from db.models import ApiSecret, AuditEvent
from tests.api_secrets.helpers import (
    ISSUE,
    LOGIN,
    PREFIX,
    checksum_alphabet,
    codes_and_fields,
    connect,
    issue,
    listed,
    portone,
    secret_row,
)
from tests.support import Api, create_store, invite_and_join

STORE_DELETE = """
mutation Delete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { deletedStoreId userErrors { field code } }
}
"""

AUDIT = """
query Audit($action: String) {
  merchant {
    auditEvents(action: $action) { nodes { action actor storeId targetId summary } }
  }
}
"""

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
SECRET_FORMAT = re.compile(r"^portone_sk_(?P<key_id>[A-Za-z0-9]+)_(?P<rest>[A-Za-z0-9]+)$")
FORBIDDEN_ROLES = ["MANAGER", "DEVELOPER", "READ_ONLY", "STORE_MANAGER", "STORE_READ_ONLY"]


def issue_input(store_id: str, name: str = "ERP sync", days: int | None = None) -> dict[str, Any]:
    return {"input": {"storeId": store_id, "name": name, "expirationDays": days}}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def stored_secrets(database_url: str) -> int:
    async with connect(database_url) as conn:
        count = (await conn.execute(select(func.count()).select_from(ApiSecret))).scalar_one()
    return int(count)


async def issue_events(database_url: str) -> int:
    async with connect(database_url) as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "api_secret.issue")  # type: ignore[arg-type]
            )
        ).scalar_one()
    return int(count)


async def assert_nothing_stored(database_url: str) -> None:
    assert await stored_secrets(database_url) == 0
    assert await issue_events(database_url) == 0


# --- success -------------------------------------------------------------------------------


async def test_an_owner_gets_the_secret_once_beside_its_metadata(api: Api) -> None:
    # given
    owner = await api.sign_up(email="owner-issue@example.com")

    # when
    result = await api.gql(ISSUE, issue_input(owner.representative_store_id), token=owner.token)

    # then
    assert result.status == 200
    payload = result.data["apiSecretIssue"]
    assert payload["userErrors"] == []
    assert payload["secret"].startswith(PREFIX)
    secret = payload["apiSecret"]
    assert secret["name"] == "ERP sync"
    assert secret["createdBy"]["email"] == "owner-issue@example.com"
    assert secret["expiresAt"] is None
    assert secret["lastUsedAt"] is None
    assert secret["isExpired"] is False
    assert parse_time(secret["createdAt"]).tzinfo is not None
    # and: the hint recognises the secret without being enough to use it
    assert secret["hint"].startswith(PREFIX)
    assert secret["hint"] != payload["secret"]
    assert payload["secret"].rsplit("_", 1)[1] not in secret["hint"]
    assert len(secret["hint"]) < len(payload["secret"]) // 2


async def test_the_secret_has_a_prefix_a_key_id_256_random_bits_and_a_crc32_checksum(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()

    # when
    issued = await issue(api, owner.token, owner.representative_store_id)

    # then: recognisable, URL-safe
    assert URL_SAFE.match(issued.secret)
    match = SECRET_FORMAT.match(issued.secret)
    assert match is not None, issued.secret
    # and: the public key id is the one stored beside the hash
    row = await secret_row(database_url, issued.pk)
    assert match["key_id"] == row["key_id"]
    # and: the last characters are the CRC32 of the rest, the others >= 256 random bits
    assert checksum_alphabet(issued.secret) is not None
    random_characters = len(match["rest"]) - 6
    assert random_characters * math.log2(62) >= 256


async def test_every_secret_is_new_and_there_is_no_count_limit(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id

    # when
    issued = [await issue(api, owner.token, store, name=f"Key {n}") for n in range(12)]

    # then
    assert len({i.secret for i in issued}) == 12
    assert len({i.id for i in issued}) == 12
    names = [node["name"] for node in await listed(api, owner.token, store)]
    assert sorted(names) == sorted(f"Key {n}" for n in range(12))
    # and: each one works
    for one in (issued[0], issued[-1]):
        result = await api.gql(
            "{ viewer { merchant { name } } }", authorization=portone(one.secret)
        )
        assert result.status == 200
        assert result.data["viewer"]["merchant"]["name"]


@pytest.mark.parametrize("days", [1, 30, 3650])
async def test_expiration_days_sets_expires_at(api: Api, days: int) -> None:
    # given
    owner = await api.sign_up()

    # when
    issued = await issue(api, owner.token, owner.representative_store_id, expiration_days=days)

    # then
    created = parse_time(issued.node["createdAt"])
    expires = parse_time(issued.node["expiresAt"])
    assert abs(expires - created - timedelta(days=days)) < timedelta(seconds=1)
    assert issued.node["isExpired"] is False


async def test_a_name_is_trimmed_and_may_be_100_characters(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id

    # when
    trimmed = await issue(api, owner.token, store, name="  정산 연동  ")
    longest = await issue(api, owner.token, store, name="가" * 100)

    # then
    assert trimmed.node["name"] == "정산 연동"
    assert longest.node["name"] == "가" * 100


@pytest.mark.parametrize("role", ["OWNER", "ADMIN"])
async def test_owner_and_admin_may_issue_for_any_store(api: Api, role: str) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    token = (
        owner.token if role == "OWNER" else (await invite_and_join(api, owner.token, role)).token
    )

    # when
    for store in (owner.representative_store_id, sub_store):
        result = await api.gql(ISSUE, issue_input(store, name=f"{role} key"), token=token)

        # then
        payload = result.data["apiSecretIssue"]
        assert payload["userErrors"] == []
        assert payload["secret"].startswith(PREFIX)
        assert [n["name"] for n in await listed(api, owner.token, store)] == [f"{role} key"]


@pytest.mark.parametrize("role", FORBIDDEN_ROLES)
async def test_other_roles_may_not_issue(api: Api, database_url: str, role: str) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    scoped = role.startswith("STORE_")
    member = await invite_and_join(api, owner.token, role, sub_store if scoped else None)
    stores = [sub_store] if scoped else [owner.representative_store_id, sub_store]

    for store in stores:
        # when
        result = await api.gql(ISSUE, issue_input(store), token=member.token)

        # then
        assert result.error_codes == ["FORBIDDEN"], result.body
        assert result.body.get("data") is None
    await assert_nothing_stored(database_url)


async def test_an_api_secret_or_its_access_token_may_not_issue(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    login = await api.gql(LOGIN, {"apiSecret": issued.secret})
    access_token = login.data["apiSecretLogin"]["accessToken"]
    store = owner.representative_store_id

    # when
    with_secret = await api.gql(ISSUE, issue_input(store), authorization=portone(issued.secret))
    with_token = await api.gql(ISSUE, issue_input(store), token=access_token)

    # then
    assert with_secret.error_codes == ["FORBIDDEN"], with_secret.body
    assert with_token.error_codes == ["FORBIDDEN"], with_token.body
    assert await stored_secrets(database_url) == 1
    assert issued.secret not in repr(with_secret.body) + repr(with_token.body)


async def test_anonymous_callers_are_unauthenticated(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(ISSUE, issue_input(owner.representative_store_id))

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    await assert_nothing_stored(database_url)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, -1, -3650, 3651, 10**9])
async def test_an_expiry_outside_1_to_3650_days_is_refused(
    api: Api, database_url: str, days: int
) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        ISSUE, issue_input(owner.representative_store_id, days=days), token=owner.token
    )

    # then
    payload = result.data["apiSecretIssue"]
    assert codes_and_fields(payload) == [("INVALID_INPUT", ["input", "expirationDays"])]
    assert payload["apiSecret"] is None
    assert payload["secret"] is None
    await assert_nothing_stored(database_url)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "REQUIRED"),
        ("   ", "REQUIRED"),
        ("x" * 101, "INVALID_INPUT"),
        ("tab\tin name", "INVALID_INPUT"),
    ],
)
async def test_an_empty_or_too_long_name_is_refused(
    api: Api, database_url: str, name: str, code: str
) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        ISSUE, issue_input(owner.representative_store_id, name=name), token=owner.token
    )

    # then
    payload = result.data["apiSecretIssue"]
    assert codes_and_fields(payload) == [(code, ["input", "name"])]
    assert payload["apiSecret"] is None
    assert payload["secret"] is None
    await assert_nothing_stored(database_url)


async def test_every_problem_is_reported_at_once(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        ISSUE, issue_input("store-does-not-exist", name="", days=0), token=owner.token
    )

    # then
    payload = result.data["apiSecretIssue"]
    assert sorted(codes_and_fields(payload)) == [
        ("INVALID_INPUT", ["input", "expirationDays"]),
        ("NOT_FOUND", ["input", "storeId"]),
        ("REQUIRED", ["input", "name"]),
    ]
    assert payload["secret"] is None
    await assert_nothing_stored(database_url)


async def test_a_foreign_unknown_or_deleted_store_is_not_found(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    other = await api.sign_up()
    foreign_sub_store, _ = await create_store(api, other.token, "Theirs")
    deleted, _ = await create_store(api, owner.token, "Closed")
    gone = await api.gql(STORE_DELETE, {"storeId": deleted}, token=owner.token)
    assert gone.data["storeDelete"]["userErrors"] == []
    unknown = "store-00000000-0000-4000-8000-000000000000"

    for store in (other.representative_store_id, foreign_sub_store, unknown, deleted):
        # when
        result = await api.gql(ISSUE, issue_input(store), token=owner.token)

        # then
        payload = result.data["apiSecretIssue"]
        assert codes_and_fields(payload) == [("NOT_FOUND", ["input", "storeId"])]
        assert payload["secret"] is None
    await assert_nothing_stored(database_url)


# --- audit ---------------------------------------------------------------------------------


async def test_issuing_is_an_audit_event_without_the_secret(api: Api) -> None:
    # given
    owner = await api.sign_up(email="audited-owner@example.com")
    sub_store, _ = await create_store(api, owner.token, "Gangnam")

    # when
    issued = await issue(api, owner.token, sub_store, name="Audited key", expiration_days=7)

    # then
    result = await api.gql(AUDIT, {"action": "api_secret.issue"}, token=owner.token)
    events = result.data["merchant"]["auditEvents"]["nodes"]
    assert len(events) == 1
    event = events[0]
    assert event["action"] == "api_secret.issue"
    assert event["actor"] == "audited-owner@example.com"
    assert event["storeId"] == sub_store
    assert event["targetId"] == issued.id
    assert "Audited key" in event["summary"]
    assert issued.secret not in repr(event)
    assert issued.random_part not in repr(event)
