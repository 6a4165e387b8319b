"""The console's view of webhook events: Store.webhookEvents with their attempts,
failedWebhookEventCount, node(id:), webhookEventResend and webhookEventsResendFailed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.settings import Settings
from tests.factories import Seeded, seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    FakeClock,
    event_body,
    event_settings,
    make_worker,
    publish,
    state_of,
)
from tests.webhooks.helpers import errors_of, issue_secret, save_setting
from tests.webhooks.receiver import Receiver, Receivers

ATTEMPT_FIELDS = "trigger attemptNumber statusCode succeeded"
EVENT_FIELDS = f"""
  id eventId type moduleVersion mode status statusReason publishedAt nextAttemptAt
  attemptCount manualResendCount
  attempts {{ nodes {{ {ATTEMPT_FIELDS} }} }}
"""

EVENTS = f"""
query Events($storeId: String!, $first: Int, $after: String, $filter: WebhookEventFilter) {{
  store(storeId: $storeId) {{
    webhookEvents(first: $first, after: $after, filter: $filter) {{
      nodes {{ {EVENT_FIELDS} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""

ATTEMPT_PAGE = f"""
query Attempts($id: ID!, $first: Int, $after: String) {{
  node(id: $id) {{
    ... on WebhookEvent {{
      attempts(first: $first, after: $after) {{
        nodes {{ {ATTEMPT_FIELDS} }}
        pageInfo {{ hasNextPage endCursor }}
      }}
    }}
  }}
}}
"""

FAILED_COUNT = """
query Failed($storeId: String!, $from: DateTime, $until: DateTime) {
  store(storeId: $storeId) { failedWebhookEventCount(from: $from, until: $until) }
}
"""

NODE = f"""
query Node($id: ID!) {{ node(id: $id) {{ ... on WebhookEvent {{ {EVENT_FIELDS} }} }} }}
"""

RESEND = f"""
mutation Resend($id: ID!) {{
  webhookEventResend(input: {{ id: $id }}) {{
    event {{ {EVENT_FIELDS} }}
    delivery {{ id {ATTEMPT_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

RESEND_FAILED = """
mutation ResendFailed($input: WebhookEventsResendFailedInput!) {
  webhookEventsResendFailed(input: $input) { queuedCount userErrors { field code message } }
}
"""

TEST_CALL = f"""
mutation TestCall($storeId: String!) {{
  webhookTest(input: {{ storeId: $storeId, moduleVersion: V2, mode: TEST }}) {{
    delivery {{ {ATTEMPT_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

AUDIT = """
query Audit($action: String) {
  merchant { auditEvents(first: 20, action: $action) { nodes { action targetId summary } } }
}
"""


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def published(client: httpx.AsyncClient, store_id: str, **overrides: Any) -> str:
    """Publish an event; its global id."""
    answer = await publish(client, event_body(store_id, **overrides))
    assert answer.status_code == 202, answer.text
    event_id: str = answer.json()["id"]
    return event_id


async def deliver(app: Starlette, clock: FakeClock | None = None, **config: Any) -> int:
    """One worker round at `clock` (default: now); how many attempts it made."""
    worker = make_worker(app, clock or FakeClock(), **config)
    return await worker.deliver_due()


async def events(api: Api, token: str, store_id: str, **variables: Any) -> list[dict[str, Any]]:
    result = await api.gql(EVENTS, {"storeId": store_id, **variables}, token=token)
    nodes: list[dict[str, Any]] = result.data["store"]["webhookEvents"]["nodes"]
    return nodes


async def event(api: Api, token: str, event_id: str) -> dict[str, Any] | None:
    result = await api.gql(NODE, {"id": event_id}, token=token)
    found: dict[str, Any] | None = result.data["node"]
    return found


async def resend(api: Api, token: str, event_id: str) -> dict[str, Any]:
    result = await api.gql(RESEND, {"id": event_id}, token=token)
    payload: dict[str, Any] = result.data["webhookEventResend"]
    return payload


async def resend_failed(api: Api, token: str, store_id: str, **window: str) -> dict[str, Any]:
    result = await api.gql(RESEND_FAILED, {"input": {"storeId": store_id, **window}}, token=token)
    payload: dict[str, Any] = result.data["webhookEventsResendFailed"]
    return payload


async def failed_count(api: Api, token: str, store_id: str, **window: str) -> int:
    result = await api.gql(FAILED_COUNT, {"storeId": store_id, **window}, token=token)
    count: int = result.data["store"]["failedWebhookEventCount"]
    return count


async def merchant_with_receiver(
    api: Api, db_engine: AsyncEngine, receiver_pool: Receivers, status: int
) -> tuple[Seeded, Receiver]:
    """A merchant whose representative store's V2 TEST setting sends to a receiver."""
    seeded = await seed_merchant(db_engine, roles=("READ_ONLY", "STORE_MANAGER"))
    receiver = await receiver_pool.start(status=status)
    store_id = seeded.owner.representative_store_id
    await save_setting(api, seeded.owner.token, store_id, receiver.url)
    return seeded, receiver


async def test_events_are_listed_newest_first_filtered_and_in_pages(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: a SUCCEEDED, a RETRYING and two SKIPPED events (no LIVE and no V1 URL)
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 200)
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    paid = await published(client, store_id)
    assert await deliver(app) == 1
    receiver.status = 500
    cancelled = await published(
        client,
        store_id,
        type="Transaction.Cancelled",
        data={"paymentId": "p-2", "transactionId": "t-2", "cancellationId": "c-2"},
    )
    assert await deliver(app) == 1
    live = await published(client, store_id, mode="LIVE")
    v1 = await published(
        client,
        store_id,
        moduleVersion="V1",
        type="paid",
        data={"imp_uid": "imp_1", "merchant_uid": "order-1"},
    )

    # when
    listed = await events(api, token, store_id)

    # then: newest first, each as it stands
    assert [e["id"] for e in listed] == [v1, live, cancelled, paid]
    by_id = {e["id"]: e for e in listed}
    assert [by_id[i]["status"] for i in (paid, cancelled, live, v1)] == [
        "SUCCEEDED",
        "RETRYING",
        "SKIPPED",
        "SKIPPED",
    ]
    assert by_id[cancelled]["type"] == "Transaction.Cancelled"
    assert by_id[cancelled]["nextAttemptAt"] is not None
    assert "HTTP 500" in by_id[cancelled]["statusReason"]
    assert "No V2 LIVE webhook URL" in by_id[live]["statusReason"]
    assert (by_id[v1]["moduleVersion"], by_id[v1]["mode"]) == ("V1", "TEST")
    assert by_id[paid]["statusReason"] is None and by_id[paid]["nextAttemptAt"] is None

    # and each filter narrows the list
    async def ids(**condition: str) -> list[str]:
        return [e["id"] for e in await events(api, token, store_id, filter=condition)]

    assert await ids(status="RETRYING") == [cancelled]
    assert await ids(status="SKIPPED") == [v1, live]
    assert await ids(type="Transaction.Paid") == [live, paid]
    assert await ids(mode="LIVE") == [live]
    assert await ids(moduleVersion="V1") == [v1]
    assert await ids(moduleVersion="V2", mode="TEST", type="Transaction.Paid") == [paid]
    moment = by_id[cancelled]["publishedAt"]
    since = [e["id"] for e in listed if e["publishedAt"] >= moment]
    before = [e["id"] for e in listed if e["publishedAt"] < moment]
    assert cancelled in since and paid in before
    assert await ids(**{"from": moment}) == since
    assert await ids(until=moment) == before
    assert await ids(**{"from": moment, "until": moment}) == []

    # and pages follow one another without overlap
    first = await api.gql(EVENTS, {"storeId": store_id, "first": 3}, token=token)
    page = first.data["store"]["webhookEvents"]
    assert [e["id"] for e in page["nodes"]] == [v1, live, cancelled]
    assert page["pageInfo"]["hasNextPage"] is True
    after = page["pageInfo"]["endCursor"]
    second = await api.gql(EVENTS, {"storeId": store_id, "first": 3, "after": after}, token=token)
    rest = second.data["store"]["webhookEvents"]
    assert [e["id"] for e in rest["nodes"]] == [paid]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_attempts_are_listed_oldest_first_with_trigger_and_number(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: one event that failed once, then succeeded; another that failed once
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    retried = await published(client, store_id)
    once = await published(client, store_id)
    clock = FakeClock()
    assert await deliver(app, clock) == 2
    receiver.status = 200
    clock.advance(minutes=1)
    worker = make_worker(app, clock)
    assert await worker.deliver_due() == 2  # both retried: the second one succeeds too
    receiver.status = 500
    third = await published(client, store_id)
    assert await deliver(app) == 1

    # when: the attempts of every event, in one query
    listed = {e["id"]: e for e in await events(api, token, store_id)}

    # then: each event has its own attempts, oldest first, numbered
    assert listed[retried]["attemptCount"] == 2
    assert listed[retried]["status"] == "SUCCEEDED"
    assert listed[retried]["attempts"]["nodes"] == [
        {"trigger": "EVENT", "attemptNumber": 1, "statusCode": 500, "succeeded": False},
        {"trigger": "EVENT", "attemptNumber": 2, "statusCode": 200, "succeeded": True},
    ]
    assert [a["attemptNumber"] for a in listed[once]["attempts"]["nodes"]] == [1, 2]
    assert listed[third]["attempts"]["nodes"] == [
        {"trigger": "EVENT", "attemptNumber": 1, "statusCode": 500, "succeeded": False},
    ]

    # and they come in pages
    first = await api.gql(ATTEMPT_PAGE, {"id": retried, "first": 1}, token=token)
    page = first.data["node"]["attempts"]
    assert [a["attemptNumber"] for a in page["nodes"]] == [1]
    assert page["pageInfo"]["hasNextPage"] is True
    second = await api.gql(
        ATTEMPT_PAGE,
        {"id": retried, "first": 1, "after": page["pageInfo"]["endCursor"]},
        token=token,
    )
    rest = second.data["node"]["attempts"]
    assert [a["attemptNumber"] for a in rest["nodes"]] == [2]
    assert rest["pageInfo"]["hasNextPage"] is False

    # and a test call's delivery has no attempt number
    await issue_secret(api, token, store_id)
    test_call = await api.gql(TEST_CALL, {"storeId": store_id}, token=token)
    assert test_call.data["webhookTest"]["delivery"] == {
        "trigger": "TEST",
        "attemptNumber": None,
        "statusCode": 500,
        "succeeded": False,
    }


async def test_failed_events_are_counted_retrying_and_exhausted(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: RETRYING, EXHAUSTED (a schedule of one attempt), SUCCEEDED and SKIPPED events
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    retrying = await published(client, store_id)
    assert await deliver(app) == 1
    exhausted = await published(client, store_id)
    assert await deliver(app, schedule_minutes=()) == 1
    receiver.status = 200
    await published(client, store_id)
    assert await deliver(app) == 1
    await published(client, store_id, mode="LIVE")
    listed = {e["id"]: e for e in await events(api, token, store_id)}
    assert listed[retrying]["status"] == "RETRYING"
    assert listed[exhausted]["status"] == "EXHAUSTED"
    assert listed[exhausted]["nextAttemptAt"] is None

    # when / then
    assert await failed_count(api, token, store_id) == 2
    moment = listed[exhausted]["publishedAt"]
    assert await failed_count(api, token, store_id, **{"from": moment}) == 1
    assert await failed_count(api, token, store_id, until=moment) == 1
    # another store of the merchant has none
    sub_store = seeded.stores["Sub store"]
    assert await failed_count(api, token, sub_store) == 0


async def test_node_finds_an_event_only_for_those_who_may_see_it(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: an event of the representative store
    seeded, _ = await merchant_with_receiver(api, db_engine, receiver_pool, 200)
    event_id = await published(client, seeded.owner.representative_store_id)
    assert await deliver(app) == 1
    other_merchant = await seed_merchant(db_engine, roles=())

    # when / then
    found = await event(api, seeded.owner.token, event_id)
    assert found is not None
    assert (found["id"], found["status"]) == (event_id, "SUCCEEDED")
    assert found["attempts"]["nodes"][0]["trigger"] == "EVENT"
    read_only = await event(api, seeded.members["READ_ONLY"].token, event_id)
    assert read_only is not None and read_only["id"] == event_id
    assert await event(api, seeded.members["STORE_MANAGER"].token, event_id) is None
    assert await event(api, other_merchant.owner.token, event_id) is None


async def test_a_resend_sends_now_and_the_sixth_is_refused(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: an event whose first attempt failed
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    token = seeded.owner.token
    event_id = await published(client, seeded.owner.representative_store_id)
    assert await deliver(app) == 1
    receiver.status = 200

    # when
    payload = await resend(api, token, event_id)

    # then: sent at once, recorded as MANUAL, and the event succeeded
    assert payload["userErrors"] == []
    assert payload["delivery"] == {
        "id": payload["delivery"]["id"],
        "trigger": "MANUAL",
        "attemptNumber": 1,
        "statusCode": 200,
        "succeeded": True,
    }
    resent = payload["event"]
    assert (resent["status"], resent["manualResendCount"], resent["attemptCount"]) == (
        "SUCCEEDED",
        1,
        1,
    )
    assert resent["nextAttemptAt"] is None
    assert [a["trigger"] for a in resent["attempts"]["nodes"]] == ["EVENT", "MANUAL"]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body

    # and four more go through, the sixth is refused and sends nothing
    for number in range(2, 6):
        again = await resend(api, token, event_id)
        assert again["userErrors"] == [] and again["delivery"]["attemptNumber"] == number
    refused = await resend(api, token, event_id)
    assert errors_of(refused) == [("MAX_WEBHOOK_RETRY_COUNT_REACHED", ["input", "id"])]
    assert refused["event"] is None and refused["delivery"] is None
    assert len(receiver.requests) == 6
    found = await event(api, token, event_id)
    assert found is not None and found["manualResendCount"] == 5

    # and counted: five MANUAL attempts, one event delivered (with its latency)
    metrics = state_of(app).metrics.render().decode()
    for line in (
        'webhook_attempts_total{status_class="5xx",trigger="EVENT"} 1.0',
        'webhook_attempts_total{status_class="2xx",trigger="MANUAL"} 5.0',
        'webhook_messages_total{outcome="succeeded"} 1.0',
        "webhook_delivery_latency_seconds_count 1.0",
    ):
        assert line in metrics, line

    # and each resend is audited, without the URL
    audit = await api.gql(AUDIT, {"action": "webhook_event.resend"}, token=token)
    audited = audit.data["merchant"]["auditEvents"]["nodes"]
    assert len(audited) == 5
    assert {a["targetId"] for a in audited} == {event_id}
    assert all(receiver.url not in a["summary"] for a in audited)
    assert "manual resend 1 of 5" in audited[-1]["summary"]
    assert "delivered" in audited[-1]["summary"]


async def test_resending_an_unknown_or_undeliverable_event_changes_nothing(
    api: Api, client: httpx.AsyncClient, db_engine: AsyncEngine, receiver_pool: Receivers
) -> None:
    # given: an event with no LIVE URL to go to
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 200)
    token = seeded.owner.token
    skipped = await published(client, seeded.owner.representative_store_id, mode="LIVE")

    # when / then
    no_url = await resend(api, token, skipped)
    assert errors_of(no_url) == [("WEBHOOK_URL_NOT_SET", ["input", "id"])]
    for bad_id in ("not-an-id", seeded.owner.merchant_id):
        unknown = await resend(api, token, bad_id)
        assert errors_of(unknown) == [("NOT_FOUND", ["input", "id"])]
    found = await event(api, token, skipped)
    assert found is not None
    assert (found["manualResendCount"], found["attempts"]["nodes"]) == (0, [])
    assert receiver.requests == []


async def test_failed_events_are_queued_and_then_sent_by_a_worker(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: a RETRYING, an EXHAUSTED and a SUCCEEDED event
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    retrying = await published(client, store_id)
    assert await deliver(app) == 1
    exhausted = await published(client, store_id)
    assert await deliver(app, schedule_minutes=()) == 1
    receiver.status = 200
    succeeded = await published(client, store_id)
    assert await deliver(app) == 1
    assert await deliver(app) == 0  # the retry is not due yet

    # when
    payload = await resend_failed(api, token, store_id)

    # then: both failed events are queued, and the next worker round sends them
    assert payload == {"queuedCount": 2, "userErrors": []}
    queued = {e["id"]: e for e in await events(api, token, store_id)}
    assert queued[exhausted]["status"] == "RETRYING"
    assert queued[exhausted]["manualResendCount"] == 0  # counted when sent
    assert await deliver(app) == 2
    sent = {e["id"]: e for e in await events(api, token, store_id)}
    assert sent[exhausted]["manualResendCount"] == 1
    assert {sent[i]["status"] for i in (retrying, exhausted, succeeded)} == {"SUCCEEDED"}
    assert sent[retrying]["attempts"]["nodes"][-1]["trigger"] == "EVENT"
    assert sent[retrying]["attempts"]["nodes"][-1]["attemptNumber"] == 2
    last = sent[exhausted]["attempts"]["nodes"][-1]
    assert (last["trigger"], last["attemptNumber"], last["succeeded"]) == ("MANUAL", 1, True)
    assert len(receiver.requests) == 5
    audit = await api.gql(AUDIT, {"action": "webhook_event.resend_failed"}, token=token)
    assert [
        "Queued 2 " in a["summary"] for a in audit.data["merchant"]["auditEvents"]["nodes"]
    ] == [True]


async def test_a_bad_bulk_resend_reports_every_problem_and_queues_nothing(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: a RETRYING event
    seeded, _ = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    event_id = await published(client, store_id)
    assert await deliver(app) == 1
    before = await event(api, token, event_id)
    assert before is not None

    # when
    window = {"from": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}
    both = await resend_failed(api, token, "store-unknown", **window)
    backwards = await resend_failed(api, token, store_id, **window)

    # then
    assert both["queuedCount"] is None
    assert sorted(errors_of(both)) == [
        ("INVALID_INPUT", ["input", "until"]),
        ("NOT_FOUND", ["input", "storeId"]),
    ]
    assert errors_of(backwards) == [("INVALID_INPUT", ["input", "until"])]
    assert await event(api, token, event_id) == before


async def test_read_only_members_read_events_but_may_not_resend(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    store_id = seeded.owner.representative_store_id
    event_id = await published(client, store_id)
    assert await deliver(app) == 1
    read_only = seeded.members["READ_ONLY"].token

    # when / then
    assert [e["id"] for e in await events(api, read_only, store_id)] == [event_id]
    assert await failed_count(api, read_only, store_id) == 1
    one = await api.gql(RESEND, {"id": event_id}, token=read_only)
    assert one.error_codes == ["FORBIDDEN"]
    bulk = await api.gql(RESEND_FAILED, {"input": {"storeId": store_id}}, token=read_only)
    assert bulk.error_codes == ["FORBIDDEN"]
    assert len(receiver.requests) == 1
    found = await event(api, seeded.owner.token, event_id)
    assert found is not None and found["manualResendCount"] == 0


async def test_a_store_manager_works_with_its_own_store_only(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given: events of the sub-store (its own setting) and of the representative store
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    owner, rep_store = seeded.owner.token, seeded.owner.representative_store_id
    sub_store = seeded.stores["Sub store"]
    own_receiver = await receiver_pool.start(status=500)
    await save_setting(api, owner, sub_store, own_receiver.url, usesRepresentativeSetting=False)
    own_event = await published(client, sub_store)
    rep_event = await published(client, rep_store)
    assert await deliver(app) == 2
    own_receiver.status = 200
    manager = seeded.members["STORE_MANAGER"].token

    # when / then: it reads and resends its store's events
    listed = await events(api, manager, sub_store)
    assert [e["id"] for e in listed] == [own_event]
    assert listed[0]["attempts"]["nodes"][0]["statusCode"] == 500
    assert "HTTP 500" in listed[0]["statusReason"]
    assert await failed_count(api, manager, sub_store) == 1
    resent = await resend(api, manager, own_event)
    assert resent["userErrors"] == [] and resent["event"]["status"] == "SUCCEEDED"
    assert (await resend_failed(api, manager, sub_store))["queuedCount"] == 0

    # and nothing of the representative store's
    rep = await api.gql(EVENTS, {"storeId": rep_store}, token=manager)
    assert rep.data["store"] is None
    assert await event(api, manager, rep_event) is None
    assert errors_of(await resend(api, manager, rep_event)) == [("NOT_FOUND", ["input", "id"])]
    assert errors_of(await resend_failed(api, manager, rep_store)) == [
        ("NOT_FOUND", ["input", "storeId"])
    ]
    assert len(receiver.requests) == 1
    assert [e["id"] for e in await events(api, owner, rep_store)] == [rep_event]
    assert await failed_count(api, owner, rep_store) == 1


@pytest.mark.parametrize("saved", [False, True], ids=["by-default", "saved-to-follow"])
async def test_a_store_following_the_representative_hides_its_attempts_from_store_roles(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
    saved: bool,
) -> None:
    # given: a sub-store event sent to the representative store's URL, which failed; the
    # sub-store follows by default, or by a setting saved before the event
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    owner, manager = seeded.owner.token, seeded.members["STORE_MANAGER"].token
    sub_store = seeded.stores["Sub store"]
    if saved:
        await save_setting(api, owner, sub_store, None, usesRepresentativeSetting=True)
    event_id = await published(client, sub_store)
    assert await deliver(app) == 1

    # when
    seen_by_owner = await event(api, owner, event_id)
    seen_by_manager = await event(api, manager, event_id)

    # then: the store manager sees the event, not the attempt nor why it failed
    assert seen_by_owner is not None and seen_by_manager is not None
    assert len(seen_by_owner["attempts"]["nodes"]) == 1
    assert "HTTP 500" in seen_by_owner["statusReason"]
    assert seen_by_manager["status"] == "RETRYING"
    assert seen_by_manager["attempts"]["nodes"] == []
    assert seen_by_manager["statusReason"] is None
    listed = await events(api, manager, sub_store)
    assert listed[0]["attempts"]["nodes"] == [] and listed[0]["statusReason"] is None

    # and may not send to that URL
    refused = await resend(api, manager, event_id)
    assert errors_of(refused) == [("WEBHOOK_REPRESENTATIVE_SETTING", ["input", "id"])]
    bulk = await resend_failed(api, manager, sub_store)
    assert errors_of(bulk) == [("WEBHOOK_REPRESENTATIVE_SETTING", ["input", "storeId"])]
    assert len(receiver.requests) == 1
    assert await event(api, owner, event_id) == seen_by_owner

    # while the owner may
    receiver.status = 200
    resent = await resend(api, owner, event_id)
    assert resent["userErrors"] == [] and resent["event"]["status"] == "SUCCEEDED"


async def test_another_merchants_event_cannot_be_resent(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given
    seeded, receiver = await merchant_with_receiver(api, db_engine, receiver_pool, 500)
    event_id = await published(client, seeded.owner.representative_store_id)
    assert await deliver(app) == 1
    stranger = await seed_merchant(db_engine, roles=())

    # when
    refused = await resend(api, stranger.owner.token, event_id)
    bulk = await resend_failed(api, stranger.owner.token, seeded.owner.representative_store_id)

    # then
    assert errors_of(refused) == [("NOT_FOUND", ["input", "id"])]
    assert errors_of(bulk) == [("NOT_FOUND", ["input", "storeId"])]
    assert len(receiver.requests) == 1
    found = await event(api, seeded.owner.token, event_id)
    assert found is not None and found["manualResendCount"] == 0
    assert (
        await failed_count(api, stranger.owner.token, stranger.owner.representative_store_id) == 0
    )
