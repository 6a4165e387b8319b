"""Fixtures of the channel-group tests: a merchant (with a sub-store and a STORE_MANAGER of
it) whose owner manages channels, and a second merchant for cross-tenant attempts."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_api.settings import Settings
from tests.factories import Seeded, seed_merchant


@pytest.fixture
async def seeded(db_engine: AsyncEngine, settings: Settings) -> Seeded:
    # rows, not a sign-up through HTTP: these tests are not about signing up
    return await seed_merchant(
        db_engine, roles=("STORE_MANAGER", "READ_ONLY"), stores=("Sub store",), settings=settings
    )


@pytest.fixture
async def stranger(db_engine: AsyncEngine, settings: Settings) -> Seeded:
    """Another merchant: its groups and channels do not exist for `seeded`, and vice versa."""
    return await seed_merchant(db_engine, roles=(), stores=(), settings=settings)
