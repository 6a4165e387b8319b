"""Helpers of the webhook event tests: a platform token, a controllable clock, a worker bound
to the test's app, events to publish."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from db.types import utcnow
from gql_api.context import AppState
from gql_api.settings import Settings
from gql_api.webhooks.worker import Worker, WorkerConfig
from tests.conftest import make_settings

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
    app: Starlette, clock: FakeClock | None = None, *, seed: int = 7, **config: Any
) -> Worker:
    state = state_of(app)
    base = WorkerConfig.from_settings(state.settings)
    worker_config = WorkerConfig(**{**base.__dict__, **config})
    return Worker(
        engine=state.engine,
        session_factory=state.session_factory,
        encryptor=state.encryptor,
        metrics=state.metrics,
        config=worker_config,
        clock=clock or utcnow,
        rng=random.Random(seed),
    )


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
