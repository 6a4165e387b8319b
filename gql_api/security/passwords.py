"""argon2id hashing in low-priority worker threads, never on the event loop.

argon2 is deliberately expensive: on a small machine a burst of log-ins would otherwise take
the CPU from the event loop and every other request would wait. The hashing threads run at a
lower scheduling priority (nice), so the event loop thread wins when both want the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

WORKER_NICENESS = 10
# Log-ins admitted per hashing thread. A log-in's own statements (its claim before the hash,
# its session after) are a dozen round trips, each waiting for the event loop: on a loop busy
# with other requests they took ~0.5-1 s, several hashes' time, and with 2 admitted the
# hashing thread sat idle most of a burst (bench: 20 log-ins took 3x their 20 hashes). With 8,
# hashes queue while the others do their statements.
ADMITTED_PER_HASHING_THREAD = 8


def _lower_priority() -> None:
    # On Linux a thread has its own nice value; elsewhere this is best effort.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


class PasswordHashing:
    """Hash and verify passwords (and API secrets) without blocking the event loop."""

    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, max_concurrency: int
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrency,
            thread_name_prefix="argon2",
            initializer=_lower_priority,
        )
        # Verified against for unknown emails, so a miss costs as much as a wrong password.
        self._dummy_hash = self._hasher.hash("dummy password for timing equality")
        self._admission = asyncio.Semaphore(ADMITTED_PER_HASHING_THREAD * max_concurrency)

    def admission(self) -> asyncio.Semaphore:
        """Held for the whole of a piece of work that ends in hashing (a log-in): a burst of
        log-ins admitted at once would do all their database work on the event loop at the
        same moment (tens of milliseconds during which every other request waits), so only
        ADMITTED_PER_HASHING_THREAD per hashing thread go ahead, enough to keep the hashing
        threads busy (see there)."""
        return self._admission

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; for `stored_hash=None` a dummy verify runs and fails."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._executor, self._verify_sync, target, password)
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
