"""Which offset of each partition may be committed: the first one without an outcome.

Triggers finish out of order (many in flight), but a committed offset says
"everything before it is done". Pure bookkeeping for the dispatcher's thread.
"""

from __future__ import annotations

import heapq


class PartitionOffsets:
    """Offsets read from one partition and which of them are done."""

    def __init__(self) -> None:
        self._open: list[int] = []  # heap of offsets read and not done
        self._done: set[int] = set()
        self._next: int | None = None  # one past the highest offset read

    def read(self, offset: int) -> None:
        heapq.heappush(self._open, offset)
        self._next = offset + 1 if self._next is None else max(self._next, offset + 1)

    def done(self, offset: int) -> None:
        self._done.add(offset)

    def committable(self) -> int | None:
        """The offset to commit (the next to read after the done prefix); None: nothing new."""
        while self._open and self._open[0] in self._done:
            self._done.discard(heapq.heappop(self._open))
        if self._open:
            return self._open[0]
        return self._next

    @property
    def pending(self) -> int:
        return len(self._open) - len(self._done)
