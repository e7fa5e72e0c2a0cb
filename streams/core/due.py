"""Which customers have a quote due: a min-heap over due times, with lazy deletion.

A deciding task asks "who is due by now?" on every tick and every watermark
marker, several times a second per partition. Scanning every customer with an
open quote made each question cost O(open quotes): with 100,000 open quotes the
questions alone outran the CPU and deadlines fired seconds late. The heap
answers in O(k log n) for k due customers; entries made stale by a later change
of the same customer are skipped when they surface, and dropped in bulk when
they outnumber the live ones.

An entry is one int, ``due_ms * 2**64 + customer id + 2**63`` (customer ids are
Avro longs): it orders exactly as the pair ``(due_ms, customer_id)`` does, and
the heap compares ints several times faster than tuples (the heap's pops were
the event-time core's single most expensive line).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

_ID_OFFSET = 1 << 63  # customer ids are Avro longs: [-2**63, 2**63)
_ID_SPAN = 1 << 64
_ID_MASK = _ID_SPAN - 1


def _entry(due_ms: int, customer_id: int) -> int:
    if not -_ID_OFFSET <= customer_id < _ID_OFFSET:
        raise ValueError("a customer id outside the range of an Avro long")
    return due_ms * _ID_SPAN + customer_id + _ID_OFFSET


def _split(entry: int) -> tuple[int, int]:
    """An entry's ``(due_ms, customer_id)``."""
    return entry >> 64, (entry & _ID_MASK) - _ID_OFFSET


@dataclass
class DueIndex:
    """customer id -> the time its next decision is due, ordered by that time."""

    due: dict[int, int] = field(default_factory=dict)
    _heap: list[int] = field(default_factory=list)  # entries (see the module's docstring)

    def set(self, customer_id: int, due_ms: int | None) -> None:
        """Record the customer's next due time (None: nothing due any more)."""
        if due_ms is None:
            self.due.pop(customer_id, None)
            return
        if self.due.get(customer_id) == due_ms:
            return
        entry = _entry(due_ms, customer_id)
        self.due[customer_id] = due_ms
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self.due) + 1024:
            self._heap = [_entry(at, c) for c, at in self.due.items()]
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
        bound = (now_ms + 1) * _ID_SPAN  # every entry due at or before now_ms is below it
        while heap and heap[0] < bound and (limit is None or len(found) < limit):
            due_ms, customer_id = _split(heapq.heappop(heap))
            if due.get(customer_id) == due_ms and customer_id not in seen:
                found.append(customer_id)
                seen.add(customer_id)
        # Still due: back on the heap until the caller moves them on.
        for customer_id in found:
            heapq.heappush(heap, _entry(due[customer_id], customer_id))
        return found

    def take(self, now_ms: int) -> list[int]:
        """The customers due at or before ``now_ms``, earliest first, each once, taken out
        of the index: a batch driver decides each at once and :meth:`set`\\ s its next due
        time, so putting them back first is wasted work."""
        heap, due = self._heap, self.due
        found: list[int] = []
        bound = (now_ms + 1) * _ID_SPAN
        while heap and heap[0] < bound:
            due_ms, customer_id = _split(heapq.heappop(heap))
            if due.get(customer_id) == due_ms:
                del due[customer_id]
                found.append(customer_id)
        return found

    def __len__(self) -> int:
        return len(self.due)
