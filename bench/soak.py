"""`make soak`: a mixed workload against `serve --workers 2` and a delivery worker on PostgreSQL.

What runs (all on 127.0.0.1, every process real):

- a throwaway PostgreSQL (tests/pg_server.py, as `BENCH_DB=postgresql make bench` starts one),
  migrated and seeded through the service layer: the dashboard merchant of bench/seed.py with
  SOAK_SUB_STORES (2) sub-stores, 20 channels each, every webhook setting, a representative-store
  API secret; and bench/delivery.py's merchant whose V2 TEST webhook goes to the receiver, with
  one signing secret;
- `integration-api serve --workers 2` with WEBHOOK_WORKER=off, one `integration-api worker`,
  and the receiver of bench/receiver.py (answers 200 at once, records every request);
- production settings: APP_ENV=production, METRICS_TOKEN set, WEBHOOK_ALLOWED_NETWORKS=
  127.0.0.1/32 with WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION=true (the receiver is on loopback),
  PLATFORM_EVENT_TOKENS for `POST /internal/events`; everything else at its default.

The load: SOAK_CLIENTS (32) clients in one asyncio process (httpx), each in a closed loop for
SOAK_SECONDS (60), drawing its next operation at random by MIX: the dashboard query of
bench/run.py (session), `channelUpdate` of a channel only that client writes (session; each
write remembered with the name written and, when acknowledged, the version answered), the
README's store-and-channels query with `Authorization: PortOne <secret>`, and an event
published to `POST /internal/events` (each accepted event remembered with its publish time).

The checks, after the load (exit 1 when one fails, 2 when the soak could not run):

- no HTTP 5xx, no `INTERNAL` GraphQL error, no request without an answer;
- no lost write: each channel, read back, holds its last acknowledged write (or a later write
  whose answer never came);
- no lost event: the receiver gets every accepted event (waiting until none arrives for
  STALL_SECONDS), each signature verified with the `standardwebhooks` package; an event
  received twice counts as a duplicate, allowed only with the same `webhook-id`;
- stable memory: VmRSS of each serving process (the two uvicorn workers and the delivery
  worker), sampled every second: the mean of the last 10 s within 10 % of the mean of the first
  10 s after a 10-second warm-up (not judged in a run shorter than 30 s); no serving process
  replaced during the run.

Printed, and written to bench/soak-results.md (a shortened run: bench/out/soak-results.md):
p50/p99 per operation over the requests started after the warm-up (the first argon2 verify of
each process, caches filling), event delivery latency, the checks, the CPU each part used and
other work on the machine during the run. Scratch files and server logs go to bench/out/.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# bench/run.py reads BENCH_DB when imported: server log names, the throwaway database.
os.environ["BENCH_DB"] = "postgresql"

import httpx  # noqa: E402

from bench import delivery, seed, workers  # noqa: E402
from bench import run as bench  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "32"))
SUB_STORES = int(os.environ.get("SOAK_SUB_STORES", "2"))
FULL_SECONDS = 60  # a run this long (or longer) replaces bench/soak-results.md
API_WORKERS = 2
MIX = {"dashboard": 0.15, "channelUpdate": 0.35, "secret read": 0.30, "event publish": 0.20}
WINDOW = 10.0  # the warm-up, and each memory window
JUDGED = SECONDS >= 3 * WINDOW  # long enough for a warm-up and two memory windows
MEMORY_TOLERANCE = 0.10
STALL_SECONDS = 60.0
RESULTS = bench.BENCH / "soak-results.md"
ALLOWED_NETWORK = "127.0.0.1/32"

WRITE = """
mutation SoakWrite($input: ChannelUpdateInput!) {
  channelUpdate(input: $input) { channel { id name version } userErrors { field code message } }
}
"""
READ_CHANNEL = "query SoakRead($id: ID!) { node(id: $id) { ... on Channel { id name version } } }"
SECRET_READ = """
query SecretRead($storeId: String!) {
  store(storeId: $storeId) { name channels(first: 10) { edges { node { channelKey type } } } }
}
"""


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class SoakSetup(delivery.Setup):
    """delivery.Setup with production settings for every process it starts."""

    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def env(self, port: int, *, worker: str | None) -> dict[str, str]:
        env = super().env(port, worker=worker)
        env.pop("WEB_CONCURRENCY", None)  # `--workers` says it
        env.update(
            APP_ENV="production",
            METRICS_TOKEN=self.metrics_token,
            WEBHOOK_ALLOWED_NETWORKS=ALLOWED_NETWORK,
            WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION="true",
        )
        return env


# ---- what the clients remember ----------------------------------------------------------------


@dataclass
class ChannelWrites:
    """One channel's writes: only one client writes it, so its version is known to that client."""

    id: str
    version: int
    acknowledged: str | None = None  # the name of the last acknowledged write
    unanswered: list[str] = field(default_factory=list)  # names written since, no answer seen
    count: int = 0  # acknowledged writes
    in_sync: bool = True  # False after a write whose outcome is unknown: read before writing


@dataclass
class Stats:
    origin: float = 0.0  # time.monotonic() when the load started
    # per operation: (when the request started, from origin; seconds to its answer)
    latencies: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {op: [] for op in [*MIX, "read back"]}
    )
    server_errors: Counter[str] = field(default_factory=Counter)  # HTTP 5xx, by operation
    internal: Counter[str] = field(default_factory=Counter)  # GraphQL INTERNAL, by operation
    unanswered: Counter[str] = field(default_factory=Counter)  # transport errors
    refused: Counter[str] = field(default_factory=Counter)  # other errors, by operation: code
    events: dict[str, float] = field(default_factory=dict)  # accepted: publish start
    events_unanswered: int = 0  # published without an answer (may or may not be accepted)


class Load:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api: bench.Server,
        setup: SoakSetup,
        merchant: seed.DashboardMerchant,
        channels: list[ChannelWrites],
    ) -> None:
        self.client, self.api, self.setup = client, api, setup
        self.session = f"Bearer {merchant.owner.token}"
        self.secret = f"PortOne {merchant.api_secret}"
        self.store_id = merchant.owner.representative_store_id
        self.channels = channels
        self.stats = Stats()
        self.sequence = 0
        self.elapsed = float(SECONDS)  # the load's wall time, once it has run

    async def call(
        self, op: str, url: str, body: dict[str, Any], authorization: str
    ) -> httpx.Response | None:
        """POST, timed; 5xx, INTERNAL and transport errors counted. None: no answer."""
        started = time.perf_counter()
        try:
            response = await self.client.post(
                url, json=body, headers={"Authorization": authorization}
            )
        except httpx.HTTPError as error:
            self.stats.unanswered[f"{op}: {type(error).__name__}"] += 1
            return None
        at = time.monotonic() - self.stats.origin
        self.stats.latencies[op].append((at, time.perf_counter() - started))
        if response.status_code >= 500:
            self.stats.server_errors[f"{op}: HTTP {response.status_code}"] += 1
        return response

    def graphql(self, op: str, response: httpx.Response | None) -> dict[str, Any] | None:
        """The `data` of a GraphQL answer without errors; errors counted by code."""
        if response is None or response.status_code >= 500:
            return None
        try:
            body = response.json()
        except ValueError:
            self.stats.refused[f"{op}: HTTP {response.status_code} not JSON"] += 1
            return None
        errors = body.get("errors") or []
        for error in errors:
            code = str((error.get("extensions") or {}).get("code"))
            if code == "INTERNAL":
                self.stats.internal[op] += 1
            else:
                self.stats.refused[f"{op}: {code}"] += 1
        if response.status_code != 200 and not errors:
            self.stats.refused[f"{op}: HTTP {response.status_code}"] += 1
        return None if errors or response.status_code != 200 else body.get("data")

    async def dashboard(self, _: int) -> None:
        answer = await self.call(
            "dashboard", self.api.url, {"query": bench.DASHBOARD}, self.session
        )
        self.graphql("dashboard", answer)

    async def secret_read(self, _: int) -> None:
        body = {"query": SECRET_READ, "variables": {"storeId": self.store_id}}
        self.graphql("secret read", await self.call("secret read", self.api.url, body, self.secret))

    async def channel_update(self, number: int) -> None:
        mine = self.channels[number::CLIENTS]
        if not mine:
            return await self.secret_read(number)
        self.sequence += 1
        channel = mine[self.sequence % len(mine)]
        if not channel.in_sync and not await self.resync(channel):
            return None
        name = f"Soak {number:02d}-{self.sequence:07d}"
        variables = {"input": {"id": channel.id, "version": channel.version, "name": name}}
        body = {"query": WRITE, "variables": variables}
        data = self.graphql(
            "channelUpdate", await self.call("channelUpdate", self.api.url, body, self.session)
        )
        payload = (data or {}).get("channelUpdate") or {}
        if payload.get("channel") and not payload.get("userErrors"):
            channel.acknowledged, channel.unanswered = name, []
            channel.version = int(payload["channel"]["version"])
            channel.count += 1
        elif data is not None:  # refused with userErrors: nothing written
            for error in payload.get("userErrors", []):
                self.stats.refused[f"channelUpdate: {error.get('code')}"] += 1
            channel.in_sync = False
        else:  # no answer, or an error: the write may or may not have happened
            channel.unanswered.append(name)
            channel.in_sync = False
        return None

    async def read_channel(self, channel_id: str) -> dict[str, Any] | None:
        body = {"query": READ_CHANNEL, "variables": {"id": channel_id}}
        data = self.graphql(
            "read back", await self.call("read back", self.api.url, body, self.session)
        )
        return None if data is None else data.get("node")

    async def resync(self, channel: ChannelWrites) -> bool:
        node = await self.read_channel(channel.id)
        if node is None:
            return False
        channel.version, channel.in_sync = int(node["version"]), True
        return True

    async def publish(self, number: int) -> None:
        self.sequence += 1
        payment_id = f"soak-{number:02d}-{self.sequence:07d}"
        body = delivery.event_body(self.setup, payment_id)
        at = time.monotonic()
        response = await self.call(
            "event publish", delivery.intake_url(self.api), body, f"Bearer {self.setup.token}"
        )
        if response is None:
            self.stats.events_unanswered += 1
        elif response.status_code == 202:
            self.stats.events[payment_id] = at
        elif response.status_code < 500:
            self.stats.refused[f"event publish: HTTP {response.status_code}"] += 1

    async def client_loop(self, number: int, deadline: float) -> None:
        operations: dict[str, Callable[[int], Awaitable[None]]] = {
            "dashboard": self.dashboard,
            "channelUpdate": self.channel_update,
            "secret read": self.secret_read,
            "event publish": self.publish,
        }
        draw = random.Random(number)  # noqa: S311 - a workload mix, not a secret
        names, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline:
            await operations[draw.choices(names, weights)[0]](number)


# ---- memory -----------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


class Memory:
    """VmRSS of each serving process, once a second, in a thread of its own (the event loop
    under load would sample late)."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.samples: list[tuple[float, dict[str, int | None]]] = []
        self.origin = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-memory", daemon=True)

    def _run(self) -> None:
        while True:
            at = time.monotonic() - self.origin
            self.samples.append((at, {n: rss_kib(p) for n, p in self.processes.items()}))
            if self._stop.wait(1.0):
                return

    def start(self) -> None:
        self.origin = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, name: str, start: float, end: float) -> float:
        values = [v for t, s in self.samples if start <= t < end and (v := s[name]) is not None]
        return statistics.fmean(values) / 1024 if values else math.nan

    def timeline(self) -> str:
        """Each process's mean VmRSS per WINDOW seconds, in MiB: growth or a plateau at a glance."""
        end = max((t for t, _ in self.samples), default=0.0)
        steps = range(math.ceil(end / WINDOW))
        return "; ".join(
            f"{name} "
            + " ".join(f"{self.window(name, n * WINDOW, (n + 1) * WINDOW):.0f}" for n in steps)
            for name in self.processes
        )

    def exited(self) -> list[str]:
        return sorted({n for _, s in self.samples for n, v in s.items() if v is None})


# ---- results ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


@dataclass
class Check:
    name: str
    result: str
    ok: bool


@dataclass
class Events:
    accepted: int
    received: int  # requests at the receiver
    lost: list[str]
    duplicates: int
    bad_duplicates: list[str]  # events received under more than one webhook-id
    shared_ids: int  # webhook-ids carried by more than one event
    bad_signatures: int
    unexpected: int  # received but never acknowledged (answer lost): allowed
    latencies: list[tuple[float, float]]  # (published at, from the load's start; seconds)
    waited: float


def check_events(
    setup: SoakSetup, records: list[dict[str, Any]], stats: Stats, waited: float
) -> Events:
    from standardwebhooks import Webhook

    verifier = Webhook(setup.secret)
    by_event: dict[str, list[tuple[str, float]]] = {}
    bad_signatures = 0
    for record in records:
        try:
            verifier.verify(record["body"], record["headers"])
        except Exception:  # any failure to verify is counted
            bad_signatures += 1
            continue
        payment_id = str(json.loads(record["body"])["data"]["paymentId"])
        by_event.setdefault(payment_id, []).append(
            (record["headers"]["webhook-id"], float(record["t"]))
        )
    owners: dict[str, set[str]] = {}
    for payment_id, copies in by_event.items():
        for webhook_id, _ in copies:
            owners.setdefault(webhook_id, set()).add(payment_id)
    accepted = stats.events
    return Events(
        accepted=len(accepted),
        received=len(records),
        lost=sorted(set(accepted) - set(by_event)),
        duplicates=sum(len(c) - 1 for c in by_event.values()),
        bad_duplicates=sorted(p for p, c in by_event.items() if len({w for w, _ in c}) > 1),
        shared_ids=sum(1 for events in owners.values() if len(events) > 1),
        bad_signatures=bad_signatures,
        unexpected=len(set(by_event) - set(accepted)),
        latencies=[
            (at - stats.origin, min(t for _, t in by_event[p]) - at)
            for p, at in accepted.items()
            if p in by_event
        ],
        waited=waited,
    )


async def wait_for_events(
    setup: SoakSetup, expected: set[str], worker: delivery.WorkerProcess
) -> tuple[list[dict[str, Any]], float]:
    """The receiver's records once every expected event is there, or once none has arrived
    for STALL_SECONDS; and how long the wait took."""
    started = time.monotonic()
    seen, progress = -1, started
    async with httpx.AsyncClient(timeout=60) as client:
        while True:
            count = int((await client.get(f"{setup.receiver}/_count")).json())
            if count >= len(expected):
                records: list[dict[str, Any]] = (
                    await client.get(f"{setup.receiver}/_records")
                ).json()
                arrived = {str(json.loads(r["body"])["data"]["paymentId"]) for r in records}
                if expected <= arrived:
                    return records, time.monotonic() - started
            if count != seen:
                seen, progress = count, time.monotonic()
            elif time.monotonic() - progress > STALL_SECONDS:
                records = (await client.get(f"{setup.receiver}/_records")).json()
                return records, time.monotonic() - started
            worker.check_alive()
            await asyncio.sleep(0.25)


@dataclass
class Writes:
    acknowledged: int
    channels: int
    lost: list[str]  # "<id>: stored <name> v<version>, acknowledged <name> v<version>"
    unreadable: int


async def read_back(load: Load) -> Writes:
    lost, unreadable = [], 0
    for channel in load.channels:
        node = await load.read_channel(channel.id)
        if node is None:
            unreadable += 1
            continue
        if channel.acknowledged is None and not channel.unanswered:
            continue  # never written
        allowed = {channel.acknowledged, *channel.unanswered}
        stored, version = node["name"], int(node["version"])
        if stored not in allowed or (not channel.unanswered and version != channel.version):
            lost.append(
                f"{channel.id}: stored {stored!r} v{version}, "
                f"acknowledged {channel.acknowledged!r} v{channel.version}"
            )
    return Writes(
        acknowledged=sum(c.count for c in load.channels),
        channels=sum(1 for c in load.channels if c.count),
        lost=lost,
        unreadable=unreadable,
    )


def machine_lines() -> list[str]:
    try:
        lines = bench.machine()
    except FileNotFoundError:  # no wrk (the soak does not use it)
        return [
            f"- Machine: {os.cpu_count()} cores; {platform.platform()}; "
            f"Python {platform.python_version()}"
        ]
    return [lines[0], lines[1].rsplit("; ", 1)[0]]  # without wrk's version


def render(
    *,
    load: Load,
    writes: Writes,
    events: Events,
    memory: Memory,
    checks: list[Check],
    facts: list[str],
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ops = [
        "| operation | requests | req/s | p50 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    rows = {op: load.stats.latencies[op] for op in [*MIX, "read back"]}
    rows["event publish to receipt"] = events.latencies
    for op, timed in rows.items():
        values = [seconds for at, seconds in timed if at >= WINDOW or not JUDGED]
        if not values:
            continue
        rate = f"{len(timed) / load.elapsed:,.1f}" if op in MIX else "-"
        ops.append(
            f"| {op} | {len(timed):,} | {rate} | {percentile(values, 0.5) * 1000:,.0f} ms | "
            f"**{percentile(values, 0.99) * 1000:,.0f} ms** | {max(values) * 1000:,.0f} ms |"
        )
    lines = [
        "# Soak results",
        "",
        "Written by `make soak` (bench/soak.py); replaced by the latest full run.",
        "",
        f"- Date: {now}",
        *machine_lines(),
        f"- Code: {bench.code_version()}",
        *facts,
        "",
        (
            f"Latency from request to answer, over the requests started after the {WINDOW:.0f} s "
            "warm-up (requests and req/s: the whole run):"
            if JUDGED
            else "Latency from request to answer, over the whole run (too short for a warm-up):"
        ),
        "",
        *ops,
        "",
        "| check | result | |",
        "|---|---|---|",
        *(f"| {c.name} | {c.result} | {'PASS' if c.ok else '**FAIL**'} |" for c in checks),
        "",
        "Every check passed."
        if all(c.ok for c in checks)
        else f"Failed: {', '.join(c.name for c in checks if not c.ok)}.",
        "",
    ]
    return "\n".join(lines)


def memory_check(memory: Memory) -> Check:
    if not JUDGED:
        return Check(
            "server memory stable",
            f"not judged: a {SECONDS} s run leaves no room for a {WINDOW:.0f} s warm-up and two "
            f"{WINDOW:.0f} s windows (30 s at least)",
            True,
        )
    first = (WINDOW, 2 * WINDOW)
    end = max((t for t, _ in memory.samples), default=float(SECONDS))
    last = (end - WINDOW, end + 0.5)
    parts, ok = [], True
    for name in memory.processes:
        a, b = memory.window(name, *first), memory.window(name, *last)
        change = b / a - 1
        ok = ok and abs(change) <= MEMORY_TOLERANCE
        parts.append(f"{name} {a:.0f} → {b:.0f} MiB ({change:+.1%})")
    exited = memory.exited()
    if exited:
        ok = False
        parts.append(f"exited: {', '.join(exited)}")
    return Check(
        "server memory stable",
        f"VmRSS mean {first[0]:.0f}-{first[1]:.0f} s → {last[0]:.0f}-{end:.0f} s: "
        + "; ".join(parts)
        + f" (within {MEMORY_TOLERANCE:.0%})",
        ok,
    )


def checks_of(
    load: Load, writes: Writes, events: Events, memory: Memory, replaced: bool
) -> list[Check]:
    stats = load.stats

    def counted(counter: Counter[str]) -> str:
        return ", ".join(f"{n} x {what}" for what, n in counter.most_common()) or "none"

    return [
        Check(
            "no 5xx",
            f"{sum(stats.server_errors.values())} ({counted(stats.server_errors)})",
            not stats.server_errors,
        ),
        Check(
            "no INTERNAL error",
            f"{sum(stats.internal.values())} ({counted(stats.internal)})",
            not stats.internal,
        ),
        Check(
            "every request answered",
            f"{sum(stats.unanswered.values())} without an answer ({counted(stats.unanswered)})",
            not stats.unanswered,
        ),
        Check(
            "no lost write",
            f"{writes.acknowledged:,} acknowledged writes on {writes.channels} channels; "
            f"{len(writes.lost)} lost, {writes.unreadable} unreadable"
            + (f" (e.g. {writes.lost[0]})" if writes.lost else ""),
            not writes.lost and not writes.unreadable,
        ),
        Check(
            "no lost event",
            f"{events.accepted:,} accepted, {len(events.lost)} never received"
            + (f" (e.g. {events.lost[0]})" if events.lost else "")
            + f", {events.bad_signatures} bad signatures, {events.received:,} webhooks received "
            f"in all (all in {events.waited:.1f} s after the load)",
            not events.lost and not events.bad_signatures,
        ),
        Check(
            "duplicates only with the same webhook-id",
            f"{events.duplicates} duplicates; {len(events.bad_duplicates)} events under two "
            f"webhook-ids, {events.shared_ids} webhook-ids shared by two events",
            not events.bad_duplicates and not events.shared_ids,
        ),
        memory_check(memory),
        Check(
            "no serving process replaced",
            "replaced" if replaced else "same pids throughout",
            not replaced,
        ),
    ]


# ---- main -------------------------------------------------------------------------------------


async def seed_all(setup: SoakSetup) -> seed.DashboardMerchant:
    from gql_api.app import create_state

    await delivery.seed_store(setup)
    state = create_state(bench.settings_for(setup.database_url, setup.key, setup.scratch))
    try:
        return await seed.seed_dashboard_merchant(state, sub_stores=SUB_STORES)
    finally:
        await state.engine.dispose()


def channels_of(api: bench.Server, merchant: seed.DashboardMerchant) -> list[ChannelWrites]:
    """Every channel of the dashboard merchant, as its dashboard shows them."""
    session = f"Bearer {merchant.owner.token}"
    data = bench.check(bench.post(api.url, {"query": bench.DASHBOARD}, session), "dashboard")
    store = data["data"]["merchant"]["representativeStore"]
    stores = [store, *(edge["node"] for edge in store["subStores"]["edges"])]
    return [
        ChannelWrites(id=edge["node"]["id"], version=int(edge["node"]["version"]))
        for each in stores
        for edge in each["channels"]["edges"]
    ]


async def first_delivery(
    api: bench.Server, setup: SoakSetup, worker: delivery.WorkerProcess
) -> None:
    """One event published and received before the load: the worker has started (it has no
    health check of its own) and the path works; the receiver then starts empty."""
    async with httpx.AsyncClient(timeout=60) as client:
        problem = await delivery.publish(client, delivery.intake_url(api), setup, "soak-first")
        if problem is not None:
            raise bench.BenchError(f"the first event was refused: {problem}")
        deadline = time.monotonic() + 120
        while int((await client.get(f"{setup.receiver}/_count")).json()) < 1:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise bench.BenchError(f"no webhook received in 120 s; see {worker.log_path}")
            await asyncio.sleep(0.1)
        await client.post(f"{setup.receiver}/_reset")


def server_ticks(
    api: bench.Server, worker: delivery.WorkerProcess, database_roots: Callable[[], list[int]]
) -> dict[str, int]:
    """CPU ticks so far of `serve` (the supervisor and its workers), of the delivery worker and
    of PostgreSQL (a backend that ended meanwhile is not counted: the figure is a floor)."""
    assert api.process is not None and worker.process is not None
    database = sum(sum(workers.process_ticks(root).values()) for root in database_roots())
    return {
        "serve --workers 2": sum(workers.process_ticks(api.process.pid).values()),
        "delivery worker": sum(workers.process_ticks(worker.process.pid).values()),
        "PostgreSQL": database,
    }


async def soak(
    api: bench.Server,
    setup: SoakSetup,
    merchant: seed.DashboardMerchant,
    worker: delivery.WorkerProcess,
    database_roots: Callable[[], list[int]],
) -> int:
    assert api.process is not None and worker.process is not None
    serving = sorted(workers.worker_pids(api.process.pid) - {api.process.pid})
    processes = {f"api worker {n}": pid for n, pid in enumerate(serving, start=1)}
    processes["delivery worker"] = worker.process.pid
    limits = httpx.Limits(max_connections=CLIENTS + 4, max_keepalive_connections=CLIENTS + 4)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        load = Load(
            client=client,
            api=api,
            setup=setup,
            merchant=merchant,
            channels=channels_of(api, merchant),
        )
        memory = Memory(processes)
        log(f"load: {CLIENTS} clients for {SECONDS} s; serving pids {processes}")
        busy_before, cpu_before = workers.machine_busy_ticks(), time.process_time()
        servers_before = server_ticks(api, worker, database_roots)
        with bench.ForeignLoad(database_roots) as foreign:
            memory.start()
            started = load.stats.origin = time.monotonic()
            deadline = started + SECONDS
            await asyncio.gather(*(load.client_loop(n, deadline) for n in range(CLIENTS)))
            elapsed = load.elapsed = time.monotonic() - started
            memory.stop()
        client_cores = (time.process_time() - cpu_before) / elapsed
        machine_cores = (workers.machine_busy_ticks() - busy_before) / workers.TICKS / elapsed
        servers_after = server_ticks(api, worker, database_roots)
        used = {
            what: (ticks - servers_before.get(what, 0)) / workers.TICKS / elapsed
            for what, ticks in servers_after.items()
        }
        replaced = sorted(workers.worker_pids(api.process.pid) - {api.process.pid}) != serving
        log(f"load done in {elapsed:.1f} s; reading back every channel")
        writes = await read_back(load)
    log(f"waiting for {len(load.stats.events):,} events at the receiver")
    records, waited = await wait_for_events(setup, set(load.stats.events), worker)
    events = check_events(setup, records, load.stats, waited)
    statuses = await delivery.event_statuses(setup)
    checks = checks_of(load, writes, events, memory, replaced)
    mean_foreign, worst_foreign = foreign.summary()
    logs = [api.log_path, worker.log_path, bench.OUT / "soak-receiver-postgresql.log"]
    refused = ", ".join(f"{n} x {w}" for w, n in load.stats.refused.most_common()) or "none"
    facts = [
        "- Database: PostgreSQL (throwaway server: fsync=off, synchronous_commit=off)",
        "- Processes: `integration-api serve --workers 2` (WEBHOOK_WORKER=off), one "
        "`integration-api worker`, bench/receiver.py; APP_ENV=production with METRICS_TOKEN, "
        f"WEBHOOK_ALLOWED_NETWORKS={ALLOWED_NETWORK}, WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION=true, "
        "PLATFORM_EVENT_TOKENS; every other setting at its default",
        f"- Load: {CLIENTS} closed-loop clients (one asyncio process, httpx) for {SECONDS} s, "
        "each operation drawn at random: "
        + ", ".join(f"{op} {w:.0%}" for op, w in MIX.items())
        + f"; dashboard: bench/run.py's query on a merchant with {SUB_STORES} sub-stores x "
        f"{seed.CHANNELS_PER_STORE} channels (session); channelUpdate: a new name on a channel "
        "only that client writes (session); secret read: the README's store-and-channels query "
        "with `PortOne <secret>`; event publish: a V2 `Transaction.Paid` to "
        "`POST /internal/events`",
        "- CPU during the load, in cores: "
        + ", ".join(f"{what} {cores:.2f}" for what, cores in used.items())
        + f", the load client {client_cores:.2f}; the whole machine "
        f"{machine_cores:.2f} of {os.cpu_count()}; other work on the machine "
        f"{mean_foreign:.0%} of the CPUs on average (highest second {worst_foreign:.0%})"
        + (
            " (**a busy machine**: throughput and latency are what this API got of it; the "
            "checks hold whatever the load)"
            if mean_foreign > bench.BUSY_LIMIT
            else ""
        ),
        f"- Answers refused as the API intends (not failures): {refused}; events published "
        f"without an answer: {load.stats.events_unanswered}; events in the database by status "
        "(with the one published before the load): "
        f"{statuses}",
        f"- VmRSS in MiB, mean of each {WINDOW:.0f} s of the load: {memory.timeline()}",
        f"- Errors in the server logs: {bench.server_log_errors(logs)}",
    ]
    section = render(
        load=load, writes=writes, events=events, memory=memory, checks=checks, facts=facts
    )
    print(section)
    target = RESULTS if SECONDS >= FULL_SECONDS else bench.OUT / "soak-results.md"
    target.write_text(section, encoding="utf-8")
    log(f"written to {target.relative_to(ROOT)}")
    return 0 if all(c.ok for c in checks) else 1


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.OUT.mkdir(exist_ok=True)
    lock = (bench.OUT / ".lock").open("w")  # the same lock as make bench: never both at once
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise bench.BenchError("make bench or make soak is running (bench/out/.lock)") from None
    from db.migrate import upgrade
    from gql_api.security.encryption import new_key

    scratch = Path(tempfile.mkdtemp(prefix="gql-soak-"))
    dbs = bench.postgres_databases()
    setup = SoakSetup(database_url=dbs.main, key=new_key(), scratch=scratch)
    setup.receiver_port = bench.free_port()
    receiver = bench.Server(
        "soak-receiver",
        [sys.executable, str(bench.BENCH / "receiver.py"), "--port", str(setup.receiver_port)],
        env=dict(os.environ),
        cwd=ROOT,
        port=setup.receiver_port,
    )
    port = bench.free_port()
    api = bench.Server(
        "soak-api",
        [delivery.integration_api(), "serve", "--workers", str(API_WORKERS)],
        env=setup.env(port, worker="off"),
        cwd=scratch,  # no stray .env from the working tree
        port=port,
    )
    worker = delivery.WorkerProcess(setup)
    worker.log_path.write_bytes(b"")
    try:
        log(f"migrating and seeding ({SUB_STORES} sub-stores)")
        upgrade(dbs.main)
        receiver.start()
        merchant = asyncio.run(seed_all(setup))
        api.start()
        workers.wait_for_workers(api, API_WORKERS)
        worker.start()
        asyncio.run(first_delivery(api, setup, worker))
        return asyncio.run(soak(api, setup, merchant, worker, dbs.roots))
    finally:
        worker.stop()
        api.stop()
        receiver.stop()
        dbs.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def entry() -> int:
    try:
        return main()
    except bench.BenchError as error:
        log(f"error: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(entry())
