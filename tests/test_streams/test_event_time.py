"""EventTimeRun, the batch drivers' core, decides what the event-time reference decides."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.detector import CustomerState, next_due, run_in_event_time, step
from streams.core.event_time import EventTimeRun
from streams.core.model import Change, Output, Trigger

from .core_helpers import MINUTE, T0, Clock, customer, quote
from .test_detector import RULES, STATUSES, _key, histories

pytestmark = pytest.mark.unit

DAY = 24 * 60 * MINUTE


class EagerRun(EventTimeRun):
    """EventTimeRun forgetting after every step, as the core's own step does."""

    __slots__ = ()

    def _step(self, customer_id: int, state: CustomerState,
              change: Change | None) -> tuple[Output, ...]:  # fmt: skip
        result = step(state, change, self.watermark_ms, self.watermark_ms, self.rules)
        if result.state.empty:
            self.states.pop(customer_id, None)
        else:
            self.states[customer_id] = result.state
        self._due.set(customer_id, next_due(result.state))
        return result.outputs


@st.composite
def long_histories(draw: st.DrawFn) -> list[Change | int]:
    """Changes over months, past the 30-day memory horizon: quotes decided, left and
    forgotten, changes delivered again after their quote was forgotten."""
    c = Clock()
    t = T0
    items: list[Change | int] = []
    changes: list[Change] = []
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.sampled_from([0, MINUTE, 20 * MINUTE, 2 * 60 * MINUTE, DAY, 10 * DAY,
                                   31 * DAY]))  # fmt: skip
        kind = draw(st.sampled_from(["quote", "quote", "quote", "customer", "delete", "tick",
                                     "again"]))  # fmt: skip
        customer_id = draw(st.sampled_from([7, 8]))
        quote_id = draw(st.integers(1, 4))
        change: Change
        if kind == "tick":
            items.append(t)
            continue
        if kind == "again":
            if changes:
                items.append(draw(st.sampled_from(changes)))
            continue
        if kind == "customer":
            consent = draw(st.booleans())
            change = c.customer(customer(customer_id, marketing_consent=consent), at=t,
                                customer_id=customer_id)  # fmt: skip
        elif kind == "delete":
            change = c.quote(None, quote_id=quote_id, customer_id=customer_id, at=t)
        else:
            status = draw(st.sampled_from(STATUSES))
            created = draw(st.sampled_from([t, t - DAY, T0 + quote_id]))
            change = c.quote(quote(quote_id, customer_id=customer_id, status=status, at=t,
                                   created=created))  # fmt: skip
        changes.append(change)
        items.append(change)
    items.append(t + 40 * DAY)
    return items


def drive(history: list[Change | int], run: EventTimeRun | None = None) -> list[Output]:
    run = EventTimeRun(RULES) if run is None else run
    outputs: list[Output] = []
    for item in history:
        outputs.extend(run.advance(item) if isinstance(item, int) else run.apply(item))
    return outputs


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_it_decides_what_the_reference_decides(history: list[Change | int]) -> None:
    _, expected = run_in_event_time(history, RULES)
    assert sorted(map(_key, drive(history))) == sorted(map(_key, expected))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=long_histories())
def test_forgetting_only_when_something_is_old_enough_changes_nothing(
    history: list[Change | int],
) -> None:
    """The run skips forgetting while nothing can be past the horizon: the same states
    and outputs as forgetting after every step.

    (Not compared with the reference here: over months, *when* a customer is stepped
    decides when a quote that left is forgotten, and the reference steps every customer
    at every watermark where this run, like the live processor, steps those that change
    or fall due. A quote id that comes back after its memory is gone then differs.)"""
    lazy, eager = EventTimeRun(RULES), EagerRun(RULES)
    assert drive(history, lazy) == drive(history, eager)
    assert lazy.states == eager.states


def test_a_decided_quote_is_forgotten_past_the_horizon() -> None:
    c = Clock()
    run = EventTimeRun(RULES)
    run.apply(c.customer(customer(7), at=T0, customer_id=7))
    run.apply(c.quote(quote(1, at=T0)))
    assert [type(o) for o in run.advance(T0 + 31 * MINUTE)] == [Trigger]
    assert run.states[7].quotes[1].decided  # kept for a late sale
    run.advance(T0 + 40 * DAY)  # nothing due: the customer is not stepped
    run.apply(c.customer(customer(7), at=T0 + 40 * DAY, customer_id=7))
    assert 1 not in run.states[7].quotes and run.states[7].left[1].decided


def test_a_quote_is_decided_once_the_watermark_is_past_its_due_time() -> None:
    c = Clock()
    run = EventTimeRun(RULES)
    assert run.apply(c.customer(customer(7), at=T0, customer_id=7)) == ()
    assert run.apply(c.quote(quote(1, at=T0))) == ()
    due = T0 + 30 * MINUTE
    assert run.advance(due) == ()  # at the due time: a commit in that millisecond may follow
    fired = run.advance(due + 1)
    assert [type(o) for o in fired] == [Trigger]
    assert isinstance(fired[0], Trigger) and fired[0].fire_ms == due + 1
    assert run.advance(due + 1) == () and run.advance(due) == ()  # never back, never twice
