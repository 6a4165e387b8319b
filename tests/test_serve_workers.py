"""`integration-api serve --workers N`: N processes behind one port, each set up like a single
process (JSON log lines, request ids), and metrics that add up every worker in one scrape."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support_servers import Server, free_port, serve

POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"])

CATALOG_QUERY = {"query": "query Catalog { pgProviders { provider } }"}
ROUNDS = 30  # bursts of concurrent requests until both workers have answered some
BURST = 20


def _scrape(url: str) -> str:
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text


def _log_lines(server: Server) -> list[dict[str, object]]:
    lines = [line for line in server.output().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        entry = json.loads(line)  # every line is JSON: a plain-text line fails here
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


def _answering_pids(server: Server) -> Counter[object]:
    return Counter(
        entry["pid"]
        for entry in _log_lines(server)
        if entry["logger"] == "gql_api.access" and entry.get("path") == "/graphql"
    )


async def _burst(client: httpx.AsyncClient, base_url: str) -> None:
    """Concurrent requests, each on a connection of its own, so that the kernel hands them to
    whichever worker accepts first."""

    async def one() -> None:
        async with httpx.AsyncClient(timeout=30) as own:
            answer = await own.post(f"{base_url}/graphql", json=CATALOG_QUERY)
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["pgProviders"]

    await asyncio.gather(*(one() for _ in range(BURST)))


async def _requests_until_both_answer(server: Server) -> int:
    made = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(ROUNDS):
            await _burst(client, server.base_url)
            made += BURST
            if len(_answering_pids(server)) == 2:
                return made
    raise AssertionError(f"one worker answered every request:\n{server.output()[-4000:]}")


def _eventually(check: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """The access log line and the request's count are written just after its answer is sent,
    a worker starts or stops in its own time: look again a while before concluding."""
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("never came true")


def _requests_counted(metrics_text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "graphql_requests":
            total += sum(
                sample.value
                for sample in family.samples
                if sample.name == "graphql_requests_total"
                and sample.labels["operation"] == "pgProviders"
            )
    return total


@POSTGRESQL
def test_two_workers_log_json_lines_and_one_scrape_counts_both(database_url: str) -> None:
    with serve(database_url, args=["--workers", "2"]) as server:
        made = asyncio.run(_requests_until_both_answer(server))
        _eventually(lambda: sum(_answering_pids(server).values()) == made)
        pids = _answering_pids(server)
        # Each worker stamps its own request ids (the per-process prefix differs).
        prefixes = {
            str(entry["request_id"])[:16]
            for entry in _log_lines(server)
            if entry["logger"] == "gql_api.access"
        }
        assert len(prefixes) == 2

        # Both workers' requests, in one scrape (by whichever worker takes it).
        _eventually(lambda: _requests_counted(_scrape(f"{server.base_url}/metrics")) == made)

        # SIGTERM: each worker shuts down cleanly, and the supervisor after them.
        server.process.terminate()
        assert server.process.wait(timeout=60) == 0
        finished = [
            entry
            for entry in _log_lines(server)
            if str(entry["message"]).startswith("Finished server process")
        ]
        assert {entry["pid"] for entry in finished} == set(pids)


@POSTGRESQL
def test_web_concurrency_starts_workers_and_the_supervisor_serves_metrics_port(
    database_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    shared = tmp_path / "metrics"
    env = {
        "WEB_CONCURRENCY": "2",
        "METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    shared.mkdir()
    # Another process's file in the operator's directory: neither read nor deleted.
    others = shared / "counter_999999.db"
    others.write_bytes(b"not ours")
    with serve(database_url, extra_env=env) as server:
        made = asyncio.run(_requests_until_both_answer(server))
        assert httpx.get(f"{server.base_url}/metrics", timeout=10).status_code == 404
        _eventually(
            lambda: _requests_counted(_scrape(f"http://127.0.0.1:{metrics_port}/metrics")) == made
        )
        (own,) = (path for path in shared.iterdir() if path.is_dir())
        assert own.name.startswith("integration-api-serve-")
        server.process.terminate()
        assert server.process.wait(timeout=60) == 0
    assert others.read_bytes() == b"not ours"
    assert not own.exists()  # the run's own folder goes with it


def test_workers_must_be_a_small_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    from gql_api.cli import main

    for bad in ("0", "-1", "two", "65"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--workers", bad])
        assert exited.value.code == 2
        assert "a whole number from 1 to 64" in capsys.readouterr().err


def _worker_pids(server: Server) -> set[int]:
    started = (
        entry
        for entry in _log_lines(server)
        if str(entry["message"]).startswith("Started server process")
    )
    return {int(str(entry["pid"])) for entry in started}


def _alive(pid: int) -> bool:
    """Running: neither gone nor a zombie (an orphan's exit is reaped by init, when init
    reaps at all)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _clock_gauge_pids(metrics_text: str) -> set[int]:
    return {
        int(sample.labels["pid"])
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "host_clock_skew_seconds"
        for sample in family.samples
    }


@POSTGRESQL
def test_a_killed_worker_is_replaced_and_its_live_gauges_leave_the_scrape(
    database_url: str,
) -> None:
    with serve(database_url, args=["--workers", "2"]) as server:
        url = f"{server.base_url}/metrics"
        _eventually(lambda: len(_worker_pids(server)) == 2)
        first = _worker_pids(server)
        _eventually(lambda: _clock_gauge_pids(_scrape(url)) == first)
        killed = min(first)
        os.kill(killed, signal.SIGKILL)  # no clean-up of its own
        # The supervisor starts another (spawned: a fresh interpreter, slow on a loaded machine).
        _eventually(lambda: len(_worker_pids(server)) == 3, seconds=60)
        replacement = _worker_pids(server) - first
        # The killed worker's per-process gauges are gone, the replacement's are there.
        _eventually(lambda: _clock_gauge_pids(_scrape(url)) == (first - {killed}) | replacement)


@POSTGRESQL
def test_workers_do_not_outlive_a_killed_supervisor(database_url: str) -> None:
    with serve(database_url, args=["--workers", "2"]) as server:
        _eventually(lambda: len(_worker_pids(server)) == 2)
        workers = _worker_pids(server)
        server.process.kill()  # SIGKILL: the supervisor can neither stop nor tell them
        server.process.wait(timeout=10)
        # Each notices within a second, then shuts down as on SIGTERM (a loaded machine: slow).
        _eventually(lambda: not any(_alive(pid) for pid in workers), seconds=60)
        assert "the supervising serve process is gone" in server.output()
