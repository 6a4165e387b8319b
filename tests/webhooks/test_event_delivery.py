"""Delivery of webhook events: PortOne's retry schedule, what counts as received, Retry-After,
and receivers that fail in every way, each attempt recorded and the event retried.

The worker runs on a FakeClock with a seeded (or longest) jitter: no test waits for the
schedule. Every request a receiver gets is verified with `standardwebhooks` and PortOne's SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.settings import Settings
from gql_api.webhooks.events import rfc3339
from tests.factories import seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
    FakeClock,
    LongestJitter,
    assert_signed,
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    published,
    receiving,
)
from tests.webhooks.helpers import save_setting
from tests.webhooks.receiver import Receivers, unused_loopback_port

PORTONE_STEPS_MINUTES = (1, 4, 16, 64, 256)


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


@pytest.fixture
async def owner(db_engine: AsyncEngine) -> SignedUp:
    return (await seed_merchant(db_engine, roles=(), stores=())).owner


# --- the schedule ----------------------------------------------------------------------------


async def test_each_retry_waits_at_most_its_step_then_the_event_is_exhausted(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given a receiver that always fails, and jitter that always draws the longest delay
    receiver, secret = await receiving(api, owner, receiver_pool, status=500)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, rng=LongestJitter())
    attempted_at = [clock.now]

    # when the first attempt is made at once, and each retry when due
    assert await worker.deliver_due() == 1
    for step in PORTONE_STEPS_MINUTES:
        event = await load_event(db_engine, pk)
        assert event.status == "RETRYING"
        assert event.next_attempt_at == clock.now + timedelta(minutes=step)
        clock.advance(minutes=step, seconds=-1)
        assert await worker.deliver_due() == 0  # not due a second early
        clock.advance(seconds=1)
        assert await worker.deliver_due() == 1
        attempted_at.append(clock.now)

    # then six attempts were made in all, and the event is exhausted with the last error
    event = await load_event(db_engine, pk)
    assert event.status == "EXHAUSTED"
    assert event.next_attempt_at is None
    assert event.locked_until is None
    assert event.attempt_count == 6
    attempts = await load_attempts(db_engine, pk)
    assert [a.attempt_number for a in attempts] == [1, 2, 3, 4, 5, 6]
    assert {a.trigger for a in attempts} == {"EVENT"}
    assert [a.attempted_at for a in attempts] == attempted_at
    assert all(a.status_code == 500 and not a.succeeded for a in attempts)
    assert attempts[-1].error is not None
    assert "HTTP 500" in attempts[-1].error
    assert event.status_reason == attempts[-1].error
    clock.advance(days=30)
    assert await worker.deliver_due() == 0
    # and every attempt carried the same webhook-id, signed at the time it was sent
    assert len(receiver.requests) == 6
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event.message_id}
    assert [int(r.headers["webhook-timestamp"]) for r in receiver.requests] == [
        int(moment.timestamp()) for moment in attempted_at
    ]
    assert_signed(receiver.requests, secret)


async def test_full_jitter_draws_each_delay_between_zero_and_its_step(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given a failing receiver and a seeded jitter
    receiver, secret = await receiving(api, owner, receiver_pool, status=500)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, rng=random.Random(2024))  # noqa: S311 (a test's jitter)
    assert await worker.deliver_due() == 1

    delays = []
    for step in PORTONE_STEPS_MINUTES:
        # then the next attempt lies between the failed one and its step
        event = await load_event(db_engine, pk)
        assert event.next_attempt_at is not None
        delay = event.next_attempt_at - clock.now
        assert timedelta(0) <= delay <= timedelta(minutes=step)
        delays.append(delay / timedelta(minutes=step))
        # and it is not due a millisecond before it, due at it
        clock.advance(seconds=delay.total_seconds() - 0.001)
        assert await worker.deliver_due() == 0
        clock.advance(seconds=0.001)
        assert await worker.deliver_due() == 1

    # the delays are drawn, not fixed: neither all at the step nor all at zero
    assert len(set(delays)) == len(delays)
    assert (await load_event(db_engine, pk)).status == "EXHAUSTED"
    assert_signed(receiver.requests, secret)


@pytest.mark.parametrize(
    ("schedule", "waits_seconds"),
    [("0.5, 2", [30, 120]), ("", [])],
    ids=["two-steps", "no-retries"],
)
async def test_a_custom_schedule_sets_the_retries_and_their_number(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    database_url: str,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    schedule: str,
    waits_seconds: list[int],
) -> None:
    # given WEBHOOK_RETRY_SCHEDULE_MINUTES as the environment would give it
    custom = event_settings(database_url, webhook_retry_schedule_minutes=schedule)
    receiver, secret = await receiving(api, owner, receiver_pool, status=503)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, rng=LongestJitter(), settings=custom)

    # when every attempt fails
    assert await worker.deliver_due() == 1
    for wait in waits_seconds:
        event = await load_event(db_engine, pk)
        assert event.next_attempt_at == clock.now + timedelta(seconds=wait)
        clock.advance(seconds=wait)
        assert await worker.deliver_due() == 1

    # then the schedule's end is the event's
    event = await load_event(db_engine, pk)
    assert event.status == "EXHAUSTED"
    assert event.attempt_count == 1 + len(waits_seconds)
    clock.advance(days=1)
    assert await worker.deliver_due() == 0
    assert len(receiver.requests) == 1 + len(waits_seconds)
    assert_signed(receiver.requests, secret)


# --- what counts as received -----------------------------------------------------------------


async def test_500_then_200_sends_the_same_message_twice_and_succeeds(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given a receiver failing once
    receiver, secret = await receiving(api, owner, receiver_pool, status=500, body=b"oops")
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)
    assert await worker.deliver_due() == 1

    # when it answers 200 to the retry
    receiver.status, receiver.body = 200, b"thanks"
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1

    # then the event succeeded on its second attempt, with the same webhook-id and body
    event = await load_event(db_engine, pk)
    assert event.status == "SUCCEEDED"
    assert (event.attempt_count, event.next_attempt_at, event.status_reason) == (2, None, None)
    assert event.succeeded_at == clock.now
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.message_id
    assert first.body == second.body
    failed, succeeded = await load_attempts(db_engine, pk)
    assert (failed.attempt_number, failed.status_code, failed.succeeded) == (1, 500, False)
    assert failed.response_body == "oops"
    assert (succeeded.attempt_number, succeeded.status_code, succeeded.succeeded) == (2, 200, True)
    assert (succeeded.response_body, succeeded.error) == ("thanks", None)
    assert succeeded.trigger == "EVENT"
    assert succeeded.request_body == second.text
    clock.advance(days=1)
    assert await worker.deliver_due() == 0
    assert_signed(receiver.requests, secret)


@pytest.mark.parametrize("status", [201, 204])
async def test_only_200_counts_as_received(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    status: int,
) -> None:
    receiver, secret = await receiving(api, owner, receiver_pool, status=status, body=b"")
    pk = await published(client, event_body(owner.representative_store_id))

    assert await make_worker(app, FakeClock()).deliver_due() == 1

    [attempt] = await load_attempts(db_engine, pk)
    assert (attempt.status_code, attempt.succeeded) == (status, False)
    assert attempt.error == f"The receiver answered HTTP {status}; only 200 counts as received."
    assert (await load_event(db_engine, pk)).status == "RETRYING"
    assert_signed(receiver.requests, secret)


@pytest.mark.parametrize(
    ("status", "retry_after", "wait_seconds"),
    [
        (429, "30", 30),
        (503, "30", 30),
        (503, "99999", 60),  # capped at the step
        (503, "soon", 60),  # not a delay: the jitter (here the longest) decides
        (500, "30", 60),  # only 429 and 503 are asked to wait
    ],
    ids=["429", "503", "503-capped", "503-unparsable", "500-ignored"],
)
async def test_retry_after_is_honoured_within_the_step(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    status: int,
    retry_after: str,
    wait_seconds: int,
) -> None:
    # given a receiver asking to wait, and jitter that would draw the longest delay
    receiver, secret = await receiving(
        api, owner, receiver_pool, status=status, headers=[("Retry-After", retry_after)]
    )
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, rng=LongestJitter())

    # when
    assert await worker.deliver_due() == 1

    # then
    event = await load_event(db_engine, pk)
    assert event.next_attempt_at == clock.now + timedelta(seconds=wait_seconds)
    if wait_seconds:
        clock.advance(seconds=wait_seconds - 1)
        assert await worker.deliver_due() == 0
        clock.advance(seconds=1)
    assert await worker.deliver_due() == 1
    assert_signed(receiver.requests, secret)


async def test_retry_after_at_a_later_step_is_capped_by_that_step(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    receiver, secret = await receiving(
        api, owner, receiver_pool, status=429, headers=[("Retry-After", "600")]
    )
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, rng=LongestJitter())

    assert await worker.deliver_due() == 1  # 600 s asked, 1 minute allowed
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1  # 600 s asked, within 4 minutes: 600 s

    event = await load_event(db_engine, pk)
    assert event.next_attempt_at == clock.now + timedelta(minutes=4)
    assert_signed(receiver.requests, secret)


# --- receivers that fail in every way -------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("options", "status_code", "error"),
    [
        ({"hold": True}, None, "No response within 1 s."),
        (
            {"close_without_answer": True},
            None,
            "The connection failed: Server disconnected without sending a response.",
        ),
        ({"status": 500, "body": b"x" * TEN_MB}, 500, "The receiver answered HTTP 500"),
        ({"status": 200, "body": b"x" * TEN_MB}, 200, None),
        (
            {"status": 302, "headers": [("Location", "http://127.0.0.1:1/elsewhere")]},
            302,
            "Redirects are not followed (HTTP 302 to 'http://127.0.0.1:1/elsewhere').",
        ),
        ({"status": 500, "body": b"\x00\x01\xffbinary\x00"}, 500, "The receiver answered HTTP"),
    ],
    ids=["hangs", "resets", "answers-10-MB-500", "answers-10-MB-200", "redirects", "binary"],
)
async def test_a_failing_receiver_is_recorded_and_bounded_and_the_event_retried(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    settings: Settings,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    options: dict[str, object],
    status_code: int | None,
    error: str | None,
) -> None:
    # given
    receiver, secret = await receiving(api, owner, receiver_pool, **options)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)

    # when
    assert await worker.deliver_due() == 1

    # then the attempt is recorded, in words
    [attempt] = await load_attempts(db_engine, pk)
    assert (attempt.trigger, attempt.attempt_number) == ("EVENT", 1)
    assert attempt.status_code == status_code
    assert attempt.url == receiver.url
    assert attempt.duration_ms >= 0
    if error is None:
        assert attempt.succeeded and attempt.error is None
    else:
        assert attempt.error is not None and attempt.error.startswith(error), attempt.error
        assert not attempt.error.endswith(".."), attempt.error
        assert not attempt.succeeded
    if options.get("hold"):
        assert attempt.duration_ms >= 1000  # the read timeout
    # and a large answer is read no further than the cap
    if "body" in options:
        assert attempt.response_body is not None
        assert len(attempt.response_body) <= settings.webhook_response_max_bytes
    # and the event goes on: retried (or done when it was a 200)
    event = await load_event(db_engine, pk)
    assert event.locked_until is None
    if error is None:
        assert event.status == "SUCCEEDED"
        return
    assert event.status == "RETRYING"
    assert event.status_reason == attempt.error
    receiver.hold, receiver.close_without_answer = False, False
    receiver.status, receiver.body, receiver.headers = 200, b"ok", ()
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1
    assert (await load_event(db_engine, pk)).status == "SUCCEEDED"
    assert [a.attempt_number for a in await load_attempts(db_engine, pk)] == [1, 2]
    assert len(receiver.requests) == 2
    assert_signed(receiver.requests, secret)


@contextlib.asynccontextmanager
async def endless_receiver(status: int) -> AsyncIterator[str]:
    """Answers `status`, then streams its body as fast as it is read, for ever."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {1 << 40}\r\n\r\n".encode())
            chunk = b"x" * 65536
            while True:
                writer.write(chunk)
                await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/endless"
    finally:
        server.close()


async def test_an_endless_answer_is_read_up_to_the_cap_and_the_attempt_ends(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    settings: Settings,
    db_engine: AsyncEngine,
    owner: SignedUp,
) -> None:
    async with endless_receiver(500) as url:
        await save_setting(api, owner.token, owner.representative_store_id, url)
        pk = await published(client, event_body(owner.representative_store_id))

        assert await make_worker(app, FakeClock()).deliver_due() == 1

    # the answer was cut at the cap, not at the deadline
    [attempt] = await load_attempts(db_engine, pk)
    assert attempt.status_code == 500
    assert attempt.response_body == "x" * settings.webhook_response_max_bytes
    assert attempt.error == "The receiver answered HTTP 500; only 200 counts as received."
    assert (await load_event(db_engine, pk)).status == "RETRYING"


async def test_a_receiver_nobody_listens_at_is_recorded_and_retried(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
) -> None:
    url = f"http://127.0.0.1:{unused_loopback_port()}/webhooks"
    await save_setting(api, owner.token, owner.representative_store_id, url)
    pk = await published(client, event_body(owner.representative_store_id))

    assert await make_worker(app, FakeClock()).deliver_due() == 1

    [attempt] = await load_attempts(db_engine, pk)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("Could not connect")
    assert not attempt.error.endswith("..")
    assert (await load_event(db_engine, pk)).status == "RETRYING"


async def test_the_body_timestamp_is_the_publish_time_on_every_attempt(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    receiver, secret = await receiving(api, owner, receiver_pool, status=500)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, rng=LongestJitter())
    assert await worker.deliver_due() == 1
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1

    event = await load_event(db_engine, pk)
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert f'"timestamp":"{rfc3339(event.published_at)}"' in first.text
    assert_signed(receiver.requests, secret)
