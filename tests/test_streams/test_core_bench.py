"""run_core: the benchmark's combined path decides what stepping each change does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bench.core import run_core
from schemas import examples
from schemas.debezium import zoned_timestamp
from streams.core.changes import customer_change, quote_changes
from streams.core.detector import CustomerState, run_in_event_time, step
from streams.core.model import Change, Decision, Output, Trigger

from .core_helpers import MINUTE, T0, rules

pytestmark = pytest.mark.unit

RULES = rules(frequency_cap={"max_offers": 3, "period_days": 1})


def _at(ms: int) -> str:
    return zoned_timestamp(datetime.fromtimestamp(ms / 1000, UTC))


class Source:
    """Envelopes as the CDC topics carry them, with increasing LSNs."""

    def __init__(self) -> None:
        self.lsn = 1_000

    def _source(self, table: str, at: int) -> dict[str, Any]:
        self.lsn += 10
        db = "qms" if table == "quotes" else "crm"
        return examples.source(table, db, ts_ms=at, lsn=self.lsn)

    def quote(self, quote_id: int, customer_id: int, at: int, status: str = "QUOTED", *,
              op: str = "c", before: dict[str, Any] | None = None,
              product: str = "MOTOR-COMP") -> dict[str, Any]:  # fmt: skip
        row = examples.quote_value(
            quote_id=quote_id, quote_ref=f"Q-{quote_id}", customer_id=customer_id,
            product_code=product, status=status, premium=Decimal("456.00"),
            created_at=_at(T0 + quote_id), updated_at=_at(at),
        )  # fmt: skip
        after = None if op == "d" else row
        return examples.envelope(op, before if op != "d" else row, after,
                                 self._source("quotes", at))  # fmt: skip

    def customer(self, customer_id: int, at: int, **row: Any) -> dict[str, Any]:
        value = examples.customer_value(customer_id=customer_id, **row)
        return examples.envelope("u", None, value, self._source("customers", at))


def workload() -> list[dict[str, Any] | None]:
    """Four customers: offered, suppressed (no consent), converted, superseded and moved."""
    s = Source()
    return [
        s.customer(1, T0),
        s.customer(2, T0, marketing_consent=False),
        s.customer(3, T0, email=None),
        s.quote(10, 1, T0 + MINUTE),
        s.quote(20, 2, T0 + MINUTE),
        s.quote(30, 3, T0 + 2 * MINUTE),
        s.quote(11, 1, T0 + 3 * MINUTE, product="HOME-BUILDINGS"),
        s.quote(12, 1, T0 + 4 * MINUTE, product="HOME-BUILDINGS"),  # supersedes 11
        None,  # a tombstone
        s.quote(40, 4, T0 + 5 * MINUTE, product="TRAVEL"),
        s.quote(40, 1, T0 + 6 * MINUTE, op="u", product="TRAVEL",
                before=examples.quote_value(quote_id=40, customer_id=4)),  # moved to 1
        s.quote(20, 2, T0 + 7 * MINUTE, "DECLINED", op="u"),
        s.customer(1, T0 + 60 * MINUTE),  # after the deadlines: customer 1 is decided
        s.customer(3, T0 + 61 * MINUTE),
        s.quote(10, 1, T0 + 62 * MINUTE, "ACCEPTED", op="u"),  # a conversion
        s.quote(40, 1, T0 + 90 * MINUTE, "DECLINED", op="d"),
        s.customer(4, T0 + 91 * MINUTE),
    ]


def changes_of(envelopes: list[dict[str, Any] | None]) -> list[Change]:
    found: list[Change] = []
    for envelope in envelopes:
        if envelope is None:
            continue
        if envelope["source"]["table"] == "customers":
            change = customer_change(envelope)
            assert change is not None
            found.append(change)
        else:
            found.extend(quote_changes(envelope))
    return found


def test_run_core_is_the_changes_stepped_one_by_one() -> None:
    envelopes = workload()
    run = run_core(envelopes, RULES)

    # Each change at the watermark before it, then every customer stepped at its commit time.
    states: dict[int, CustomerState] = {}
    outputs: list[Output] = []
    watermark = 0
    for change in changes_of(envelopes):
        state = states.get(change.customer_id) or CustomerState(change.customer_id)
        result = step(state, change, watermark, watermark, RULES)
        states[change.customer_id] = result.state
        outputs.extend(result.outputs)
        if change.position.commit_ms > watermark:
            watermark = change.position.commit_ms
            for customer_id in states:
                result = step(states[customer_id], None, watermark, watermark, RULES)
                states[customer_id] = result.state
                outputs.extend(result.outputs)

    assert run.events == len(envelopes) and run.changes == len(changes_of(envelopes)) == 17
    assert sorted(map(repr, run.outputs)) == sorted(map(repr, outputs))
    assert dict(run.states) == states
    triggers = [o for o in run.outputs if isinstance(o, Trigger)]
    decisions = sorted((o.quote.quote_id, o.outcome.value) for o in run.outputs
                       if isinstance(o, Decision))  # fmt: skip
    assert sorted(t.quote.quote_id for t in triggers) == [10, 12, 40]
    assert decisions == [(10, "CONVERTED"), (30, "SUPPRESSED")]


def test_run_core_decides_what_the_event_time_reference_decides() -> None:
    envelopes = workload()
    items: list[Change | int] = []
    for change in changes_of(envelopes):
        items += [change, change.position.commit_ms]

    def key(output: Output) -> tuple[Any, ...]:
        if isinstance(output, Trigger):
            return ("trigger", output.trigger_id, output.fire_ms)
        return ("decision", output.decision_id, output.decided_ms, output.reason)

    expected = sorted(key(o) for o in run_in_event_time(items, RULES)[1])
    assert sorted(key(o) for o in run_core(envelopes, RULES).outputs) == expected
