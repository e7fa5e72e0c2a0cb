"""The detection core's state machine: every rule, and properties over random histories."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.detector import (
    CustomerState,
    Step,
    decision_id,
    next_due,
    run_in_event_time,
    step,
    trigger_id,
)
from streams.core.model import Change, Decision, Outcome, Output, QuoteChange, Trigger
from streams.core.rules import Rules

from .core_helpers import MINUTE, T0, Clock, customer, quote, rules

pytestmark = pytest.mark.unit

RULES = rules()
DEADLINE = T0 + 30 * MINUTE


def run(changes: list[Change | int], rule_set: Rules = RULES) -> list[Output]:
    return run_in_event_time(changes, rule_set)[1]


def triggers(outputs: list[Output]) -> list[Trigger]:
    return [o for o in outputs if isinstance(o, Trigger)]


def decisions(outputs: list[Output]) -> list[tuple[Outcome, str]]:
    return [(o.outcome, o.reason) for o in outputs if isinstance(o, Decision)]


def test_an_abandoned_quote_gets_exactly_one_trigger_at_its_deadline() -> None:
    c = Clock()
    assert run([c.customer(customer()), c.quote(quote()), DEADLINE - 1, DEADLINE]) == []
    outputs = run([c.customer(customer()), c.quote(quote()), DEADLINE, DEADLINE + 1])
    (trigger,) = triggers(outputs)
    assert trigger.trigger_id == trigger_id(1, "test-1")
    # Decided when the watermark passed the deadline, with everything read by then.
    assert trigger.deadline_ms == DEADLINE and trigger.fire_ms == DEADLINE + 1
    assert trigger.customer.email == "ada@example.com" and trigger.quote.quote_ref == "Q-1"
    assert trigger.offer.code == "TEN" and trigger.offer.template_id == "t-10"
    assert trigger.watermark_ms == DEADLINE + 1 and trigger.rule_version == "test-1"


@pytest.mark.parametrize("status", ["ACCEPTED", "DECLINED", "EXPIRED"])
def test_a_quote_that_leaves_before_its_deadline_gets_nothing(status: str) -> None:
    c = Clock()
    left = quote(status=status, at=DEADLINE)  # committed exactly at the deadline: in time
    outputs = run([c.customer(customer()), c.quote(quote()), c.quote(left), DEADLINE + MINUTE])
    assert outputs == []


def test_a_deleted_quote_gets_nothing() -> None:
    c = Clock()
    outputs = run(
        [c.customer(customer()), c.quote(quote()),
         c.quote(None, quote_id=1, customer_id=7, at=T0 + MINUTE), DEADLINE]
    )  # fmt: skip
    assert outputs == []


def test_an_acceptance_in_time_but_delivered_late_is_never_offered() -> None:
    """Live: the wall clock is past the deadline, the watermark is not: the trigger waits."""
    c = Clock()
    state = CustomerState(7)
    state = step(state, c.customer(customer()), T0, T0, RULES).state
    state = step(state, c.quote(quote()), T0, T0, RULES).state
    held = step(state, None, DEADLINE + 5 * MINUTE, DEADLINE, RULES)
    assert held.outputs == () and held.held_ms == DEADLINE
    accepted = c.quote(quote(status="ACCEPTED", at=DEADLINE - 2 * MINUTE))
    late = step(held.state, accepted, DEADLINE + 6 * MINUTE, DEADLINE + 6 * MINUTE, RULES)
    assert late.outputs == () and late.held_ms is None and late.state.quotes == {}


def test_a_sale_after_the_deadline_read_before_the_decision_means_no_offer() -> None:
    """Accepted after the deadline but read before the watermark reached it: the decision
    is made with everything known, and the customer bought."""
    c = Clock()
    state = CustomerState(7)
    state = step(state, c.customer(customer()), T0, T0, RULES).state
    state = step(state, c.quote(quote()), T0, T0, RULES).state
    accepted = c.quote(quote(status="ACCEPTED", at=DEADLINE + MINUTE))
    read = step(state, accepted, DEADLINE + MINUTE, DEADLINE, RULES)
    assert read.outputs == () and read.state.quotes == {}
    done = step(read.state, None, DEADLINE + MINUTE, DEADLINE + MINUTE + 1, RULES)
    assert done.outputs == ()


def test_duplicates_and_stale_changes_never_decide_twice() -> None:
    c = Clock()
    offered, accepted = c.quote(quote()), c.quote(quote(status="ACCEPTED", at=DEADLINE + MINUTE))
    hello = c.customer(customer())
    once = run([hello, offered, DEADLINE + 1, accepted, DEADLINE + 2 * MINUTE])
    # The CDC connector redelivers after a crash: same positions, again.
    twice = run([hello, offered, DEADLINE + 1, accepted, hello, offered, accepted, offered,
                 DEADLINE + 2 * MINUTE, DEADLINE + 40 * MINUTE])  # fmt: skip
    assert once == twice and len(triggers(once)) == 1


def test_a_newer_quote_for_the_same_product_supersedes_the_older() -> None:
    c = Clock()
    old = quote(1, at=T0)
    new = quote(2, at=T0 + 10 * MINUTE)
    other = quote(3, at=T0 + 10 * MINUTE, product="HOME-BUILDINGS")
    outputs = run([c.customer(customer()), c.quote(old), c.quote(new), c.quote(other),
                   T0 + 60 * MINUTE], rules(frequency_cap={"max_offers": 5}))  # fmt: skip
    assert sorted(t.quote.quote_id for t in triggers(outputs)) == [2, 3]


def test_an_older_quote_arriving_late_is_superseded_at_once() -> None:
    c = Clock()
    new = quote(2, at=T0 + 10 * MINUTE)
    old = quote(1, at=T0 + 11 * MINUTE, created=T0)  # updated later, created earlier
    outputs = run([c.customer(customer()), c.quote(new), c.quote(old), T0 + 90 * MINUTE])
    assert [t.quote.quote_id for t in triggers(outputs)] == [2]


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        ({"marketing_consent": False}, "no marketing consent"),
        ({"email": None}, "no e-mail address"),
        ({"email": "ada.example.com"}, "invalid e-mail address"),
    ],
)
def test_consent_and_address_are_checked(who: dict[str, Any], reason: str) -> None:
    c = Clock()
    outputs = run([c.customer(customer(**who)), c.quote(quote()), DEADLINE + 1])
    assert decisions(outputs) == [(Outcome.SUPPRESSED, reason)]
    (decision,) = outputs
    assert isinstance(decision, Decision)
    assert decision.decision_id == decision_id(1, "test-1", Outcome.SUPPRESSED)
    assert decision.customer_id == 7


def test_consent_withdrawn_after_the_offer_does_not_unsend() -> None:
    c = Clock()
    hello, offered = c.customer(customer()), c.quote(quote())
    withdrawn = c.customer(customer(marketing_consent=False), at=DEADLINE + MINUTE)
    outputs = run([hello, offered, DEADLINE + 1, withdrawn, DEADLINE + 2 * MINUTE])
    assert len(triggers(outputs)) == 1 and decisions(outputs) == []


def test_a_customer_arriving_within_the_grace_period_gets_the_offer_at_once() -> None:
    """The grace period is how long a quote waits for its customer, not a delay once they
    are there: the offer goes out when the CRM row is read, not 9 minutes later (before,
    fire_ms was the grace period's end)."""
    c = Clock()
    grace_end = DEADLINE + 10 * MINUTE
    outputs = run([c.quote(quote()), DEADLINE + 1, c.customer(customer(), at=DEADLINE + MINUTE),
                   DEADLINE + MINUTE + 1, grace_end + 1])  # fmt: skip
    (trigger,) = triggers(outputs)
    assert trigger.fire_ms <= DEADLINE + MINUTE + 1 and trigger.deadline_ms == DEADLINE


def test_a_customer_that_never_arrives_is_unmatched_after_the_grace_period() -> None:
    c = Clock()
    outputs = run([c.quote(quote()), DEADLINE + 1, DEADLINE + 10 * MINUTE])
    assert outputs == []
    outputs = run([c.quote(quote()), DEADLINE + 10 * MINUTE + 1])
    assert decisions(outputs) == [
        (Outcome.UNMATCHED, "customer not in the CRM within the grace period")
    ]
    assert isinstance(outputs[0], Decision) and outputs[0].customer_id is None


def test_quiet_hours_delay_the_offer_to_the_morning_in_the_customers_time_zone() -> None:
    c = Clock()
    evening = T0 + 12 * 60 * MINUTE  # 22:00 UTC = 23:00 in Berlin (CET)
    quiet = rules(quiet_hours={"start": "21:00", "end": "08:00"})
    berlin = customer(timezone="Europe/Berlin")
    deadline = evening + 30 * MINUTE
    morning = T0 + 21 * 60 * MINUTE  # 07:00 UTC next day = 08:00 in Berlin
    outputs = run([c.customer(berlin), c.quote(quote(at=evening)), deadline + 1, morning], quiet)
    assert outputs == []
    outputs = run([c.customer(berlin), c.quote(quote(at=evening)), morning + 1], quiet)
    (trigger,) = triggers(outputs)
    assert trigger.fire_ms == morning + 1 and trigger.deadline_ms == deadline


def test_the_holdout_group_is_recorded_and_its_conversions_counted() -> None:
    c = Clock()
    everyone = rules(holdout={"percent": 100})
    hello, offered = c.customer(customer()), c.quote(quote())
    accepted = c.quote(quote(status="ACCEPTED", at=DEADLINE + 5 * MINUTE))
    outputs = run([hello, offered, DEADLINE + 1, accepted, DEADLINE + 5 * MINUTE + 1], everyone)
    assert decisions(outputs) == [
        (Outcome.HOLDOUT, "holdout group"),
        (Outcome.CONVERTED, "accepted in holdout, within the 7-day attribution window"),
    ]


def test_the_frequency_cap_counts_offers_in_event_time() -> None:
    c = Clock()
    first = quote(1, at=T0)
    second = quote(2, at=T0 + 2 * 60 * MINUTE, product="HOME-BUILDINGS")
    week_later = quote(3, at=T0 + 7 * 24 * 60 * MINUTE, product="TRAVEL")
    outputs = run([c.customer(customer()), c.quote(first), DEADLINE + 1, c.quote(second),
                   T0 + 3 * 60 * MINUTE, c.quote(week_later),
                   T0 + 8 * 24 * 60 * MINUTE])  # fmt: skip
    assert [t.quote.quote_id for t in triggers(outputs)] == [1, 3]
    assert decisions(outputs) == [(Outcome.SUPPRESSED, "frequency cap: 1 offer(s) in 7 day(s)")]


def test_no_matching_offer_is_a_suppression() -> None:
    c = Clock()
    picky = rules(offers=[{"products": ["TRAVEL"], "code": "T", "description": "d",
                           "template_id": "t", "subject": "s"}])  # fmt: skip
    outputs = run([c.customer(customer()), c.quote(quote()), DEADLINE + 1], picky)
    assert decisions(outputs) == [(Outcome.SUPPRESSED, "no offer matches the quote")]


def test_a_quote_moved_to_another_customer_leaves_the_first() -> None:
    c = Clock()
    first = c.quote(quote())
    leave = c.quote(None, quote_id=1, customer_id=7, at=T0 + MINUTE)
    moved = c.quote(quote(customer_id=8, at=T0 + MINUTE))
    outputs = run([c.customer(customer()), c.customer(customer(8)), first, leave, moved,
                   DEADLINE + MINUTE + 1])  # fmt: skip
    (trigger,) = triggers(outputs)
    assert trigger.customer.customer_id == 8 and trigger.deadline_ms == DEADLINE + MINUTE


def test_next_due_tells_the_driver_when_to_look_again() -> None:
    c = Clock()
    state = step(CustomerState(7), c.quote(quote()), T0, T0, RULES).state
    assert next_due(state) == DEADLINE
    assert next_due(CustomerState(7)) is None


def test_the_state_of_a_customer_with_nothing_left_is_empty() -> None:
    c = Clock()
    result = run_in_event_time([c.quote(quote())], RULES)[0]
    assert not result[7].empty
    assert CustomerState(7).empty


# -- properties over random histories ---------------------------------------------------

STATUSES = ["QUOTED", "QUOTED", "DRAFT", "ACCEPTED", "DECLINED"]


@st.composite
def histories(draw: st.DrawFn) -> list[Change | int]:
    """Random changes of 3 quotes and 2 customers with watermarks, in commit order."""
    c = Clock()
    t = T0
    items: list[Change | int] = []
    for _ in range(draw(st.integers(1, 25))):
        t += draw(st.integers(0, 20)) * MINUTE
        kind = draw(st.sampled_from(["quote", "quote", "quote", "customer", "delete", "tick"]))
        if kind == "tick":
            items.append(t)
            continue
        customer_id = draw(st.sampled_from([7, 8]))
        if kind == "customer":
            consent = draw(st.booleans())
            items.append(c.customer(customer(customer_id, marketing_consent=consent), at=t,
                                    customer_id=customer_id))  # fmt: skip
            continue
        quote_id = draw(st.integers(1, 3))
        if kind == "delete":
            items.append(c.quote(None, quote_id=quote_id, customer_id=customer_id, at=t))
        else:
            status = draw(st.sampled_from(STATUSES))
            product = draw(st.sampled_from(["MOTOR-COMP", "HOME-BUILDINGS"]))
            items.append(c.quote(quote(quote_id, customer_id=customer_id, status=status, at=t,
                                       product=product, created=T0 + quote_id)))  # fmt: skip
    items.append(t + 200 * MINUTE)
    return items


def _key(output: Output) -> tuple[Any, ...]:
    if isinstance(output, Trigger):
        return ("trigger", output.trigger_id, output.fire_ms, output.customer.customer_id)
    return ("decision", output.decision_id, output.decided_ms, output.reason)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_at_most_one_trigger_per_quote_and_customer(history: list[Change | int]) -> None:
    ids = [(t.trigger_id, t.customer.customer_id) for t in triggers(run(history))]
    assert len(ids) == len(set(ids))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_redelivered_changes_change_nothing(
    history: list[Change | int], data: st.DataObject
) -> None:
    """A crashed connector sends a suffix again (same positions), in order."""
    changes = [i for i in history if not isinstance(i, int)]
    if not changes:
        return
    cut = data.draw(st.integers(0, len(history) - 1))
    start = data.draw(st.integers(0, cut))
    again = [i for i in history[start:cut] if not isinstance(i, int)]
    redelivered = history[:cut] + again + history[cut:]
    assert [_key(o) for o in run(redelivered)] == [_key(o) for o in run(history)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_a_live_run_decides_what_the_event_time_run_decides(
    history: list[Change | int], data: st.DataObject
) -> None:
    """Live, the wall clock runs ahead of the watermark by any amount, and the driver
    looks at any moment besides each watermark advance (a marker): the same decisions
    come out (live ones are made as of the wall clock, so only their times differ).

    The wall clock is never behind the watermark (a commit time the source has already
    written): it moves on *after* a marker moved the watermark. (A run that let it lag
    one marker behind decided a due quote only at the next change, with that change
    known, where event time decided it at the marker.)"""
    states: dict[int, CustomerState] = {}
    outputs: list[Output] = []
    watermark = 0
    wall = T0

    def apply(customer_id: int, result: Step) -> None:
        states[customer_id] = result.state
        outputs.extend(result.outputs)

    for item in history:
        marker = isinstance(item, int) and item > watermark
        if marker:
            assert isinstance(item, int)
            watermark = item
        wall = max(wall, watermark) + data.draw(st.integers(0, 90)) * MINUTE
        if isinstance(item, int):
            if marker:  # a marker: the driver looks at its due customers
                for customer_id in sorted(states):
                    apply(customer_id, step(states[customer_id], None, wall, watermark, RULES))
        else:
            state = states.get(item.customer_id) or CustomerState(item.customer_id)
            apply(item.customer_id, step(state, item, wall, watermark, RULES))
        if data.draw(st.booleans()):  # a timer tick on the wall clock
            for customer_id in sorted(states):
                apply(customer_id, step(states[customer_id], None, wall, watermark, RULES))
    for customer_id in sorted(states):  # the end: the watermark caught up
        apply(customer_id, step(states[customer_id], None, watermark, watermark, RULES))

    def decided(outs: list[Output]) -> list[tuple[Any, ...]]:
        return sorted(_key(o)[:2] + _key(o)[3:] for o in outs)

    assert decided(outputs) == decided(run(history))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_no_offer_for_a_quote_that_left_before_its_deadline(history: list[Change | int]) -> None:
    for trigger in triggers(run(history)):
        for item in history:
            if not isinstance(item, QuoteChange) or item.quote_id != trigger.quote.quote_id:
                continue
            left = item.quote is None or item.quote.status in ("ACCEPTED", "DECLINED")
            same_customer = item.customer_id == trigger.customer.customer_id
            in_window = trigger.deadline_ms - 30 * MINUTE < item.position.commit_ms
            if left and same_customer and in_window:
                # A watermark W vouches for commits *before* W: a change committed at
                # exactly W may still come after it, too late for a trigger fired at W.
                assert item.position.commit_ms >= trigger.fire_ms


def test_a_new_rules_version_gives_new_ids() -> None:
    assert trigger_id(1, "v1") != trigger_id(1, "v2")
    assert decision_id(1, "v1", Outcome.HOLDOUT) != decision_id(1, "v1", Outcome.SUPPRESSED)
