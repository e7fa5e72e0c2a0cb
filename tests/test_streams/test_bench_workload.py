"""The streams benchmark's input: what it writes is what the processor will see."""

from __future__ import annotations

import pytest

from bench import workload as wl
from streams.core.detector import next_due
from streams.core.model import QuoteChange
from streams.core.rules import Rules

pytestmark = pytest.mark.unit

T0 = 1_795_428_000_000


def _rules() -> Rules:
    import tomllib

    return Rules.model_validate(tomllib.loads(wl.RULES_TOML.format(delay_minutes=1)))


def test_the_workload_creates_four_quotes_and_accepts_one_in_every_five_events() -> None:
    work = wl.workload(1_000, 250, start_ms=T0)
    assert len(work.customers) == 250 and len(work.quotes) == 1_000
    changes = wl.decoded_changes(work.quotes)
    statuses = [c.quote.status for c in changes if isinstance(c, QuoteChange) and c.quote]
    assert statuses.count("QUOTED") == 800 and statuses.count("ACCEPTED") == 200
    # Every accepted quote was created before, for the same customer.
    quoted = [c for c in changes if isinstance(c, QuoteChange) and c.quote is not None
              and c.quote.status == "QUOTED"]  # fmt: skip
    created = {c.quote_id: c.customer_id for c in quoted}
    for change in changes:
        if isinstance(change, QuoteChange) and change.quote and change.quote.status == "ACCEPTED":
            assert created[change.quote_id] == change.customer_id
    # Commit times and LSNs only grow: the events are in source order.
    positions = [c.position for c in changes]
    assert positions == sorted(positions, key=lambda p: (p.commit_ms, p.lsn))


def test_seeded_states_hold_exactly_the_open_quotes_asked_for_due_after_the_delay() -> None:
    rules = _rules()
    states = list(wl.open_states(10, rules, updated_ms=T0))
    assert len(states) == wl.customers_for(10) == 3
    assert sum(len(s.quotes) for s in states) == 10
    assert all(s.customer is not None for s in states)
    assert {next_due(s) for s in states} == {T0 + 60_000}
