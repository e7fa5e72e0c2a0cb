"""The detection core's safety rules (issue 15): old quotes, ordering by commit position,
late consent, night, supersession, frequency caps, and a holdout that measures uplift.

Each test is a scenario in which an earlier core sent a wrong offer or none.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal

import pytest

from streams.core.changes import quote_changes
from streams.core.detector import CustomerState, run_in_event_time, step
from streams.core.model import (
    Change,
    CustomerChange,
    Decision,
    Outcome,
    Output,
    Position,
    QuoteChange,
    Trigger,
)
from streams.core.rules import Rules

from .core_helpers import MINUTE, T0, Clock, customer, quote, rules

pytestmark = pytest.mark.unit

DAY = 24 * 60 * MINUTE
RULES = rules()
DEADLINE = T0 + 30 * MINUTE


def triggers(outputs: Iterable[Output]) -> list[Trigger]:
    return [o for o in outputs if isinstance(o, Trigger)]


def decisions(outputs: Iterable[Output]) -> list[Decision]:
    return [o for o in outputs if isinstance(o, Decision)]


def drive(states: dict[int, CustomerState], items: Iterable[Change | int], rule_set: Rules,
          *, now: int | None = None) -> list[Output]:  # fmt: skip
    """Like run_in_event_time, on states kept by the caller (so rules can change midway);
    ``now`` pins the clock (live: the wall clock ahead of the watermark)."""
    outputs: list[Output] = []
    watermark = 0
    for item in items:
        if isinstance(item, int):
            watermark = max(watermark, item)
            for customer_id in sorted(states):
                result = step(states[customer_id], None, now or watermark, watermark, rule_set)
                states[customer_id] = result.state
                outputs.extend(result.outputs)
            continue
        state = states.get(item.customer_id) or CustomerState(item.customer_id)
        result = step(state, item, now or watermark, watermark, rule_set)
        states[item.customer_id] = result.state
        outputs.extend(result.outputs)
    return outputs


# -- 1. maximum quote age ----------------------------------------------------------------


def test_a_first_deployment_snapshot_never_offers_a_two_year_old_quote() -> None:
    c = Clock()
    old = quote(1, at=T0 - 730 * DAY)
    outputs = run_in_event_time([c.customer(customer()), c.quote(old, at=T0), T0 + 1], RULES)[1]
    assert triggers(outputs) == []
    (decision,) = decisions(outputs)
    assert decision.outcome is Outcome.SUPPRESSED and decision.reason.startswith("too_old")
    assert "30 day" in decision.reason


def test_a_quote_within_the_maximum_age_is_still_offered() -> None:
    c = Clock()
    recent = quote(1, at=T0 - 29 * DAY)
    outputs = run_in_event_time([c.customer(customer()), c.quote(recent, at=T0), T0 + 1], RULES)[1]
    assert len(triggers(outputs)) == 1


def test_the_maximum_age_is_a_rule() -> None:
    c = Clock()
    week_old = quote(1, at=T0 - 8 * DAY)
    strict = rules(max_quote_age_days=7)
    outputs = run_in_event_time([c.customer(customer()), c.quote(week_old, at=T0), T0 + 1],
                                strict)[1]  # fmt: skip
    assert triggers(outputs) == [] and decisions(outputs)[0].reason.startswith("too_old")


def test_a_draft_quoted_today_counts_from_its_quoting_not_its_creation() -> None:
    """The core saw it enter QUOTED: its age runs from then."""
    c = Clock()
    draft = quote(1, status="DRAFT", at=T0 - 40 * DAY)
    quoted = quote(1, at=T0, created=T0 - 40 * DAY)
    outputs = run_in_event_time(
        [c.customer(customer()), c.quote(draft), c.quote(quoted), DEADLINE + 1], RULES
    )[1]
    assert len(triggers(outputs)) == 1


def test_a_still_quoted_row_the_core_forgot_is_never_offered_again_under_new_rules() -> None:
    """Offered; its decision forgotten after 30 days, its position 30 days later; then an
    edit of the still-QUOTED row, under a new rules version."""
    c = Clock()
    states: dict[int, CustomerState] = {}
    first = drive(states, [c.customer(customer()), c.quote(quote()), DEADLINE + 1,
                           T0 + 31 * DAY], RULES)  # fmt: skip
    assert len(triggers(first)) == 1
    later = T0 + 62 * DAY
    edited = quote(premium="400.00", at=later, created=T0)
    second = drive(states, [later, c.quote(edited), later + DAY], rules(version="test-2"))
    assert triggers(second) == []
    assert [d.reason.split(":")[0] for d in decisions(second)] == ["too_old"]


# -- 3. order by commit position, not by the change's LSN ---------------------------------


def test_a_change_written_before_a_snapshot_row_but_committed_after_it_wins() -> None:
    """The snapshot read the row at the chunk's high watermark (sequence [c_hw, hw]); an
    acceptance written before hw (a lower LSN) committed after it (a higher last commit)."""
    snapshot_row = QuoteChange(7, 1, quote(), Position(5_000, T0, 4_000))
    accepted = QuoteChange(7, 1, quote(status="ACCEPTED", at=T0 + MINUTE),
                           Position(4_500, T0 + MINUTE, 5_100))  # fmt: skip
    c = Clock()
    outputs = run_in_event_time(
        [c.customer(customer()), snapshot_row, accepted, DEADLINE + MINUTE], RULES
    )[1]
    assert outputs == []


def test_a_consent_withdrawal_committed_after_a_snapshot_row_wins() -> None:
    snapshot_row = CustomerChange(7, customer(), Position(5_000, T0, 4_000))
    withdrawn = CustomerChange(7, customer(marketing_consent=False),
                               Position(4_500, T0 + MINUTE, 5_100))  # fmt: skip
    c = Clock()
    outputs = run_in_event_time([snapshot_row, withdrawn, c.quote(quote()), DEADLINE + 1],
                                RULES)[1]  # fmt: skip
    assert triggers(outputs) == []
    assert [d.reason for d in decisions(outputs)] == ["no marketing consent"]


def test_redelivered_changes_are_still_dropped_by_commit_position() -> None:
    c = Clock()
    offered = QuoteChange(7, 1, quote(), Position(200, T0, 100))
    accepted = QuoteChange(7, 1, quote(status="ACCEPTED", at=DEADLINE + DAY),
                           Position(300, DEADLINE + DAY, 250))  # fmt: skip
    once = run_in_event_time([c.customer(customer()), offered, DEADLINE + 1, accepted,
                              DEADLINE + 2 * DAY], RULES)[1]  # fmt: skip
    again = run_in_event_time([c.customer(customer()), offered, DEADLINE + 1, accepted, offered,
                               accepted, DEADLINE + 2 * DAY], RULES)[1]  # fmt: skip
    assert once == again and len(triggers(once)) == 1


def _envelope(op: str, status: str, sequence: str | None, lsn: int) -> dict[str, object]:
    row = {
        "quote_id": 1, "quote_ref": "Q-1", "customer_id": 7, "product_code": "MOTOR-COMP",
        "channel": "WEB", "premium": Decimal("456.00"), "currency": "GBP", "status": status,
        "created_at": "2026-11-23T10:00:00.000000Z", "updated_at": "2026-11-23T10:00:00.000000Z",
    }  # fmt: skip
    source = {"ts_ms": T0, "lsn": lsn, "sequence": sequence, "snapshot": "false"}
    return {"op": op, "before": None, "after": row, "source": source}


def test_change_events_are_ordered_by_their_sequence() -> None:
    (row,) = quote_changes(_envelope("r", "QUOTED", '["4000","5000"]', 5_000))
    (accepted,) = quote_changes(_envelope("u", "ACCEPTED", '["5100","4500"]', 4_500))
    (first,) = quote_changes(_envelope("c", "QUOTED", '[null,"42"]', 42))
    assert row.position.order < accepted.position.order
    assert first.position.order < row.position.order
    c = Clock()
    outputs = run_in_event_time([c.customer(customer()), row, accepted, DEADLINE + 1], RULES)[1]
    assert outputs == []


# -- 4. decide with everything known when the decision is made ----------------------------


def test_a_consent_withdrawal_read_before_the_decision_wins() -> None:
    """Withdrawn 1 s after the due time, read before the watermark passed it."""
    c = Clock()
    hello, offered = c.customer(customer()), c.quote(quote())
    withdrawn = c.customer(customer(marketing_consent=False), at=DEADLINE + 1_000)
    outputs = run_in_event_time([hello, offered, withdrawn, DEADLINE + 2_000], RULES)[1]
    assert triggers(outputs) == []
    assert [d.reason for d in decisions(outputs)] == ["no marketing consent"]


def test_an_address_changed_before_the_decision_is_the_one_used() -> None:
    c = Clock()
    hello, offered = c.customer(customer()), c.quote(quote())
    moved = c.customer(customer(email="ada@new.example.com"), at=DEADLINE + 1_000)
    outputs = run_in_event_time([hello, offered, moved, DEADLINE + 2_000], RULES)[1]
    (trigger,) = triggers(outputs)
    assert trigger.customer.email == "ada@new.example.com"


def test_an_acceptance_after_the_deadline_read_before_the_decision_gets_no_offer() -> None:
    c = Clock()
    hello, offered = c.customer(customer()), c.quote(quote())
    accepted = c.quote(quote(status="ACCEPTED", at=DEADLINE + MINUTE))
    outputs = run_in_event_time([hello, offered, accepted, DEADLINE + 2 * MINUTE], RULES)[1]
    assert outputs == []


# -- 5. quiet hours when the e-mail goes out ----------------------------------------------


def test_a_catch_up_after_a_stall_waits_for_the_morning() -> None:
    """Due at 14:00 in London; the watermark stalled until 02:30: the offer waits until 08:00."""
    quiet = rules(quiet_hours={"start": "21:00", "end": "08:00"})
    c = Clock()
    two_pm = T0 + 4 * 60 * MINUTE  # 14:00 UTC (London is on UTC in November)
    night = T0 + (16 * 60 + 30) * MINUTE  # 02:30 the next day
    morning = T0 + 22 * 60 * MINUTE  # 08:00 the next day
    states: dict[int, CustomerState] = {}
    early = drive(states, [c.customer(customer()), c.quote(quote(at=two_pm)), night], quiet)
    assert early == []
    later = drive(states, [morning + 1], quiet)
    (trigger,) = triggers(later)
    assert trigger.fire_ms >= morning


def test_live_quiet_hours_follow_the_wall_clock_not_the_due_time() -> None:
    """Live: the watermark is past the 14:00 deadline but the wall clock says 02:30."""
    quiet = rules(quiet_hours={"start": "21:00", "end": "08:00"})
    c = Clock()
    two_pm = T0 + 4 * 60 * MINUTE
    night = T0 + (16 * 60 + 30) * MINUTE
    state = step(CustomerState(7), c.customer(customer()), two_pm, two_pm, quiet).state
    state = step(state, c.quote(quote(at=two_pm)), two_pm, two_pm, quiet).state
    result = step(state, None, night, two_pm + 31 * MINUTE, quiet)
    assert result.outputs == ()


# -- 6. supersession -------------------------------------------------------------------


def test_a_superseded_quote_never_comes_back_on_a_later_update() -> None:
    c = Clock()
    old = quote(1, at=T0)
    new = quote(2, at=T0 + 10 * MINUTE)
    edited_old = quote(1, at=T0 + 2 * DAY, created=T0, premium="300.00")
    lenient = rules(frequency_cap={"max_offers": 5})
    history = [c.customer(customer()), c.quote(old), c.quote(new), T0 + DAY,
               c.quote(edited_old), T0 + 3 * DAY]  # fmt: skip
    outputs = run_in_event_time(history, lenient)[1]
    assert [t.quote.quote_id for t in triggers(outputs)] == [2]


def test_a_sibling_accepted_on_its_first_event_closes_the_group() -> None:
    c = Clock()
    first = quote(1, at=T0)
    accepted_sibling = quote(2, status="ACCEPTED", at=T0 + 10 * MINUTE)
    outputs = run_in_event_time([c.customer(customer()), c.quote(first),
                                 c.quote(accepted_sibling), T0 + DAY], RULES)[1]  # fmt: skip
    assert triggers(outputs) == []


def test_accepting_the_superseded_quote_after_the_offer_converts_the_offer() -> None:
    c = Clock()
    old, new = quote(1, at=T0), quote(2, at=T0 + 10 * MINUTE)
    old_accepted = quote(1, status="ACCEPTED", at=T0 + DAY, created=T0)
    outputs = run_in_event_time([c.customer(customer()), c.quote(old), c.quote(new),
                                 T0 + 2 * 60 * MINUTE, c.quote(old_accepted), T0 + 2 * DAY],
                                RULES)  # fmt: skip
    outs = outputs[1]
    assert [t.quote.quote_id for t in triggers(outs)] == [2]
    (converted,) = decisions(outs)
    assert converted.outcome is Outcome.CONVERTED and converted.quote.quote_id == 2


def test_supersession_is_same_product_within_the_rules_window() -> None:
    c = Clock()
    lenient = {"frequency_cap": {"max_offers": 5}}
    other_product = quote(2, status="ACCEPTED", at=T0 + MINUTE, product="HOME-BUILDINGS")
    history = [c.customer(customer()), c.quote(quote(1)), c.quote(other_product), T0 + DAY]
    outputs = run_in_event_time(history, rules(**lenient))[1]
    assert [t.quote.quote_id for t in triggers(outputs)] == [1]
    # The same product created 40 days apart: not one group (window 30 days by default).
    c = Clock()
    long_ago = quote(2, status="ACCEPTED", at=T0 - 40 * DAY)
    history = [c.customer(customer()), c.quote(quote(1)), c.quote(long_ago, at=T0), T0 + DAY]
    outputs = run_in_event_time(history, rules(**lenient))[1]
    assert [t.quote.quote_id for t in triggers(outputs)] == [1]
    narrow = rules(supersession={"window_days": 1}, **lenient)
    c = Clock()
    outputs = run_in_event_time([c.customer(customer()), c.quote(quote(1, at=T0)),
                                 c.quote(quote(2, at=T0 + 2 * DAY)), T0 + 3 * DAY],
                                narrow)[1]  # fmt: skip
    assert sorted(t.quote.quote_id for t in triggers(outputs)) == [1, 2]


# -- 7. frequency cap whatever the order of due times --------------------------------------


def test_the_frequency_cap_counts_offers_made_later_than_an_old_due_time() -> None:
    """A quote with an old updated_at (snapshot, backfill) is decided after a newer one."""
    c = Clock()
    fresh = quote(1, at=T0, product="MOTOR-COMP")
    old = quote(2, at=T0 - 3 * DAY, product="HOME-BUILDINGS")
    third = quote(3, at=T0 + DAY, product="TRAVEL")
    outputs = run_in_event_time([c.customer(customer()), c.quote(fresh), DEADLINE + 1,
                                 c.quote(old, at=T0 + MINUTE * 40), T0 + 2 * 60 * MINUTE,
                                 c.quote(third), T0 + 2 * DAY], RULES)[1]  # fmt: skip
    assert [t.quote.quote_id for t in triggers(outputs)] == [1]
    capped = [d.quote.quote_id for d in decisions(outputs) if d.reason.startswith("frequency")]
    assert capped == [2, 3]


# -- 16. holdout measures the right population ---------------------------------------------


def test_holdout_is_assigned_only_to_quotes_that_would_have_been_sent() -> None:
    everyone = rules(holdout={"percent": 100}, offers=[
        {"products": ["TRAVEL"], "code": "T", "description": "d", "template_id": "t",
         "subject": "s"}])  # fmt: skip
    c = Clock()
    outputs = run_in_event_time([c.customer(customer()), c.quote(quote()), DEADLINE + 1],
                                everyone)[1]  # fmt: skip
    assert [(d.outcome, d.reason) for d in decisions(outputs)] == [
        (Outcome.SUPPRESSED, "no offer matches the quote")
    ]


def test_conversions_count_within_the_attribution_window_and_say_so() -> None:
    for percent, outcome in ((0, "after the offer"), (100, "in holdout")):
        group = rules(holdout={"percent": percent})
        c = Clock()
        accepted = quote(status="ACCEPTED", at=DEADLINE + 6 * DAY)
        outputs = run_in_event_time([c.customer(customer()), c.quote(quote()), DEADLINE + 1,
                                     c.quote(accepted), DEADLINE + 7 * DAY], group)[1]  # fmt: skip
        converted = [d for d in decisions(outputs) if d.outcome is Outcome.CONVERTED]
        assert len(converted) == 1
        assert outcome in converted[0].reason and "7-day attribution window" in converted[0].reason
        c = Clock()
        late = quote(status="ACCEPTED", at=DEADLINE + 8 * DAY)
        outputs = run_in_event_time([c.customer(customer()), c.quote(quote()), DEADLINE + 1,
                                     c.quote(late), DEADLINE + 9 * DAY], group)[1]  # fmt: skip
        assert [d for d in decisions(outputs) if d.outcome is Outcome.CONVERTED] == []


def test_uplift_computed_from_the_decisions_recovers_the_true_effect() -> None:
    """A population with a known effect: the offer lifts acceptance of MOTOR quotes from
    20% to 35%; HOME quotes (no offer matches) are accepted 60% of the time anyway; a
    second MOTOR quote two days after the first is capped (and never accepted). The uplift
    measured from the decisions (conversion of offered minus conversion of held out) must
    be the effect: both groups hold only quotes that would have been sent."""
    rng = random.Random(15)
    motor_only = rules(holdout={"percent": 50}, offers=[
        {"products": ["MOTOR-COMP"], "code": "M", "description": "d", "template_id": "t",
         "subject": "s"}])  # fmt: skip
    c = Clock()
    first: list[Change | int] = []
    second: list[Change | int] = []
    plan: list[tuple[int, int, str]] = []  # (customer, quote, product) of first quotes
    for customer_id in range(1, 4001):
        first.append(c.customer(customer(customer_id)))
        product = "MOTOR-COMP" if rng.random() < 0.5 else "HOME-BUILDINGS"
        quote_id = customer_id * 10
        first.append(c.quote(quote(quote_id, customer_id=customer_id, at=T0, product=product)))
        plan.append((customer_id, quote_id, product))
        if rng.random() < 0.3:
            again = quote(quote_id + 1, customer_id=customer_id, at=T0 + 2 * DAY)
            second.append(c.quote(again))
    states: dict[int, CustomerState] = {}
    decided = drive(states, [*first, T0 + DAY, *second, T0 + 3 * DAY], motor_only)
    offered = {t.quote.quote_id for t in triggers(decided)}
    held = {d.quote.quote_id for d in decisions(decided) if d.outcome is Outcome.HOLDOUT}
    acceptances: list[Change | int] = []
    for customer_id, qid, product in plan:
        rate = 0.6 if product != "MOTOR-COMP" else 0.35 if qid in offered else 0.2
        if rng.random() < rate:
            acceptances.append(c.quote(quote(qid, customer_id=customer_id, status="ACCEPTED",
                                             at=T0 + 4 * DAY, product=product,
                                             created=T0)))  # fmt: skip
    converted = decisions(drive(states, [*acceptances, T0 + 5 * DAY], motor_only))
    won = {d.quote.quote_id for d in converted if d.outcome is Outcome.CONVERTED}
    uplift = len(won & offered) / len(offered) - len(won & held) / len(held)
    assert len(offered) > 800 and len(held) > 800
    assert abs(uplift - 0.15) < 0.05, uplift


def test_a_recreated_slots_first_changes_are_newer_than_the_old_slots() -> None:
    """A lost slot re-created: its snapshot rows and first transaction carry no last
    commit (Debezium's null); they are newer than everything the old slot wrote."""
    (old_offer,) = quote_changes(_envelope("c", "QUOTED", '["9000","9100"]', 9_100))
    (withdrawn_row,) = quote_changes(_envelope("r", "ACCEPTED", '[null,"50000"]', 50_000))
    (first_txn,) = quote_changes(_envelope("u", "ACCEPTED", '[null,"50200"]', 50_200))
    assert old_offer.position.order < withdrawn_row.position.order
    assert old_offer.position.order < first_txn.position.order
    c = Clock()
    for newer in (withdrawn_row, first_txn):
        outputs = run_in_event_time([c.customer(customer()), old_offer, newer,
                                     DEADLINE + MINUTE], RULES)[1]  # fmt: skip
        assert outputs == []  # accepted: the old slot's QUOTED row is not the truth
