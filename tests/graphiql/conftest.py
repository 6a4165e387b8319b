"""The GraphiQL page does not touch the database: its tests run on SQLite only."""

from __future__ import annotations

import pytest


@pytest.fixture
def backend() -> str:
    return "sqlite"
