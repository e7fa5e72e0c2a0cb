"""Per-customer order with many sends in flight: one lane per customer, one send per lane.

Triggers of different customers go out concurrently; a customer's second
trigger waits until the first has an outcome, so a customer never gets offers
out of order. Pure bookkeeping, used by the dispatcher's one thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lanes(Generic[T]):
    def __init__(self) -> None:
        #: key -> items waiting behind the one in flight (present while one is in flight).
        self._waiting: dict[Hashable, deque[T]] = {}
        self._ready: deque[tuple[Hashable, T]] = deque()
        self._count = 0

    def add(self, key: Hashable, item: T) -> None:
        """Queue ``item``; it becomes ready when its lane is free."""
        self._count += 1
        if key in self._waiting:
            self._waiting[key].append(item)
        else:
            self._waiting[key] = deque()
            self._ready.append((key, item))

    def take_ready(self, n: int) -> list[tuple[Hashable, T]]:
        """Up to ``n`` items whose lanes are free, oldest first; each now holds its lane."""
        out: list[tuple[Hashable, T]] = []
        while self._ready and len(out) < n:
            out.append(self._ready.popleft())
        return out

    def put_back(self, items: list[tuple[Hashable, T]]) -> None:
        """Return taken items (not sent after all) to the front, in order."""
        self._ready.extendleft(reversed(items))

    def done(self, key: Hashable) -> None:
        """The lane's item has its outcome: the next one of that customer becomes ready."""
        queue = self._waiting.get(key)
        if queue is None:
            raise KeyError(f"lane {key!r} has nothing in flight")
        self._count -= 1
        if queue:
            self._ready.append((key, queue.popleft()))
        else:
            del self._waiting[key]

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def __len__(self) -> int:
        """Items held: in flight or ready (one per lane) plus those waiting behind them."""
        return self._count
