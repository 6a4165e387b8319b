"""`make bench`: the API's performance targets, measured side by side on this machine.

Seeds a database (SQLite by default; BENCH_DB=postgresql starts a throwaway PostgreSQL), starts
the real server (`integration-api serve`: uvicorn, 1 worker) in production configuration
(APP_ENV=production with a real encryption key and a metrics token, LOG_LEVEL=INFO: one JSON
access-log line per request, written to bench/out/api-<db>.log) and the framework floor
(bench/floor.py, checked level with the app by bench/parity.py), drives both over HTTP with wrk
(Debian's package, installed when missing and running as root), prints one table, writes it to
bench/results.md with the machine details, and exits 1 when a target is missed (2 when the
benchmark itself could not run, the floor is not level, or a response under load was wrong).

Every response under load is checked: bench/post.lua compares each body, byte for byte, with
the one captured before the load for the same request, and any difference (or a status other
than 200) stops the run. Every wrk run is preceded by its own warm-up run (discarded); the runs
of each comparison are interleaved A-B-B-A (the order reverses every round) and the table
reports medians over the rounds, ratios as the median of the per-round ratios with their min
and max. All load goes to 127.0.0.1. Argon2 uses the real defaults (gql_api/settings.py).

The `serve --workers` row (bench/workers.py: the small query with 1 and with 2 worker
processes, and where the CPU went) and the webhook delivery rows (bench/delivery.py: one
worker's throughput against an httpx floor, publish-to-receipt latency) come last, with
processes of their own on the same database.

Environment: BENCH_DB (sqlite | postgresql), BENCH_ROUNDS (5), BENCH_DURATION (5 s),
BENCH_WARMUP (2 s), BENCH_CONNECTIONS (8), BENCH_BURST (20 concurrent logins),
BENCH_DELIVERY_EVENTS (1000), BENCH_DELIVERY_RATE (50/s), BENCH_DELIVERY_SECONDS (20 s), and
BENCH_ONLY=api, BENCH_ONLY=delivery or BENCH_ONLY=workers for those rows alone. A partial run
(BENCH_ONLY, or fewer rounds or shorter runs than the defaults, for a quick check) is written to
bench/out/, never to bench/results.md.
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
import secrets
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
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench import parity, seed  # noqa: E402

# Run as a script, this module is __main__: bench/delivery.py imports it as bench.run, and must
# get this very module (one BenchError, one set of settings), not a second copy.
sys.modules.setdefault("bench.run", sys.modules[__name__])

DB = os.environ.get("BENCH_DB", "sqlite").strip().lower()
DEFAULT_ROUNDS, DEFAULT_DURATION, DEFAULT_WARMUP = 5, 5, 2
ROUNDS = int(os.environ.get("BENCH_ROUNDS", str(DEFAULT_ROUNDS)))
DURATION = int(os.environ.get("BENCH_DURATION", str(DEFAULT_DURATION)))
WARMUP = int(os.environ.get("BENCH_WARMUP", str(DEFAULT_WARMUP)))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
BURST = int(os.environ.get("BENCH_BURST", "20"))
# "api" / "delivery" / "workers": those rows alone
ONLY = os.environ.get("BENCH_ONLY", "").strip().lower()
# Fewer rounds or shorter runs than the defaults: a quick check, not a result to keep.
SHORTENED = ROUNDS < DEFAULT_ROUNDS or DURATION < DEFAULT_DURATION or WARMUP < DEFAULT_WARMUP
SUB_STORES = 10
MIXED_DASHBOARD_CONNECTIONS = 8  # the mixed workload: dashboards running meanwhile
MIXED_SMALL_CONNECTIONS = 1  # ... and one client sending the small query
RSS_CONNECTIONS = 32
LAG_PROBE_INTERVAL = 0.05  # seconds between /healthz probes of the event loop

TARGET_FLOOR_RATIO = 0.7
TARGET_MAX_STATEMENTS = 10
TARGET_SMALL_RATIO = 0.5
TARGET_SECRET_P50 = 1.15
TARGET_BURST_P99 = 3.0
TARGET_PAGE_RATIO = 1.5
TARGET_RSS_MIB = 200
TARGET_LOGIN_P99 = 1.2  # x the time the burst's hashes take one after another
TARGET_MIXED_P99 = 3.0
TARGET_LAG_P99_MS = 50.0
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
    checked: int = 0  # responses compared with the expected one (all matched)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.99: the value 99% of the values are at or below)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True)
class Spread:
    """Per-round values of one measure: the verdict uses the median; min and max show the
    noise, and a range on both sides of the target says the verdict could go either way."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    def text(self, digits: int = 2, unit: str = "") -> str:
        low, high = min(self.values), max(self.values)
        return (
            f"**{self.median:.{digits}f}{unit}** ({low:.{digits}f} to {high:.{digits}f} over "
            f"{len(self.values)} rounds)"
        )

    def straddles(self, target: float) -> bool:
        return min(self.values) < target < max(self.values)


@dataclass
class Case:
    name: str
    url: str
    body: dict[str, Any]
    authorization: str | None = None
    during: Callable[[], Any] | None = None  # an async context manager factory (the burst)
    runs: list[Run] = field(default_factory=list)
    connections: int | None = None  # None: CONNECTIONS
    checked: int = 0  # every response checked so far, warm-ups included

    def body_file(self) -> Path:
        path = OUT / f"body-{self.name}.json"
        path.write_text(json.dumps(self.body), encoding="utf-8")
        return path

    def expect_file(self) -> Path:
        """The expected response body, captured once, before any load: the request wrk sends
        (same body, same headers), which must answer 200 without errors."""
        path = OUT / f"expect-{self.name}.json"
        if not path.exists() or path.stat().st_mtime < STARTED_AT:
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if self.authorization:
                headers["Authorization"] = self.authorization
            response = httpx.post(
                self.url, content=self.body_file().read_bytes(), headers=headers, timeout=60
            )
            check(response, f"{self.name} (expected response)")
            path.write_bytes(response.content)
        return path

    def ratios(self, other: Case, attribute: str) -> Spread:
        """This run's value / the other's, round by round."""
        pairs = zip(self.runs, other.runs, strict=True)
        return Spread(tuple(getattr(a, attribute) / getattr(b, attribute) for a, b in pairs))

    def ratio(self, other: Case, attribute: str) -> float:
        """Median over the rounds of this run's value / the other's, round by round."""
        return self.ratios(other, attribute).median

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    def summary(self) -> str:
        return (
            f"{self.median('rps'):,.0f} req/s, p50 {self.median('p50_ms'):.2f} ms, "
            f"p99 {self.median('p99_ms'):.2f} ms"
        )


STARTED_AT = time.time()


async def wrk(case: Case, seconds: int, connections: int | None = None) -> Run:
    """One wrk run; every response is checked against the case's expected one, and a response
    that differs (or any failed request) stops the benchmark."""
    env = {**os.environ, "WRK_BODY_FILE": str(case.body_file())}
    env["WRK_AUTHORIZATION"] = case.authorization or ""
    env["WRK_EXPECT_FILE"] = str(case.expect_file())
    mismatch = OUT / f"mismatch-{case.name}.txt"
    mismatch.unlink(missing_ok=True)
    env["WRK_MISMATCH_FILE"] = str(mismatch)
    connections = connections or case.connections or CONNECTIONS
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(LUA)]
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
    if data["mismatched"] or data["checked"] != data["requests"]:
        raise BenchError(
            f"{case.name}: {data['mismatched']} of {data['checked']} responses checked under "
            f"load differ from the expected one ({data['requests']} requests); the first is in "
            f"{mismatch.relative_to(ROOT)}"
        )
    case.checked += data["checked"]
    return Run(
        requests=data["requests"],
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        checked=data["checked"],
    )


def abba(cases: tuple[Case, ...], round_number: int) -> tuple[Case, ...]:
    """The order of a round: as given in odd rounds, reversed in even ones (A-B, B-A, A-B...),
    so that neither side always runs first, on a server warmed by the other."""
    return cases if round_number % 2 else tuple(reversed(cases))


async def interleave(*cases: Case) -> None:
    """ROUNDS rounds, A-B-B-A: each run after its own (discarded) warm-up run."""
    for round_number in range(1, ROUNDS + 1):
        for case in abba(cases, round_number):
            if WARMUP:
                await wrk(case, WARMUP)
            if case.during is None:
                run = await wrk(case, DURATION)
            else:
                async with case.during() as extra:
                    run = await wrk(case, DURATION)
                run = Run(run.requests, run.rps, run.p50_ms, run.p99_ms, dict(extra), run.checked)
            case.runs.append(run)
            note = ", ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in run.extra.items()
                if not isinstance(v, list)
            )
            log(
                f"  round {round_number} {case.name}: {run.rps:,.0f} req/s, "
                f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms{'; ' + note if note else ''}"
            )


def login_burst(url: str, emails: list[str]) -> Callable[[], Any]:
    """While active: waves of concurrent sessionCreate logins (one per email), back to back;
    the latency of every log-in (seconds, as the client saw it) in `latencies`. Before the
    waves start, with the server idle, the time BURST argon2 verifies take one after another
    in this process (`hashing`): the log-ins of each round are compared with hashing measured
    at the same time (the machine's speed drifts: measured once per run, the 20 hashes took
    3.9-4.7 s from one run to the next, and the ratio moved with them)."""

    @contextlib.asynccontextmanager
    async def burst() -> Any:
        stats: dict[str, Any] = {"logins": 0, "latencies": []}
        stats["hashing"] = await asyncio.to_thread(hashing_time, BURST)
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)

        async def one(client: httpx.AsyncClient, email: str) -> None:
            variables = {"input": {"email": email, "password": seed.PASSWORD}}
            sent = time.perf_counter()
            response = await client.post(url, json={"query": LOGIN, "variables": variables})
            stats["latencies"].append(time.perf_counter() - sent)
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


def lag_probe(base_url: str, stats: dict[str, Any]) -> Callable[[], Any]:
    """While active: GET /healthz every LAG_PROBE_INTERVAL on a connection of its own, its
    round trip in `stats["lag_ms"]`. The server answers /healthz with no database and no
    GraphQL, so the round trip is the time the request waited for the event loop plus a
    fraction of a millisecond: an upper bound of the loop's lag, read from outside."""

    @contextlib.asynccontextmanager
    async def probing() -> Any:
        stop = asyncio.Event()
        samples: list[float] = []

        async def probe() -> None:
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                while not stop.is_set():
                    sent = time.perf_counter()
                    response = await client.get("/healthz")
                    samples.append((time.perf_counter() - sent) * 1000)
                    if response.status_code != 200:
                        raise BenchError(f"/healthz answered {response.status_code} under load")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), LAG_PROBE_INTERVAL)

        task = asyncio.create_task(probe())
        try:
            yield
        finally:
            stop.set()
            await task
            stats["lag_ms"] = samples

    return probing


async def lag_buckets(base_url: str) -> dict[float, float]:
    """The server's own `event_loop_lag_seconds` histogram (cumulative counts by upper bound)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
    if response.status_code != 200:
        raise BenchError(f"/metrics answered {response.status_code}")
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name == "event_loop_lag_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets[float(sample.labels["le"])] = sample.value
    if not buckets:
        raise BenchError("the server's /metrics has no event_loop_lag_seconds")
    return buckets


def lag_quantile_ms(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of the samples taken between two
    scrapes, in ms (a histogram says no more than that: the verdict is on the safe side)."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1]
    if total <= 0:
        raise BenchError("no event-loop lag samples between two scrapes")
    for bound, cumulative in counts:
        if cumulative >= q * total:
            return bound * 1000
    return float("inf")


def mixed(api_url: str, dashboard: Case | None) -> Callable[[], Any]:
    """While active: the event-loop probe, and (when `dashboard` is given) MIXED_DASHBOARD_
    CONNECTIONS connections sending the dashboard (their responses checked too). The small
    query measured meanwhile is the mixed workload's A (alone) or B (with dashboards)."""

    @contextlib.asynccontextmanager
    async def running() -> Any:
        stats: dict[str, Any] = {}
        base = api_url.removesuffix("/graphql")
        loading = None
        if dashboard is not None:
            # Outlasts the small query's run: wrk's connections are open before it starts.
            seconds = DURATION + 2
            loading = asyncio.create_task(wrk(dashboard, seconds, MIXED_DASHBOARD_CONNECTIONS))
            await asyncio.sleep(1.0)
        before = await lag_buckets(base)
        try:
            async with lag_probe(base, stats)():
                yield stats
        finally:
            if loading is not None:
                run = await loading
                stats["dashboards_rps"] = run.rps
        stats["lag_p99_ms"] = lag_quantile_ms(before, await lag_buckets(base), 0.99)
        stats["healthz_p99_ms"] = percentile(stats["lag_ms"], 0.99)

    return running


# ---- the measures ---------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    how: str
    result: str
    target: str
    ok: bool
    checked: int | None = None  # responses checked under load for this row (None: not wrk's)
    straddles: bool = False  # the per-round min-max range lies on both sides of the target

    def status(self) -> str:
        verdict = "PASS" if self.ok else "**MISS**"
        return f"{verdict} (range straddles the target)" if self.straddles else verdict


def checked(*cases: Case) -> int:
    return sum(case.checked for case in cases)


def hashing_time(count: int) -> float:
    """Seconds `count` argon2 verifies take one after another, in this process, with the
    server's default settings (a log-in verifies one password hash): best of two tries."""
    from argon2 import PasswordHasher

    from gql_api.settings import Settings

    fields = Settings.model_fields
    hasher = PasswordHasher(
        time_cost=fields["argon2_time_cost"].default,
        memory_cost=fields["argon2_memory_kib"].default,
        parallelism=fields["argon2_parallelism"].default,
    )
    stored = hasher.hash(seed.PASSWORD)
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for _ in range(count):
            hasher.verify(stored, seed.PASSWORD)
        best = min(best, time.perf_counter() - started)
    return best


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
    notes: list[str] = field(default_factory=list)


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
    spread = dashboard.ratios(floor_case, "rps")
    rows.append(
        Row(
            "dashboard query",
            f"`merchant {{ representativeStore {{ channels, webhookSettings {{ secrets }}, "
            f"subStores {{ channels, webhookSettings }} }} }}`: {SUB_STORES} sub-stores x "
            f"{seed.CHANNELS_PER_STORE} channels (all fields), session auth, "
            f"{CONNECTIONS} connections, vs the floor (bench/floor.py, level with the app: "
            "orjson, gc.freeze, uvicorn options)",
            f"{dashboard.summary()}; floor {floor_case.summary()}; ratio {spread.text()}",
            f"req/s >= {TARGET_FLOOR_RATIO} x the in-memory strawberry floor",
            spread.median >= TARGET_FLOOR_RATIO,
            checked(dashboard, floor_case),
            spread.straddles(TARGET_FLOOR_RATIO),
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
    spread = small.ratios(typename, "rps")
    rows.append(
        Row(
            "small authenticated query",
            f"`{SMALL}` with `Bearer <session>` vs anonymous `{TYPENAME}`",
            f"{small.summary()}; `__typename` {typename.summary()}; ratio {spread.text()}",
            f"req/s >= {TARGET_SMALL_RATIO} x `__typename`",
            spread.median >= TARGET_SMALL_RATIO,
            checked(small, typename),
            spread.straddles(TARGET_SMALL_RATIO),
        )
    )
    spread = small_secret.ratios(small, "p50_ms")
    rows.append(
        Row(
            "API secret vs session",
            "the small query with `PortOne <secret>` vs `Bearer <session>`",
            f"secret {small_secret.summary()}; session {small.summary()}; "
            f"p50 ratio {spread.text()}",
            f"secret p50 <= {TARGET_SECRET_P50} x session p50",
            spread.median <= TARGET_SECRET_P50,
            checked(small_secret),
            spread.straddles(TARGET_SECRET_P50),
        )
    )

    # 5. argon2 off the event loop, and the log-ins' own latency during the burst
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
    spread = loud.ratios(quiet, "p99_ms")
    logins = statistics.median(run.extra["logins"] for run in loud.runs)
    rows.append(
        Row(
            "argon2 off the event loop",
            f"small query (session) while waves of {BURST} concurrent `sessionCreate` "
            f"({argon2_defaults()}) run, vs without",
            f"p99 {loud.median('p99_ms'):.2f} ms with ({logins:.0f} logins in {DURATION} s, "
            f"{loud.median('rps'):,.0f} req/s) vs {quiet.median('p99_ms'):.2f} ms without "
            f"({quiet.median('rps'):,.0f} req/s); ratio {spread.text()}",
            f"p99 <= {TARGET_BURST_P99} x without the burst",
            spread.median <= TARGET_BURST_P99,
            checked(quiet, loud),
            spread.straddles(TARGET_BURST_P99),
        )
    )
    latencies = [x for run in loud.runs for x in run.extra["latencies"]]
    per_round = Spread(
        tuple(percentile(run.extra["latencies"], 0.99) / run.extra["hashing"] for run in loud.runs)
    )
    hashing = Spread(tuple(run.extra["hashing"] * 1000 for run in loud.runs))
    rows.append(
        Row(
            "log-in latency during the burst",
            f"each `sessionCreate` of the waves of {BURST} above, as the client saw it (all "
            f"rounds: {len(latencies)} log-ins), vs {BURST} argon2 verifies one after another "
            f"in the benchmark process with the default settings, measured before each round "
            f"(no load; best of two): {hashing.median:.0f} ms ({hashing.median / BURST:.0f} ms "
            f"each; {min(hashing.values):.0f} to {max(hashing.values):.0f} ms over the rounds)",
            f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 "
            f"{percentile(latencies, 0.99) * 1000:.0f} ms; p99 / {BURST} hashes: per round "
            f"{per_round.text()}",
            f"p99 <= {TARGET_LOGIN_P99} x the {BURST} hashes one after another",
            per_round.median <= TARGET_LOGIN_P99,
            None,
            per_round.straddles(TARGET_LOGIN_P99),
        )
    )

    # 6. mixed workload: the small query alone, and while dashboards run; the loop's lag
    mixed_dashboard = Case("dashboard-mixed", api.url, {"query": DASHBOARD}, session)
    alone = Case(
        "small-alone",
        api.url,
        {"query": SMALL},
        session,
        during=mixed(api.url, None),
        connections=MIXED_SMALL_CONNECTIONS,
    )
    busy = Case(
        "small-mixed",
        api.url,
        {"query": SMALL},
        session,
        during=mixed(api.url, mixed_dashboard),
        connections=MIXED_SMALL_CONNECTIONS,
    )
    log(
        f"mixed: the small query ({MIXED_SMALL_CONNECTIONS} connection) alone and while "
        f"{MIXED_DASHBOARD_CONNECTIONS} connections send the dashboard"
    )
    await interleave(alone, busy)
    spread = busy.ratios(alone, "p99_ms")
    rows.append(
        Row(
            "mixed workload",
            f"the small query (session, {MIXED_SMALL_CONNECTIONS} connection) while "
            f"{MIXED_DASHBOARD_CONNECTIONS} connections send the dashboard, vs alone",
            f"p99 {busy.median('p99_ms'):.2f} ms with dashboards (they ran at "
            f"{statistics.median(r.extra['dashboards_rps'] for r in busy.runs):,.0f} req/s) vs "
            f"{alone.median('p99_ms'):.2f} ms alone; ratio {spread.text()}",
            f"p99 <= {TARGET_MIXED_P99} x alone",
            spread.median <= TARGET_MIXED_P99,
            checked(alone, busy, mixed_dashboard),
            spread.straddles(TARGET_MIXED_P99),
        )
    )
    lag = Spread(tuple(run.extra["lag_p99_ms"] for run in busy.runs))
    lag_alone = Spread(tuple(run.extra["lag_p99_ms"] for run in alone.runs))
    healthz = Spread(tuple(run.extra["healthz_p99_ms"] for run in busy.runs))
    rows.append(
        Row(
            "event loop lag (mixed workload)",
            "the server's `event_loop_lag_seconds` (how late a 50 ms timer fired, sampled all "
            "along), the samples of each mixed-workload run (scraped before and after), p99 as "
            "the upper bound of its histogram bucket; from outside, `GET /healthz` every "
            f"{LAG_PROBE_INTERVAL * 1000:.0f} ms on a connection of its own, its round trip",
            f"p99 with dashboards {lag.text(1, ' ms')}; alone {lag_alone.text(1, ' ms')}; "
            f"`/healthz` round trip p99 with dashboards {healthz.text(1, ' ms')}",
            f"p99 <= {TARGET_LAG_P99_MS:.0f} ms",
            lag.median <= TARGET_LAG_P99_MS,
            None,
            lag.straddles(TARGET_LAG_P99_MS),
        )
    )

    # 7. deep pagination
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
    spread = page100.ratios(page1, "p50_ms")
    spread = Spread(tuple(max(x, 1 / x) for x in spread.values))
    rows.append(
        Row(
            "deep pagination",
            "`store { channels(first: 50, after:) }` (all channel fields) of a store with "
            "10,000 channels: page 1 vs page 100 (`after` = cursor of item 4950)",
            f"page 1 {page1.summary()}; page 100 {page100.summary()}; p50 ratio "
            f"(the larger way) {spread.text()}",
            f"p50 within {TARGET_PAGE_RATIO}x either way",
            spread.median <= TARGET_PAGE_RATIO,
            checked(page1, page100),
            spread.straddles(TARGET_PAGE_RATIO),
        )
    )

    # 8. memory: 32 connections on the dashboard while log-ins hash, after everything above
    crowd = Case(
        "dashboard-32",
        api.url,
        {"query": DASHBOARD},
        session,
        connections=RSS_CONNECTIONS,
    )
    log(f"memory: {RSS_CONNECTIONS} connections on the dashboard during waves of {BURST} logins")
    seconds = max(DURATION, DEFAULT_DURATION)  # at 32 connections a dashboard takes ~1 s
    async with login_burst(api.url, ctx.seeded.login_emails)():
        run = await wrk(crowd, seconds)
    rss = api.peak_rss_mib()
    rows.append(
        Row(
            "memory",
            "VmHWM of the server process (/proc/<pid>/status) after everything above and a "
            f"{seconds} s run of {RSS_CONNECTIONS} connections on the dashboard during waves "
            f"of {BURST} concurrent log-ins ({argon2_defaults()})",
            f"**{rss:.0f} MiB** ({RSS_CONNECTIONS} connections: {run.rps:,.0f} req/s, p99 "
            f"{run.p99_ms:.0f} ms)",
            f"<= {TARGET_RSS_MIB} MiB",
            rss <= TARGET_RSS_MIB,
            checked(crowd),
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
    """The commit measured, and each tracked file (the app's or the harness's) changed since."""
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"

    def run(*args: str) -> str:
        done = subprocess.run([git, *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        return done.stdout.rstrip("\n")  # porcelain lines start with a space: keep it

    commit = run("log", "-1", "--format=%H %s") or "unknown"
    # Any uncommitted change to a tracked file but this table: the app's or the harness's.
    changed = [
        line[3:]
        for line in run("status", "--porcelain", "--untracked-files=no").splitlines()
        if line[3:] != str(RESULTS.relative_to(ROOT))
    ]
    if not changed:
        return f"`{commit}` (clean tree)"
    shown = ", ".join(f"`{path}`" for path in changed[:8])
    more = f" and {len(changed) - 8} more" if len(changed) > 8 else ""
    return f"`{commit}` **with uncommitted changes** in {shown}{more}"


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
        f"- Load: wrk -t1 -c{CONNECTIONS} unless a row says otherwise, {WARMUP} s warm-up "
        f"before each {DURATION} s run, {ROUNDS} rounds per comparison in A-B-B-A order; "
        "medians; a ratio is the median of the per-round ratios (min to max beside it) and "
        "the verdict uses the median; latency percentiles are wrk's (corrected for "
        "coordinated omission); every response under load compared byte for byte with the "
        "one captured before the load (the `checked` column: all matched, or the run stops)",
        "- Server: `integration-api serve` (uvicorn, 1 worker) with APP_ENV=production "
        "(a real encryption key, METRICS_TOKEN), LOG_LEVEL=INFO (the access log: one JSON "
        f"line per request, to bench/out/api-{DB}.log), {argon2_defaults()}",
    ]
    lines = [
        f"## {'PostgreSQL' if DB == 'postgresql' else 'SQLite'}"
        + (f" ({ONLY} rows only)" if ONLY else "")
        + (" (shortened: a quick check, not a result)" if SHORTENED else ""),
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
        "| measure | how | result | checked | target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        shown = "-" if row.checked is None else f"{row.checked:,}"
        lines.append(
            f"| {row.measure} | {row.how} | {row.result} | {shown} | {row.target} "
            f"| {row.status()} |"
        )
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


METRICS_TOKEN = secrets.token_urlsafe(32)  # production requires metrics not to be public


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
        # Production, as deployed: its rules hold (a real key, metrics not public, OWASP
        # argon2), GraphiQL and introspection off, and the access log on (INFO, to the log
        # file Server writes stderr to).
        "APP_ENV": "production",
        "LOG_LEVEL": "INFO",
        "METRICS_TOKEN": METRICS_TOKEN,
    }


@contextlib.contextmanager
def servers(ctx: Context) -> Iterator[tuple[Server, Server]]:
    api_port, floor_port = free_port(), free_port()
    env = api_env(database_url=ctx.dbs.main, key=ctx.key, scratch=ctx.scratch, port=api_port)
    api = Server(
        "api",
        [str(Path(sys.executable).parent / "integration-api"), "serve"],
        env=env,
        cwd=ctx.scratch,  # no stray .env from the working tree
        port=api_port,
    )
    capture = OUT / f"dashboard-{DB}.json"
    try:
        # The uvicorn options `serve` passes, from the CLI itself: the floor gets the same.
        options = parity.serve_options(env=env, cwd=ctx.scratch)
    except parity.ParityError as error:
        raise BenchError(str(error)) from None
    floor = Server(
        "floor",
        [
            sys.executable,
            str(BENCH / "floor.py"),
            "--port",
            str(floor_port),
            "--data",
            str(capture),
            "--uvicorn-options",
            json.dumps(options),
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
        copied = post(floor.url, {"query": DASHBOARD})
        if check(copied, "floor") != real:
            raise BenchError("the floor's response differs from the real dashboard response")
        ctx.notes.append(level(ctx, env, api, floor, options, capture, copied))
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


def level(
    ctx: Context,
    env: dict[str, str],
    api: Server,
    floor: Server,
    options: dict[str, Any],
    capture: Path,
    copied: httpx.Response,
) -> str:
    """bench/parity.py's checks that the floor is level with the app (BenchError if not), as a
    note for the table."""
    assert api.process is not None and floor.process is not None
    session = f"Bearer {ctx.seeded.dashboard.owner.token}"
    original = post(api.url, {"query": DASHBOARD}, session)
    try:
        if original.content != copied.content:
            raise parity.ParityError(
                "the floor is not level with the app: the same dashboard answer is encoded "
                f"differently ({len(original.content)} bytes from the app, "
                f"{len(copied.content)} from the floor)"
            )
        app_probe = parity.probe(["app"], env=env, cwd=ctx.scratch)
        floor_probe = parity.probe(["floor", "--data", str(capture)], env=env, cwd=ROOT)
        line = parity.check_level(
            app=app_probe,
            floor=floor_probe,
            app_modules=parity.loaded_modules(api.process.pid),
            floor_modules=parity.loaded_modules(floor.process.pid),
        )
    except parity.ParityError as error:
        raise BenchError(str(error)) from None
    log(f"floor level with the app: {line}")
    return (
        f"- Floor level with the app (bench/parity.py, checked before the load): the dashboard "
        f"answer is the same {len(original.content):,} bytes from both; {line}; uvicorn "
        f"options of `serve`, given to the floor: `{json.dumps(options)}`"
    )


def access_log_lines(path: Path) -> int:
    """Lines the app's access log (logger gql_api.access) wrote to a server log."""
    if not path.exists():
        return 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if '"logger": "gql_api.access"' in line)


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
            f"WRK_EXPECT_FILE={case.expect_file()} "
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
    if ONLY not in ("", "api", "delivery", "workers"):
        raise BenchError("BENCH_ONLY must be api, delivery or workers (or unset: every row)")
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
        if ONLY in ("", "api"):
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
            if ONLY in ("", "api"):
                with servers(ctx) as (api, floor):
                    if "--serve" in sys.argv:
                        serve_only(ctx, api, floor)
                        return 0
                    rows += asyncio.run(measure(ctx, api, floor))
                notes += ctx.notes
                logs.append(api.log_path)
                notes.append(
                    f"- Access log: {access_log_lines(api.log_path):,} lines written by the "
                    f"server of the rows above to bench/out/{api.log_path.name} (LOG_LEVEL=INFO; "
                    "one per request, the warm-ups and probes included)"
                )
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
    if ONLY or SHORTENED:
        # A partial or shortened run never replaces the full table of bench/results.md.
        partial = OUT / f"results-{ONLY or 'short'}-{DB}.md"
        partial.write_text(section, encoding="utf-8")
        log(f"written to {partial.relative_to(ROOT)} (partial run: bench/results.md untouched)")
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
