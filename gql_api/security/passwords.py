"""argon2id password hashing, run in worker threads behind a semaphore."""

from __future__ import annotations

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHashing:
    """Hash and verify passwords without blocking the event loop."""

    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, max_concurrency: int
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        # Verified against for unknown emails, so a miss costs as much as a wrong password.
        self._dummy_hash = self._hasher.hash("dummy password for timing equality")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; for `stored_hash=None` a dummy verify runs and fails."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        ok = await anyio.to_thread.run_sync(
            self._verify_sync, target, password, limiter=self._limiter
        )
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
