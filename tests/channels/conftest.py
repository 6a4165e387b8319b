"""Fixtures of the channel tests: a signed-up merchant whose owner manages channels."""

from __future__ import annotations

import pytest

from tests.support import Api, SignedUp


@pytest.fixture
async def owner(api: Api) -> SignedUp:
    return await api.sign_up()
