"""Real `integration-api serve` processes, for tests whose subject crosses process boundaries."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.leak_scan import record_output

CLI = Path(sys.executable).parent / "integration-api"
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    database_url: str, extra_env: Mapping[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[Server]:
    """One server process on a free loopback port (cheap argon2, the test key), stopped after;
    `args` follow `serve` on its command line."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "APP_ENV": "test",
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
        **(extra_env or {}),
    }
    with tempfile.TemporaryDirectory(prefix="integration-api-") as folder:
        log = Path(folder) / "server.log"
        with log.open("wb") as sink:
            # A group of its own: what it spawns (serve --workers N) is stopped with it.
            process = subprocess.Popen(
                [str(CLI), "serve", *args],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        try:
            _wait_until_healthy(server)
            yield server
        finally:
            _stop(process)
            record_output(f"the log of serve on port {port}", log.read_bytes())


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server did not answer /healthz:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # nothing of the group may outlive the test
        os.killpg(process.pid, signal.SIGKILL)
