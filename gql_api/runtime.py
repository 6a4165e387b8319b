"""Process-wide tuning for `serve` and its worker processes (not in tests or scripts)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform

from gql_api.settings import Settings


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated (modules, the schema, the catalog: never garbage), so
    that the collector's full passes, frequent while a dashboard builds tens of thousands of
    objects, no longer walk it. (Collecting the young generation less often as well saves
    nothing measurable and holds on to some 25 MiB more.)"""
    gc.collect()
    gc.freeze()


# glibc's mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def keep_hash_memory(settings: Settings) -> bool:
    """Let argon2's working memory be reused from one hash to the next instead of mapped afresh
    for each; whether the C library allowed it (glibc only: elsewhere nothing changes).

    A hash needs ARGON2_MEMORY_KIB at once (64 MiB by default), above glibc's mmap threshold: each
    hash mapped a fresh block, and the kernel faulted in and zeroed every page of it (16,384
    pages, about 16 % of a verify's time in a thread: 226 → 190 ms on this 2-core machine, and
    the pages' zeroing competes for the cores with the event loop during a burst of log-ins).
    With the mmap threshold above a hash's memory, the block comes from the heap, and with
    the trim threshold above that of ARGON2_MAX_CONCURRENCY hashes it is kept
    there for the next hash. One malloc arena, because a thread's own arena cannot hold a
    block this large (glibc would map it anyway): the hashing threads then allocate from the
    main one. The memory of the hashes that ran at once stays with the process afterwards;
    its peak, reached by every burst anyway, is unchanged.

    Called by `serve` (and in each of its worker processes) before any thread has allocated:
    a thread's arena is chosen at its first allocation, and an arena left by a thread that
    ended would be handed to the next thread, the hashing one perhaps."""
    memory_kib, at_once = settings.argon2_memory_kib, settings.argon2_max_concurrency
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    block = (memory_kib + 1024) * 1024  # the hash's memory and argon2's own bookkeeping
    return all(
        mallopt(parameter, value)
        for parameter, value in (
            (_M_MMAP_THRESHOLD, block),
            (_M_TRIM_THRESHOLD, block * max(at_once, 1) + block),
            (_M_ARENA_MAX, 1),
        )
    )
