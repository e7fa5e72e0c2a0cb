"""The demo's verdict from observations: outstanding outcomes, surprises, the summary's numbers."""

from __future__ import annotations

import pytest

from devstack.demo.observe import Seen, SeenTrigger
from devstack.demo.plan import Case, Plan
from devstack.demo.summary import (
    outstanding,
    percentile,
    run_deliveries,
    summarize,
    surprises,
)

pytestmark = pytest.mark.unit


def as_planned(plan: Plan, *, deadline_ms: int = 1_000_000) -> tuple[Seen, dict[str, int]]:
    """What a pipeline doing exactly what the plan expects would have written."""
    seen = Seen()
    delivered = {}
    for q in plan.quotes:
        if q.expect.trigger:
            seen.triggers.append(SeenTrigger(f"t-{q.quote_id}", q.quote_id, deadline_ms))
            delivered[f"t-{q.quote_id}"] = 1
        if q.expect.decision:
            seen.decisions.append((q.quote_id, q.expect.decision, f"{q.case.value}"))
    return seen, delivered


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) is None
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0


def test_nothing_is_outstanding_once_every_expected_outcome_is_visible(plan: Plan) -> None:
    seen, delivered = as_planned(plan)
    assert outstanding(plan, seen, delivered) == []
    assert surprises(plan, seen) == []


def test_an_offer_triggered_but_not_yet_delivered_is_outstanding(plan: Plan) -> None:
    seen, delivered = as_planned(plan)
    offered = next(q for q in plan.quotes if q.case is Case.ABANDONED)
    delivered[f"t-{offered.quote_id}"] = 0
    assert outstanding(plan, seen, delivered) == [offered]


def test_a_missing_decision_is_outstanding(plan: Plan) -> None:
    seen, delivered = as_planned(plan)
    holdout = next(q for q in plan.quotes if q.case is Case.HOLDOUT)
    seen.decisions = [d for d in seen.decisions if d[0] != holdout.quote_id]
    assert outstanding(plan, seen, delivered) == [holdout]


def test_an_offer_the_plan_did_not_expect_is_a_surprise(plan: Plan) -> None:
    seen, _ = as_planned(plan)
    accepted = next(q for q in plan.quotes if q.case is Case.ACCEPTED_IN_TIME)
    seen.triggers.append(SeenTrigger("t-x", accepted.quote_id, 0))
    (line,) = surprises(plan, seen)
    assert f"quote {accepted.quote_id}" in line and "got 1 offer(s)" in line


def test_a_trigger_written_twice_is_a_surprise_and_counts_twice(plan: Plan) -> None:
    seen, delivered = as_planned(plan)
    seen.triggers.append(seen.triggers[0])
    assert len(surprises(plan, seen)) == 1
    summary = summarize(run="r", plan=plan, seen=seen, delivered=delivered, received_ms={},
                        seconds=1.0, logs="/logs")  # fmt: skip
    assert summary.triggered == len(seen.triggers)
    assert not summary.ok  # delivered once, triggered twice


def test_the_summary_counts_what_was_seen(plan: Plan) -> None:
    seen, delivered = as_planned(plan, deadline_ms=10_000)
    seen.status = {q.quote_id: "ACCEPTED" for q in plan.quotes[:2]}
    received = {t.trigger_id: 10_000 + 500 * i for i, t in enumerate(seen.triggers)}
    summary = summarize(run="r", plan=plan, seen=seen, delivered=delivered,
                        received_ms=received, seconds=12.3, logs="/logs")  # fmt: skip
    triggers = sum(1 for q in plan.quotes if q.expect.trigger)
    assert summary.quotes == len(plan.quotes)
    assert summary.abandoned == plan.abandoned > 0
    assert summary.triggered == summary.delivered == triggers
    assert summary.accepted == 2
    assert summary.holdout == 1 and summary.unmatched == 1 and summary.converted == 1
    assert sum(summary.suppressed.values()) == sum(
        1 for q in plan.quotes if q.expect.decision == "SUPPRESSED")
    assert summary.held_quiet_hours == plan.count(Case.QUIET_HOURS) == 1
    assert summary.held_zones == (plan.customers_by_id[next(
        q for q in plan.quotes if q.case is Case.QUIET_HOURS).customer_id].timezone,)
    assert summary.deadline_to_esp_p50_ms == 500.0 * ((triggers + 1) // 2 - 1)
    assert summary.deadline_to_esp_p99_ms == 500.0 * (triggers - 1)
    assert summary.ok
    body = summary.as_json()
    for key in ("quotes", "abandoned", "triggered", "holdout", "delivered",
                "deadline_to_esp_p99_ms"):  # fmt: skip
        assert key in body
    assert body["as_planned"] is True
    assert ("logs", "/logs") in summary.rows()


def test_an_undelivered_offer_fails_the_verdict(plan: Plan) -> None:
    seen, delivered = as_planned(plan)
    delivered.popitem()
    summary = summarize(run="r", plan=plan, seen=seen, delivered=delivered, received_ms={},
                        seconds=1.0, logs="/logs")  # fmt: skip
    assert summary.delivered == summary.triggered - 1
    assert not summary.ok
    assert summary.deadline_to_esp_p99_ms is None


def test_a_resumed_run_counts_both_sandboxes_and_only_its_own_triggers() -> None:
    sandbox = {"t-1": 1, "t-2": 1, "foreign": 1}
    earlier = {"t-3": 1, "t-2": 1}  # t-2 twice: once per sandbox is two e-mails
    assert run_deliveries(sandbox, earlier, {"t-1", "t-2", "t-3"}) == {
        "t-1": 1, "t-2": 2, "t-3": 1}
    assert run_deliveries(sandbox, {}, {"t-1"}) == {"t-1": 1}
