"""A quote's way through the funnel: entering, superseded, accepted, leaving.

A quote becomes a candidate when it reaches an offerable status; its deadline
is the moment it did (``updated_at``) plus the delay for its product and
channel. Of one purchase's quotes (:meth:`Rules.same_purchase`) only the newest
is a candidate; a sale closes the purchase's other quotes for good and converts
the ones already offered or held out.

Duplicates and stale changes are dropped by commit position (Debezium's
``source.sequence``), also for quotes that already left (their last position is
remembered), so a change delivered twice never decides twice.
"""

from __future__ import annotations

from streams.core.ids import new_decision
from streams.core.model import Outcome, Output, Position, Quote, QuoteChange
from streams.core.rules import Rules
from streams.core.state import (
    CustomerState,
    Left,
    OpenQuote,
    leave,
    put,
    renewed,
    stale,
    with_quotes,
)
from streams.core.truncation import truncated_before


def apply_quote(
    state: CustomerState, change: QuoteChange, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    """A quote change of this customer: enter, stay in, or leave the funnel."""
    quote_id, position = change.quote_id, change.position
    if stale(position, state.quotes_truncated):  # the row was gone before this was read
        return truncated_before(state, change, rules)
    current = state.quotes.get(quote_id)
    gone = state.left.get(quote_id)
    seen = current or gone
    if stale(position, None if seen is None else seen.position):
        return state, ()
    was_decided = (current is not None and current.decided_ms is not None) or (
        gone is not None and gone.decided
    )
    quote = change.quote
    if quote is None:  # deleted, or moved to another customer
        return leave(state, quote_id, position, was_decided, position.commit_ms), ()
    if rules.is_exit(quote.status):
        outputs: tuple[Output, ...] = ()
        if quote.status == rules.statuses.accepted:
            state, outputs = _accepted(state, quote, position, rules)
        return leave(state, quote_id, position, was_decided, position.commit_ms), outputs
    if not rules.is_offerable(quote.status):
        if current is not None and current.decided_ms is not None:
            return put(state, renewed(current, quote, position)), ()
        return leave(state, quote_id, position, was_decided, position.commit_ms), ()
    # Offerable.
    if was_decided:
        if current is None:  # closed for good, and offerable again: remember, never re-offer
            return leave(state, quote_id, position, True, position.commit_ms), ()
        return put(state, renewed(current, quote, position)), ()
    if current is not None:  # still a candidate: newer row, same deadline
        return put(state, renewed(current, quote, position)), ()
    # The core saw it before, not offerable (a draft): it was quoted now, by this change.
    quoted_ms = quote.updated_ms if gone is not None else quote.created_ms
    return _enter(state, quote, position, quoted_ms, rules), ()


def _accepted(
    state: CustomerState, quote: Quote, position: Position, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    """A sale: the purchase's other candidates close for good (the customer bought), and
    each of its quotes already offered or held out converts, within the attribution
    window of its decision."""
    at_ms = position.commit_ms
    outputs: list[Output] = []
    closing: list[OpenQuote] = []
    for open_quote in state.quotes.values():
        other = open_quote.quote
        if other.quote_id != quote.quote_id and not rules.same_purchase(other, quote):
            continue
        closing.append(open_quote)
        decided_ms = open_quote.decided_ms
        if decided_ms is not None and at_ms - decided_ms <= rules.attribution_ms():
            group = "after the offer" if open_quote.triggered else "in holdout"
            reason = f"accepted {group}, within the {rules.attribution_days}-day attribution window"
            outputs.append(new_decision(open_quote.quote, state.customer_id, Outcome.CONVERTED,
                                     reason, at_ms, rules))  # fmt: skip
    if not closing:
        return state, ()
    quotes = dict(state.quotes)
    left = dict(state.left)
    for open_quote in closing:
        other_id = open_quote.quote.quote_id
        del quotes[other_id]
        left[other_id] = Left(open_quote.position, True, at_ms)
    return with_quotes(state, quotes, left), tuple(outputs)


def _enter(state: CustomerState, quote: Quote, position: Position, quoted_ms: int,
           rules: Rules) -> CustomerState:  # fmt: skip
    """A new candidate. Of one purchase's quotes (:meth:`Rules.same_purchase`) only the
    newest is a candidate: it closes the older undecided ones for good, and one newer
    than a quote of the purchase already in the funnel is closed at once."""
    rank = (quote.created_ms, quote.quote_id)
    rivals = []
    for rival in state.quotes.values():
        if rules.same_purchase(rival.quote, quote):
            if (rival.quote.created_ms, rival.quote.quote_id) > rank:
                return leave(state, quote.quote_id, position, True, position.commit_ms)
            if rival.decided_ms is None:
                rivals.append(rival)
    quotes = dict(state.quotes)
    left = state.left
    if rivals:  # each leaves as it would alone, in one copy of the mappings
        left = dict(left)
        for rival in rivals:
            rival_id = rival.quote.quote_id
            quotes.pop(rival_id, None)
            left[rival_id] = Left(rival.position, True, position.commit_ms)
    deadline = quote.updated_ms + rules.delay_ms(quote.product_code, quote.channel)
    quotes[quote.quote_id] = OpenQuote(quote, position, deadline, deadline, None, False, quoted_ms)
    return with_quotes(state, quotes, left)
