"""Metrics are not for the public, and clients cannot exhaust their labels.

Production requires METRICS_PORT (metrics on a listener of their own; the API's port answers
404 on /metrics) or METRICS_TOKEN (`Authorization: Bearer <token>`); development keeps /metrics
open. The operation label is the operation's first root field (or `other`), never the
operationName a client chose.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from db import sqlite_reads
from gql_api.app import create_app
from gql_api.schema import build_schema
from gql_api.settings import Settings
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.support import Api

TOKEN = "metrics-token-for-the-tests-0123456789"
PRODUCTION: dict[str, object] = {
    "app_env": "production",
    "argon2_memory_kib": 19456,
    "argon2_time_cost": 2,
}
REPOSITORY = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "gql_api"]  # integration-api, from this checkout
LABEL = re.compile(r'operation="([^"]*)"')


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        application.state.app_state.hashing.close()
        sqlite_reads.close(application.state.app_state.engine)
        await application.state.app_state.engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _root_fields() -> set[str]:
    schema = build_schema(make_settings("sqlite:///unused.db"))._schema
    assert schema.query_type is not None and schema.mutation_type is not None
    return set(schema.query_type.fields) | set(schema.mutation_type.fields)


def _requests(text: str, operation: str, outcome: str) -> float:
    line = f'graphql_requests_total{{operation="{operation}",outcome="{outcome}"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


def test_production_refuses_metrics_without_a_port_or_token() -> None:
    with pytest.raises(ValidationError, match="METRICS_PORT or METRICS_TOKEN is required"):
        make_settings("sqlite:///unused.db", **PRODUCTION)
    assert make_settings("sqlite:///unused.db", **PRODUCTION, metrics_port=9464).metrics_port
    assert make_settings("sqlite:///unused.db", **PRODUCTION, metrics_token=TOKEN).metrics_token


def test_a_short_token_or_the_api_port_for_metrics_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        make_settings("sqlite:///unused.db", metrics_token="guessable")
    with pytest.raises(ValidationError, match="METRICS_PORT must differ from PORT"):
        make_settings("sqlite:///unused.db", port=8000, metrics_port=8000)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
    ids=["none", "wrong", "basic", "longer", "no-scheme"],
)
async def test_metrics_token_is_required(database_url: str, authorization: str | None) -> None:
    # given production with a metrics token
    settings = make_settings(database_url, **PRODUCTION, metrics_token=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}

    # when
    async with serving(settings) as http:
        refused = await http.get("/metrics", headers=headers)
        allowed = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    # then
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "graphql_requests_total" not in refused.text
    assert allowed.status_code == 200
    assert "graphql_requests_total" in allowed.text


async def test_with_a_metrics_port_the_api_port_has_no_metrics(database_url: str) -> None:
    settings = make_settings(database_url, **PRODUCTION, metrics_port=_free_port())
    async with serving(settings) as http:
        response = await http.get("/metrics")
    assert response.status_code == 404


async def test_development_keeps_metrics_open(database_url: str) -> None:
    async with serving(make_settings(database_url, app_env="development")) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert "graphql_requests_total" in response.text


async def test_client_chosen_operation_names_never_become_labels(
    api: Api, client: httpx.AsyncClient
) -> None:
    # given 300 requests, each with an operationName of its own, half of them for fields the
    # schema does not have
    owner = await api.sign_up()
    for n in range(300):
        field = "viewer { role }" if n % 2 else f"unknown{n}"
        await api.gql(f"query Probe{n} {{ {field} }}")
    before = (await client.get("/metrics")).text

    # when a real operation runs afterwards
    result = await api.gql("query AnyNameAtAll { merchant { name } }", token=owner.token)
    after = (await client.get("/metrics")).text

    # then every label is a root field of the schema or `other`, and `merchant` still counts
    assert result.error_codes == []
    labels = set(LABEL.findall(after))
    assert labels <= _root_fields() | {"other"}, labels - _root_fields()
    assert {"viewer", "other", "merchant"} <= labels
    assert _requests(after, "merchant", "ok") - _requests(before, "merchant", "ok") == 1


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"serve did not answer {url}:\n{log.read_text()}")


def test_serve_answers_metrics_on_their_own_port_only(tmp_path: Path) -> None:
    # given `integration-api serve` with METRICS_PORT (and METRICS_TOKEN) on a migrated database
    port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "DATA_DIR": str(tmp_path),
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_PORT": str(metrics_port),
        "METRICS_TOKEN": TOKEN,
    }
    migrate = subprocess.run(
        [*CLI, "migrate"], cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    api, metrics = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*CLI, "serve"], cwd=REPOSITORY, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(f"{api}/healthz", server, log)

        # when
        httpx.post(f"{api}/graphql", json={"query": "query Mine { viewer { role } }"})
        scraped = httpx.get(f"{metrics}/metrics", headers=bearer)
        without_token = httpx.get(f"{metrics}/metrics")
        on_the_api_port = httpx.get(f"{api}/metrics", headers=bearer)

        # then the metrics listener serves this app's registry, and only with the token
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert 'graphql_requests_total{operation="viewer",outcome="ok"} 1.0' in scraped.text
        assert without_token.status_code == 401
        assert on_the_api_port.status_code == 404
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # and the listener stopped with the server
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{metrics}/metrics", headers=bearer, timeout=2)
