"""The abandonment state machine of one customer: quotes in, triggers and decisions out.

A customer's whole state is one value (:class:`~streams.core.state.CustomerState`),
and :func:`step` takes it with one change (or none, when only time went by) and
returns a new one with the outputs (:class:`Step`). Nothing is mutated, nothing
is read from a clock.

Time. A quote becomes a candidate when it reaches an offerable status; its
deadline is the moment it did (``updated_at``) plus the delay for its product
and channel. A due quote is decided only once the *watermark* has passed its
due time — every change committed by then has reached the core (the driver
takes the lower of the QMS and CRM source watermarks), so an acceptance or a
consent withdrawal committed in time has been seen, however late it arrived.
It is decided with everything known when the decision is made.

This module ties the core's rooms together, and is the one the drivers import:

- :mod:`streams.core.state` — the state, its edits, and the memory horizon;
- :mod:`streams.core.lifecycle` — a quote entering, superseded, accepted, leaving;
- :mod:`streams.core.customers` — the join with the customer's CRM row;
- :mod:`streams.core.truncation` — a TRUNCATE of a source table;
- :mod:`streams.core.decide` — deciding a due quote (eligibility, offer, holdout);
- :mod:`streams.core.ids` — the outputs' stable ids.

Their names the drivers and tests use are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streams.core.customers import apply_customer
from streams.core.decide import decide
from streams.core.frozen import fast_init
from streams.core.ids import decision_id, trigger_id
from streams.core.lifecycle import apply_quote
from streams.core.model import Change, Output, QuoteChange, TableTruncated
from streams.core.rules import Rules
from streams.core.state import (
    MEMORY_MS,
    CustomerState,
    Left,
    OpenQuote,
    first_due,
    forget,
    memory_ms,
    next_due,
    with_queue,
)
from streams.core.truncation import TRUNCATED_QUOTES, Truncations, apply_truncate

__all__ = [
    "MEMORY_MS",
    "TRUNCATED_QUOTES",
    "CustomerState",
    "Left",
    "OpenQuote",
    "Step",
    "Truncations",
    "decision_id",
    "memory_ms",
    "next_due",
    "run_in_event_time",
    "step",
    "trigger_id",
]


@fast_init
@dataclass(frozen=True, slots=True)
class Step:
    state: CustomerState
    outputs: tuple[Output, ...] = ()
    #: Due quotes the watermark has not reached yet: the earliest due time held back.
    held_ms: int | None = None
    #: When the new state has something due next (:func:`next_due` of it), found on the
    #: way: a driver with a due index need not scan the quotes again.
    due_ms: int | None = None


def step(
    state: CustomerState, change: Change | None, now_ms: int, watermark_ms: int, rules: Rules,
    *, forgetting: bool = True,
) -> Step:
    """Take ``change`` (if any), then decide every quote the time allows.

    ``now_ms`` is the wall clock live and the watermark in a replay: decisions are
    made as of it. ``watermark_ms`` says every change committed *before* it has been
    given to the core (a heartbeat stamped W was written after every transaction that
    committed before W; one committing in the same millisecond may follow it), so a
    quote due at D is decided once the watermark is past D, with every change read
    by then.

    ``forgetting`` False leaves the memory horizon to the caller (:func:`forget` with
    ``min(now_ms, watermark_ms)``, before the customer's next step):
    :class:`~streams.core.event_time.EventTimeRun` knows when nothing can be that old.
    """
    outputs: list[Output] = []
    if state.queue:  # held back by an earlier version of the core: apply now, in order
        queue, state = state.queue, with_queue(state, ())
        for queued in queue:
            state, applied = _apply(state, queued, rules)
            outputs.extend(applied)
    if change is not None:
        state, applied = _apply(state, change, rules)
        if applied:
            outputs.extend(applied)
    held: int | None = None
    while True:
        due = first_due(state.quotes)
        if due is None or due[0] > now_ms:
            break
        if watermark_ms <= due[0]:
            held = due[0]
            break
        state, output = decide(state, state.quotes[due[1]], now_ms, watermark_ms, rules)
        if output is not None:
            outputs.append(output)
    # Forgetting drops decided quotes only: what is due stays as found.
    due_ms = None if due is None else due[0]
    if forgetting:
        state = forget(state, min(now_ms, watermark_ms), rules)
    return Step(state, tuple(outputs), held, due_ms)


def _apply(
    state: CustomerState, change: Change, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    if isinstance(change, QuoteChange):
        return apply_quote(state, change, rules)
    if isinstance(change, TableTruncated):
        return apply_truncate(state, change, rules)
    return apply_customer(state, change)


def run_in_event_time(
    items: Iterable[Change | int], rules: Rules
) -> tuple[dict[int, CustomerState], list[Output]]:
    """Run a recorded sequence in event time: changes, and watermarks (ints, epoch ms).

    The reference semantics a driver must match (the tests hold both to it): each
    watermark is also the clock, and decides everything due up to it.
    """
    states: dict[int, CustomerState] = {}
    outputs: list[Output] = []
    watermark = 0
    truncations = Truncations()
    for item in items:
        if isinstance(item, int):
            watermark = max(watermark, item)
            for customer_id in sorted(states):
                result = step(states[customer_id], None, watermark, watermark, rules)
                states[customer_id] = result.state
                outputs.extend(result.outputs)
            continue
        if isinstance(item, TableTruncated):  # every customer, like the live driver
            truncations = truncations.after(item)
            for customer_id in sorted(states):
                result = step(states[customer_id], item, watermark, watermark, rules)
                states[customer_id] = result.state
                outputs.extend(result.outputs)
            continue
        state = states.get(item.customer_id) or truncations.fresh(item.customer_id)
        result = step(state, item, watermark, watermark, rules)
        states[item.customer_id] = result.state
        outputs.extend(result.outputs)
    return states, outputs
