"""The delivery worker: claims due webhook events, sends them, records every attempt.

Run as `integration-api worker` (any number of them against one PostgreSQL database), or
embedded in `serve` (WEBHOOK_WORKER=embedded, the default: one worker in the API process, so
that `make run` delivers with nothing else to start). The outbox (gql_api.webhooks.outbox)
decides everything in the database; a worker only holds leases, never state that must survive.

Concurrency is bounded per process (WEBHOOK_WORKER_CONCURRENCY) and per receiver host
(WEBHOOK_WORKER_PER_HOST_CONCURRENCY): events bound for a host at its limit wait, and their
settings (store, module version, mode) are passed over while it stays full, so one slow
receiver cannot occupy every slot, nor hold up another URL of the same store. Stopping:
the worker stops claiming, waits up to `grace_seconds` for what it holds, then releases the
leases of attempts still running (another worker takes them over).

A host at its limit may also have as many claims *ready* (leased, signed, recorded as
unfinished attempts, not yet sent): each is sent the moment one of that host's attempts ends,
while the next cycle records the ended ones and claims again. Without them, a receiver's
connections sat idle through every cycle (its statements' round trips: with PostgreSQL the
worker waited a sixth of its time; bench drains: 0.39-0.43 of the httpx floor, 0.43-0.50 with
them). Ready claims take none of the slots (WEBHOOK_WORKER_CONCURRENCY and the merchant's share
count attempts being sent): they replace an ended attempt of their own host, and only on a
host sending for their merchant alone, so no limit on attempts in flight is exceeded; never an
event's last attempt nor a resend (see outbox.claim_due). A stopping worker hands them back
uncounted (outbox.unclaim): they were never sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from db.clock import database_now
from db.engine import Tx
from gql_api.metrics import Metrics
from gql_api.mutations import run_unit
from gql_api.security.encryption import Encryptor
from gql_api.settings import Settings
from gql_api.webhooks import outbox, upkeep
from gql_api.webhooks.addresses import RESOLVE_TIMEOUT_SECONDS, IPNetwork, parse_networks
from gql_api.webhooks.events import EventStatus
from gql_api.webhooks.sender import (
    DEADLINE_MARGIN_SECONDS,
    Connections,
    DeliveryResult,
    Limits,
    check_and_send,
)

logger = logging.getLogger("gql_api.webhooks.worker")

HOUSEKEEPING_SECONDS = 15.0  # backlog gauges
PRUNE_SECONDS = 60.0  # retention, one small batch at a time
PASSED_OVER_SECONDS = 30.0  # how long a setting bound for a full host is not looked at
SHUTDOWN_GRACE_SECONDS = 10.0
PRUNE_BUDGET_SECONDS = 5.0
# How long an ended attempt may wait for the others in flight, so that one transaction records
# them all and the claim after them leases several events: the attempts sent together then
# stay together (with a shorter wait they drift into batches of one or two). A fast receiver
# answers within this; a slow one delays the recording of the others by this much at most.
COALESCE_SECONDS = 0.01


def _add(counts: dict[Any, int], key: Any, step: int) -> None:
    left = counts.get(key, 0) + step
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def status_class(result: DeliveryResult) -> str:
    if result.status_code is None:
        return "none"
    return f"{result.status_code // 100}xx"


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int
    per_host_limit: int
    poll_seconds: float
    retention: timedelta
    limits: Limits
    allowed: tuple[IPNetwork, ...]
    schedule_minutes: tuple[float, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            concurrency=settings.webhook_worker_concurrency,
            per_host_limit=settings.webhook_worker_per_host_concurrency,
            poll_seconds=settings.webhook_worker_poll_seconds,
            retention=timedelta(days=settings.webhook_delivery_retention_days),
            limits=Limits(
                connect_seconds=settings.webhook_connect_timeout_seconds,
                read_seconds=settings.webhook_read_timeout_seconds,
                response_max_bytes=settings.webhook_response_max_bytes,
            ),
            allowed=parse_networks(settings.webhook_allowed_networks),
            schedule_minutes=tuple(settings.webhook_retry_schedule_minutes),
        )

    @property
    def per_merchant_limit(self) -> int:
        """At most half the slots (never fewer than one host's) for one merchant's receivers,
        however many names or hosts they use: one merchant's tarpit cannot take them all."""
        return max(self.per_host_limit, self.concurrency // 2)

    @property
    def attempt_time(self) -> timedelta:
        """The most one attempt can take: resolving, connecting, reading, the deadline's margin."""
        limits = self.limits
        seconds = RESOLVE_TIMEOUT_SECONDS + limits.connect_seconds + limits.read_seconds
        return timedelta(seconds=seconds + DEADLINE_MARGIN_SECONDS)

    @property
    def lease(self) -> timedelta:
        """Longer than any one attempt can take, so a live worker never loses a lease it still
        uses."""
        return self.attempt_time + timedelta(seconds=outbox.LEASE_MARGIN_SECONDS)

    @property
    def ready_lease(self) -> timedelta:
        """A ready claim's: it waits for one of its host's attempts, then makes its own."""
        return self.lease + self.attempt_time


class Worker:
    """One delivery worker. Times come from the database's clock (db.clock), which every
    process agrees on; `clock` and `rng` are there for tests (a controllable clock: no
    real waiting for the retry schedule)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        encryptor: Encryptor,
        metrics: Metrics,
        config: WorkerConfig,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.encryptor = encryptor
        self.metrics = metrics
        self.config = config
        self.clock = clock
        self.policy = outbox.RetryPolicy(config.schedule_minutes, rng or random.Random())  # noqa: S311 (jitter)
        self._wakeup = asyncio.Event()
        self._stopped = asyncio.Event()
        self.listening = asyncio.Event()  # PostgreSQL: notified of every publish (see _listen)
        self._stopping = False
        # Attempts being sent, and those sent but not yet recorded (the next cycle records
        # them): both hold their lease, and their slot towards the host and merchant.
        self._sending: dict[asyncio.Task[DeliveryResult], outbox.Claim] = {}
        self._finished: list[tuple[outbox.Claim, DeliveryResult]] = []
        # Claims waiting for their host's next free connection, by host (see the module).
        # A ready claim's host always has attempts being sent (per_host_limit of them when it
        # was queued): the end of each sends the next ready claim (_sent).
        self._ready: dict[str, collections.deque[outbox.Claim]] = {}
        self._ready_count = 0
        self._host_sending: dict[str, int] = {}  # attempts being sent (not yet ended), by host
        # When each attempt was sent, and when the oldest attempt not yet recorded ended:
        # a cycle waits (COALESCE_SECONDS) only for attempts sent before that one ended.
        self._sent_at: dict[asyncio.Task[DeliveryResult], float] = {}
        self._first_end: float | None = None
        self._claimed = 0
        self._host_in_flight: dict[str, int] = {}
        self._merchant_in_flight: dict[int, int] = {}
        self._passed_over: dict[outbox.SettingKey, tuple[str, float]] = {}  # -> (host, until)
        self._connections = Connections(per_pool=config.per_host_limit)

    def wake(self) -> None:
        """Look for due events now rather than at the next poll (an event was just published)."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wakeup.set()

    async def run(self, *, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Deliver until stop(); then finish or release what is held."""
        listening = None
        if self.engine.dialect.name == "postgresql":
            listening = asyncio.create_task(self._listen(), name="webhook-worker-listen")
        try:
            await self._deliver(grace_seconds)
        finally:
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)

    async def _listen(self) -> None:
        """PostgreSQL: wake on every publish's NOTIFY (outbox.DUE_CHANNEL), on a connection of
        its own, re-established after a loss; an idle worker then claims a new event at once
        rather than at its next poll. The poll goes on meanwhile: a notification lost (the
        connection down) delays an event by one poll interval at most."""
        while not self._stopping:
            try:
                async with self.engine.connect() as connection:
                    raw = await connection.get_raw_connection()
                    driver: Any = raw.driver_connection
                    lost = asyncio.Event()

                    def notified(*_: object) -> None:
                        self.wake()

                    await driver.add_listener(outbox.DUE_CHANNEL, notified)
                    driver.add_termination_listener(lambda *_, ended=lost: ended.set())
                    try:
                        self.listening.set()
                        self.wake()  # what was published before listening began
                        await lost.wait()
                    finally:  # the connection goes back to the pool: it must not listen on
                        with contextlib.suppress(Exception):
                            await driver.remove_listener(outbox.DUE_CHANNEL, notified)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a while: the poll goes on
                logger.warning("webhook worker could not listen for new events", exc_info=True)
            self.listening.clear()
            await asyncio.sleep(self.config.poll_seconds)

    async def _deliver(self, grace_seconds: float) -> None:
        """The loop that records ended attempts and claims due events, and waits for nothing
        else: housekeeping (the backlog gauges; the retention prune, up to
        PRUNE_BUDGET_SECONDS of small write transactions) runs in a task of its own. An ended
        attempt is thus recorded within COALESCE_SECONDS and one cycle (on SQLite, behind one
        prune batch's write lock at most), well inside the lease's LEASE_MARGIN_SECONDS: a
        recording that waited for housekeeping could find its lease taken over, the event sent
        again by another worker (or EXHAUSTED) and the receiver's answer discarded."""
        housekeeping: asyncio.Task[None] | None = None
        next_housekeeping = next_prune = 0.0
        try:
            while not self._stopping:
                now = time.monotonic()
                if housekeeping is None or housekeeping.done():
                    backlog, prune = now >= next_housekeeping, now >= next_prune
                    if backlog:
                        next_housekeeping = now + HOUSEKEEPING_SECONDS
                    if prune:
                        next_prune = now + PRUNE_SECONDS
                    if backlog or prune:
                        housekeeping = asyncio.create_task(
                            self._housekeep(backlog=backlog, prune=prune),
                            name="webhook-worker-housekeeping",
                        )
                claimed_all = False
                try:
                    if self._finished and self._sending:  # record attempts ending together
                        await self._coalesce()
                    self._wakeup.clear()  # what this cycle takes in needs no further cycle
                    claimed_all = await self._cycle(claim=True)
                except Exception:  # the database may be away for a while: keep trying
                    logger.exception(
                        "webhook worker cycle failed; retrying after the poll interval"
                    )
                    with contextlib.suppress(TimeoutError):  # attempts ending do not cut it short
                        await asyncio.wait_for(self._stopped.wait(), self.config.poll_seconds)
                    continue
                if claimed_all or self._finished:
                    continue  # more may be due at once, or attempts ended meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self.config.poll_seconds)
                self._wakeup.clear()
            await self._shut_down(grace_seconds)
        finally:
            if housekeeping is not None:  # once stopping, it stops between prune batches
                if not self._stopping:
                    housekeeping.cancel()
                await asyncio.gather(housekeeping, return_exceptions=True)

    async def _housekeep(self, *, backlog: bool, prune: bool) -> None:
        try:
            if backlog:
                await self._update_backlog()
            if prune:
                await self._prune()
        except Exception:  # the database may be away for a while: the next round tries again
            logger.exception("webhook worker housekeeping failed")

    async def deliver_due(self) -> int:
        """One round: claim what is due by `clock` (up to the concurrency), send it all and wait
        for every attempt to be recorded. Returns how many attempts were made (for tests and
        `integration-api worker --once`)."""
        free = self.config.concurrency - len(self._sending)
        claimed = await self._claim_only(free) if free > 0 else 0
        await self.wait_idle()
        await self._connections.aclose()  # a round ends: keep no connection to the next
        return claimed

    async def wait_idle(self) -> None:
        """Until every attempt sent has been recorded."""
        while self._sending or self._finished:
            if self._sending:
                await asyncio.wait(list(self._sending))
            await self._cycle(claim=False)

    async def _now(self, db: AsyncSession) -> datetime:
        return self.clock() if self.clock is not None else await database_now(db)

    async def _claim_only(self, free: int) -> int:
        await self._cycle(claim=True, limit=free)
        return self._claimed

    async def _cycle(self, *, claim: bool, limit: int | None = None) -> bool:
        """Record the attempts that ended since the last cycle and claim due events for the
        slots they and the others left free, in one write transaction (none when nothing ended
        and nothing is due). Attempts that end close together are thus recorded together, and
        the claim after them leases several events at once. Returns whether every free slot
        was filled (more may be due at once).

        A receiver's answer is never thrown away by a failed claim: when the transaction
        fails, the ended attempts are recorded in one of their own, and when that fails too
        they stay in `_finished` (holding their slots) for the next cycle; the error is then
        raised. Dropped, their leases would run out and the same webhook-id would be sent
        again, or the event marked EXHAUSTED, although the receiver had answered."""
        finished, self._finished = self._finished, []
        self._first_end = None
        for item, _result in finished:  # their slots are free for this cycle's claim
            _add(self._host_in_flight, item.request.host, -1)
            _add(self._merchant_in_flight, item.merchant_pk, -1)
        free = self.config.concurrency - len(self._sending)
        if limit is not None:
            free = min(free, limit)
        self._claimed = 0
        if not claim or self._stopping:
            free = 0
        if not finished and free <= 0:
            return False
        monotonic = time.monotonic()
        passed_over = {
            setting
            for setting, (host, until) in self._passed_over.items()
            if until > monotonic and self._host_full(host)
        }
        self._passed_over = {s: v for s, v in self._passed_over.items() if v[1] > monotonic}
        capacity = outbox.Capacity(
            host_in_flight=self._host_in_flight,
            per_host_limit=self.config.per_host_limit,
            merchant_in_flight=self._merchant_in_flight,
            per_merchant_limit=self.config.per_merchant_limit,
            host_ready={host: len(queue) for host, queue in self._ready.items()},
            ready_per_host=self.config.per_host_limit,
            ready_limit=0 if limit is not None else self._ready_room(),
            ready_lease=self.config.ready_lease,
            host_merchants=self._host_merchants(),
        )
        at: datetime | None = None

        async def unit(tx: Tx) -> tuple[list[outbox.Outcome], outbox.ClaimResult]:
            nonlocal at
            # With attempts to record, finish_many reads the clock (PostgreSQL: with the
            # events it locks, a round trip fewer); otherwise it is read here, for any_due.
            now: datetime | None = self.clock() if self.clock is not None else None
            if not finished:
                now = now or await self._now(tx.db)
                if not await outbox.any_due(tx.db, now, passed_over):
                    return [], outbox.ClaimResult()  # idle: no write lock taken to learn it
            # Short (SQLite: run on the loop's thread under the write lock, no trip to the
            # connection's thread each) unless settings are passed over: every statement is
            # then a lookup by key, a batch of at most `concurrency` rows, or the candidates
            # read along the due index, past at most the events leased (bounded by the
            # workers' concurrency). Settings passed over may leave a long run of due events
            # to read past (a slow host's backlog): that read must not stop the loop.
            async with tx.write(short=not passed_over) as db:
                states: list[outbox.EventState] = []  # written with the claim's
                outcomes = await outbox.finish_many(
                    db=db, finished=finished, now=now, policy=self.policy, unwritten=states
                )
                at = now = outcomes.now
                claimed = outbox.ClaimResult()
                if free > 0:
                    claimed = await outbox.claim_due(
                        db=db,
                        encryptor=self.encryptor,
                        now=now,
                        limit=free,
                        lease=self.config.lease,
                        capacity=capacity,
                        passed_over=passed_over,
                        policy=self.policy,
                        finished=states,
                    )
                else:
                    await outbox.write_states(db, states)
                return outcomes, claimed

        try:
            async with self.session_factory() as session:
                outcomes, result = await run_unit(session, self.engine, unit)
        except BaseException as error:
            if not isinstance(error, Exception):  # cancelled: recorded by a later cycle, if any
                self._keep(finished)
                raise
            if not finished:
                raise
            logger.exception(
                "webhook worker cycle failed; recording its ended attempts on their own",
                extra={"count": len(finished)},
            )
            outcomes, at = await self._record(finished)
            result = outbox.ClaimResult()
        for (item, sent), outcome in zip(finished, outcomes, strict=True):
            self._count(item, sent, outcome, at)
        if result.skipped:
            self.metrics.webhook_messages.labels(outcome="skipped").inc(result.skipped)
        if result.exhausted:
            self.metrics.webhook_messages.labels(outcome="exhausted").inc(result.exhausted)
        for setting, host in result.passed_over.items():
            self._passed_over[setting] = (host, monotonic + PASSED_OVER_SECONDS)
        for item in result.claims:
            if self._host_sending.get(item.request.host, 0) < self.config.per_host_limit:
                self._send(item)
            else:  # sent when one of its host's attempts ends (_sent)
                self._ready.setdefault(item.request.host, collections.deque()).append(item)
                self._ready_count += 1
        self._claimed = len(result.claims)
        return free > 0 and self._claimed >= free

    async def _record(
        self, finished: list[tuple[outbox.Claim, DeliveryResult]]
    ) -> tuple[list[outbox.Outcome], datetime]:
        """Record ended attempts in a transaction of their own; when that fails, put them
        back in `_finished` (their slots taken again) for the next cycle, and raise."""

        async def unit(tx: Tx) -> tuple[list[outbox.Outcome], datetime]:
            now = await self._now(tx.db)
            async with tx.write() as db:
                outcomes = await outbox.finish_many(
                    db=db, finished=finished, now=now, policy=self.policy
                )
            return outcomes, now

        try:
            async with self.session_factory() as session:
                return await run_unit(session, self.engine, unit)
        except BaseException:
            self._keep(finished)
            raise

    def _keep(self, finished: list[tuple[outbox.Claim, DeliveryResult]]) -> None:
        """Ended attempts not recorded: back in `_finished`, first, with their slots (their
        leases are held until they are recorded)."""
        for item, _result in finished:
            _add(self._host_in_flight, item.request.host, 1)
            _add(self._merchant_in_flight, item.merchant_pk, 1)
        if finished and self._first_end is None:
            self._first_end = time.monotonic()
        self._finished[:0] = finished

    def _host_merchants(self) -> dict[str, frozenset[int]]:
        """The merchants whose attempts each host is being sent (see outbox.Capacity)."""
        found: dict[str, set[int]] = {}
        for item in self._sending.values():
            found.setdefault(item.request.host, set()).add(item.merchant_pk)
        return {host: frozenset(merchants) for host, merchants in found.items()}

    def _ready_room(self) -> int:
        """How many more claims may be made ready: room on the hosts now at their limit (a claim
        reads a few candidates per claim it may make; reading for hosts that may not become
        full would cost every cycle), and no more than WEBHOOK_WORKER_CONCURRENCY in all."""
        limit = self.config.per_host_limit
        room = sum(
            limit - len(self._ready.get(host, ()))
            for host, held in self._host_in_flight.items()
            if held >= limit
        )
        return max(0, min(room, self.config.concurrency - self._ready_count))

    def _host_full(self, host: str) -> bool:
        """Nothing more can be claimed for `host`: at its limit, with as many claims ready."""
        limit = self.config.per_host_limit
        return (
            self._host_in_flight.get(host, 0) >= limit and len(self._ready.get(host, ())) >= limit
        )

    def _send(self, item: outbox.Claim) -> None:
        """Send a claimed attempt now; it holds its slot until it is recorded."""
        _add(self._host_in_flight, item.request.host, 1)
        _add(self._merchant_in_flight, item.merchant_pk, 1)
        _add(self._host_sending, item.request.host, 1)
        task = asyncio.create_task(self._attempt(item), name=f"webhook-event-{item.event_pk}")
        self._sending[task] = item
        self._sent_at[task] = time.monotonic()
        task.add_done_callback(self._sent)

    async def _coalesce(self) -> None:
        """Wait up to COALESCE_SECONDS for the attempts sent before the oldest unrecorded one
        ended (not for those sent since, from the ready claims: they are the next batch)."""
        first_end = self._first_end if self._first_end is not None else time.monotonic()
        together = [task for task, sent in self._sent_at.items() if sent <= first_end]
        if together:
            await asyncio.wait(together, timeout=COALESCE_SECONDS)

    def _sent(self, task: asyncio.Task[DeliveryResult]) -> None:
        """An attempt's request ended: it is recorded by the next cycle (its slot stays taken
        until then: the lease is held until the attempt is recorded), and its host's next
        ready claim, if any, is sent at once."""
        item = self._sending.pop(task, None)
        self._sent_at.pop(task, None)
        if item is None:
            return
        _add(self._host_sending, item.request.host, -1)
        if not task.cancelled():
            if not self._finished:
                self._first_end = time.monotonic()
            self._finished.append((item, task.result()))
        else:  # cancelled at shutdown: its lease is released
            _add(self._host_in_flight, item.request.host, -1)
            _add(self._merchant_in_flight, item.merchant_pk, -1)
        ready = self._ready.get(item.request.host)
        if ready and not self._stopping:
            self._ready_count -= 1
            self._send(ready.popleft())
            if not ready:
                del self._ready[item.request.host]
        self._wakeup.set()

    async def _attempt(self, item: outbox.Claim) -> DeliveryResult:
        request = item.request
        try:
            return await check_and_send(
                request.url,
                require_https=request.require_https,
                headers=request.headers,
                body=request.body,
                allowed=self.config.allowed,
                limits=self.config.limits,
                connections=self._connections,
            )
        except Exception as error:  # recorded as a failed attempt, never left unfinished
            logger.exception("webhook attempt failed unexpectedly", extra={"event": item.event_pk})
            return DeliveryResult(
                request_headers=request.headers,
                status_code=None,
                response_body=None,
                error=f"The request failed: {type(error).__name__}.",
                duration_ms=0,
            )

    def _count(
        self,
        item: outbox.Claim,
        result: DeliveryResult,
        outcome: outbox.Outcome,
        finished_at: datetime | None,
    ) -> None:
        self.metrics.webhook_attempts.labels(
            trigger=item.trigger.value, status_class=status_class(result)
        ).inc()
        if outcome.status in (EventStatus.SUCCEEDED, EventStatus.EXHAUSTED) and (
            outcome.status is EventStatus.EXHAUSTED or outcome.first_success
        ):
            self.metrics.webhook_messages.labels(outcome=outcome.status.value.lower()).inc()
        if outcome.first_success and finished_at is not None:
            latency = (finished_at - item.published_at).total_seconds()
            self.metrics.webhook_delivery_latency.observe(max(0.0, latency))

    async def _update_backlog(self) -> None:
        async with self.session_factory() as session:
            found = await upkeep.backlog(session, await self._now(session))
            await session.rollback()
        self.metrics.webhook_due_backlog.set(found.due)
        self.metrics.webhook_oldest_due_seconds.set(found.oldest_due_seconds)

    async def _prune(self) -> None:
        """Delete what is past the retention, a small batch per transaction, for at most
        PRUNE_BUDGET_SECONDS a cycle: enough to keep up with any sustained event rate without
        holding the database's write lock (SQLite) for long at a time."""
        removed = 0
        deadline = time.monotonic() + PRUNE_BUDGET_SECONDS

        async def prune(tx: Tx) -> upkeep.Pruned:
            older_than = await self._now(tx.db) - self.config.retention
            async with tx.write() as db:
                return await upkeep.prune(db=db, older_than=older_than)

        while True:
            async with self.session_factory() as session:
                pruned = await run_unit(session, self.engine, prune)
            removed += pruned.removed
            if not pruned.more or time.monotonic() >= deadline or self._stopping:
                break
        if removed:
            logger.info("pruned old webhook events and attempts", extra={"rows": removed})

    async def _shut_down(self, grace_seconds: float) -> None:
        try:
            await self._give_back(grace_seconds)
        finally:
            await self._connections.aclose()

    async def _give_back(self, grace_seconds: float) -> None:
        """Wait up to `grace_seconds` for the attempts being sent, record those that ended,
        and release the leases of the others (another worker takes them over)."""
        held: list[outbox.Claim] = []
        ready = [claim for queue in self._ready.values() for claim in queue]
        self._ready, self._ready_count = {}, 0
        if self._sending:
            _, running = await asyncio.wait(list(self._sending), timeout=grace_seconds)
            held = [self._sending[task] for task in running if task in self._sending]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        if self._finished:
            with contextlib.suppress(Exception):  # logged by the cycle; the leases run out
                await self._cycle(claim=False)
        if held or ready:

            async def release(tx: Tx) -> int:
                async with tx.write() as db:
                    undone = await outbox.unclaim(db=db, claims=ready)
                    return undone + await outbox.release(db=db, claims=held)

            try:
                async with self.session_factory() as session:
                    released = await run_unit(session, self.engine, release)
                logger.info("released unfinished webhook attempts", extra={"count": released})
            except Exception:  # their leases run out instead
                logger.exception("could not release webhook leases at shutdown")
