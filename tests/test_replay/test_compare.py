"""What-if verdicts: each kind of difference, online, and what is not a difference."""

from __future__ import annotations

import pytest

from streams.core.ids import new_decision
from streams.core.model import Offer, Outcome, Output, Trigger
from streams.replay.compare import Comparison, Verdict, differ
from tests.test_streams.core_helpers import T0, customer, quote, rules

pytestmark = pytest.mark.unit

RULES = rules()


def trigger(quote_id: int, offer: str = "TEN", at: int = T0) -> Trigger:
    q = quote(quote_id)
    return Trigger(f"t{quote_id}", q, customer(), Offer(offer, "", None, "t", "s"), T0, at, at,
                   "v")  # fmt: skip


def decision(quote_id: int, outcome: Outcome, reason: str) -> Output:
    return new_decision(quote(quote_id), 7, outcome, reason, T0, RULES)


@pytest.mark.parametrize(("a", "b", "kind"), [
    (Verdict("TRIGGER", T0, offer="X"), None, "only_a"),
    (Verdict("SUPPRESSED", T0, reason="r"), Verdict("TRIGGER", T0, offer="X"), "only_b"),
    (Verdict("TRIGGER", T0, offer="X"), Verdict("TRIGGER", T0, offer="Y"), "offer"),
    (Verdict("TRIGGER", T0, offer="X"), Verdict("TRIGGER", T0 + 1, offer="X"), "send_time"),
    (Verdict("SUPPRESSED", T0, reason="r"), Verdict("SUPPRESSED", T0, reason="q"), "reason"),
    (Verdict("SUPPRESSED", T0, reason="r"), Verdict("HOLDOUT", T0, reason="r"), "reason"),
    (Verdict("TRIGGER", T0, offer="X"), Verdict("TRIGGER", T0, offer="X"), None),
    (Verdict("SUPPRESSED", T0, reason="r"), Verdict("SUPPRESSED", T0 + 5, reason="r"), None),
])  # fmt: skip
def test_kinds(a: Verdict | None, b: Verdict | None, kind: str | None) -> None:
    assert differ(a, b) == kind


def test_online_comparison_keeps_the_first_verdict_and_ignores_conversions() -> None:
    comparison = Comparison()
    comparison.add(0, trigger(1, "X"))
    comparison.add(0, decision(1, Outcome.CONVERTED, "sale"))  # attribution: not a choice
    comparison.add(1, trigger(1, "Y"))
    comparison.add(1, trigger(2))
    comparison.add(0, decision(3, Outcome.SUPPRESSED, "no consent"))
    comparison.add(1, decision(3, Outcome.SUPPRESSED, "no consent"))
    found = comparison.finish()
    assert [(d.kind, d.quote_id) for d in found] == [("only_b", 2), ("offer", 1)]
    assert comparison.compared == 3
    assert found[1].as_json()["a"]["offer"] == "X"


def test_a_quote_the_other_side_still_holds_is_a_later_send_not_a_lost_trigger() -> None:
    comparison = Comparison()
    comparison.add(0, trigger(1, "X"))  # A sent; B still waits (quiet hours moved it)
    comparison.add(0, trigger(2, "X"))  # A sent; B holds nothing: B never sends it
    found = comparison.finish(lambda side, _customer, quote_id: (
        T0 + 600_000 if side == 1 and quote_id == 1 else None))
    assert [(d.kind, d.quote_id) for d in found] == [("only_a", 2), ("send_time", 1)]
    assert found[1].b == Verdict("DUE", T0 + 600_000)
