"""Fixtures of the channel tests: a merchant whose owner manages channels."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_api.settings import Settings
from tests.factories import seed_merchant
from tests.support import SignedUp


@pytest.fixture
async def owner(db_engine: AsyncEngine, settings: Settings) -> SignedUp:
    # rows, not a sign-up through HTTP: the channel tests are not about signing up
    seeded = await seed_merchant(db_engine, roles=(), stores=(), settings=settings)
    return seeded.owner
