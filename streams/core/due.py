"""Which customers have a quote due: a min-heap over due times, with lazy deletion.

A deciding task asks "who is due by now?" on every tick and every watermark
marker, several times a second per partition. Scanning every customer with an
open quote made each question cost O(open quotes): with 100,000 open quotes the
questions alone outran the CPU and deadlines fired seconds late. The heap
answers in O(k log n) for k due customers; entries made stale by a later change
of the same customer are skipped when they surface, and dropped in bulk when
they outnumber the live ones.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class DueIndex:
    """customer id -> the time its next decision is due, ordered by that time."""

    due: dict[int, int] = field(default_factory=dict)
    _heap: list[tuple[int, int]] = field(default_factory=list)

    def set(self, customer_id: int, due_ms: int | None) -> None:
        """Record the customer's next due time (None: nothing due any more)."""
        if due_ms is None:
            self.due.pop(customer_id, None)
            return
        if self.due.get(customer_id) == due_ms:
            return
        self.due[customer_id] = due_ms
        heapq.heappush(self._heap, (due_ms, customer_id))
        if len(self._heap) > 2 * len(self.due) + 1024:
            self._heap = [(at, c) for c, at in self.due.items()]
            heapq.heapify(self._heap)

    def ready(self, now_ms: int, limit: int | None = None) -> list[int]:
        """The customers due at or before ``now_ms``, earliest first (each once), at most
        ``limit`` of them.

        They stay in the index: the caller decides them and then :meth:`set`\\ s
        their next due time (or None); those past ``limit`` come next time.
        """
        heap, due = self._heap, self.due
        found: list[int] = []
        seen: set[int] = set()
        while heap and heap[0][0] <= now_ms and (limit is None or len(found) < limit):
            at, customer_id = heapq.heappop(heap)
            if due.get(customer_id) == at and customer_id not in seen:
                found.append(customer_id)
                seen.add(customer_id)
        # Still due: back on the heap until the caller moves them on.
        for customer_id in found:
            heapq.heappush(heap, (due[customer_id], customer_id))
        return found

    def __len__(self) -> int:
        return len(self.due)
