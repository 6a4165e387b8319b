"""The webhook delivery rows of `make bench`: throughput of one worker, publish-to-receipt latency.

Everything runs as real processes on 127.0.0.1, the way bench/run.py runs the API:

- **the receiver** (bench/receiver.py): uvicorn with a raw ASGI app that answers 200 at once and
  records each request's arrival time, headers and body; a process of its own;
- **the API** (`integration-api serve`) with a platform token (PLATFORM_EVENT_TOKENS): events are
  published through its `POST /internal/events`, as the payment core would;
- **the worker**: `integration-api worker` (one process), or the worker `serve` embeds;
- **the floor** (bench/delivery_floor.py): a plain `httpx.AsyncClient` posting the same signed
  requests.

A store of a merchant of its own has its V2 TEST webhook setting pointed at the receiver
(`WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8`) and one V2 TEST signing secret. Every worker setting
is the default of gql_api/settings.py (concurrency, per-host concurrency, poll interval);
nothing is tuned for the benchmark. Every request the receiver gets is checked: one per event,
the event's body, and a signature that the `standardwebhooks` package verifies with the
store's secret; at the end every event published must be SUCCEEDED in the database.

Rows:

1. **throughput**: a backlog is published while no worker runs, then one `integration-api
   worker` process drains it; events per second from the first to the last arrival at the
   receiver, and the worker's CPU time per event (from its first delivery on: start-up left
   out). The backlog is BENCH_DELIVERY_EVENTS (1,000) events, or DRAIN_SECONDS (20 s) at the
   warm-up round's rate when that is fewer (at least 200), so that a slow engine does not make
   the run endless. Floor: the requests the worker sent (headers and bodies as received)
   posted once more by bench/delivery_floor.py with as many in flight as the worker may have
   towards one receiver (WEBHOOK_WORKER_PER_HOST_CONCURRENCY, when lower than
   WEBHOOK_WORKER_CONCURRENCY), rate measured the same way at the receiver, CPU time of the
   client per request. BENCH_ROUNDS rounds, worker then floor, after a warm-up round of 100
   events; medians, the ratio is the median of the per-round ratios.
2. **latency, embedded worker** (the default: `serve` delivers in its own process and the
   intake wakes its worker at once): events published at a steady BENCH_DELIVERY_RATE (50) per
   second (an open loop: each publish starts at its scheduled time whatever the answers) for
   BENCH_DELIVERY_SECONDS (20) after a BENCH_WARMUP warm-up; latency from the start of the
   publish request to the receiver's arrival, p50 and p99 over every event. Every publish must
   be accepted (a refused one is counted and misses the row). The wait for the last webhooks
   ends when all have arrived, or with an error when none arrives for STALL_SECONDS (30 s):
   a worker slower than the publish rate makes the run longer (the backlog it builds up is
   drained and measured), never endless.
3. **latency, separate worker**: the same, with `serve` (WEBHOOK_WORKER=off) taking the events
   and one `integration-api worker` process delivering them: the publish happens in another
   process, so an idle worker learns of it from the publish's NOTIFY on PostgreSQL, and at
   its next poll (WEBHOOK_WORKER_POLL_SECONDS) on SQLite, unless one of its own deliveries has
   just ended (that wakes it too).

Run alone (no dashboard seeding, no wrk): `python bench/delivery.py` or
`BENCH_ONLY=delivery python bench/run.py` (BENCH_DB=postgresql works too); the table is then
printed and written to bench/out/results-delivery-<db>.md, not to bench/results.md.
BENCH_DELIVERY_ROWS (a comma-separated subset of throughput, separate, embedded) runs only
those rows, for trying a change quickly.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if __name__ == "__main__":  # run alone: bench/run.py reads BENCH_ONLY when imported
    os.environ["BENCH_ONLY"] = "delivery"

import httpx  # noqa: E402

from bench import run as bench  # noqa: E402
from bench import seed  # noqa: E402

BACKLOG = int(os.environ.get("BENCH_DELIVERY_EVENTS", "1000"))  # at most, per drain
BACKLOG_MIN = 200
BACKLOG_WARMUP = 100
DRAIN_SECONDS = 20  # a drain's backlog: about this long at the warm-up round's rate
RATE = float(os.environ.get("BENCH_DELIVERY_RATE", "50"))
SECONDS = int(os.environ.get("BENCH_DELIVERY_SECONDS", "20"))
PUBLISH_CONCURRENCY = 8  # publishing the backlog (not measured)
STALL_SECONDS = 30.0  # waiting for webhooks fails when none arrives for this long
LOOPBACK_NETWORK = "127.0.0.0/8"
EVENT_TYPE = "Transaction.Paid"

TARGET_THROUGHPUT_RATIO = 0.5
TARGET_LATENCY_P99_S = 1.0
# For trying one change quickly: the rows to run (throughput, separate, embedded); all by default.
ROWS = {
    name.strip()
    for name in os.environ.get("BENCH_DELIVERY_ROWS", "throughput,separate,embedded").split(",")
}


def worker_defaults() -> dict[str, Any]:
    """The worker settings every process here runs with: the defaults, none overridden."""
    from gql_api.settings import Settings

    fields = Settings.model_fields
    return {
        name: fields[name].default
        for name in (
            "webhook_worker",
            "webhook_worker_concurrency",
            "webhook_worker_per_host_concurrency",
            "webhook_worker_poll_seconds",
        )
    }


def lanes() -> int:
    """Deliveries one worker may have in flight towards one receiver."""
    found = worker_defaults()
    return min(
        int(found["webhook_worker_concurrency"]), int(found["webhook_worker_per_host_concurrency"])
    )


def settings_note() -> str:
    found = worker_defaults()
    return (
        f"WEBHOOK_WORKER_CONCURRENCY={found['webhook_worker_concurrency']}, "
        f"WEBHOOK_WORKER_PER_HOST_CONCURRENCY={found['webhook_worker_per_host_concurrency']}, "
        f"WEBHOOK_WORKER_POLL_SECONDS={found['webhook_worker_poll_seconds']:g} (defaults)"
    )


# ---- processes --------------------------------------------------------------------------------


@dataclass
class Setup:
    database_url: str
    key: str
    scratch: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    store_id: str = ""
    secret: str = ""
    receiver_port: int = 0
    accepted: int = 0  # events published and accepted so far (all must end SUCCEEDED)

    @property
    def receiver(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    def env(self, port: int, *, worker: str | None) -> dict[str, str]:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATABASE_URL": self.database_url,
            "ENCRYPTION_KEYS": self.key,
            "DATA_DIR": str(self.scratch),
            "LOG_LEVEL": "WARNING",
            "APP_ENV": "development",
            "PLATFORM_EVENT_TOKENS": self.token,
            "WEBHOOK_ALLOWED_NETWORKS": LOOPBACK_NETWORK,
        }
        env.pop("WEBHOOK_WORKER", None)
        if worker is not None:
            env["WEBHOOK_WORKER"] = worker
        return env


def integration_api() -> str:
    return str(Path(sys.executable).parent / "integration-api")


def api_server(setup: Setup, name: str, *, worker: str | None) -> bench.Server:
    port = bench.free_port()
    return bench.Server(
        name,
        [integration_api(), "serve"],
        env=setup.env(port, worker=worker),
        cwd=setup.scratch,  # no stray .env from the working tree
        port=port,
    )


class WorkerProcess:
    """One `integration-api worker` process; its output appended to one log file."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.log_path = bench.OUT / f"delivery-worker-{bench.DB}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603
                [integration_api(), "worker"],
                env=self.setup.env(bench.free_port(), worker=None),
                cwd=self.setup.scratch,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise bench.BenchError(f"the worker exited; see {self.log_path}")


# ---- seeding and checking ---------------------------------------------------------------------


async def seed_store(setup: Setup) -> None:
    """A merchant whose representative store sends V2 TEST webhooks to the receiver."""
    from gql_api.app import create_state
    from gql_api.channels.rules import IntegrationMode
    from gql_api.webhooks import service as webhooks
    from gql_api.webhooks.addresses import parse_networks
    from gql_api.webhooks.payloads import ModuleVersionValue, WebhookContentType

    state = create_state(bench.settings_for(setup.database_url, setup.key, setup.scratch))
    try:
        async with state.session_factory() as db:
            owner = await seed._sign_up(state, db, "Delivery Merchant", "delivery@bench.example")
            store_id = owner.representative_store_id
            await seed._mutate(
                db,
                lambda: webhooks.update_setting(
                    db=db,
                    principal=owner.principal,
                    allowed_networks=tuple(parse_networks([LOOPBACK_NETWORK])),
                    store_id=store_id,
                    module_version=ModuleVersionValue.V2,
                    mode=IntegrationMode.TEST,
                    url=f"{setup.receiver}/portone/v2/test",
                    content_type=WebhookContentType.JSON,
                    payload_version=None,
                    uses_representative_setting=None,
                ),
            )
            _, plaintext = await seed._mutate(
                db,
                lambda: webhooks.issue_secret(
                    db=db,
                    principal=owner.principal,
                    encryptor=state.encryptor,
                    store_id=store_id,
                    mode=IntegrationMode.TEST,
                ),
            )
    finally:
        await state.engine.dispose()
    setup.store_id, setup.secret = store_id, plaintext


async def event_statuses(setup: Setup) -> dict[str, int]:
    from sqlalchemy import text

    from gql_api.app import create_state

    state = create_state(bench.settings_for(setup.database_url, setup.key, setup.scratch))
    try:
        async with state.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT status, COUNT(*) FROM webhook_events GROUP BY status")
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        await state.engine.dispose()


@dataclass(frozen=True)
class Received:
    payment_id: str
    arrived: float
    path: str
    headers: dict[str, str]
    body: str


def check_records(
    setup: Setup, records: list[dict[str, Any]], expected: set[str]
) -> list[Received]:
    """The receiver's records, each verified: signed with the store's secret (standardwebhooks),
    the event's body, one per event, and exactly the events expected."""
    from standardwebhooks import Webhook

    verifier = Webhook(setup.secret)
    found: dict[str, Received] = {}
    for record in records:
        headers = record["headers"]
        try:
            verifier.verify(record["body"], headers)
        except Exception as error:
            raise bench.BenchError(f"a webhook failed verification: {error}") from error
        body = json.loads(record["body"])
        data = body.get("data", {})
        payment_id = str(data.get("paymentId"))
        if body.get("type") != EVENT_TYPE or data.get("storeId") != setup.store_id:
            raise bench.BenchError(f"unexpected webhook body: {record['body'][:300]}")
        if payment_id in found:
            raise bench.BenchError(f"event {payment_id} was delivered twice")
        found[payment_id] = Received(
            payment_id, float(record["t"]), record["path"], headers, record["body"]
        )
    unexpected = set(found) - expected
    if unexpected:
        raise bench.BenchError(f"{len(unexpected)} unexpected webhooks, e.g. {min(unexpected)}")
    return sorted(found.values(), key=lambda r: r.arrived)


# ---- publishing and receiving -----------------------------------------------------------------


def event_body(setup: Setup, payment_id: str) -> dict[str, Any]:
    return {
        "id": f"evt-{payment_id}",
        "storeId": setup.store_id,
        "moduleVersion": "V2",
        "mode": "TEST",
        "type": EVENT_TYPE,
        "data": {"paymentId": payment_id, "transactionId": f"tx-{payment_id}"},
    }


async def publish(
    client: httpx.AsyncClient, intake: str, setup: Setup, payment_id: str
) -> str | None:
    """Publish one event; None when accepted (202), else what went wrong."""
    try:
        response = await client.post(
            intake,
            json=event_body(setup, payment_id),
            headers={"Authorization": f"Bearer {setup.token}"},
        )
    except httpx.HTTPError as error:
        return f"{type(error).__name__}"
    if response.status_code != 202:
        return f"HTTP {response.status_code}"
    return None


def intake_url(api: bench.Server) -> str:
    return f"http://127.0.0.1:{api.port}/internal/events"


async def publish_backlog(api: bench.Server, setup: Setup, payment_ids: list[str]) -> None:
    limits = httpx.Limits(max_connections=PUBLISH_CONCURRENCY)
    queue = list(reversed(payment_ids))
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def lane() -> None:
            while queue:
                payment_id = queue.pop()
                failed = await publish(client, intake_url(api), setup, payment_id)
                if failed:
                    raise bench.BenchError(f"publishing the backlog: {payment_id}: {failed}")

        await asyncio.gather(*(lane() for _ in range(PUBLISH_CONCURRENCY)))
    setup.accepted += len(payment_ids)


@dataclass
class Published:
    started: dict[str, float]  # accepted events: when their publish request started
    failed: dict[str, int]  # refused publishes, by what went wrong
    late: float  # how late the publisher started its latest publish


async def publish_steady(api: bench.Server, setup: Setup, tag: str, seconds: float) -> Published:
    """Publish RATE events a second for `seconds`, each at its scheduled time (an open loop:
    a slow answer delays no later publish)."""
    started: dict[str, float] = {}
    failed: dict[str, int] = {}
    late = 0.0
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(payment_id: str) -> None:
            at = time.monotonic()
            problem = await publish(client, intake_url(api), setup, payment_id)
            if problem is None:
                started[payment_id] = at
            else:
                failed[problem] = failed.get(problem, 0) + 1

        tasks = []
        origin = time.monotonic() + 0.05
        for number in range(max(1, int(RATE * seconds))):
            scheduled = origin + number / RATE
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            late = max(late, time.monotonic() - scheduled)
            tasks.append(asyncio.create_task(one(f"{tag}-{number:06d}")))
        await asyncio.gather(*tasks)
    setup.accepted += len(started)
    return Published(started=started, failed=failed, late=late)


async def receiver_count(client: httpx.AsyncClient, setup: Setup) -> int:
    return int((await client.get(f"{setup.receiver}/_count")).json())


async def wait_for(
    client: httpx.AsyncClient, setup: Setup, count: int, worker: WorkerProcess | None = None
) -> None:
    """Until the receiver has `count` requests; an error when none arrives for STALL_SECONDS
    (however slow the worker, the wait ends when it stops making progress)."""
    seen, progress = -1, time.monotonic()
    while True:
        got = await receiver_count(client, setup)
        if got >= count:
            return
        if got != seen:
            seen, progress = got, time.monotonic()
        elif time.monotonic() - progress > STALL_SECONDS:
            raise bench.BenchError(
                f"{got} of {count} webhooks received, none in the last {STALL_SECONDS:.0f} s"
            )
        if worker is not None:
            worker.check_alive()
        await asyncio.sleep(0.1)


async def take_records(client: httpx.AsyncClient, setup: Setup) -> list[dict[str, Any]]:
    records = (await client.get(f"{setup.receiver}/_records", timeout=60)).json()
    await client.post(f"{setup.receiver}/_reset")
    return records  # type: ignore[no-any-return]


def rate_of(arrivals: list[float]) -> float:
    span = max(arrivals) - min(arrivals)
    return (len(arrivals) - 1) / span if span > 0 else math.inf


# ---- the measures -----------------------------------------------------------------------------


@dataclass
class Drain:
    events: int
    worker: float  # events/s
    floor: float  # requests/s
    worker_cpu_ms: float  # CPU time of the worker process per event (start-up excluded)
    floor_cpu_ms: float  # CPU time of the floor's client per request


async def drain_round(
    client: httpx.AsyncClient, api: bench.Server, setup: Setup, tag: str, events: int
) -> Drain:
    """One worker drains `events` published beforehand; then the floor posts the same requests."""
    ids = [f"{tag}-{n:06d}" for n in range(events)]
    await publish_backlog(api, setup, ids)
    await take_records(client, setup)  # nothing should be there: start from zero anyway
    worker = WorkerProcess(setup)
    worker.start()
    try:
        await wait_for(client, setup, 1, worker)  # started: from here on, CPU per event
        cpu, first = worker.cpu_seconds(), await receiver_count(client, setup)
        await wait_for(client, setup, events, worker)
        cpu = worker.cpu_seconds() - cpu
    finally:
        worker.stop()
    received = check_records(setup, await take_records(client, setup), set(ids))
    if len(received) != events:
        raise bench.BenchError(f"the worker delivered {len(received)} of {events} events")
    requests_file = bench.OUT / f"delivery-requests-{bench.DB}.json"
    requests_file.write_text(
        json.dumps([{"path": r.path, "headers": r.headers, "body": r.body} for r in received]),
        encoding="utf-8",
    )
    floor = await asyncio.create_subprocess_exec(
        sys.executable,
        str(bench.BENCH / "delivery_floor.py"),
        "--url",
        setup.receiver,
        "--requests",
        str(requests_file),
        "--concurrency",
        str(lanes()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await floor.communicate()
    if floor.returncode != 0:
        raise bench.BenchError(f"the delivery floor failed: {stdout.decode()} {stderr.decode()}")
    copies = await take_records(client, setup)
    if len(copies) != events:
        raise bench.BenchError(f"the floor's receiver got {len(copies)} of {events} requests")
    return Drain(
        events=events,
        worker=rate_of([r.arrived for r in received]),
        floor=rate_of([float(c["t"]) for c in copies]),
        worker_cpu_ms=cpu * 1000 / max(1, events - first),
        floor_cpu_ms=json.loads(stdout)["cpu_seconds"] * 1000 / events,
    )


@dataclass
class Latency:
    seconds: list[float]  # per accepted event, from the start of its publish to its arrival
    published: Published
    delivered_rate: float  # events/s from the first to the last arrival

    def percentile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def refused(self) -> int:
        return sum(self.published.failed.values())

    def summary(self) -> str:
        text = (
            f"p50 {self.percentile(0.5) * 1000:,.0f} ms, "
            f"p99 **{self.percentile(0.99) * 1000:,.0f} ms**, "
            f"max {max(self.seconds) * 1000:,.0f} ms ({len(self.seconds):,} events"
        )
        if self.delivered_rate < RATE * 0.95:
            text += f"; delivered at {self.delivered_rate:,.1f}/s, below the publish rate"
        if self.refused:
            failed = ", ".join(f"{n} x {what}" for what, n in self.published.failed.items())
            text += f"; **{self.refused} publishes refused**: {failed}"
        return text + ")"


async def steady(
    client: httpx.AsyncClient,
    api: bench.Server,
    setup: Setup,
    tag: str,
    seconds: float,
    worker: WorkerProcess | None,
) -> Latency:
    published = await publish_steady(api, setup, tag, seconds)
    await wait_for(client, setup, len(published.started), worker)
    received = check_records(setup, await take_records(client, setup), set(published.started))
    if len(received) != len(published.started):
        raise bench.BenchError(f"{len(received)} of {len(published.started)} events received")
    arrived = {r.payment_id: r.arrived for r in received}
    return Latency(
        seconds=[arrived[pid] - at for pid, at in published.started.items()],
        published=published,
        delivered_rate=rate_of(list(arrived.values())),
    )


async def latency_run(
    client: httpx.AsyncClient,
    api: bench.Server,
    setup: Setup,
    name: str,
    worker: WorkerProcess | None = None,
) -> Latency:
    await steady(client, api, setup, f"{name}-warm", bench.WARMUP, worker)
    result = await steady(client, api, setup, name, SECONDS, worker)
    bench.log(
        f"  {name}: {result.summary()}; publisher at most "
        f"{result.published.late * 1000:.1f} ms late"
    )
    return result


@dataclass
class Outcome:
    rows: list[Any]
    notes: list[str]
    logs: list[Path]


def throughput_row(drains: list[Drain]) -> Any:
    ratio = statistics.median(d.worker / d.floor for d in drains)
    worker_rate = statistics.median(d.worker for d in drains)
    floor_rate = statistics.median(d.floor for d in drains)
    events = drains[0].events
    worker_cpu = statistics.median(d.worker_cpu_ms for d in drains)
    floor_cpu = statistics.median(d.floor_cpu_ms for d in drains)
    return bench.Row(
        "webhook delivery throughput",
        f"one `integration-api worker` process drains a backlog of V2 `{EVENT_TYPE}` events "
        "published beforehand (POST /internal/events) to a local receiver that answers 200 at "
        "once; events/s from the first to the last arrival. Floor: the same signed requests "
        f"(headers and bodies as received) posted by one `httpx.AsyncClient`, {lanes()} in "
        "flight (the worker's per-host limit); CPU time of the worker process per event "
        "(from its first delivery on) and of the floor's client per request",
        f"{worker_rate:,.1f} events/s ({events:,} events, {worker_cpu:.1f} ms CPU each); "
        f"floor {floor_rate:,.0f} req/s ({floor_cpu:.2f} ms CPU each); ratio **{ratio:.3f}**",
        f"events/s >= {TARGET_THROUGHPUT_RATIO} x the httpx floor",
        ratio >= TARGET_THROUGHPUT_RATIO,
    )


def latency_row(name: str, how: str, result: Latency) -> Any:
    return bench.Row(
        name,
        f"{how}; V2 `{EVENT_TYPE}` events published at a steady {RATE:g}/s (open loop) for "
        f"{SECONDS} s after a {bench.WARMUP} s warm-up; from the start of the publish request "
        "to the receiver's arrival",
        result.summary(),
        f"p99 <= {TARGET_LATENCY_P99_S:g} s, every publish accepted",
        result.percentile(0.99) <= TARGET_LATENCY_P99_S and not result.refused,
    )


async def throughput(client: httpx.AsyncClient, intake: bench.Server, setup: Setup) -> Any:
    """The throughput row: a warm-up drain, then BENCH_ROUNDS drains, each against the floor."""
    bench.log(f"webhook delivery: warm-up drain of {BACKLOG_WARMUP} events")
    warm = await drain_round(client, intake, setup, "warm", BACKLOG_WARMUP)
    backlog = min(BACKLOG, max(BACKLOG_MIN, int(warm.worker * DRAIN_SECONDS)))
    bench.log(
        f"  warm-up: worker {warm.worker:,.1f} events/s, floor {warm.floor:,.0f} req/s; "
        f"one worker drains {backlog} events vs httpx ({lanes()} in flight), "
        f"{bench.ROUNDS} rounds"
    )
    drains = []
    for number in range(1, bench.ROUNDS + 1):
        drain = await drain_round(client, intake, setup, f"drain{number}", backlog)
        drains.append(drain)
        bench.log(
            f"  round {number}: worker {drain.worker:,.1f} events/s "
            f"({drain.worker_cpu_ms:.1f} ms CPU each), floor {drain.floor:,.0f} req/s "
            f"({drain.floor_cpu_ms:.2f} ms CPU each), "
            f"ratio {drain.worker / drain.floor:.3f}"
        )
    return throughput_row(drains)


async def measure(database_url: str, key: str, scratch: Path) -> Outcome:
    setup = Setup(database_url=database_url, key=key, scratch=scratch)
    setup.receiver_port = bench.free_port()
    receiver = bench.Server(
        "delivery-receiver",
        [sys.executable, str(bench.BENCH / "receiver.py"), "--port", str(setup.receiver_port)],
        env=dict(os.environ),
        cwd=bench.ROOT,
        port=setup.receiver_port,
    )
    worker_log = bench.OUT / f"delivery-worker-{bench.DB}.log"
    worker_log.write_bytes(b"")
    intake = api_server(setup, "delivery-api-off", worker="off")
    embedded = api_server(setup, "delivery-api", worker=None)
    rows: list[Any] = []
    try:
        receiver.start()
        await seed_store(setup)
        intake.start()
        async with httpx.AsyncClient(timeout=30) as client:
            # 1. throughput: one worker draining a backlog vs the httpx floor
            if "throughput" in ROWS:
                rows.append(await throughput(client, intake, setup))

            # 2. latency, the worker in a process of its own (it polls)
            separate: Latency | None = None
            if "separate" in ROWS:
                bench.log(
                    f"webhook latency at {RATE:g} events/s for {SECONDS} s: "
                    "`serve` (WEBHOOK_WORKER=off) + one `integration-api worker`"
                )
                worker = WorkerProcess(setup)
                worker.start()
                try:
                    separate = await latency_run(client, intake, setup, "separate", worker)
                finally:
                    worker.stop()
            intake.stop()

            # 3. latency, the worker `serve` embeds (the default)
            if "embedded" in ROWS:
                bench.log(f"webhook latency at {RATE:g} events/s for {SECONDS} s: embedded worker")
                embedded.start()
                together = await latency_run(client, embedded, setup, "embedded")
                embedded.stop()
                rows.append(
                    latency_row(
                        "webhook latency, embedded worker",
                        "`integration-api serve` with the worker it embeds by default "
                        "(WEBHOOK_WORKER=embedded): the intake wakes the worker at once",
                        together,
                    )
                )
        if separate is not None:
            poll = worker_defaults()["webhook_worker_poll_seconds"]
            rows.append(
                latency_row(
                    "webhook latency, separate worker",
                    "`serve` with WEBHOOK_WORKER=off takes the events, one `integration-api "
                    "worker` process delivers them: an idle worker learns of an event "
                    + (
                        "from the publish's NOTIFY (LISTEN on a connection of its own)"
                        if bench.DB == "postgresql"
                        else f"at its next poll (WEBHOOK_WORKER_POLL_SECONDS={poll:g})"
                    ),
                    separate,
                )
            )
        statuses = await event_statuses(setup)
        if statuses != {"SUCCEEDED": setup.accepted}:
            raise bench.BenchError(
                f"events by status {statuses}, expected {setup.accepted} SUCCEEDED"
            )
    finally:
        embedded.stop()
        intake.stop()
        receiver.stop()
    notes = [
        "- Webhook delivery: receiver bench/receiver.py (uvicorn, answers 200 at once, a process "
        "of its own); events published through `POST /internal/events` of `integration-api "
        f"serve`; {settings_note()}; every webhook received verified with the "
        f"`standardwebhooks` package, one per event, and all {setup.accepted:,} events "
        "SUCCEEDED in the database at the end"
    ]
    return Outcome(
        rows=rows,
        notes=notes,
        logs=[intake.log_path, embedded.log_path, worker_log, receiver.log_path],
    )


if __name__ == "__main__":
    sys.exit(bench.entry())
