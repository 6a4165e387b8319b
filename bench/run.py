"""`make bench`: the API's performance targets, measured side by side on this machine.

Seeds a database (SQLite by default; BENCH_DB=postgresql starts a throwaway PostgreSQL), starts
the real server (`integration-api serve`: uvicorn, 1 worker, no access log) and the framework
floor (bench/floor.py), drives both over HTTP with wrk (Debian's package, installed when missing
and running as root), prints one table, writes it to bench/results.md with the machine details,
and exits 1 when a target is missed (2 when the benchmark itself could not run).

Every wrk run is preceded by its own warm-up run (discarded); the runs of each comparison are
interleaved (A, B, A, B, ...) and the table reports medians over the rounds. All load goes to
127.0.0.1. Argon2 uses the real defaults (gql_api/settings.py) throughout: nothing is overridden.

The `serve --workers` row (bench/workers.py: the small query with 1 and with 2 worker
processes, and where the CPU went) and the webhook delivery rows (bench/delivery.py: one
worker's throughput against an httpx floor, publish-to-receipt latency) come last, with
processes of their own on the same database.

Environment: BENCH_DB (sqlite | postgresql), BENCH_ROUNDS (3), BENCH_DURATION (8 s),
BENCH_WARMUP (3 s), BENCH_CONNECTIONS (8), BENCH_BURST (20 concurrent logins),
BENCH_DELIVERY_EVENTS (1000), BENCH_DELIVERY_RATE (50/s), BENCH_DELIVERY_SECONDS (20 s), and
BENCH_ONLY=delivery or BENCH_ONLY=workers for those rows alone (written to bench/out/, not
bench/results.md).
Scratch files (databases, server logs, captures) go to bench/out/, which git ignores.
`run.py --serve` seeds, starts both servers and prints wrk command lines (for profiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
RESULTS = BENCH / "results.md"
LUA = BENCH / "post.lua"
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import seed  # noqa: E402

# Run as a script, this module is __main__: bench/delivery.py imports it as bench.run, and must
# get this very module (one BenchError, one set of settings), not a second copy.
sys.modules.setdefault("bench.run", sys.modules[__name__])

DB = os.environ.get("BENCH_DB", "sqlite").strip().lower()
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
BURST = int(os.environ.get("BENCH_BURST", "20"))
ONLY = os.environ.get("BENCH_ONLY", "").strip().lower()  # "delivery" / "workers": those rows alone
SUB_STORES = 10

TARGET_FLOOR_RATIO = 0.6
TARGET_MAX_STATEMENTS = 10
TARGET_SMALL_RATIO = 0.5
TARGET_SECRET_P50 = 1.15
TARGET_BURST_P99 = 3.0
TARGET_PAGE_RATIO = 1.5
TARGET_RSS_MIB = 200
BUSY_LIMIT = 0.10  # more than this much CPU used by other processes makes the numbers suspect

CHANNEL_FIELDS = """
fragment ChannelFields on Channel {
  id channelKey name mode type pgProvider moduleCode moduleVersions purpose pgMerchantId taxType
  credentials { key label secret value maskedValue }
  version createdAt updatedAt
}
"""
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
DASHBOARD = (
    """
query Dashboard {
  merchant {
    id
    name
    representativeStore {
      ...StoreFields
      subStores(first: 50) { edges { cursor node { ...StoreFields } } PAGE_INFO }
    }
  }
}
fragment StoreFields on Store {
  id storeId name isRepresentative createdAt
  channels(first: 50) { edges { cursor node { ...ChannelFields } } PAGE_INFO }
  webhookSettings {
    moduleVersion mode url contentType payloadVersion usesRepresentativeSetting updatedAt
    secrets { id hint createdAt expiredAt }
  }
}
""".replace("PAGE_INFO", PAGE_INFO)
    + CHANNEL_FIELDS
)
PAGE = (
    """
query ChannelPage($storeId: String!, $after: String) {
  store(storeId: $storeId) {
    channels(first: 50, after: $after) { edges { cursor node { ...ChannelFields } } PAGE_INFO }
  }
}
""".replace("PAGE_INFO", PAGE_INFO)
    + CHANNEL_FIELDS
)
SMALL = "{ viewer { merchant { name } } }"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
TYPENAME = "{ __typename }"
LOGIN = """
mutation Login($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { code message } }
}
"""


class BenchError(RuntimeError):
    """The benchmark could not run (not a missed target)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- tools and processes ---------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if os.geteuid() == 0 and apt_get:
        log("wrk not found: installing Debian's wrk package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [apt_get, "install", "-y", "-qq", "--no-install-recommends", "wrk"]
        if subprocess.run(install, env=env, check=False).returncode != 0:  # noqa: S603
            subprocess.run([apt_get, "update", "-qq"], env=env, check=True)  # noqa: S603
            subprocess.run(install, env=env, check=True)  # noqa: S603
        found = shutil.which("wrk")
        if found:
            return found
    raise BenchError("wrk is required: apt-get install wrk (as root), then run make bench again")


def cpu_speed() -> float:
    """Seconds a fixed pure-Python loop takes (best of 3): the speed of a core right now. A
    host busy with other virtual machines slows every core without any process here showing
    it; absolute numbers then drop for every row, ratios much less."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(3_000_000):
            total += number
        best = min(best, time.perf_counter() - started)
    return best


def idle_cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over `seconds` (before any load: other work on the machine)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


class ForeignLoad:
    """Samples, once a second, the CPU used by processes that are not part of the benchmark
    (neither descendants of this script nor of its PostgreSQL server): a test suite or a build
    running at the same time makes every number here wrong, and this says so."""

    def __init__(self, extra_roots: Callable[[], list[int]]) -> None:
        self.extra_roots = extra_roots
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)
        self._ticks = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _processes() -> dict[int, tuple[int, int]]:
        """pid -> (parent pid, CPU ticks) for every process."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        return found

    def _foreign_ticks(
        self, before: dict[int, tuple[int, int]], now: dict[int, tuple[int, int]]
    ) -> int:
        roots = {os.getpid(), *self.extra_roots()}
        ours: dict[int, bool] = {}

        def is_ours(pid: int) -> bool:
            seen = []
            while pid not in ours:
                if pid in roots:
                    ours[pid] = True
                    break
                parent = now.get(pid, (0, 0))[0]
                if parent <= 1:
                    ours[pid] = False
                    break
                seen.append(pid)
                pid = parent
            for visited in seen:
                ours[visited] = ours[pid]
            return ours[pid]

        return sum(
            ticks - before.get(pid, (0, 0))[1]
            for pid, (_, ticks) in now.items()
            if pid in before and not is_ours(pid)
        )

    def _run(self) -> None:
        cpus = os.cpu_count() or 1
        before = self._processes()
        while not self._stop.wait(1.0):
            now = self._processes()
            foreign = self._foreign_ticks(before, now)
            self.samples.append(foreign / self._ticks / cpus)
            before = now

    def __enter__(self) -> ForeignLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> tuple[float, float]:
        """(mean, highest 1-second) share of all CPUs used by other processes."""
        if not self.samples:
            return 0.0, 0.0
        return statistics.fmean(self.samples), max(self.samples)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess on 127.0.0.1:port, its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, port: int
    ) -> None:
        self.name, self.argv, self.env, self.cwd, self.port = name, argv, env, cwd, port
        self.log_path = OUT / f"{name}-{DB}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            self.argv, env=self.env, cwd=self.cwd, stdout=log_file, stderr=subprocess.STDOUT
        )
        log_file.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer /healthz within 60 s; see {self.log_path}")

    def peak_rss_mib(self) -> float:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match is None:
            raise BenchError("VmHWM missing from /proc/<pid>/status")
        return int(match.group(1)) / 1024

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---- databases --------------------------------------------------------------------------------


@dataclass
class Databases:
    main: str
    count: dict[int, str]
    version: str
    stop: Callable[[], None] = lambda: None
    roots: Callable[[], list[int]] = list  # pids of database server processes we started


def sqlite_databases(scratch: Path) -> Databases:
    import sqlite3

    return Databases(
        main=f"sqlite:///{scratch / 'bench.db'}",
        count={n: f"sqlite:///{scratch / f'count{n}.db'}" for n in (2, 20)},
        version=f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)",
    )


def postgres_databases() -> Databases:
    ensure = ["/bin/bash", str(ROOT / "scripts" / "ensure-postgres.sh")]
    subprocess.run(ensure, check=True)  # noqa: S603
    from tests.pg_server import PostgresServer, find_bin_dir

    if find_bin_dir() is None:
        raise BenchError("BENCH_DB=postgresql needs PostgreSQL's server binaries (initdb)")
    server = PostgresServer.start()
    log(f"PostgreSQL started on 127.0.0.1:{server.port} (data in {server.root})")

    async def create() -> str:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
        try:
            for name in ("bench", "count2", "count20"):
                await conn.execute(f'CREATE DATABASE "{name}"')
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        version = asyncio.run(create())
    except BaseException:
        server.stop()
        raise
    return Databases(
        main=server.database_url("bench"),
        count={n: server.database_url(f"count{n}") for n in (2, 20)},
        version=f"PostgreSQL {version} (throwaway server: fsync=off, synchronous_commit=off)",
        stop=server.stop,
        roots=lambda: _postmaster(server.root / "data"),
    )


def _postmaster(data: Path) -> list[int]:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return [int((data / "postmaster.pid").read_text().split()[0])]
    return []


def settings_for(database_url: str, key: str, scratch: Path) -> Any:
    from gql_api.settings import Settings

    return Settings(
        _env_file=None,
        database_url=database_url,
        encryption_keys=[key],
        data_dir=scratch,
        log_level="WARNING",
    )


@dataclass
class Seeded:
    dashboard: seed.DashboardMerchant
    deep: seed.Owner
    login_emails: list[str]
    count_tokens: dict[int, str]


async def seed_all(dbs: Databases, key: str, scratch: Path) -> Seeded:
    from gql_api.app import create_state

    async def with_state(url: str, action: Callable[[Any], Any]) -> Any:
        state = create_state(settings_for(url, key, scratch))
        try:
            return await action(state)
        finally:
            await state.engine.dispose()

    async def main(state: Any) -> tuple[Any, ...]:
        dashboard = await seed.seed_dashboard_merchant(state, sub_stores=SUB_STORES)
        deep = await seed.seed_deep_store(state)
        login = await seed.seed_login_users(state, BURST)
        return dashboard, deep, login

    dashboard, deep, login = await with_state(dbs.main, main)
    tokens = {}
    for n, url in dbs.count.items():

        async def small(state: Any, n: int = n) -> seed.DashboardMerchant:
            return await seed.seed_dashboard_merchant(state, sub_stores=n)

        tokens[n] = (await with_state(url, small)).owner.token
    return Seeded(dashboard=dashboard, deep=deep, login_emails=login, count_tokens=tokens)


async def seed_small(database_url: str, key: str, scratch: Path) -> str:
    """BENCH_ONLY=workers: the dashboard merchant alone (its owner runs the small query);
    the Authorization header value of its session."""
    from gql_api.app import create_state

    state = create_state(settings_for(database_url, key, scratch))
    try:
        merchant = await seed.seed_dashboard_merchant(state, sub_stores=SUB_STORES)
    finally:
        await state.engine.dispose()
    return f"Bearer {merchant.owner.token}"


async def count_statements(database_url: str, key: str, scratch: Path, token: str) -> list[str]:
    """SQL statements of one (warm) dashboard request, in process, through the ASGI app:
    those SQLAlchemy runs and those run straight on the driver (db.driver_query)."""
    from db.driver_query import watch_statements
    from gql_api.app import create_app

    app = create_app(settings_for(database_url, key, scratch))
    engine = app.state.app_state.engine
    statements: list[str] = []
    stop = watch_statements(
        engine, lambda statement: statements.append(" ".join(statement.split()))
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(2):  # the first request warms the caches; count the second
                statements.clear()
                response = await client.post(
                    "/graphql",
                    json={"query": DASHBOARD},
                    headers={"Authorization": f"Bearer {token}"},
                )
                check(response, "dashboard (statement count)")
    finally:
        stop()
        await engine.dispose()
    return list(statements)


# ---- load -----------------------------------------------------------------------------------


def check(response: httpx.Response, what: str) -> dict[str, Any]:
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise BenchError(f"{what}: HTTP {response.status_code} {json.dumps(body)[:500]}")
    return body  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Run:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    name: str
    url: str
    body: dict[str, Any]
    authorization: str | None = None
    during: Callable[[], Any] | None = None  # an async context manager factory (the burst)
    runs: list[Run] = field(default_factory=list)

    def body_file(self) -> Path:
        path = OUT / f"body-{self.name}.json"
        path.write_text(json.dumps(self.body), encoding="utf-8")
        return path

    def ratio(self, other: Case, attribute: str) -> float:
        """Median over the rounds of this run's value / the other's, round by round."""
        pairs = zip(self.runs, other.runs, strict=True)
        return float(
            statistics.median(getattr(a, attribute) / getattr(b, attribute) for a, b in pairs)
        )

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    def summary(self) -> str:
        return (
            f"{self.median('rps'):,.0f} req/s, p50 {self.median('p50_ms'):.2f} ms, "
            f"p99 {self.median('p99_ms'):.2f} ms"
        )


async def wrk(case: Case, seconds: int) -> Run:
    env = {**os.environ, "WRK_BODY_FILE": str(case.body_file())}
    env["WRK_AUTHORIZATION"] = case.authorization or ""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s", "-s", str(LUA)]
    process = await asyncio.create_subprocess_exec(
        *argv, case.url, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    text = stdout.decode()
    line = next((x for x in text.splitlines() if x.startswith("WRK_JSON ")), None)
    if process.returncode != 0 or line is None:
        raise BenchError(f"wrk failed for {case.name}: {text} {stderr.decode()}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    if errors or data["requests"] == 0:
        raise BenchError(f"{case.name}: {errors} failed requests under load: {data}")
    return Run(
        requests=data["requests"],
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def interleave(*cases: Case) -> None:
    """ROUNDS rounds of A, B, ...: each run after its own (discarded) warm-up run."""
    for round_number in range(1, ROUNDS + 1):
        for case in cases:
            await wrk(case, WARMUP)
            if case.during is None:
                run = await wrk(case, DURATION)
            else:
                async with case.during() as extra:
                    run = await wrk(case, DURATION)
                run = Run(run.requests, run.rps, run.p50_ms, run.p99_ms, dict(extra))
            case.runs.append(run)
            note = f" {run.extra}" if run.extra else ""
            log(
                f"  round {round_number} {case.name}: {run.rps:,.0f} req/s, "
                f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms{note}"
            )


def login_burst(url: str, emails: list[str]) -> Callable[[], Any]:
    """While active: waves of concurrent sessionCreate logins (one per email), back to back."""

    @contextlib.asynccontextmanager
    async def burst() -> Any:
        stats = {"logins": 0}
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)

        async def one(client: httpx.AsyncClient, email: str) -> None:
            variables = {"input": {"email": email, "password": seed.PASSWORD}}
            response = await client.post(url, json={"query": LOGIN, "variables": variables})
            data = check(response, "login")["data"]["sessionCreate"]
            if data["userErrors"] or not data["session"]:
                raise BenchError(f"login failed during the burst: {data}")
            stats["logins"] += 1

        async def waves() -> None:
            async with httpx.AsyncClient(limits=limits, timeout=120) as client:
                while not stop.is_set():
                    await asyncio.gather(*(one(client, email) for email in emails))

        task = asyncio.create_task(waves())
        await asyncio.sleep(0.5)  # the first wave is hashing before wrk starts
        started = stats["logins"]
        try:
            yield stats
        finally:
            stats["logins"] -= started
            stop.set()
            await task  # let the wave in flight finish (and raise if a login failed)

    return burst


# ---- the measures ---------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    how: str
    result: str
    target: str
    ok: bool


def argon2_defaults() -> str:
    """The default argon2 settings the server runs with (none are overridden here)."""
    from gql_api.settings import Settings

    fields = Settings.model_fields
    return (
        f"default argon2: t={fields['argon2_time_cost'].default}, "
        f"m={fields['argon2_memory_kib'].default // 1024} MiB, "
        f"p={fields['argon2_parallelism'].default}, "
        f"{fields['argon2_max_concurrency'].default} at once"
    )


def walk_to_page(url: str, token: str, store_id: str, page: int) -> str:
    """The `after` cursor of page `page` (the cursor of item 50 * (page - 1)), walking."""
    after = None
    with httpx.Client(timeout=60) as client:
        for number in range(1, page):
            response = client.post(
                url,
                json={"query": PAGE, "variables": {"storeId": store_id, "after": after}},
                headers={"Authorization": f"Bearer {token}"},
            )
            channels = check(response, f"page {number}")["data"]["store"]["channels"]
            if len(channels["edges"]) != 50 or not channels["pageInfo"]["hasNextPage"]:
                raise BenchError(f"page {number} of the deep store is short")
            after = str(channels["pageInfo"]["endCursor"])
    assert after is not None
    return after


def post(url: str, body: dict[str, Any], authorization: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return httpx.post(url, json=body, headers=headers, timeout=60)


@dataclass
class Context:
    dbs: Databases
    seeded: Seeded
    key: str
    scratch: Path
    statements: dict[int, list[str]] = field(default_factory=dict)


async def measure(ctx: Context, api: Server, floor: Server) -> list[Row]:
    rows: list[Row] = []
    dash = ctx.seeded.dashboard
    session = f"Bearer {dash.owner.token}"
    secret = f"PortOne {dash.api_secret}"

    # 1. dashboard vs the framework floor
    dashboard = Case("dashboard", api.url, {"query": DASHBOARD}, session)
    floor_case = Case("floor", floor.url, {"query": DASHBOARD})
    log("dashboard query vs framework floor")
    await interleave(dashboard, floor_case)
    ratio = dashboard.ratio(floor_case, "rps")
    rows.append(
        Row(
            "dashboard query",
            f"`merchant {{ representativeStore {{ channels, webhookSettings {{ secrets }}, "
            f"subStores {{ channels, webhookSettings }} }} }}`: {SUB_STORES} sub-stores x "
            f"{seed.CHANNELS_PER_STORE} channels (all fields), session auth, "
            f"{CONNECTIONS} connections",
            f"{dashboard.summary()}; floor {floor_case.summary()}; ratio **{ratio:.2f}**",
            f"req/s >= {TARGET_FLOOR_RATIO} x the in-memory strawberry floor",
            ratio >= TARGET_FLOOR_RATIO,
        )
    )

    # 2. statements per dashboard request (transaction control is shown apart: SQLite's BEGIN
    # is a statement the engine's begin listener sends, PostgreSQL's is not a cursor execute)
    counts: dict[int, int] = {}
    control: dict[int, int] = {}
    for n, statements in sorted(ctx.statements.items()):
        control[n] = sum(1 for s in statements if s.upper().startswith(TRANSACTION_CONTROL))
        counts[n] = len(statements) - control[n]
    constant = len(set(counts.values())) == 1
    extra = f" (plus {max(control.values())} BEGIN)" if any(control.values()) else ""
    rows.append(
        Row(
            "SQL statements per dashboard request",
            "in process (ASGI), `db.driver_query.watch_statements` on the app's engine (what "
            "SQLAlchemy runs and what runs straight on the driver), a warm request; "
            f"list in bench/out/statements-{DB}.txt",
            ", ".join(f"{n} sub-stores: **{c}**" for n, c in counts.items()) + extra,
            f"the same for 2 and 20 sub-stores, <= {TARGET_MAX_STATEMENTS}",
            constant and max(counts.values()) <= TARGET_MAX_STATEMENTS,
        )
    )

    # 3 and 4. small authenticated query vs __typename, API secret vs session
    typename = Case("typename", api.url, {"query": TYPENAME})
    small = Case("small-session", api.url, {"query": SMALL}, session)
    small_secret = Case("small-secret", api.url, {"query": SMALL}, secret)
    log("small query: __typename, session, API secret")
    await interleave(typename, small, small_secret)
    ratio = small.ratio(typename, "rps")
    rows.append(
        Row(
            "small authenticated query",
            f"`{SMALL}` with `Bearer <session>` vs anonymous `{TYPENAME}`",
            f"{small.summary()}; `__typename` {typename.summary()}; ratio **{ratio:.2f}**",
            f"req/s >= {TARGET_SMALL_RATIO} x `__typename`",
            ratio >= TARGET_SMALL_RATIO,
        )
    )
    ratio = small_secret.ratio(small, "p50_ms")
    rows.append(
        Row(
            "API secret vs session",
            "the small query with `PortOne <secret>` vs `Bearer <session>`",
            f"secret {small_secret.summary()}; session {small.summary()}; "
            f"p50 ratio **{ratio:.2f}**",
            f"secret p50 <= {TARGET_SECRET_P50} x session p50",
            ratio <= TARGET_SECRET_P50,
        )
    )

    # 5. argon2 off the event loop
    quiet = Case("small-quiet", api.url, {"query": SMALL}, session)
    loud = Case(
        "small-burst",
        api.url,
        {"query": SMALL},
        session,
        during=login_burst(api.url, ctx.seeded.login_emails),
    )
    log(f"small query p99 without and with waves of {BURST} concurrent logins")
    await interleave(quiet, loud)
    ratio = loud.ratio(quiet, "p99_ms")
    logins = statistics.median(run.extra["logins"] for run in loud.runs)
    rows.append(
        Row(
            "argon2 off the event loop",
            f"small query (session) while waves of {BURST} concurrent `sessionCreate` "
            f"({argon2_defaults()}) run, vs without",
            f"p99 {loud.median('p99_ms'):.2f} ms with ({logins:.0f} logins in {DURATION} s, "
            f"{loud.median('rps'):,.0f} req/s) vs {quiet.median('p99_ms'):.2f} ms without "
            f"({quiet.median('rps'):,.0f} req/s); ratio **{ratio:.2f}**",
            f"p99 <= {TARGET_BURST_P99} x without the burst",
            ratio <= TARGET_BURST_P99,
        )
    )

    # 6. deep pagination
    deep = ctx.seeded.deep
    deep_auth = f"Bearer {deep.token}"
    after = walk_to_page(api.url, deep.token, deep.representative_store_id, 100)
    page100_body = {
        "query": PAGE,
        "variables": {"storeId": deep.representative_store_id, "after": after},
    }
    first = check(post(api.url, page100_body, deep_auth), "page 100")
    edges = first["data"]["store"]["channels"]["edges"]
    if edges[0]["node"]["name"] != "Channel 04951" or len(edges) != 50:
        raise BenchError(f"page 100 starts at {edges[0]['node']['name']}, not Channel 04951")
    page1 = Case(
        "page-1",
        api.url,
        {"query": PAGE, "variables": {"storeId": deep.representative_store_id, "after": None}},
        deep_auth,
    )
    page100 = Case("page-100", api.url, page100_body, deep_auth)
    log("deep pagination: page 1 vs page 100 of 10,000 channels")
    await interleave(page1, page100)
    ratio = page100.ratio(page1, "p50_ms")
    ratio = max(ratio, 1 / ratio)
    rows.append(
        Row(
            "deep pagination",
            "`store { channels(first: 50, after:) }` (all channel fields) of a store with "
            "10,000 channels: page 1 vs page 100 (`after` = cursor of item 4950)",
            f"page 1 {page1.summary()}; page 100 {page100.summary()}; p50 ratio **{ratio:.2f}**",
            f"p50 within {TARGET_PAGE_RATIO}x either way",
            ratio <= TARGET_PAGE_RATIO,
        )
    )

    # 7. memory
    rss = api.peak_rss_mib()
    rows.append(
        Row(
            "memory",
            "VmHWM of the server process (/proc/<pid>/status) after everything above",
            f"**{rss:.0f} MiB**",
            f"<= {TARGET_RSS_MIB} MiB",
            rss <= TARGET_RSS_MIB,
        )
    )
    return rows


# ---- report ---------------------------------------------------------------------------------


def machine() -> list[str]:
    from importlib.metadata import version

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, AttributeError):
        kib = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem = f"{int(kib.group(1)) / 1024 / 1024:.1f} GiB" if kib else "?"
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    wrk_version = subprocess.run(
        ["wrk", "--version"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split(" Copyright")[0]
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("strawberry-graphql", "starlette", "uvicorn", "SQLAlchemy", "uvloop")
    )
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores, {mem} RAM; {os_name}",
        f"- Python {platform.python_version()}; {packages}; {wrk_version}",
    ]


SQLALCHEMY_NOTES = ("(Background on this error", "[SQL:", "[parameters:")


def server_log_errors(paths: list[Path]) -> str:
    """ERROR lines of the server logs, by exception (client disconnects when wrk stops
    included); plain-text logs (uvicorn's own, the receiver's) by their `ERROR:` lines."""
    kinds: dict[str, int] = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if line.startswith(("ERROR:", "CRITICAL:")):
                    kinds[line[:120]] = kinds.get(line[:120], 0) + 1
                continue
            if not isinstance(entry, dict) or entry.get("level") not in ("ERROR", "CRITICAL"):
                continue
            exception = (entry.get("exception") or entry.get("message") or "").strip()
            lines = [x for x in exception.splitlines() if not x.startswith(SQLALCHEMY_NOTES)]
            kind = lines[-1][:120] if lines else "?"
            kinds[kind] = kinds.get(kind, 0) + 1
    if not kinds:
        return "none"
    return "; ".join(f"{n} x `{kind}`" for kind, n in sorted(kinds.items(), key=lambda x: -x[1]))


def code_version() -> str:
    """The commit measured, and whether the application code differs from it."""
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"

    def run(*args: str) -> str:
        done = subprocess.run([git, *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        return done.stdout.strip()

    commit = run("log", "-1", "--format=%h %s") or "unknown"
    dirty = run("status", "--porcelain", "--", "gql_api", "db", "pyproject.toml")
    return f"`{commit}`" + (" with uncommitted changes in gql_api/db" if dirty else "")


def render(
    rows: list[Row],
    dbs: Databases,
    started: float,
    log_errors: str,
    busy: float,
    foreign: tuple[float, float],
    notes: list[str],
    speed: float,
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = [
        f"- Load: wrk -t1 -c{CONNECTIONS}, {WARMUP} s warm-up before each {DURATION} s run, "
        f"{ROUNDS} interleaved rounds per comparison; medians, ratios are medians of the "
        "per-round ratios; latency percentiles are wrk's (corrected for coordinated "
        "omission); server: `integration-api serve` (uvicorn, 1 worker, access log off), "
        f"{argon2_defaults()}"
    ]
    lines = [
        f"## {'PostgreSQL' if DB == 'postgresql' else 'SQLite'}"
        + (f" ({ONLY} rows only)" if ONLY else ""),
        "",
        f"- Date: {now}; the whole run took {(time.monotonic() - started) / 60:.1f} min",
        *machine(),
        f"- Code: {code_version()}",
        f"- Database: {dbs.version}",
        *([] if ONLY == "delivery" else load),
        *notes,
        f"- Errors in the server logs: {log_errors}",
        f"- Other work on the machine: {busy:.0%} of the CPUs busy before the load, "
        f"{foreign[0]:.0%} on average during it (highest second {foreign[1]:.0%})"
        + (
            " (**results are unreliable**: run on an idle machine)"
            if max(busy, foreign[0]) > BUSY_LIMIT
            else ""
        ),
        f"- Core speed before the load: 3 million additions in a pure-Python loop took "
        f"{speed * 1000:.0f} ms (best of 3); compare runs by it",
        "",
        "| measure | how | result | target | |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        status = "PASS" if row.ok else "**MISS**"
        lines.append(f"| {row.measure} | {row.how} | {row.result} | {row.target} | {status} |")
    missed = [row.measure for row in rows if not row.ok]
    lines += ["", f"Missed: {', '.join(missed)}." if missed else "Every target is met.", ""]
    return "\n".join(lines)


def write_results(section: str) -> None:
    begin, end = f"<!-- BEGIN {DB} -->", f"<!-- END {DB} -->"
    header = (
        "# Benchmark results\n\nWritten by `make bench` (bench/run.py); each section is replaced "
        "by the latest run on that database (`BENCH_DB=postgresql make bench` for PostgreSQL).\n"
    )
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else header
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        text = text.split(begin)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


# ---- main -----------------------------------------------------------------------------------


def api_env(*, database_url: str, key: str, scratch: Path, port: int) -> dict[str, str]:
    """The environment of every `integration-api serve` the API rows start."""
    # The worker count is the command line's (`serve` alone: 1), never an inherited one.
    inherited = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    return {
        **inherited,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEYS": key,
        "DATA_DIR": str(scratch),
        "LOG_LEVEL": "WARNING",
        "APP_ENV": "development",
    }


@contextlib.contextmanager
def servers(ctx: Context) -> Iterator[tuple[Server, Server]]:
    api_port, floor_port = free_port(), free_port()
    api = Server(
        "api",
        [str(Path(sys.executable).parent / "integration-api"), "serve"],
        env=api_env(database_url=ctx.dbs.main, key=ctx.key, scratch=ctx.scratch, port=api_port),
        cwd=ctx.scratch,  # no stray .env from the working tree
        port=api_port,
    )
    capture = OUT / f"dashboard-{DB}.json"
    floor = Server(
        "floor",
        [
            sys.executable,
            str(BENCH / "floor.py"),
            "--port",
            str(floor_port),
            "--data",
            str(capture),
        ],
        env=dict(os.environ),
        cwd=ROOT,
        port=floor_port,
    )
    try:
        api.start()
        log(f"API server pid {api.process.pid if api.process else '?'} on port {api_port}")
        session = f"Bearer {ctx.seeded.dashboard.owner.token}"
        real = check(post(api.url, {"query": DASHBOARD}, session), "dashboard")
        stores = real["data"]["merchant"]["representativeStore"]["subStores"]["edges"]
        if len(stores) != SUB_STORES:
            raise BenchError(f"dashboard shows {len(stores)} sub-stores, not {SUB_STORES}")
        representative = real["data"]["merchant"]["representativeStore"]
        for store in [representative, *(edge["node"] for edge in stores)]:
            shown = len(store["channels"]["edges"]), len(store["webhookSettings"])
            if shown != (seed.CHANNELS_PER_STORE, 4) or not store["webhookSettings"][0]["url"]:
                raise BenchError(f"dashboard store {store['name']}: (channels, settings) {shown}")
        capture.write_text(json.dumps(real, ensure_ascii=False), encoding="utf-8")
        floor.start()
        copy = check(post(floor.url, {"query": DASHBOARD}), "floor")
        if copy != real:
            raise BenchError("the floor's response differs from the real dashboard response")
        for what, auth in (
            ("session", session),
            ("API secret", f"PortOne {ctx.seeded.dashboard.api_secret}"),
        ):
            name = check(post(api.url, {"query": SMALL}, auth), what)["data"]["viewer"]
            if name["merchant"]["name"] != "Bench Merchant":
                raise BenchError(f"small query as {what}: {name}")
        yield api, floor
    finally:
        floor.stop()
        api.stop()


def serve_only(ctx: Context, api: Server, floor: Server) -> None:
    """`run.py --serve`: seed, start both servers, print how to load them, wait for Ctrl-C."""
    dash = ctx.seeded.dashboard
    cases = [
        Case("dashboard", api.url, {"query": DASHBOARD}, f"Bearer {dash.owner.token}"),
        Case("floor", floor.url, {"query": DASHBOARD}),
        Case("typename", api.url, {"query": TYPENAME}),
        Case("small-session", api.url, {"query": SMALL}, f"Bearer {dash.owner.token}"),
        Case("small-secret", api.url, {"query": SMALL}, f"PortOne {dash.api_secret}"),
    ]
    assert api.process is not None and floor.process is not None
    print(f"API server pid {api.process.pid} at {api.url}; floor pid {floor.process.pid}")
    for case in cases:
        print(
            f"WRK_BODY_FILE={case.body_file()} WRK_AUTHORIZATION='{case.authorization or ''}' "
            f"wrk -t1 -c{CONNECTIONS} -d{DURATION}s -s {LUA} {case.url}"
        )
    print("Ctrl-C stops the servers.", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while api.process.poll() is None:
            time.sleep(1)


def main() -> int:
    started = time.monotonic()
    # Stop cleanly (servers, PostgreSQL, scratch files) on Ctrl-C and on kill, even in the
    # background, where a non-interactive shell starts us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if DB not in ("sqlite", "postgresql"):
        raise BenchError("BENCH_DB must be sqlite or postgresql")
    if ONLY not in ("", "delivery", "workers"):
        raise BenchError("BENCH_ONLY must be delivery or workers (or unset: every row)")
    if ONLY != "delivery":
        ensure_wrk()
    OUT.mkdir(exist_ok=True)
    # One benchmark at a time: two would share the cores (and bench/out/) and both be wrong.
    lock = (OUT / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BenchError("another make bench is running (bench/out/.lock); wait for it") from None
    scratch = Path(tempfile.mkdtemp(prefix="gql-bench-"))
    from bench import delivery, workers
    from db.migrate import upgrade
    from gql_api.security.encryption import new_key

    dbs = postgres_databases() if DB == "postgresql" else sqlite_databases(scratch)
    rows: list[Row] = []
    logs: list[Path] = []
    notes: list[str] = []
    try:
        log(f"migrating{'' if ONLY == 'delivery' else ' and seeding'} ({dbs.version})")
        for url in (dbs.main, *dbs.count.values()):
            upgrade(url)
        key = new_key()
        token = ""  # the small query's Authorization header (the workers row)
        if ONLY == "workers":
            # The small query's merchant alone (the other seeds feed other rows).
            token = asyncio.run(seed_small(dbs.main, key, scratch))
        if not ONLY:
            seeded = asyncio.run(seed_all(dbs, key, scratch))
            ctx = Context(dbs=dbs, seeded=seeded, key=key, scratch=scratch)
            log(f"seeded in {time.monotonic() - started:.0f} s; counting SQL statements")
            ctx.statements[SUB_STORES] = asyncio.run(
                count_statements(dbs.main, key, scratch, seeded.dashboard.owner.token)
            )
            for n, url in dbs.count.items():
                ctx.statements[n] = asyncio.run(
                    count_statements(url, key, scratch, seeded.count_tokens[n])
                )
            with (OUT / f"statements-{DB}.txt").open("w", encoding="utf-8") as out:
                for n, statements in sorted(ctx.statements.items()):
                    out.write(f"## {n} sub-stores: {len(statements)} statements\n")
                    out.writelines(f"{s}\n" for s in statements)
        busy = idle_cpu_busy()
        speed = cpu_speed()
        if busy > BUSY_LIMIT:
            log(f"warning: {busy:.0%} of the CPUs are busy with other work; numbers will be off")
        with ForeignLoad(dbs.roots) as foreign:
            if not ONLY:
                with servers(ctx) as (api, floor):
                    if "--serve" in sys.argv:
                        serve_only(ctx, api, floor)
                        return 0
                    rows += asyncio.run(measure(ctx, api, floor))
                logs.append(OUT / f"api-{DB}.log")
                token = f"Bearer {ctx.seeded.dashboard.owner.token}"
            if ONLY in ("", "workers"):
                # serve --workers 1 vs 2: servers of their own, after the memory row (the
                # server it measures stopped), before the delivery rows.
                more_rows, more_notes, more_logs = asyncio.run(
                    workers.measure(
                        database_url=dbs.main,
                        key=key,
                        scratch=scratch,
                        token=token,
                        database_roots=dbs.roots,
                    )
                )
                rows += more_rows
                notes += more_notes
                logs += more_logs
            if ONLY in ("", "delivery"):
                # Webhook delivery last, on the same database, with processes of its own (a
                # merchant of its own): after the memory row, and with the API server stopped.
                delivered = asyncio.run(delivery.measure(dbs.main, key, scratch))
                rows += delivered.rows
                notes += delivered.notes
                logs += delivered.logs
    finally:
        dbs.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    section = render(
        rows, dbs, started, server_log_errors(logs), busy, foreign.summary(), notes, speed
    )
    if foreign.summary()[0] > BUSY_LIMIT:
        log(f"warning: other processes used {foreign.summary()[0]:.0%} of the CPUs meanwhile")
    print(section)
    if ONLY:
        # A partial run never replaces the full table of bench/results.md.
        partial = OUT / f"results-{ONLY}-{DB}.md"
        partial.write_text(section, encoding="utf-8")
        log(f"written to {partial.relative_to(ROOT)} (BENCH_ONLY: bench/results.md untouched)")
    else:
        write_results(section)
        log(f"written to {RESULTS.relative_to(ROOT)}")
    return 0 if all(row.ok for row in rows) else 1


def entry() -> int:
    """main(), with 2 for a benchmark that could not run (not a missed target)."""
    try:
        return main()
    except BenchError as error:
        log(f"error: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(entry())
