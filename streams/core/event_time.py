"""Many customers stepped in event time: the batch drivers' core (replay, what-if, benchmarks).

The live processor steps one customer at a time with the wall clock, inside
faust. A replay has the whole history at hand and no wall clock worth reading:
its clock *is* the source watermark, so replaying a range decides what the
live pipeline decided on it, whenever the replay runs. This holds every
customer's state in memory and asks a due-time heap who is ready when the
watermark moves, as the processor asks its own index on a marker: the cost is
the customers that change or fall due, never a scan of all of them.

:func:`streams.core.detector.run_in_event_time` is the reference semantics
(each watermark steps every customer); the tests hold this to it.
"""

from __future__ import annotations

from streams.core.detector import CustomerState, Truncations, step
from streams.core.due import DueIndex
from streams.core.model import Change, Output, TableTruncated
from streams.core.rules import Rules
from streams.core.state import forget, memory_ms, oldest_memory

#: No memory to forget yet: later than any horizon.


class EventTimeRun:
    """Customer states under one rules version, stepped with the watermark as the clock.

    Mutable on purpose: a replay of millions of changes cannot copy a dict per change.

    Forgetting (the memory horizon) is the core's, applied after each step as
    :func:`~streams.core.detector.step` does, but only when it can drop something:
    each customer keeps a lower bound of the times :func:`forget` weighs in their
    state (every time a step can add is the change's commit time, a truncate's, or
    the watermark), and while the horizon is before it forgetting is a no-op, where
    checking that took a scan of the customer's quotes per change.
    """

    __slots__ = ("_due", "_memory_ms", "_oldest", "_truncations", "rules", "states",
                 "watermark_ms")  # fmt: skip

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.states: dict[int, CustomerState] = {}
        self.watermark_ms = 0
        self._due = DueIndex()
        self._truncations = Truncations()
        self._memory_ms = memory_ms(rules)
        #: customer id -> at most the earliest time forget weighs in their state.
        self._oldest: dict[int, int] = {}

    def apply(self, change: Change) -> tuple[Output, ...]:
        """Take one change at the current watermark (what it decides at once: a late sale,
        a quote leaving); due quotes wait for :meth:`advance`."""
        if isinstance(change, TableTruncated):  # every customer, as the live drivers do
            self._truncations = self._truncations.after(change)
            outputs: list[Output] = []
            for customer_id in sorted(self.states):
                outputs.extend(self._step(customer_id, self.states[customer_id], change))
            return tuple(outputs)
        customer_id = change.customer_id
        state = self.states.get(customer_id)
        if state is None:
            state = self._truncations.fresh(customer_id)
        return self._step(customer_id, state, change)

    def advance(self, watermark_ms: int) -> tuple[Output, ...]:
        """The watermark (and so the clock) moves on: decide every quote due before it.

        A watermark never goes back; an older one changes nothing.
        """
        if watermark_ms <= self.watermark_ms:
            return ()
        self.watermark_ms = watermark_ms
        outputs: list[Output] = []
        # Due at D is decided once the watermark is *past* D (detector.step's contract).
        for customer_id in self._due.take(watermark_ms - 1):
            outputs.extend(self._step(customer_id, self.states[customer_id], None))
        return tuple(outputs)

    def _step(self, customer_id: int, state: CustomerState,
              change: Change | None) -> tuple[Output, ...]:  # fmt: skip
        watermark = self.watermark_ms
        result = step(state, change, watermark, watermark, self.rules, forgetting=False)
        updated = result.state
        oldest = self._oldest.get(customer_id)
        if oldest is None or state.queue:  # unknown, or changes of unknown times applied
            oldest = oldest_memory(updated)
        else:  # what this step can have added: decided or left at these times
            if watermark < oldest:
                oldest = watermark
            if change is not None and change.position.commit_ms < oldest:
                oldest = change.position.commit_ms
            for truncate in (state.quotes_truncated, updated.quotes_truncated):
                if truncate is not None and truncate.commit_ms < oldest:
                    oldest = truncate.commit_ms
        if oldest < watermark - self._memory_ms:  # something may be past the horizon
            updated = forget(updated, watermark, self.rules)
            oldest = oldest_memory(updated)
        if updated.empty:
            self.states.pop(customer_id, None)
            self._oldest.pop(customer_id, None)
        else:
            self.states[customer_id] = updated
            self._oldest[customer_id] = oldest
        self._due.set(customer_id, result.due_ms)
        return result.outputs

    @property
    def open_customers(self) -> int:
        """Customers with state held (memory is roughly proportional to it)."""
        return len(self.states)
