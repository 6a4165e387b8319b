"""Real `integration-api worker` and `event publish` processes, for the webhook event tests
whose subject crosses process boundaries (several workers, a worker killed mid-delivery).

The environment follows tests.support_servers.serve: the test key, cheap argon2, APP_ENV=test;
webhooks may reach loopback receivers, with 1 s timeouts (a lease of 39 s, see
WorkerConfig.lease). Each worker serves its own metrics on a free loopback port: that is how a
test knows the worker is running (its SIGTERM handler is installed by then) and how many
attempts that very process made (`webhook_attempts_total`, counted once an attempt is recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.leak_scan import record_output
from tests.support_servers import CLI, free_port

T = TypeVar("T")

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0  # the worker's shutdown grace is 10 s


def cli_env(database_url: str, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI process on `database_url` (as tests.support_servers.serve)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
        "WEBHOOK_READ_TIMEOUT_SECONDS": "1",
        **(extra_env or {}),
    }


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(
    database_url: str, *args: str, extra_env: Mapping[str, str] | None = None
) -> CliResult:
    """`integration-api <args>` to its end, without blocking the test's event loop (where the
    loopback receivers answer)."""
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        *args,
        env=cli_env(database_url, extra_env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    record_output(f"the output of integration-api {args[0] if args else ''}", stdout + stderr)
    return CliResult(process.returncode, stdout.decode(), stderr.decode())


@dataclass
class WorkerProcess:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    metrics_url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def problems(self) -> list[str]:
        """Log lines at WARNING or above (the logs are JSON, one object a line)."""
        found = []
        for line in self.output().splitlines():
            try:
                level = json.loads(line).get("level")
            except (json.JSONDecodeError, AttributeError):
                found.append(line)  # not ours: a traceback on stderr, say
                continue
            if level in ("WARNING", "ERROR", "CRITICAL"):
                found.append(line)
        return found

    async def attempts(self) -> int:
        """Attempts this process has made and recorded, by its own metrics."""
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http:
            response = await http.get(self.metrics_url)
        response.raise_for_status()
        total = 0.0
        for family in text_string_to_metric_families(response.text):
            if family.name == "webhook_attempts":
                total += sum(s.value for s in family.samples if s.name.endswith("_total"))
        return int(total)

    async def kill(self) -> int:
        """SIGKILL: the process gets no chance to finish or release anything."""
        self.process.kill()
        return await self.process.wait()

    async def terminate(self) -> int:
        """SIGTERM, then its exit code (SIGKILL if it does not stop in time)."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


class Workers:
    """`integration-api worker` processes of one test, on one database, all stopped at its end
    (their logs kept in `folder`)."""

    def __init__(self, database_url: str, folder: Path, **extra_env: str) -> None:
        self.database_url = database_url
        self.folder = folder
        self.extra_env = extra_env
        self.started: list[WorkerProcess] = []
        self._names = itertools.count(1)

    async def start(self, **extra_env: str) -> WorkerProcess:
        """One more worker, returned once it is running (its metrics answer)."""
        name = f"worker-{next(self._names)}"
        port = free_port()
        env = cli_env(
            self.database_url,
            {"METRICS_PORT": str(port), **self.extra_env, **extra_env},
        )
        log = self.folder / f"{name}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                str(CLI), "worker", env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
            )
        worker = WorkerProcess(name, process, log, f"http://127.0.0.1:{port}/metrics")
        self.started.append(worker)
        await _wait_until_running(worker)
        return worker

    async def stop_all(self) -> None:
        for worker in self.started:
            await worker.terminate()
            record_output(f"the log of {worker.name}", worker.log.read_bytes())


async def _wait_until_running(worker: WorkerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with httpx.AsyncClient(trust_env=False, timeout=1.0) as http:
        while time.monotonic() < deadline:
            if worker.process.returncode is not None:
                raise RuntimeError(f"{worker.name} exited:\n{worker.output()}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(worker.metrics_url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{worker.name} did not start:\n{worker.output()}")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    within: float = 60.0,
    interval: float = 0.1,
) -> T:
    """Polls `probe` until its value satisfies `until` (the last value is returned, satisfied
    or not: the caller asserts on it, so a failure shows what was seen)."""
    deadline = time.monotonic() + within
    value = await probe()
    while not until(value) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        value = await probe()
    return value
