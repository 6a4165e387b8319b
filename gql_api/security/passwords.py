"""argon2id hashing in worker threads, never on the event loop.

argon2 is deliberately expensive: on a small machine a burst of log-ins would otherwise take
the CPU from the event loop and every other request would wait. The hashes run in
ARGON2_MAX_CONCURRENCY threads (1 by default: the loop keeps a core of its own on a 2-core
machine), and log-ins are admitted a few per thread (`admission`), so that a burst does not
do all its database work on the loop at once.

The threads run at the process's own priority. At nice 10 (until the second benchmark round)
a hash got only the CPU nothing else wanted (the loop, PostgreSQL, the load generator): under
load each took about 20 % longer and a burst of 20 log-ins as much longer (bench, PostgreSQL:
log-in p99 1.24x the 20 hashes one after another; 1.15x at normal priority), while the small
query's p99 during the burst was the same (1.96x and 1.90x of its p99 without the burst).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Log-ins admitted per hashing thread. A log-in's own statements (its claim before the hash,
# its session after) are a dozen round trips, each waiting for the event loop: on a loop busy
# with other requests they took ~0.5-1 s, several hashes' time, and with 2 admitted the
# hashing thread sat idle most of a burst (bench: 20 log-ins took 3x their 20 hashes). With 8,
# hashes queue while the others do their statements.
ADMITTED_PER_HASHING_THREAD = 8


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
