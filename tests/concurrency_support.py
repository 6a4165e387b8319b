"""Two real `integration-api serve` processes (A and B) on one PostgreSQL database of their own,
as deployed behind a load balancer, and a starting line that releases many requests to them at
once: for tests of what must hold whichever process answers and however requests overlap
(tests/test_two_processes.py, tests/test_concurrency.py).

The servers get a database of their own because the per-test truncation of `database_url`
would empty it under them. Nothing here measures how long anything took.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from db.engine import create_engine
from db.migrate import upgrade
from tests.leak_scan import record_database
from tests.pg_server import PostgresServer
from tests.support import Api, GraphQLResponse
from tests.support_servers import Server, serve

TIMEOUT = 60.0  # generous: a deadline for a stuck server, not a performance assertion


@dataclass(frozen=True)
class TwoServers:
    database_url: str
    a: Server
    b: Server


async def _admin(server: PostgresServer, statement: str) -> None:
    engine = create_engine(server.url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def running_two_servers(
    pg_server: PostgresServer, env: Mapping[str, str], *, prefix: str
) -> Iterator[TwoServers]:
    """Servers A and B with `env` on a new migrated database (`prefix`_<random>), both stopped
    and the database dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(pg_server, f"CREATE DATABASE {name}"))
    url = pg_server.database_url(name)
    try:
        upgrade(url)
        with serve(url, env) as a, serve(url, env) as b:
            yield TwoServers(url, a, b)
    finally:
        record_database(pg_server, name)  # the leak scan reads it before it goes
        asyncio.run(_admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@asynccontextmanager
async def api_of(server: Server) -> AsyncIterator[Api]:
    """A client of `server` over real HTTP (no proxy from the environment)."""
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=TIMEOUT, trust_env=False
    ) as http:
        yield Api(http)


@dataclass
class StartingLine:
    """Holds back the last byte of each of `runners` requests until every one has sent the
    rest, so that no server can start any of them before all have arrived (the "last byte"
    technique). Sent as the client builds them, they would reach the servers one after another,
    and a broken lock or version check could pass because nothing ever overlapped."""

    runners: int
    ready: int = 0
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def _body(self, payload: bytes) -> AsyncIterator[bytes]:
        yield payload[:-1]
        self.ready += 1
        if self.ready == self.runners:
            self.go.set()
        await self.go.wait()
        yield payload[-1:]

    async def send(
        self,
        api: Api,
        query: str,
        variables: dict[str, Any],
        *,
        token: str | None = None,
        authorization: str | None = None,
    ) -> GraphQLResponse:
        """`query` through `api`, released with the others; whatever the server answered."""
        payload = json.dumps({"query": query, "variables": variables}).encode()
        headers = {"content-type": "application/json", "content-length": str(len(payload))}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if authorization is not None:
            headers["authorization"] = authorization
        response = await api.client.post("/graphql", content=self._body(payload), headers=headers)
        return GraphQLResponse(response.status_code, response.json(), response.headers)


async def verifications(api: Api, result: str) -> float:
    """api_secret_verifications_total{result} of the process behind `api` (its argon2 runs)."""
    response = await api.client.get("/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        if family.name == "api_secret_verifications":
            return sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels.get("result") == result
            )
    return 0.0
