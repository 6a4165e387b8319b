"""Fixtures of the webhook tests: loopback receivers, stopped at the end of each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.webhooks.receiver import Receivers, receivers


@pytest.fixture
async def receiver_pool() -> AsyncIterator[Receivers]:
    async with receivers() as pool:
        yield pool
