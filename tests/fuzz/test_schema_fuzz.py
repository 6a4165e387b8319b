"""Schema fuzzing: operations generated from the schema (every query and mutation field), each
sent through the real ASGI app by the five callers of merchant A (owner, DEVELOPER,
STORE_MANAGER, API secret, anonymous), with merchant B beside it.

Every response: below 500, JSON, no INTERNAL error, none of the planted secrets, none of B's
data (B's identifiers only once a request has sent them), no show-once secret shown twice.
Afterwards the invariants hold (tests.fuzz.invariants).

FUZZ_OPERATIONS sets the number of requests per run, split 3:2 between SQLite and PostgreSQL:
2,000 by default (about 30 s on the 2-core machine the suite is sized for), 20,000 in
`make fuzz`. FUZZ_SEED replays a run: the seed is printed first, and a failure prints the
operation and the caller.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from sqlalchemy.ext.asyncio import AsyncEngine

from db import sqlite_reads
from gql_api.app import create_app
from gql_api.schema import build_schema
from gql_api.settings import Settings
from tests.conftest import make_settings
from tests.fuzz.invariants import api_violations, database_violations, readable
from tests.fuzz.operations import Operation, operations
from tests.fuzz.world import CALLER_NAMES, World, build_world, revive
from tests.support import Api

REQUESTS = int(os.environ.get("FUZZ_OPERATIONS", "2000"))
SHARE = {"sqlite": 0.6, "postgresql": 0.4}
# Payload fields that hand a secret over once: the value must never be shown again.
SHOWN_ONCE = ("secret", "invitationToken", "token", "accessToken", "refreshToken")


class Tally:
    """What the fuzz sent and saw, for the checks and for the figures printed at the end."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.by_caller: dict[str, Counter[str]] = {name: Counter() for name in CALLER_NAMES}
        self.sent_strings: set[str] = set()
        self.shown_once: set[str] = set()

    def record(self, caller: str, status: int, codes: list[str]) -> None:
        outcome = ",".join(sorted(set(codes))) or "ok"
        self.outcomes[f"{status} {outcome}"] += 1
        self.by_caller[caller][outcome] += 1

    @property
    def count(self) -> int:
        return sum(self.outcomes.values())

    def report(self, backend: str, elapsed: float, run_seed: int) -> str:
        lines = [
            f"schema fuzz on {backend}: {self.count} operations in {elapsed:.1f} s "
            f"(FUZZ_SEED={run_seed}); by HTTP status and error codes:",
            *(f"  {count:6d}  {outcome}" for outcome, count in self.outcomes.most_common()),
            "by caller:",
            *(
                f"  {caller:13s} " + ", ".join(f"{k} {v}" for k, v in counts.most_common())
                for caller, counts in self.by_caller.items()
            ),
        ]
        return "\n".join(lines)


def _shown_once(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        found = {
            value
            for key, value in tree.items()
            if key in SHOWN_ONCE and isinstance(value, str) and len(value) >= 16
        }
        return found.union(*(_shown_once(value) for value in tree.values()))
    if isinstance(tree, list):
        return set().union(*(_shown_once(value) for value in tree))
    return set()


def check_response(
    world: World, tally: Tally, caller: str, operation: Operation, response: httpx.Response
) -> list[str]:
    """Asserts the pass criteria on one response; returns its error codes."""
    where = f"{caller} sent\n{operation.document}\ngot {response.status_code}: {response.text}"
    assert response.status_code < 500, where
    body = response.json()
    assert isinstance(body, dict), where
    codes = [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]
    tally.record(caller, response.status_code, codes)
    assert "INTERNAL" not in codes, where
    shown = readable(body)
    for planted in world.secrets | tally.shown_once:
        assert planted not in response.text, f"{planted!r} shown; {where}"
        assert planted not in shown, f"{planted!r} shown; {where}"
    for marker in world.b_markers:
        assert marker not in shown, f"B's {marker!r} shown to A; {where}"
    for b_id in world.b_ids - tally.sent_strings:
        assert b_id not in shown, f"B's {b_id!r} shown to A unasked; {where}"
    tally.shown_once |= _shown_once(body)
    return codes


@contextmanager
def running_app(
    app_settings: Settings,
) -> Iterator[tuple[asyncio.Runner, httpx.AsyncClient, AsyncEngine]]:
    """The app and an HTTP client over it, on an event loop of their own: hypothesis calls the
    test body synchronously, once per generated operation."""
    with asyncio.Runner() as runner:
        app = create_app(app_settings)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        try:
            yield runner, client, app.state.app_state.engine
        finally:
            runner.run(client.aclose())
            app.state.app_state.hashing.close()
            sqlite_reads.close(app.state.app_state.engine)
            runner.run(app.state.app_state.engine.dispose())


def test_generated_operations_keep_the_api_whole(database_url: str, backend: str) -> None:
    # given: merchants A and B, furnished, and A's five callers
    app_settings = make_settings(
        database_url,
        webhook_allowed_networks=["127.0.0.0/8"],  # webhook URLs of the world: 127.0.0.1:9
        webhook_connect_timeout_seconds=0.5,
        webhook_read_timeout_seconds=0.5,
    )
    requests = max(len(CALLER_NAMES), round(REQUESTS * SHARE[backend]))
    run_seed = int(os.environ.get("FUZZ_SEED") or random.randrange(2**32))  # noqa: S311 (a seed, not a secret)
    print(f"FUZZ_SEED={run_seed}")  # shown with a failure: the run replays with it
    sdl = build_schema(app_settings).as_str()
    tally = Tally()
    with running_app(app_settings) as (runner, client, engine):
        api = Api(client)
        world = runner.run(build_world(api, engine, app_settings))

        async def send_as_everyone(operation: Operation) -> None:
            for caller in CALLER_NAMES:
                authorization = world.callers[caller]
                headers = {"Authorization": authorization} if authorization else {}
                response = await client.post(
                    "/graphql", json={"query": operation.document}, headers=headers
                )
                tally.sent_strings |= {v for v in world.pool if v in operation.document}
                if "UNAUTHENTICATED" in check_response(world, tally, caller, operation, response):
                    await revive(api, engine, app_settings, world, caller)

        @seed(run_seed)
        @settings(
            max_examples=-(-requests // len(CALLER_NAMES)),
            deadline=None,
            database=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
        )
        @given(operation=operations(sdl, world.pool))
        def fuzz(operation: Operation) -> None:
            runner.run(send_as_everyone(operation))

        # when
        started = time.monotonic()
        try:
            fuzz()
        finally:  # the figures of a failed run too (shown with its failure)
            print(tally.report(backend, time.monotonic() - started, run_seed))

        # then
        violations = runner.run(database_violations(engine))
        violations += runner.run(api_violations(api, world))
    assert violations == [], "\n".join(violations)
    assert tally.count >= requests, tally.outcomes
