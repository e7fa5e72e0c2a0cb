"""EventTimeRun, the batch drivers' core, decides what the event-time reference decides."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from streams.core.detector import run_in_event_time
from streams.core.event_time import EventTimeRun
from streams.core.model import Change, Output, Trigger

from .core_helpers import MINUTE, T0, Clock, customer, quote
from .test_detector import RULES, _key, histories

pytestmark = pytest.mark.unit


def drive(history: list[Change | int]) -> list[Output]:
    run = EventTimeRun(RULES)
    outputs: list[Output] = []
    for item in history:
        outputs.extend(run.advance(item) if isinstance(item, int) else run.apply(item))
    return outputs


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_it_decides_what_the_reference_decides(history: list[Change | int]) -> None:
    _, expected = run_in_event_time(history, RULES)
    assert sorted(map(_key, drive(history))) == sorted(map(_key, expected))


def test_a_quote_is_decided_once_the_watermark_is_past_its_due_time() -> None:
    c = Clock()
    run = EventTimeRun(RULES)
    assert run.apply(c.customer(customer(7), at=T0, customer_id=7)) == []
    assert run.apply(c.quote(quote(1, at=T0))) == []
    due = T0 + 30 * MINUTE
    assert run.advance(due) == []  # at the due time: a commit in that millisecond may follow
    fired = run.advance(due + 1)
    assert [type(o) for o in fired] == [Trigger]
    assert isinstance(fired[0], Trigger) and fired[0].fire_ms == due + 1
    assert run.advance(due + 1) == [] and run.advance(due) == []  # never back, never twice
