"""The `serve --workers N` row of `make bench`: the small query with 1 and with 2 worker processes.

Two servers run side by side on the bench database, both in the API rows' production
configuration (bench/run.py api_env) and left at every default but the worker count:
`integration-api serve --workers 1` (one process, as plain `serve`) and `integration-api
serve --workers 2` (a supervisor and two uvicorn worker processes sharing the listening socket,
metrics in prometheus_client's multiprocess mode). The same load as the other rows drives the
same query as the "small authenticated query" row (`{ viewer { merchant { name } } }` with a
session): wrk, one thread, BENCH_CONNECTIONS connections, a BENCH_WARMUP warm-up run before each
BENCH_DURATION run, BENCH_ROUNDS rounds in A-B-B-A order (1 worker, 2 workers, 2 workers,
1 worker, ...), every response checked (bench/post.lua); medians, the ratio is the median of
the per-round ratios, with their min and max. Target: 2 workers at least 1.4 x the req/s of 1.

wrk shares the machine's cores with the server (all load is on 127.0.0.1), so each measured run
also records where the CPU went: the cores used by wrk (its user + system time, from
getrusage(RUSAGE_CHILDREN) around the run: wrk is the only child reaped meanwhile), by each
server process (from /proc/<pid>/stat, the server and its descendants), and by the machine as a
whole (/proc/stat). A ratio below the target with the machine's cores all busy says that the
load generator (and whatever else runs) left the second worker no core of its own: the server's
CPU time per request says whether the workers themselves got more expensive.

Run alone: `BENCH_ONLY=workers make bench` (seeds only the dashboard merchant; the table goes to
bench/out/results-workers-<db>.md, not to bench/results.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import run as bench

TARGET_WORKERS_RATIO = 1.4
WORKER_COUNTS = (1, 2)
TICKS = os.sysconf("SC_CLK_TCK")


def process_ticks(root: int) -> dict[int, int]:
    """pid -> CPU ticks (user + system) of `root` and every process descending from it."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return {pid: n for pid, n in ticks.items() if descends(pid)}


def worker_pids(root: int) -> set[int]:
    """The processes serving requests: `root` itself for one worker, else the uvicorn workers
    it spawned (multiprocessing's spawn_main; its resource tracker is not one of them)."""
    found = set()
    for pid in process_ticks(root):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found or {root}


def connections_by_process(port: int) -> dict[int, int]:
    """pid -> established connections it holds on 127.0.0.1:port (iproute2's ss), as the
    workers sharing one listening socket took them; empty without ss."""
    ss = shutil.which("ss")
    if ss is None:
        return {}
    listing = subprocess.run(  # noqa: S603
        [ss, "-Htnp", "state", "established", "( sport = :" + str(port) + " )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts: dict[int, int] = {}
    for pid in re.findall(r"pid=(\d+)", listing):
        counts[int(pid)] = counts.get(int(pid), 0) + 1
    return counts


def machine_busy_ticks() -> int:
    """Ticks every CPU spent on anything but idling, since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]  # idle, iowait


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Cpu:
    """Cores in use on average during one measured run (1.0: one core busy all along)."""

    wrk: float
    workers: list[float]  # each process serving requests, busiest first
    other: float  # the rest of the server's processes (supervisor, resource tracker)
    database: float  # the PostgreSQL server we started (its every process); 0 on SQLite
    machine: float
    server_ms_per_request: float
    connections: list[int]  # wrk's connections each worker process took, most first


class Snapshot:
    def __init__(self, root: int, workers: set[int], database_roots: list[int]) -> None:
        self.workers = workers
        self.at = time.monotonic()
        self.server = process_ticks(root)
        self.database = {p: n for r in database_roots for p, n in process_ticks(r).items()}
        self.machine = machine_busy_ticks()
        self.children = children_cpu_seconds()

    def since(self, before: Snapshot, requests: int, connections: list[int], not_wrk: float) -> Cpu:
        seconds = max(self.at - before.at, 1e-9)
        used = {
            pid: (ticks - before.server[pid]) / TICKS
            for pid, ticks in self.server.items()
            if pid in before.server
        }
        return Cpu(
            wrk=(self.children - before.children - not_wrk) / seconds,
            workers=sorted(
                (u / seconds for pid, u in used.items() if pid in self.workers), reverse=True
            ),
            other=sum(u for pid, u in used.items() if pid not in self.workers) / seconds,
            # Backends come and go with connections: a new one counts from zero.
            database=sum(n - before.database.get(pid, 0) for pid, n in self.database.items())
            / TICKS
            / seconds,
            machine=(self.machine - before.machine) / TICKS / seconds,
            server_ms_per_request=sum(used.values()) * 1000 / max(requests, 1),
            connections=connections,
        )


def server(name: str, env: dict[str, str], port: int, scratch: Path, workers: int) -> bench.Server:
    return bench.Server(
        name,
        [str(Path(sys.executable).parent / "integration-api"), "serve", "--workers", str(workers)],
        env=env,
        cwd=scratch,  # no stray .env from the working tree
        port=port,
    )


def wait_for_workers(api: bench.Server, workers: int) -> None:
    """/healthz answers as soon as one worker listens: wait until all `workers` processes run
    and have had time to start their apps (a worker that starts late would get no connection
    of the measured run's: wrk opens its connections once, at the start of each run)."""
    if workers == 1:
        return
    assert api.process is not None
    deadline = time.monotonic() + 60
    while len(worker_pids(api.process.pid) - {api.process.pid}) < workers:
        if time.monotonic() > deadline:
            raise bench.BenchError(f"{api.name}: fewer than {workers} worker processes after 60 s")
        time.sleep(0.2)
    # Each worker imports the app and opens its engine on its own; a few /healthz requests on
    # fresh connections while they settle.
    settle = time.monotonic() + 3
    while time.monotonic() < settle:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{api.port}/healthz", timeout=1)
        time.sleep(0.1)


async def measured(
    case: bench.Case, api: bench.Server, database_roots: Callable[[], list[int]]
) -> bench.Run:
    assert api.process is not None
    if bench.WARMUP:
        await bench.wrk(case, bench.WARMUP)
    serving = worker_pids(api.process.pid)
    before = Snapshot(api.process.pid, serving, database_roots())
    loading = asyncio.create_task(bench.wrk(case, bench.DURATION))
    await asyncio.sleep(min(1.0, bench.DURATION / 2))  # wrk's connections are open by now
    ss_started = children_cpu_seconds()
    held = connections_by_process(api.port)
    ss_cpu = children_cpu_seconds() - ss_started  # ss is a child too: not wrk's
    run = await loading
    connections = sorted((held.get(pid, 0) for pid in serving), reverse=True)
    after = Snapshot(api.process.pid, serving, database_roots())
    cpu = after.since(before, run.requests, connections, ss_cpu)
    return bench.Run(run.requests, run.rps, run.p50_ms, run.p99_ms, {"cpu": cpu}, run.checked)


def cpu_text(case: bench.Case, workers: int) -> str:
    """Where the CPU went with `workers` worker processes: medians over the rounds."""
    cpus: list[Cpu] = [run.extra["cpu"] for run in case.runs]
    per_worker = [
        statistics.median(c.workers[i] if i < len(c.workers) else 0.0 for c in cpus)
        for i in range(max(len(c.workers) for c in cpus))
    ]
    other = statistics.median(c.other for c in cpus)
    database = statistics.median(c.database for c in cpus)
    rest = statistics.median(
        c.machine - sum(c.workers) - c.other - c.wrk - c.database for c in cpus
    )
    split = ""
    if workers > 1:
        rounds = ", ".join("/".join(str(n) for n in c.connections) for c in cpus)
        split = f" ({' + '.join(f'{c:.2f}' for c in per_worker)}; wrk's connections per worker "
        split += f"in each round: {rounds})"
    return (
        f"{workers} worker{'s' if workers > 1 else ''}: server "
        f"{statistics.median(sum(c.workers) for c in cpus):.2f} cores{split}"
        + (f", supervisor and resource tracker {other:.2f}" if workers > 1 else "")
        + f", wrk {statistics.median(c.wrk for c in cpus):.2f}"
        + (f", PostgreSQL {database:.2f}" if bench.DB == "postgresql" else "")
        + f", anything else {max(rest, 0.0):.2f} (other processes, the idle server of the pair, "
        "kernel time charged to no process such as loopback networking), whole machine "
        f"{statistics.median(c.machine for c in cpus):.2f} of {os.cpu_count()}; server CPU "
        f"{statistics.median(c.server_ms_per_request for c in cpus):.2f} ms per request"
    )


async def measure(
    *,
    database_url: str,
    key: str,
    scratch: Path,
    token: str,
    database_roots: Callable[[], list[int]],
) -> tuple[list[Any], list[str], list[Path]]:
    """The row, a note on where the CPU went, and the server logs to scan for errors."""
    apis = {}
    for workers in WORKER_COUNTS:
        port = bench.free_port()
        env = bench.api_env(database_url=database_url, key=key, scratch=scratch, port=port)
        apis[workers] = server(f"api-{workers}w", env, port, scratch, workers)
    cases: dict[int, bench.Case] = {}
    try:
        for workers, api in apis.items():
            api.start()
            wait_for_workers(api, workers)
            assert api.process is not None
            bench.log(f"serve --workers {workers}: pid {api.process.pid} on port {api.port}")
            answer = bench.check(bench.post(api.url, {"query": bench.SMALL}, token), "small")
            if answer["data"]["viewer"]["merchant"]["name"] != "Bench Merchant":
                raise bench.BenchError(f"small query on {api.name}: {answer}")
            cases[workers] = bench.Case(f"small-{workers}w", api.url, {"query": bench.SMALL}, token)
        bench.log("small query (session): serve --workers 1 vs --workers 2")
        for number in range(1, bench.ROUNDS + 1):
            for case in bench.abba(tuple(cases.values()), number):
                workers = next(n for n, c in cases.items() if c is case)
                run = await measured(case, apis[workers], database_roots)
                case.runs.append(run)
                cpu: Cpu = run.extra["cpu"]
                bench.log(
                    f"  round {number} {case.name}: {run.rps:,.0f} req/s, p50 {run.p50_ms:.2f} ms, "
                    f"p99 {run.p99_ms:.2f} ms; cores: server "
                    f"{' + '.join(f'{c:.2f}' for c in cpu.workers)} (+ {cpu.other:.2f}), "
                    f"wrk {cpu.wrk:.2f}, database {cpu.database:.2f}, "
                    f"connections {'/'.join(map(str, cpu.connections))}, "
                    f"machine {cpu.machine:.2f}; {cpu.server_ms_per_request:.2f} ms/request"
                )
    finally:
        for api in apis.values():
            api.stop()
    one, two = cases[1], cases[2]
    spread = two.ratios(one, "rps")
    row = bench.Row(
        "small query, 1 vs 2 worker processes",
        f"`{bench.SMALL}` with `Bearer <session>` (the small-query row's), "
        "`integration-api serve --workers 1` vs `--workers 2` (the API rows' production "
        "configuration, every other setting default), "
        f"{bench.CONNECTIONS} connections; wrk shares the {os.cpu_count()} cores (see the note)",
        f"1 worker {one.summary()}; 2 workers {two.summary()}; ratio {spread.text()}",
        f"req/s with 2 workers >= {TARGET_WORKERS_RATIO} x with 1",
        spread.median >= TARGET_WORKERS_RATIO,
        bench.checked(one, two),
        spread.straddles(TARGET_WORKERS_RATIO),
    )
    note = (
        "- Workers row, where the CPU went during the measured runs (medians, in cores: 1.00 is "
        "one core busy all along; worker processes busiest first): "
        f"{cpu_text(one, 1)}; {cpu_text(two, 2)}. "
        "wrk"
        + (" and PostgreSQL run" if bench.DB == "postgresql" else " runs")
        + " on the same machine: the server can have at most the cores "
        + ("they" if bench.DB == "postgresql" else "it")
        + " and anything else leave it"
    )
    logs = [api.log_path for api in apis.values()]
    return [row], [note], logs
