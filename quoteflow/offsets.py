"""Where a commit may go when work finishes out of order: up to the first unfinished offset.

A committed position says "everything before it is done". Work read in order
but finished in any order (many records in flight, acknowledgements from
several partitions) may therefore commit only up to the first offset still
unfinished. The CDC's confirmable LSN (transactions in commit order), the
sink's committed offsets (triggers in flight) and the processor's committed
offsets (faust's acknowledged offsets) all follow that one rule, kept here,
pure, for one partition at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class InFlightOffsets:
    """One partition's offsets read and not yet committed, and which of them are done.

    Offsets are read in increasing order, not necessarily consecutive (a
    transaction marker takes an offset no consumer sees); they finish in any
    order. Pure bookkeeping for one thread.
    """

    def __init__(self) -> None:
        self._open: list[int] = []  # heap of offsets read and not yet passed
        self._done: set[int] = set()  # done offsets still in the heap
        self._next: int | None = None  # one past the highest offset read

    def read(self, offset: int) -> None:
        """``offset`` is in flight: no commit passes it before :meth:`done`."""
        heapq.heappush(self._open, offset)
        self._next = offset + 1 if self._next is None else max(self._next, offset + 1)

    def done(self, offset: int) -> None:
        """``offset``'s work is finished."""
        self._done.add(offset)

    def committable(self) -> int | None:
        """The offset to commit: the first unfinished one read, else the next to read
        (None: nothing read yet)."""
        while self._open and self._open[0] in self._done:
            self._done.discard(heapq.heappop(self._open))
        if self._open:
            return self._open[0]
        return self._next

    @property
    def pending(self) -> int:
        """Offsets read and not done."""
        return len(self._open) - len(self._done)


def contiguous_run(offsets: Iterable[int]) -> tuple[list[int], list[int]]:
    """Done offsets where every offset counts (none is skipped): (the run of consecutive
    offsets from the lowest, what is left after the first one missing), both sorted and
    without repeats. The position to commit is one past the run's last offset."""
    ordered = sorted(set(offsets))
    end = 0
    while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
        end += 1
    return ordered[: end + 1], ordered[end + 1 :]
