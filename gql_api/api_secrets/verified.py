"""The process's memory of secrets it has already verified with argon2.

Keyed by a fast hash of the secret, bounded in size and time. It only saves the argon2 verify:
the secret's row is still read on every request, so deletion and expiry apply at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class _Entry:
    secret_id: int
    secret_hash: str
    until: float


class VerifiedSecrets:
    def __init__(self, *, max_entries: int = 10_000, ttl_seconds: float = 300.0) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._verifying: dict[str, tuple[asyncio.Lock, int]] = {}

    def knows(self, fingerprint: str, *, secret_id: int, secret_hash: str) -> bool:
        entry = self._entries.get(fingerprint)
        if entry is None:
            return False
        if entry.until < time.monotonic() or (entry.secret_id, entry.secret_hash) != (
            secret_id,
            secret_hash,
        ):
            del self._entries[fingerprint]
            return False
        self._entries.move_to_end(fingerprint)
        return True

    def remember(self, fingerprint: str, *, secret_id: int, secret_hash: str) -> None:
        self._entries[fingerprint] = _Entry(secret_id, secret_hash, time.monotonic() + self._ttl)
        self._entries.move_to_end(fingerprint)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    @asynccontextmanager
    async def one_verify_at_a_time(self, fingerprint: str) -> AsyncIterator[None]:
        """Concurrent uses of one secret wait for the first one's verify (check `knows` again
        inside): a burst after a restart costs one argon2 run and one unit of the key's
        budget of verifications, not one per request."""
        lock, users = self._verifying.get(fingerprint, (asyncio.Lock(), 0))
        self._verifying[fingerprint] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._verifying[fingerprint]
            if users == 1:
                del self._verifying[fingerprint]
            else:
                self._verifying[fingerprint] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._entries)
