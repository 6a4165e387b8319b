"""Upgrading an empty database yields exactly the schema the models describe."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from db import models  # noqa: F401
from db.engine import create_engine
from db.migrate import upgrade
from tests.pg_server import PostgresServer


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def _schema_diff(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff)
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server.url, f"CREATE DATABASE {name}"))
    yield server.database_url(name)
    asyncio.run(_admin(server.url, f"DROP DATABASE {name}"))


def test_upgrade_from_empty_matches_models(empty_database: str) -> None:
    # given an empty database / when every migration is applied
    upgrade(empty_database)
    # then nothing differs from the models
    assert asyncio.run(_schema_diff(empty_database)) == []


def test_upgrade_is_idempotent(empty_database: str) -> None:
    upgrade(empty_database)
    upgrade(empty_database)
    assert asyncio.run(_schema_diff(empty_database)) == []
