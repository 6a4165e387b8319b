from __future__ import annotations

import pytest

from tests.api_secrets.helpers import Argon2Calls, instrument_argon2


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> Argon2Calls:
    """argon2's verify and hash, recorded (the library is wrapped, not replaced)."""
    return instrument_argon2(monkeypatch)
