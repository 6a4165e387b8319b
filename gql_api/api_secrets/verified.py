"""The process's memory of secrets it has already verified with argon2.

Keyed by a fast hash of the secret, bounded in size and time. It only saves the argon2 verify:
the secret's row is still read on every request, so deletion and expiry apply at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
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

    def __len__(self) -> int:
        return len(self._entries)
