"""webhookSecretIssue / webhookSecretExpire: shown once, encrypted at rest, at most 2 active."""

from __future__ import annotations

import asyncio
import json

from gql_api.ids import global_id
from tests.support import Api, create_store
from tests.webhooks.helpers import (
    SECRET_EXPIRE,
    SECRET_ISSUE,
    database_text,
    errors_of,
    issue_secret,
    read_setting,
    secret_bytes,
)

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on WebhookSecret { hint createdAt expiredAt } }
}
"""

SECRETS = """
query Secrets($storeId: String!) {
  store(storeId: $storeId) {
    webhookSettings { moduleVersion mode secrets { id hint createdAt expiredAt } }
  }
}
"""


async def test_an_issued_secret_is_whsec_and_24_to_64_random_bytes(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    result = await api.gql(
        SECRET_ISSUE, {"input": {"storeId": store_id, "mode": "TEST"}}, token=owner.token
    )

    # then
    payload = result.data["webhookSecretIssue"]
    assert payload["userErrors"] == []
    secret = payload["secret"]
    assert 24 <= len(secret_bytes(secret)) <= 64
    node = payload["webhookSecret"]
    assert node["expiredAt"] is None
    assert node["hint"].startswith("whsec_")
    assert secret.removeprefix("whsec_") not in node["hint"]


async def test_two_secrets_differ(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    first = await issue_secret(api, owner.token, store_id)
    second = await issue_secret(api, owner.token, store_id)

    # then
    assert first.secret != second.secret
    assert secret_bytes(first.secret) != secret_bytes(second.secret)
    assert first.id != second.id


async def test_the_secret_is_listed_by_hint_only_afterwards(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    issued = await issue_secret(api, owner.token, store_id)

    # when
    listed = await api.gql(SECRETS, {"storeId": store_id}, token=owner.token)
    node = await api.gql(NODE, {"id": issued.id}, token=owner.token)

    # then
    by_setting = {
        (s["moduleVersion"], s["mode"]): s["secrets"]
        for s in listed.data["store"]["webhookSettings"]
    }
    assert [s["id"] for s in by_setting[("V2", "TEST")]] == [issued.id]
    assert by_setting[("V2", "LIVE")] == []
    assert by_setting[("V1", "TEST")] == []  # V1 webhooks are not signed
    assert by_setting[("V1", "LIVE")] == []
    assert by_setting[("V2", "TEST")][0]["hint"] == issued.hint
    assert node.data["node"]["hint"] == issued.hint
    for body in (listed.body, node.body):
        text = json.dumps(body)
        assert issued.secret not in text
        assert issued.secret.removeprefix("whsec_") not in text


async def test_the_secret_is_stored_encrypted(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    issued = await issue_secret(api, owner.token, store_id)

    # then
    stored = await database_text(database_url)
    assert issued.hint in stored  # the scan does see the secrets table
    assert issued.secret not in stored
    assert issued.secret.removeprefix("whsec_") not in stored
    assert secret_bytes(issued.secret).hex() not in stored


async def test_a_third_active_secret_is_refused(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    first = await issue_secret(api, owner.token, store_id)
    second = await issue_secret(api, owner.token, store_id)

    # when
    result = await api.gql(
        SECRET_ISSUE, {"input": {"storeId": store_id, "mode": "TEST"}}, token=owner.token
    )

    # then
    payload = result.data["webhookSecretIssue"]
    assert errors_of(payload) == [("WEBHOOK_SECRET_LIMIT", ["input", "mode"])]
    assert payload["secret"] is None
    assert payload["webhookSecret"] is None
    listed = (await read_setting(api, owner.token, store_id))["secrets"]
    assert [s["id"] for s in listed] == [first.id, second.id]


async def test_the_limit_is_per_mode_and_per_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    rep = owner.representative_store_id
    sub, _ = await create_store(api, owner.token, "Branch")
    for _ in range(2):
        await issue_secret(api, owner.token, rep, "TEST")

    # when
    live = await issue_secret(api, owner.token, rep, "LIVE")
    other_store = await issue_secret(api, owner.token, sub, "TEST")

    # then
    live_listed = (await read_setting(api, owner.token, rep, mode="LIVE"))["secrets"]
    assert [s["id"] for s in live_listed] == [live.id]
    assert other_store.secret.startswith("whsec_")


async def test_expiring_a_secret_is_final_and_frees_a_slot(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    first = await issue_secret(api, owner.token, store_id)
    second = await issue_secret(api, owner.token, store_id)

    # when
    expired = await api.gql(SECRET_EXPIRE, {"id": first.id}, token=owner.token)
    again = await api.gql(SECRET_EXPIRE, {"id": first.id}, token=owner.token)
    third = await issue_secret(api, owner.token, store_id)

    # then
    payload = expired.data["webhookSecretExpire"]
    assert payload["userErrors"] == []
    assert payload["webhookSecret"]["id"] == first.id
    assert payload["webhookSecret"]["expiredAt"] is not None
    again_payload = again.data["webhookSecretExpire"]
    assert errors_of(again_payload) == [("ALREADY_EXPIRED", ["input", "id"])]
    assert again_payload["webhookSecret"] is None
    listed = (await read_setting(api, owner.token, store_id))["secrets"]
    assert [(s["id"], s["expiredAt"] is None) for s in listed] == [
        (first.id, False),
        (second.id, True),
        (third.id, True),
    ]
    assert listed[0]["expiredAt"] == payload["webhookSecret"]["expiredAt"]


async def test_an_unknown_or_foreign_secret_is_not_found(api: Api) -> None:
    # given
    owner = await api.sign_up()
    stranger = await api.sign_up()
    foreign = await issue_secret(api, stranger.token, stranger.representative_store_id)

    # when
    results = [
        await api.gql(SECRET_EXPIRE, {"id": secret_id}, token=owner.token)
        for secret_id in (foreign.id, global_id("WebhookSecret", 999_999), "not-an-id")
    ]

    # then
    for result in results:
        payload = result.data["webhookSecretExpire"]
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    still = (await read_setting(api, stranger.token, stranger.representative_store_id))["secrets"]
    assert still[0]["expiredAt"] is None


async def test_concurrent_issues_never_make_more_than_two_active(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    variables = {"input": {"storeId": store_id, "mode": "TEST"}}

    # when
    results = await asyncio.gather(
        *(api.gql(SECRET_ISSUE, variables, token=owner.token) for _ in range(4))
    )

    # then
    payloads = [r.data["webhookSecretIssue"] for r in results]
    issued = [p for p in payloads if p["secret"] is not None]
    refused = [p for p in payloads if p["secret"] is None]
    assert len(issued) == 2
    assert [errors_of(p) for p in refused] == [[("WEBHOOK_SECRET_LIMIT", ["input", "mode"])]] * 2
    listed = (await read_setting(api, owner.token, store_id))["secrets"]
    assert sorted(s["id"] for s in listed) == sorted(p["webhookSecret"]["id"] for p in issued)
