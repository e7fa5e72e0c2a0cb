"""TRUNCATE of a source table in the core: what it removes, and the memory of it.

A TRUNCATE (:class:`~streams.core.model.TableTruncated`) reaches every customer
and removes what it is newer than: open quotes close for good (undecided ones
with a SUPPRESSED decision that says so: the rows are gone, so the core cannot
know the quote was not accepted), customer rows are forgotten so nothing is
offered until a row returns. Its position is remembered (the quotes one in the
state, the customers one as the row's position), so a change older than the
truncate read after it — from another partition of the change topic — brings
nothing back; :class:`Truncations` gives a customer with no state yet the same
memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.core.ids import new_decision
from streams.core.model import Outcome, Output, Position, QuoteChange, TableTruncated
from streams.core.rules import Rules
from streams.core.state import CustomerState, Left, leave

TRUNCATED_QUOTES = "truncated: the quotes table was truncated"


def _older(position: Position, truncate: Position) -> bool:
    """Did the truncate remove what ``position`` wrote? Yes if it committed before it; a
    truncate that cannot be ordered removes everything (hold rather than send)."""
    return not truncate.known or position.order < truncate.order


def _newest(seen: Position | None, position: Position) -> Position:
    return position if seen is None or seen.order < position.order else seen


def truncated_before(
    state: CustomerState, change: QuoteChange, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    """A change the quotes truncate removed, read after it (from another partition of the
    topic): a candidate the state never saw gets the decision the truncate gave the others,
    so the outcome does not depend on the read order; anything else is dropped."""
    quote, quote_id = change.quote, change.quote_id
    if (quote is None or not rules.is_offerable(quote.status) or quote_id in state.quotes
            or quote_id in state.left):  # fmt: skip
        return state, ()
    truncate = state.quotes_truncated
    assert truncate is not None  # the caller found the change stale against it
    decision = new_decision(quote, state.customer_id, Outcome.SUPPRESSED, TRUNCATED_QUOTES,
                         truncate.commit_ms, rules)  # fmt: skip
    return leave(state, quote_id, change.position, True, truncate.commit_ms), (decision,)


def apply_truncate(
    state: CustomerState, change: TableTruncated, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    """A table of the source was truncated: remove what it removed, remember when."""
    at = change.position
    if change.table == "customers":
        if state.customer_position is not None and not _older(state.customer_position, at):
            return state, ()  # a row written after the truncate, read before it
        updated = CustomerState(state.customer_id, None, _newest(state.customer_position, at),
                                state.quotes, state.left, state.offers_ms, state.queue,
                                state.quotes_truncated)  # fmt: skip
        return updated, ()
    outputs: list[Output] = []
    quotes = dict(state.quotes)
    left = dict(state.left)
    for quote_id, open_quote in state.quotes.items():
        if not _older(open_quote.position, at):
            continue  # written after the truncate, read before it
        del quotes[quote_id]
        left[quote_id] = Left(_newest(open_quote.position, at), True, at.commit_ms)
        if open_quote.decided_ms is None:  # its fate is unknowable now: never offered
            outputs.append(new_decision(open_quote.quote, state.customer_id, Outcome.SUPPRESSED,
                                     TRUNCATED_QUOTES, at.commit_ms, rules))  # fmt: skip
    updated = CustomerState(state.customer_id, state.customer, state.customer_position, quotes,
                            left, state.offers_ms, state.queue,
                            _newest(state.quotes_truncated, at))  # fmt: skip
    return updated, tuple(outputs)


@dataclass(frozen=True, slots=True)
class Truncations:
    """The newest truncate of each table a driver has seen (per partition, live).

    A customer's state remembers the truncates it was given; one with no state when a
    truncate went by (or whose empty state was dropped) starts from :meth:`fresh`, so
    an older change of theirs read after the truncate is as stale as for any other.
    """

    quotes: Position | None = None
    customers: Position | None = None

    def after(self, change: TableTruncated) -> Truncations:
        if change.table == "quotes":
            return Truncations(_newest(self.quotes, change.position), self.customers)
        return Truncations(self.quotes, _newest(self.customers, change.position))

    def fresh(self, customer_id: int) -> CustomerState:
        return CustomerState(customer_id, customer_position=self.customers,
                             quotes_truncated=self.quotes)  # fmt: skip
