"""POST /internal/events: the payment core's way in (api-contract "Second wave").

Platform tokens, the 202/200 answers of an idempotent publish, and every refusal: 401, 404,
422 naming each bad field, 4xx for what is not a JSON object; nothing is stored when refused.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Store
from gql_api.settings import Settings
from gql_api.webhooks import outbox
from gql_api.webhooks.events import DATA_MAX_BYTES
from tests.factories import Seeded, seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    INTAKE,
    PLATFORM_TOKEN,
    count_events,
    event_body,
    event_pk,
    event_settings,
    load_event,
    publish,
)
from tests.webhooks.helpers import other_instance, save_setting

SUB_STORE = "Sub store"
RECEIVER_URL = "http://127.0.0.1:9/webhooks"  # never called: these tests only publish
UNKNOWN_STORE = "store-00000000-0000-4000-8000-000000000000"


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


@pytest.fixture
async def seeded(db_engine: AsyncEngine, api: Api) -> Seeded:
    """A merchant whose representative store has a V2 TEST URL, and one sub-store."""
    merchant = await seed_merchant(db_engine, roles=(), stores=(SUB_STORE,))
    owner = merchant.owner
    await save_setting(api, owner.token, owner.representative_store_id, RECEIVER_URL)
    return merchant


def store_of(seeded: Seeded) -> str:
    return seeded.owner.representative_store_id


def error_list(answer: httpx.Response) -> list[tuple[list[str] | None, str]]:
    """(field, code) of each error of a JSON error answer, each with a message in words."""
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    errors = answer.json()["errors"]
    assert all(isinstance(e["message"], str) and e["message"] for e in errors), errors
    return [(e["field"], e["code"]) for e in errors]


# --- authentication -----------------------------------------------------------------------


async def test_the_endpoint_is_not_there_without_platform_tokens(
    database_url: str, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given a service started without PLATFORM_EVENT_TOKENS
    off = event_settings(database_url, platform_event_tokens=[])
    async with other_instance(off) as other:
        # when the payment core publishes, whatever token it holds
        answer = await publish(other.client, event_body(store_of(seeded)))

    # then the endpoint does not exist, and nothing is stored
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NOT_FOUND"
    assert await count_events(db_engine) == 0


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-" + "x" * 32,
        f"Basic {PLATFORM_TOKEN}",
        "Bearer ",
        PLATFORM_TOKEN,
        f"Bearer {PLATFORM_TOKEN}x",
    ],
    ids=["missing", "wrong", "basic-scheme", "empty", "no-scheme", "longer"],
)
async def test_a_missing_or_wrong_token_is_401_with_a_challenge(
    client: httpx.AsyncClient, db_engine: AsyncEngine, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}

    # when
    answer = await client.post(INTAKE, json=event_body(UNKNOWN_STORE), headers=headers)

    # then
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert error_list(answer) == [(None, "UNAUTHENTICATED")]
    assert await count_events(db_engine) == 0


async def test_the_token_is_checked_before_the_body(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    answer = await client.post(
        INTAKE, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 401


async def test_a_token_configured_as_its_sha256_digest_is_accepted(
    database_url: str, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given the configuration holds only the digest of the token
    token = "digest-only-platform-token-" + "d" * 32
    digest = "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    hashed = event_settings(database_url, platform_event_tokens=[digest])
    async with other_instance(hashed) as other:
        # when the payment core presents the token itself
        accepted = await publish(other.client, event_body(store_of(seeded)), token=token)
        # and someone presents the digest as if it were the token
        refused = await publish(other.client, event_body(store_of(seeded)), token=digest)
        # and the default test token is not configured here
        unknown = await publish(other.client, event_body(store_of(seeded)))

    # then
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 401
    assert unknown.status_code == 401
    assert await count_events(db_engine) == 1


async def test_any_of_several_tokens_is_accepted(
    database_url: str, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    second = "second-platform-token-" + "s" * 32
    both = event_settings(database_url, platform_event_tokens=f"{PLATFORM_TOKEN}, {second}")
    async with other_instance(both) as other:
        first_answer = await publish(other.client, event_body(store_of(seeded)))
        second_answer = await publish(other.client, event_body(store_of(seeded)), token=second)
    assert (first_answer.status_code, second_answer.status_code) == (202, 202)


# --- accepting, idempotently -----------------------------------------------------------------


async def test_an_accepted_event_is_answered_202_and_stored_due(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    body = event_body(store_of(seeded))

    # when
    answer = await publish(client, body)

    # then the answer names the stored event
    assert answer.status_code == 202, answer.text
    assert set(answer.json()) == {"id", "eventId", "status", "duplicate"}
    assert answer.json()["eventId"] == body["id"]
    assert answer.json()["status"] == "PENDING"
    assert answer.json()["duplicate"] is False
    event = await load_event(db_engine, event_pk(answer))
    assert event.event_id == body["id"]
    assert (event.type, event.module_version, event.mode) == ("Transaction.Paid", "V2", "TEST")
    assert event.status == "PENDING"
    assert event.next_attempt_at is not None
    assert event.next_attempt_at <= datetime.now(UTC)
    assert event.attempt_count == 0
    assert event.message_id.startswith("msg_")
    # and data.storeId is filled in with the event's store
    assert event.data == {**body["data"], "storeId": store_of(seeded)}


async def test_a_null_data_store_id_is_filled_in(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    body = event_body(store_of(seeded))
    body["data"]["storeId"] = None

    answer = await publish(client, body)

    assert answer.status_code == 202, answer.text
    event = await load_event(db_engine, event_pk(answer))
    assert event.data["storeId"] == store_of(seeded)


async def test_the_same_id_again_is_a_duplicate_answered_with_the_first_event(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given an accepted event
    body = event_body(store_of(seeded))
    first = await publish(client, body)
    assert first.status_code == 202

    # when the same id is published again, even with other content
    again = await publish(client, body)
    changed = await publish(client, {**body, "type": "Transaction.Failed"})

    # then both answers name the first event, and nothing new is stored
    for answer in (again, changed):
        assert answer.status_code == 200, answer.text
        assert answer.json() == {**first.json(), "duplicate": True}
    assert await count_events(db_engine) == 1
    assert (await load_event(db_engine, event_pk(first))).type == "Transaction.Paid"


async def test_the_same_publisher_id_in_another_store_is_another_event(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    body = event_body(store_of(seeded))

    in_representative = await publish(client, body)
    in_sub_store = await publish(
        client, {**body, "storeId": seeded.stores[SUB_STORE], "data": {**body["data"]}}
    )

    assert (in_representative.status_code, in_sub_store.status_code) == (202, 202)
    assert in_representative.json()["id"] != in_sub_store.json()["id"]
    assert in_sub_store.json()["duplicate"] is False
    assert await count_events(db_engine) == 2


async def test_concurrent_duplicates_create_exactly_one_event(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    body = event_body(store_of(seeded))

    # when ten identical publishes race
    answers = await asyncio.gather(*(publish(client, body) for _ in range(10)))

    # then one was accepted, the nine others answered with that same event
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 9 + [202], [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert [a.json()["duplicate"] for a in answers].count(False) == 1
    assert await count_events(db_engine) == 1


async def test_without_a_url_the_event_is_stored_skipped_with_the_reason(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given no V2 LIVE URL anywhere in the merchant
    body = event_body(store_of(seeded), mode="LIVE")

    # when
    answer = await publish(client, body)

    # then it is accepted and kept, visibly skipped
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "SKIPPED"
    event = await load_event(db_engine, event_pk(answer))
    assert event.status == "SKIPPED"
    assert event.next_attempt_at is None
    assert event.status_reason is not None
    assert "No V2 LIVE webhook URL" in event.status_reason


# --- refusals --------------------------------------------------------------------------------


async def test_an_unknown_store_is_404_naming_store_id(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    answer = await publish(client, event_body(UNKNOWN_STORE))

    assert answer.status_code == 404
    assert error_list(answer) == [(["storeId"], "NOT_FOUND")]
    assert await count_events(db_engine) == 0


async def test_a_deleted_sub_store_is_404(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    # given a sub-store that was deleted
    sub_store = seeded.stores[SUB_STORE]
    async with AsyncSession(db_engine) as db:
        await db.exec(
            update(Store)
            .where(col(Store.store_id) == sub_store)
            .values(deleted_at=datetime.now(UTC))
        )
        await db.commit()

    # when
    answer = await publish(client, event_body(sub_store))

    # then
    assert answer.status_code == 404
    assert error_list(answer) == [(["storeId"], "NOT_FOUND")]
    assert await count_events(db_engine) == 0


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    if len(path) == 1:
        return {k: v for k, v in body.items() if k != path[0]}
    return {**body, path[0]: _without(body[path[0]], *path[1:])}


Change = Any  # a function from the good body (and the sub-store's id) to a bad one
INVALID: list[tuple[str, Change, list[str], str]] = [
    (
        "type-of-another-module-version",
        lambda body, _: {**body, "moduleVersion": "V1", "type": "Transaction.Paid"},
        ["type"],
        "INVALID_INPUT",
    ),
    (
        "module-version-not-a-string",
        lambda body, _: {**body, "moduleVersion": 2},
        ["moduleVersion"],
        "INVALID_INPUT",
    ),
    ("unknown-mode", lambda body, _: {**body, "mode": "PROD"}, ["mode"], "INVALID_INPUT"),
    ("missing-id", lambda body, _: _without(body, "id"), ["id"], "REQUIRED"),
    ("id-not-a-string", lambda body, _: {**body, "id": 42}, ["id"], "INVALID_INPUT"),
    ("id-too-long", lambda body, _: {**body, "id": "e" * 201}, ["id"], "INVALID_INPUT"),
    (
        "missing-payment-id",
        lambda body, _: _without(body, "data", "paymentId"),
        ["data", "paymentId"],
        "REQUIRED",
    ),
    (
        "payment-id-not-a-string",
        lambda body, _: {**body, "data": {**body["data"], "paymentId": 7}},
        ["data", "paymentId"],
        "INVALID_INPUT",
    ),
    (
        "cancellation-without-cancellation-id",
        lambda body, _: {**body, "type": "Transaction.Cancelled"},
        ["data", "cancellationId"],
        "REQUIRED",
    ),
    (
        "billing-key-without-billing-key",
        lambda body, _: {**body, "type": "BillingKey.Issued"},
        ["data", "billingKey"],
        "REQUIRED",
    ),
    (
        "v1-without-imp-uid",
        lambda body, _: {
            **body,
            "moduleVersion": "V1",
            "type": "paid",
            "data": {"merchant_uid": "order-1"},
        },
        ["data", "imp_uid"],
        "REQUIRED",
    ),
    ("data-a-list", lambda body, _: {**body, "data": [1, 2]}, ["data"], "INVALID_INPUT"),
    ("missing-data", lambda body, _: _without(body, "data"), ["data"], "REQUIRED"),
    (
        "data-store-id-of-another-store",
        lambda body, other: {**body, "data": {**body["data"], "storeId": other}},
        ["data", "storeId"],
        "INVALID_INPUT",
    ),
    (
        "data-too-large",
        lambda body, _: {**body, "data": {**body["data"], "memo": "m" * DATA_MAX_BYTES}},
        ["data"],
        "INVALID_INPUT",
    ),
    (
        "data-too-many-fields",
        lambda body, _: {**body, "data": {**body["data"], **{f"f{n}": n for n in range(60)}}},
        ["data"],
        "INVALID_INPUT",
    ),
    (
        "unknown-top-level-field",
        lambda body, _: {**body, "amount": 100},
        ["amount"],
        "INVALID_INPUT",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
async def test_invalid_input_is_422_naming_the_field(
    client: httpx.AsyncClient,
    seeded: Seeded,
    db_engine: AsyncEngine,
    change: Change,
    field: list[str],
    code: str,
) -> None:
    body = change(event_body(store_of(seeded)), seeded.stores[SUB_STORE])

    answer = await publish(client, body)

    assert answer.status_code == 422, answer.text
    assert error_list(answer) == [(field, code)]
    assert await count_events(db_engine) == 0


async def test_every_bad_field_is_named_at_once(
    client: httpx.AsyncClient, seeded: Seeded, db_engine: AsyncEngine
) -> None:
    body = {
        "storeId": store_of(seeded),
        "moduleVersion": "V2",
        "mode": "DEV",
        "type": "Transaction.Paid",
        "data": {"transactionId": 1},
        "extra": True,
    }

    answer = await publish(client, body)

    assert answer.status_code == 422
    assert sorted(error_list(answer), key=str) == sorted(
        [
            (["extra"], "INVALID_INPUT"),
            (["id"], "REQUIRED"),
            (["mode"], "INVALID_INPUT"),
            (["data", "paymentId"], "REQUIRED"),
            (["data", "transactionId"], "INVALID_INPUT"),
        ],
        key=str,
    )
    assert await count_events(db_engine) == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b'[{"id": "evt-1"}]', "application/json", 400),
        (b'"an event"', "application/json", 400),
        (b"null", "application/json", 400),
        (b'{"id": "\xff\xfe"}', "application/json", 400),
        (b'{"id": "evt-\\u0000"}', "application/json", 400),
        (b"[" * 100 + b"]" * 100, "application/json", 400),
        (b'{"id": "evt-1"}', "text/plain", 415),
        (b'{"id": "evt-1"}', None, 415),
    ],
    ids=[
        "malformed",
        "empty",
        "list",
        "string",
        "null",
        "not-utf8",
        "nul",
        "deep",
        "text-plain",
        "no-content-type",
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_4xx_in_json(
    client: httpx.AsyncClient,
    db_engine: AsyncEngine,
    content: bytes,
    content_type: str | None,
    status: int,
) -> None:
    headers = {"authorization": f"Bearer {PLATFORM_TOKEN}"}
    if content_type is not None:
        headers["content-type"] = content_type

    answer = await client.post(INTAKE, content=content, headers=headers)

    assert answer.status_code == status, answer.text
    [(field, _)] = error_list(answer)
    assert field is None
    # the endpoint speaks of events, not of GraphQL requests
    assert "query" not in answer.json()["errors"][0]["message"]
    assert await count_events(db_engine) == 0


async def test_a_database_that_cannot_take_the_event_gets_503_to_publish_again(
    client: httpx.AsyncClient, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a database refusing the write (as SQLite does when its lock is not granted in time)
    owner = (await seed_merchant(db_engine, roles=(), stores=())).owner

    async def locked(**_: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("database is locked"))

    monkeypatch.setattr(outbox, "insert_published", locked)

    # when an event is published
    answer = await publish(client, event_body(owner.representative_store_id))

    # then the publisher is told to try again, nothing is stored, and nothing is said of SQL
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert [e["code"] for e in answer.json()["errors"]] == ["UNAVAILABLE"]
    assert "INSERT" not in answer.text and "locked" not in answer.text
    assert await count_events(db_engine) == 0
