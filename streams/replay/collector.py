"""The garbage collector tuned for a batch run: young cycles still collected, no full sweeps.

Why: a replay lane holds every customer's state in memory, millions of small
objects that live for the whole run, and makes a few short-lived ones per
change. CPython's cyclic collector is triggered by allocations, and its older
generations rescan the long-lived objects again and again: on the replay
benchmark's history that was a third of the core's time (the core ran 51k
changes/s with the default thresholds, 76k with the collector off). Nothing the
core builds refers back to itself, so there are few cycles to find; the young
generation is still collected, in larger batches, to catch those there are.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young collections (default 700), young collections between
#: middle ones (default 10), middle ones between full ones (default 10).
BATCH_THRESHOLDS = (100_000, 50, 1_000)


@contextmanager
def batch_collection() -> Iterator[None]:
    """Within: what exists now is never rescanned, and collections are rare."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()  # the settings, schemas and imports: alive for the whole run
    gc.set_threshold(*BATCH_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
