"""What a process loads and runs on: a SQLite deployment does not import the PostgreSQL driver
(2.6 MiB of its memory), and `integration-api worker` runs on the event loop `serve` runs on
(uvloop, where installed), so the embedded and the separate worker run alike."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from gql_api.cli import _run_on_the_servers_loop


def test_a_sqlite_app_does_not_load_the_postgresql_driver(tmp_path: Path) -> None:
    # given: a process that builds the app and its engine for a SQLite database
    script = f"""
import sys
from gql_api.app import create_state
from db.engine import database_unavailable
from tests.conftest import make_settings
state = create_state(make_settings("sqlite:///{tmp_path / "footprint.db"}"))
assert database_unavailable(OSError("refused"))
print("asyncpg" in sys.modules)
"""
    # when
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    # then
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_worker_runs_on_the_loop_serve_runs_on() -> None:
    async def loop_module() -> int:
        return 1 if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else 0

    assert _run_on_the_servers_loop(loop_module()) == 1
