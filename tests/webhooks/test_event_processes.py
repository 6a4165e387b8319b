"""Webhook event delivery across real processes: `integration-api worker` processes sharing one
database, a worker killed mid-delivery, `serve`'s embedded worker with `event publish`.

Receivers are loopback servers in the test's own event loop; processes are waited for with
generous deadlines, and nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from starlette.applications import Starlette

from db.engine import create_engine
from db.models import WebhookDelivery, WebhookEvent
from gql_api.settings import Settings
from gql_api.webhooks.events import check_event
from gql_api.webhooks.intake import publish_event
from gql_api.webhooks.outbox import UNFINISHED
from tests.factories import seed_merchant
from tests.support import Api
from tests.support_servers import serve
from tests.webhooks.events_support import event_body, event_settings, publish, state_of
from tests.webhooks.helpers import DELIVERY_FIELDS, issue_secret, save_setting
from tests.webhooks.process_support import Workers, eventually, run_cli
from tests.webhooks.receiver import Receiver, Receivers

EVENT_COUNT = 1000
PUBLISH_BATCH = 20
# Generous: on 2 cores draining is CPU-bound (each attempt builds a TLS context, ~65 ms).
DRAIN_SECONDS = 240.0
# WorkerConfig.lease with the workers' 1 s timeouts: 5 + 1 + 1 + 2 + 30 s.
LEASE_SECONDS = 39.0

CONSOLE = f"""
query Console($storeId: String!) {{
  store(storeId: $storeId) {{
    webhookEvents(first: 10) {{
      nodes {{
        id eventId type moduleVersion mode status attemptCount
        attempts(first: 10) {{ nodes {{ attemptNumber {DELIVERY_FIELDS} }} }}
      }}
    }}
  }}
}}
"""


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip(
            "several worker processes need PostgreSQL: SQLite's claims are serialised by its "
            "write lock, and one worker per SQLite database is the documented setup"
        )


@pytest.fixture
async def worker_pool(database_url: str, tmp_path: Path) -> AsyncIterator[Workers]:
    pool = Workers(database_url, tmp_path, WEBHOOK_WORKER_POLL_SECONDS="0.2")
    try:
        yield pool
    finally:
        await pool.stop_all()


@dataclass(frozen=True)
class Arranged:
    store_id: str
    secret: str
    receiver: Receiver


async def arrange_store(
    database: str | AsyncEngine, api: Api, receivers: Receivers, **receiver_options: Any
) -> Arranged:
    """A seeded store whose V2 TEST setting sends to a new loopback receiver, with a secret."""
    seeded = await seed_merchant(database, roles=())
    store_id = seeded.owner.representative_store_id
    receiver = await receivers.start(**receiver_options)
    await save_setting(api, seeded.owner.token, store_id, receiver.url)
    secret = await issue_secret(api, seeded.owner.token, store_id)
    return Arranged(store_id, secret.secret, receiver)


async def events_of(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        statement = select(
            WebhookEvent.id,
            WebhookEvent.message_id,
            WebhookEvent.status,
            WebhookEvent.attempt_count,
            WebhookEvent.locked_until,
        ).order_by(WebhookEvent.id)
        return list((await conn.execute(statement)).all())


async def succeeded_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        statement = select(func.count()).where(WebhookEvent.status == "SUCCEEDED")
        return int((await conn.execute(statement)).scalar_one())


async def attempts_of(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        statement = select(
            WebhookDelivery.event_pk,
            WebhookDelivery.trigger,
            WebhookDelivery.attempt_number,
            WebhookDelivery.status_code,
            WebhookDelivery.succeeded,
            WebhookDelivery.error,
            WebhookDelivery.attempted_at,
        ).order_by(WebhookDelivery.id)
        return list((await conn.execute(statement)).all())


def verified(secret: str, receiver: Receiver) -> list[dict[str, Any]]:
    """Every request the receiver got, checked by the Standard Webhooks reference library."""
    webhook = Webhook(secret)
    return [webhook.verify(request.body, request.headers) for request in receiver.requests]


async def test_three_workers_drain_a_thousand_events_sending_each_once(
    postgresql_only: None,
    app: Starlette,
    api: Api,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
    worker_pool: Workers,
) -> None:
    # given: a store sending to a receiver that answers 200, and three worker processes, with
    # PortOne's 30 s timeouts (under load, a 1 s read timeout could fail an attempt the receiver
    # did answer, and its retry would rightly send the webhook-id again) and one receiver host
    # (so the per-host limit is the process's whole concurrency)
    store = await arrange_store(db_engine, api, receiver_pool)
    workers = await asyncio.gather(
        *(
            worker_pool.start(
                WEBHOOK_CONNECT_TIMEOUT_SECONDS="30",
                WEBHOOK_READ_TIMEOUT_SECONDS="30",
                WEBHOOK_WORKER_PER_HOST_CONCURRENCY="16",
                WEBHOOK_WORKER_CONCURRENCY="16",
            )
            for _ in range(3)
        )
    )

    # when: the payment core publishes 1,000 events (the intake's own function, one
    # transaction each, as POST /internal/events does)
    bodies = [event_body(store.store_id) for _ in range(EVENT_COUNT)]
    for start in range(0, EVENT_COUNT, PUBLISH_BATCH):
        answers = await asyncio.gather(
            *(
                publish_event(state_of(app), check_event(body))
                for body in bodies[start : start + PUBLISH_BATCH]
            )
        )
        assert {(answer.status, answer.duplicate) for answer in answers} == {("PENDING", False)}

    # then: every event succeeded at its first attempt
    done = await eventually(
        lambda: succeeded_count(db_engine), lambda n: n == EVENT_COUNT, within=DRAIN_SECONDS
    )
    assert done == EVENT_COUNT, [w.problems() for w in workers]
    events = await events_of(db_engine)
    assert {(e.status, e.attempt_count, e.locked_until) for e in events} == {("SUCCEEDED", 1, None)}
    attempts = await attempts_of(db_engine)
    assert len(attempts) == EVENT_COUNT
    assert {(a.trigger, a.attempt_number, a.status_code, a.succeeded) for a in attempts} == {
        ("EVENT", 1, 200, True)
    }
    assert {a.event_pk for a in attempts} == {e.id for e in events}
    # and: the receiver got each event's webhook-id exactly once, signed
    sent = Counter(request.headers["webhook-id"] for request in store.receiver.requests)
    assert [webhook_id for webhook_id, n in sent.items() if n > 1] == []
    assert set(sent) == {e.message_id for e in events}
    payloads = verified(store.secret, store.receiver)
    assert sorted(p["data"]["paymentId"] for p in payloads) == sorted(
        b["data"]["paymentId"] for b in bodies
    )

    # and: the work was shared, by each process's own count of the attempts it recorded
    async def counts() -> list[int]:
        return [await worker.attempts() for worker in workers]

    per_worker = await eventually(counts, lambda c: sum(c) == EVENT_COUNT)
    assert sum(per_worker) == EVENT_COUNT
    assert len([n for n in per_worker if n > 0]) > 1, per_worker
    for worker in workers:
        assert worker.problems() == [], worker.name


async def test_a_worker_killed_mid_delivery_leaves_the_event_to_another_after_its_lease(
    backend: str,
    api: Api,
    client: httpx.AsyncClient,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
    worker_pool: Workers,
) -> None:
    if backend == "sqlite":
        pytest.skip(
            "the real lease (39 s) is waited for, once is enough: PostgreSQL is where several "
            "workers share a database (on SQLite a restarted `serve` takes over the same way)"
        )
    # given: one worker, and a receiver that holds every request without answering
    store = await arrange_store(db_engine, api, receiver_pool, hold=True)
    first = await worker_pool.start()
    answer = await publish(client, event_body(store.store_id))
    assert answer.status_code == 202, answer.text
    await asyncio.wait_for(store.receiver.arrived.wait(), timeout=60)
    [leased] = await events_of(db_engine)
    assert (leased.status, leased.attempt_count) == ("PENDING", 1)
    assert leased.locked_until is not None

    # when: the worker is killed while the receiver holds its request
    assert await first.kill() == -signal.SIGKILL
    store.receiver.hold = False  # requests from now on are answered 200
    second = await worker_pool.start()

    # then: once the lease has run out, the second worker delivers the same message
    [event] = await eventually(
        lambda: events_of(db_engine),
        lambda rows: rows[0].status == "SUCCEEDED",
        within=LEASE_SECONDS + 60,
    )
    assert (event.status, event.attempt_count) == ("SUCCEEDED", 2)
    held, delivered = store.receiver.requests
    assert held.headers["webhook-id"] == delivered.headers["webhook-id"] == leased.message_id
    assert held.body == delivered.body
    assert len(verified(store.secret, store.receiver)) == 2
    # and: the killed worker's attempt stays recorded as unfinished; the takeover came after
    # the lease it had taken, never before
    crashed, succeeded = await attempts_of(db_engine)
    assert (crashed.attempt_number, crashed.status_code, crashed.succeeded) == (1, None, False)
    assert crashed.error == UNFINISHED
    assert (succeeded.attempt_number, succeeded.status_code, succeeded.succeeded) == (2, 200, True)
    assert succeeded.attempted_at >= leased.locked_until
    assert await eventually(second.attempts, lambda n: n == 1) == 1
    assert second.problems() == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_done_when_serve_delivers_an_event_published_from_the_command_line(
    database_url: str, receiver_pool: Receivers
) -> None:
    # given: `integration-api serve` (with its embedded worker, the default) on SQLite, and a
    # store whose V2 TEST setting, saved through the server's GraphQL, sends to a receiver
    seeded = await seed_merchant(database_url, roles=())
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    receiver = await receiver_pool.start()
    with serve(database_url, {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30) as http:
            api = Api(http)
            await save_setting(api, token, store_id, receiver.url)
            secret = await issue_secret(api, token, store_id)

            # when: one event is published from the command line
            data = {"paymentId": f"payment-{uuid.uuid4()}", "transactionId": str(uuid.uuid4())}
            published = await run_cli(
                database_url,
                *("event", "publish", "--store", store_id, "--mode", "TEST"),
                *("--module-version", "V2", "--type", "Transaction.Paid"),
                *("--data", json.dumps(data)),
            )

            # then: the receiver gets it, signed
            assert published.returncode == 0, published.stderr
            answer = json.loads(published.stdout)
            assert (answer["status"], answer["duplicate"]) == ("PENDING", False)
            await asyncio.wait_for(receiver.arrived.wait(), timeout=60)
            [request] = receiver.requests
            payload = Webhook(secret.secret).verify(request.body, request.headers)
            assert payload["type"] == "Transaction.Paid"
            assert payload["data"] == {**data, "storeId": store_id}

            # and: the console shows the event with its attempt, as sent and answered
            async def console() -> list[dict[str, Any]]:
                result = await api.gql(CONSOLE, {"storeId": store_id}, token=token)
                events: list[dict[str, Any]] = result.data["store"]["webhookEvents"]["nodes"]
                return events

            [event] = await eventually(
                console, lambda events: bool(events) and events[0]["status"] == "SUCCEEDED"
            )
            assert {k: event[k] for k in ("id", "eventId", "type", "status", "attemptCount")} == {
                "id": answer["id"],
                "eventId": answer["eventId"],
                "type": "Transaction.Paid",
                "status": "SUCCEEDED",
                "attemptCount": 1,
            }
            assert (event["moduleVersion"], event["mode"]) == ("V2", "TEST")
            [attempt] = event["attempts"]["nodes"]
            assert (attempt["trigger"], attempt["attemptNumber"]) == ("EVENT", 1)
            assert (attempt["statusCode"], attempt["succeeded"], attempt["url"]) == (
                200,
                True,
                receiver.url,
            )
            sent_headers = {h["name"]: h["value"] for h in attempt["requestHeaders"]}
            assert sent_headers["webhook-id"] == request.headers["webhook-id"]
            assert attempt["requestBody"] == request.text


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_event_publish_refuses_an_unknown_store_and_invalid_data(
    database_url: str,
) -> None:
    # given: a store
    seeded = await seed_merchant(database_url, roles=())
    store_id = seeded.owner.representative_store_id
    event = ("event", "publish", "--mode", "TEST", "--module-version", "V2")
    event += ("--type", "Transaction.Paid")
    good_data = json.dumps({"paymentId": "payment-1", "transactionId": "tx-1"})

    # when: an event is published for a store that does not exist, and with data that is not
    # JSON, or JSON but not an object
    unknown, not_json, not_object = await asyncio.gather(
        run_cli(database_url, *event, "--store", "store-does-not-exist", "--data", good_data),
        run_cli(database_url, *event, "--store", store_id, "--data", "{paymentId: 1"),
        run_cli(database_url, *event, "--store", store_id, "--data", "[]"),
    )

    # then: each exits non-zero, saying why on stderr, and nothing is stored
    assert unknown.returncode != 0, unknown
    assert "NOT_FOUND storeId: No store with this storeId." in unknown.stderr.splitlines()
    for refused in (not_json, not_object):
        assert refused.returncode == 2, refused
        assert refused.stderr.startswith("INVALID_INPUT data: "), refused
        assert refused.stdout == ""
    engine = create_engine(database_url)
    try:
        assert await events_of(engine) == []
    finally:
        await engine.dispose()


async def test_an_idle_worker_stops_cleanly_on_sigterm(worker_pool: Workers) -> None:
    # given: a running worker with nothing to do
    worker = await worker_pool.start()

    # when: it is asked to stop
    code = await worker.terminate()

    # then
    assert code == 0, worker.output()
    assert worker.problems() == []
