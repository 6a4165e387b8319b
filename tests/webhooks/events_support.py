"""Helpers of the webhook event tests: a platform token, a controllable clock, a worker bound
to the test's app, events to publish, the rows they leave, and the signature check of every
request a receiver got (with the `standardwebhooks` package and PortOne's own SDK)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

import httpx
import portone_server_sdk.webhook as portone_webhook
import standardwebhooks.webhooks as standard_webhooks
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from db.models import WebhookDelivery, WebhookEvent
from db.types import utcnow
from gql_api.context import AppState
from gql_api.ids import pk_of
from gql_api.settings import Settings
from gql_api.webhooks.sender import Limits
from gql_api.webhooks.worker import Worker, WorkerConfig
from tests.conftest import make_settings
from tests.support import Api, SignedUp
from tests.webhooks.helpers import issue_secret, save_setting
from tests.webhooks.receiver import Received, Receiver, Receivers

# Long enough that a held receiver holds for the whole test (it is released, never timed out).
PATIENT = Limits(connect_seconds=5.0, read_seconds=30.0, response_max_bytes=65536)

PLATFORM_TOKEN = "platform-event-token-" + "k" * 32
INTAKE = "/internal/events"


def event_settings(database_url: str, **overrides: object) -> Settings:
    """Loopback receivers allowed, 1 s timeouts, the platform token set, no embedded worker."""
    values: dict[str, object] = {
        "webhook_allowed_networks": ["127.0.0.0/8"],
        "webhook_read_timeout_seconds": 1.0,
        "webhook_connect_timeout_seconds": 1.0,
        "platform_event_tokens": [PLATFORM_TOKEN],
        "webhook_worker": "off",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@dataclass
class FakeClock:
    """The worker's clock: moved by the test, never by waiting."""

    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.app_state
    return state


def make_worker(
    app: Starlette,
    clock: FakeClock | None = None,
    *,
    seed: int = 7,
    rng: random.Random | None = None,
    settings: Settings | None = None,
    **config: Any,
) -> Worker:
    """A worker on the app's database: configured from `settings` (default: the app's), with
    `config` overriding WorkerConfig fields, jitter from `rng` (default: seeded with `seed`)."""
    state = state_of(app)
    base = WorkerConfig.from_settings(settings or state.settings)
    worker_config = WorkerConfig(**{**base.__dict__, **config})
    return Worker(
        engine=state.engine,
        session_factory=state.session_factory,
        encryptor=state.encryptor,
        metrics=state.metrics,
        config=worker_config,
        clock=clock or utcnow,
        rng=rng or random.Random(seed),  # noqa: S311 (jitter, seeded for the test)
    )


class LongestJitter(random.Random):
    """Full jitter at its upper bound: every retry waits exactly its step of the schedule."""

    def uniform(self, a: float, b: float) -> float:
        return b


def event_body(store_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"evt-{uuid.uuid4()}",
        "storeId": store_id,
        "moduleVersion": "V2",
        "mode": "TEST",
        "type": "Transaction.Paid",
        "data": {"paymentId": f"payment-{uuid.uuid4()}", "transactionId": str(uuid.uuid4())},
    }
    body.update(overrides)
    return body


async def publish(
    client: httpx.AsyncClient, body: dict[str, Any], *, token: str | None = PLATFORM_TOKEN
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return await client.post(INTAKE, json=body, headers=headers)


def event_pk(answer: httpx.Response) -> int:
    """The primary key of the event a 200/202 answer of the intake names."""
    pk = pk_of(answer.json()["id"], "WebhookEvent")
    assert pk is not None, answer.text
    return pk


async def load_event(engine: AsyncEngine, pk: int) -> WebhookEvent:
    async with AsyncSession(engine) as db:
        event = await db.get(WebhookEvent, pk)
        assert event is not None
        return event


async def load_attempts(engine: AsyncEngine, pk: int) -> list[WebhookDelivery]:
    """The recorded attempts at delivering event `pk`, oldest first."""
    async with AsyncSession(engine) as db:
        statement = (
            select(WebhookDelivery)
            .where(col(WebhookDelivery.event_pk) == pk)
            .order_by(col(WebhookDelivery.id))
        )
        return list((await db.exec(statement)).all())


async def count_events(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as db:
        return (await db.exec(select(func.count()).select_from(WebhookEvent))).one()


@contextlib.contextmanager
def verifiers_at(moment: datetime) -> Iterator[None]:
    """Both verifiers' clocks set to `moment`: the worker signs with its own (fake) clock, so
    their ±5 minute tolerance is checked against the time the request was signed."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls.fromtimestamp(moment.timestamp(), tz)

    frozen_time = SimpleNamespace(time=moment.timestamp)
    with (
        mock.patch.object(standard_webhooks, "datetime", Frozen),
        mock.patch.object(portone_webhook, "time", frozen_time),
    ):
        yield


def assert_signed(requests: Iterable[Received], *secrets: str) -> None:
    """Every request verifies with each of `secrets`, with the `standardwebhooks` package and
    with PortOne's server SDK, at the time its webhook-timestamp says it was signed."""
    checked = 0
    for request in requests:
        signed_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
        with verifiers_at(signed_at + timedelta(seconds=1)):
            for secret in secrets:
                standard_webhooks.Webhook(secret).verify(
                    request.body, request.headers, json_parse=False
                )
                try:
                    portone_webhook.verify(secret, request.text, request.headers)
                except json.JSONDecodeError:
                    # The SDK parses the body as JSON once the signature matched: a form body
                    # (legacy 2024-01-01) verified, then failed to parse.
                    assert request.headers["content-type"].startswith(
                        "application/x-www-form-urlencoded"
                    ), request.text
        checked += 1
    assert checked, "no request to verify"


async def published(client: httpx.AsyncClient, body: dict[str, Any]) -> int:
    """Publish `body`, which must be accepted (202); the event's primary key."""
    answer = await publish(client, body)
    assert answer.status_code == 202, answer.text
    return event_pk(answer)


async def receiving(
    api: Api,
    owner: SignedUp,
    receivers: Receivers,
    store_id: str | None = None,
    **options: object,
) -> tuple[Receiver, str]:
    """A receiver saved as the V2 TEST URL of `store_id` (default: the owner's representative
    store), and the signing secret issued for that setting."""
    store_id = store_id or owner.representative_store_id
    receiver = await receivers.start(**options)
    await save_setting(api, owner.token, store_id, receiver.url)
    secret = await issue_secret(api, owner.token, store_id)
    return receiver, secret.secret


SOON = 10.0  # seconds a test waits, at most, for what should happen at once


async def until(condition: Callable[[], bool]) -> None:
    """Wait (without a timed assertion) until `condition` holds; fail after SOON seconds."""
    async with asyncio.timeout(SOON):
        while not condition():  # noqa: ASYNC110 (a receiver's record has no event to wait on)
            await asyncio.sleep(0.01)


async def until_status(engine: AsyncEngine, pk: int, status: str) -> None:
    """Wait until event `pk` has `status` (its attempt recorded); fail after SOON seconds."""
    async with asyncio.timeout(SOON):
        while (await load_event(engine, pk)).status != status:  # noqa: ASYNC110 (a row)
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(worker: Worker, *, grace_seconds: float = 0.1) -> AsyncIterator[None]:
    """`worker.run` in a task for the block, stopped (and awaited) at its end."""
    task = asyncio.create_task(worker.run(grace_seconds=grace_seconds))
    try:
        yield
    finally:
        worker.stop()
        await asyncio.wait_for(task, SOON)
