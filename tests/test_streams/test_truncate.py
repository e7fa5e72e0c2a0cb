"""TRUNCATE in the detection core (issue 15 item 11): what a truncated table means.

A ``TRUNCATE quotes`` closes every open quote the truncate is newer than, for
good (undecided ones with a SUPPRESSED decision saying so); a ``TRUNCATE
customers`` forgets the customer rows it is newer than, so nothing is offered
until a row returns. In both, a change older than the truncate that arrives
after it (another partition of the change topic, a redelivery) resurrects
nothing, and a change newer than it that arrived first is kept.
"""

from __future__ import annotations

import pytest

from streams.core.changes import customer_change, quote_changes
from streams.core.detector import CustomerState, Truncations, run_in_event_time, step
from streams.core.items import decode_item, encode_item
from streams.core.model import (
    Change,
    Decision,
    Outcome,
    Output,
    Position,
    TableTruncated,
    Trigger,
)
from streams.core.state_codec import (
    decode_state,
    decode_truncations,
    encode_state,
    encode_truncations,
)

from .core_helpers import MINUTE, T0, Clock, customer, quote, rules

pytestmark = pytest.mark.unit

RULES = rules()
DEADLINE = T0 + 30 * MINUTE
GRACE_END = DEADLINE + RULES.unmatched.grace_minutes * MINUTE
TRUNCATED = "truncated: the quotes table was truncated"


def run(items: list[Change | int]) -> list[Output]:
    return run_in_event_time(items, RULES)[1]


def triggers(outputs: list[Output]) -> list[Trigger]:
    return [o for o in outputs if isinstance(o, Trigger)]


def decisions(outputs: list[Output]) -> list[tuple[int, Outcome, str]]:
    return [(o.quote.quote_id, o.outcome, o.reason) for o in outputs if isinstance(o, Decision)]


def truncate(c: Clock, table: str, at: int = T0 + MINUTE) -> TableTruncated:
    c.lsn += 10
    return TableTruncated(table, Position(c.lsn, at))  # type: ignore[arg-type]


# -- TRUNCATE quotes -----------------------------------------------------------------------
def test_a_quotes_truncate_suppresses_every_open_undecided_quote_and_nothing_fires() -> None:
    c = Clock()
    outputs = run([c.customer(customer()), c.quote(quote(1)), c.quote(quote(2, product="HOME")),
                   truncate(c, "quotes"), DEADLINE + MINUTE, GRACE_END + MINUTE])  # fmt: skip
    assert triggers(outputs) == []
    assert decisions(outputs) == [(1, Outcome.SUPPRESSED, TRUNCATED),
                                  (2, Outcome.SUPPRESSED, TRUNCATED)]  # fmt: skip


def test_a_quotes_truncate_closes_a_decided_quote_without_a_second_decision() -> None:
    c = Clock()
    states, outputs = run_in_event_time(
        [c.customer(customer()), c.quote(quote(1)), DEADLINE + 1,
         truncate(c, "quotes", at=DEADLINE + 2 * MINUTE)], RULES)  # fmt: skip
    assert len(triggers(outputs)) == 1 and decisions(outputs) == []
    assert states[7].quotes == {} and states[7].left[1].decided


def test_a_quote_reinserted_after_a_truncate_is_never_offered_again() -> None:
    """TRUNCATE then a reload of the same rows (a restore) must not mail their customers."""
    c = Clock()
    outputs = run([c.customer(customer()), c.quote(quote(1)), truncate(c, "quotes"),
                   c.quote(quote(1)), DEADLINE + MINUTE])  # fmt: skip
    assert triggers(outputs) == [] and decisions(outputs) == [(1, Outcome.SUPPRESSED, TRUNCATED)]


def test_quote_changes_older_than_the_truncate_that_arrive_after_it_are_decided_alike() -> None:
    """From another partition of the quotes topic: committed before the truncate, read after.
    A quote the truncate would have closed gets the same decision, whatever the read order
    (seen end to end: the processor test lost quote 31's decision when it was read late)."""
    c = Clock()
    early_new = c.quote(quote(2))  # a quote the customer's state has never seen
    early_update = c.quote(quote(1, at=T0 + 1))
    outputs = run([c.customer(customer()), c.quote(quote(1)), truncate(c, "quotes"),
                   early_new, early_update, DEADLINE + MINUTE])  # fmt: skip
    assert triggers(outputs) == []
    assert decisions(outputs) == [(1, Outcome.SUPPRESSED, TRUNCATED),
                                  (2, Outcome.SUPPRESSED, TRUNCATED)]  # fmt: skip


def test_a_quote_newer_than_the_truncate_that_arrived_first_stays_and_fires() -> None:
    c = Clock()
    trunc = truncate(c, "quotes")
    outputs = run([c.customer(customer()), c.quote(quote(3)), trunc, DEADLINE + MINUTE])
    assert [t.quote.quote_id for t in triggers(outputs)] == [3] and decisions(outputs) == []


def test_a_quotes_truncate_reaches_a_customer_the_partition_had_no_state_for() -> None:
    """Customer 8 had no state when the truncate went by: their older quote stays out."""
    c = Clock()
    old_quote = c.quote(quote(5, customer_id=8))
    outputs = run([c.customer(customer()), truncate(c, "quotes"), c.customer(customer(8)),
                   old_quote, DEADLINE + MINUTE])  # fmt: skip
    assert triggers(outputs) == [] and decisions(outputs) == [(5, Outcome.SUPPRESSED, TRUNCATED)]


# -- TRUNCATE customers --------------------------------------------------------------------
def test_a_customers_truncate_offers_nothing_and_the_quote_becomes_unmatched() -> None:
    c = Clock()
    outputs = run([c.customer(customer()), c.quote(quote(1)), truncate(c, "customers"),
                   DEADLINE + MINUTE, GRACE_END + MINUTE])  # fmt: skip
    assert triggers(outputs) == []
    assert [(q, o) for q, o, _ in decisions(outputs)] == [(1, Outcome.UNMATCHED)]


def test_an_old_customer_row_arriving_after_the_truncate_does_not_bring_consent_back() -> None:
    c = Clock()
    early_row = c.customer(customer(marketing_consent=True))
    outputs = run([c.customer(customer()), c.quote(quote(1)), truncate(c, "customers"),
                   early_row, DEADLINE + MINUTE, GRACE_END + MINUTE])  # fmt: skip
    assert triggers(outputs) == [] and decisions(outputs)[0][1] is Outcome.UNMATCHED


def test_the_row_returning_after_a_customers_truncate_is_used() -> None:
    c = Clock()
    outputs = run([c.customer(customer()), c.quote(quote(1)), truncate(c, "customers"),
                   c.customer(customer(first_name="Back")), DEADLINE + MINUTE])  # fmt: skip
    (trigger,) = triggers(outputs)
    assert trigger.customer.first_name == "Back"


def test_a_customer_row_newer_than_the_truncate_that_arrived_first_is_kept() -> None:
    c = Clock()
    trunc = truncate(c, "customers")
    outputs = run([c.quote(quote(1)), c.customer(customer()), trunc, DEADLINE + MINUTE])
    assert len(triggers(outputs)) == 1


def test_a_customers_truncate_reaches_a_customer_the_partition_had_no_state_for() -> None:
    c = Clock()
    early_row = c.customer(customer(8))
    outputs = run([c.customer(customer()), truncate(c, "customers"), early_row,
                   c.quote(quote(5, customer_id=8)), DEADLINE + MINUTE,
                   GRACE_END + MINUTE])  # fmt: skip
    assert triggers(outputs) == []
    assert [(q, o) for q, o, _ in decisions(outputs)] == [(5, Outcome.UNMATCHED)]


def test_a_truncate_of_unknown_position_clears_everything_held() -> None:
    """It cannot be ordered: hold rather than send."""
    c = Clock()
    unknown = TableTruncated("customers", Position(0, T0 + MINUTE))
    outputs = run([c.customer(customer()), c.quote(quote(1)), unknown, DEADLINE + MINUTE,
                   GRACE_END + MINUTE])  # fmt: skip
    assert triggers(outputs) == [] and decisions(outputs)[0][1] is Outcome.UNMATCHED


# -- the pieces the drivers use ----------------------------------------------------------
def test_truncations_seed_a_new_state_with_the_latest_truncate_of_each_table() -> None:
    first = Position(100, T0, 90)
    later = Position(200, T0, 190)
    marks = Truncations().after(TableTruncated("quotes", later))
    marks = marks.after(TableTruncated("quotes", first))  # an older one changes nothing
    marks = marks.after(TableTruncated("customers", first))
    assert marks == Truncations(quotes=later, customers=first)
    fresh = marks.fresh(8)
    assert fresh == CustomerState(8, customer_position=first, quotes_truncated=later)
    assert decode_truncations(encode_truncations(marks)) == marks
    assert decode_truncations(None) == Truncations()


def test_step_of_a_truncate_on_an_empty_state_keeps_nothing_worth_storing() -> None:
    result = step(CustomerState(7), TableTruncated("quotes", Position(5, T0)), T0, T0, RULES)
    assert result.outputs == () and result.state.empty


def test_a_truncate_item_and_a_truncated_state_survive_encoding() -> None:
    item = TableTruncated("customers", Position(5, T0, 3))
    assert decode_item(encode_item(item)) == item
    c = Clock()
    states, _ = run_in_event_time([c.customer(customer()), c.quote(quote(1)),
                                   truncate(c, "quotes"), c.quote(quote(2))], RULES)  # fmt: skip
    assert states[7].quotes_truncated is not None
    assert decode_state(encode_state(states[7])) == states[7]


def test_a_t_event_is_a_table_truncate_of_its_topic() -> None:
    source = {"ts_ms": T0, "lsn": 500, "sequence": '["400","500"]'}
    value = {"op": "t", "before": None, "after": None, "source": source}
    assert quote_changes(value) == [TableTruncated("quotes", Position(500, T0, 400))]
    assert customer_change(value) == TableTruncated("customers", Position(500, T0, 400))
