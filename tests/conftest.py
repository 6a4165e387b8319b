"""Every database test runs twice: on SQLite and on a real PostgreSQL server started here."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from starlette.applications import Starlette

from db import (
    models,  # noqa: F401  (registers the tables)
    sqlite_reads,
)
from db.engine import create_engine
from db.migrate import upgrade
from gql_api.app import create_app
from gql_api.settings import Settings
from tests.leak_scan import (
    LeakScan,
    final_scan,
    found_outside_tests,
    leak_scan,
    postgresql_contents,
    sqlite_contents,
    summary_line,
    write_figures,
)
from tests.pg_server import PostgresServer
from tests.support import Api

IN_CI = os.environ.get("CI") == "true"
LEAK_SCAN_FOLDER = (
    "INTEGRATION_API_LEAK_SCAN_FOLDER"  # where each pytest process writes its figures
)
BACKENDS = ["sqlite", "postgresql"]
TEST_ENCRYPTION_KEY = "qvZ0M1gZ5m8W3bHk0m5jQkVv2cQ9H8u6gkB0y1Xl0aE="
__all__ = ["leak_scan"]  # a fixture, re-exported for the suite


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except FileNotFoundError as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(f"PostgreSQL not available: {error}")
    try:
        yield server
        hits = final_scan(server)  # before the server and its log go
        if hits:
            pytest.fail("secret found where it must not be:\n" + "\n".join(hits), pytrace=False)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated(pg_server: PostgresServer) -> str:
    url = pg_server.database_url("postgres")
    upgrade(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, leak_scan: LeakScan
) -> str:
    """A migrated, empty database for one test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "test.db"
        shutil.copyfile(template, target)
        url = f"sqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_migrated")
        asyncio.run(_truncate_all(url))
    leak_scan.database_url = url
    return url


@pytest.fixture(autouse=True)
def no_leaked_secrets(request: pytest.FixtureRequest, leak_scan: LeakScan) -> Iterator[None]:
    """After a test: no secret it was handed is in its database, a later body, a log or a
    subprocess's output (tests/leak_scan.py).

    Autouse, so set up first and torn down last: after the app has closed its engine.
    """
    yield
    url = leak_scan.database_url
    if not (leak_scan.bodies or leak_scan.outputs or leak_scan.databases):
        return  # the test made no request and ran no process: nothing was handed or written
    database: list[tuple[str, bytes]] = []
    if url is None:
        pass
    elif url.startswith("sqlite"):
        database = sqlite_contents(Path(url.removeprefix("sqlite:///")))
    elif leak_scan.postgresql is not None:
        database = leak_scan.postgresql
    else:
        database = asyncio.run(_postgresql_contents(url))
    hits = leak_scan.conclude(database)
    if hits:
        pytest.fail("secret found where it must not be:\n" + "\n".join(hits), pytrace=False)


async def _postgresql_contents(url: str) -> list[tuple[str, bytes]]:
    engine = create_engine(url)
    try:
        return await postgresql_contents(engine)
    finally:
        await engine.dispose()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "app_env": "test",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "encryption_keys": [TEST_ENCRYPTION_KEY],
        # The suite reads messages in English; tests/test_i18n.py covers the Korean default.
        "default_locale": "en",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings, leak_scan: LeakScan) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    yield application
    if leak_scan.bodies and not settings.database_url.startswith("sqlite"):
        # the app's pooled connection: a new one per test costs ~40 ms
        engine = application.state.app_state.engine
        leak_scan.postgresql = await postgresql_contents(engine)
    application.state.app_state.hashing.close()
    sqlite_reads.close(application.state.app_state.engine)
    await application.state.app_state.engine.dispose()


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
def db_engine(app: Starlette) -> AsyncEngine:
    """The app's own engine, for setting rows up directly (tests.factories)."""
    engine: AsyncEngine = app.state.app_state.engine
    return engine


def _leak_scan_folder() -> Path:
    return Path(os.environ[LEAK_SCAN_FOLDER])


def pytest_configure(config: pytest.Config) -> None:
    # The controller (or a run without xdist) picks the folder; xdist workers, spawned after,
    # inherit the variable and write their figures there.
    if not hasattr(config, "workerinput"):
        os.environ[LEAK_SCAN_FOLDER] = tempfile.mkdtemp(prefix="leak-scan-")


def pytest_sessionfinish(session: pytest.Session) -> None:
    workerinput = getattr(session.config, "workerinput", None)
    write_figures(_leak_scan_folder(), str((workerinput or {}).get("workerid", "main")))
    if workerinput is None and found_outside_tests(_leak_scan_folder()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # printed by the terminal summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hasattr(terminalreporter.config, "workerinput"):
        return  # xdist workers have a terminal summary of their own, nobody reads it
    folder = _leak_scan_folder()
    line = summary_line(folder)
    if line:
        terminalreporter.write_line(line)
    for hit in found_outside_tests(folder):
        terminalreporter.write_line(
            f"leak scan: secret found where it must not be: {hit}", red=True
        )
    shutil.rmtree(folder, ignore_errors=True)
