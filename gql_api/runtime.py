"""Process-wide tuning applied once the server has started (not in tests or scripts)."""

from __future__ import annotations

import gc

# A dashboard response builds tens of thousands of short-lived objects; with CPython's default
# first-generation threshold (700) the collector runs hundreds of times per request and the
# survivors push frequent full collections. 10,000 cuts that work several-fold for a few MiB.
GC_GEN0_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated (modules, schema, catalog: never garbage) so that full
    collections no longer walk it, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
