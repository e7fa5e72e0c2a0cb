"""A customer's state in the core, and the small immutable edits every step makes to it.

All of a customer's state is one value (:class:`CustomerState`): the customer
row, their open quotes, what was decided for quotes that left, and the times
of the offers they were sent. Quotes and customers are co-partitioned by
customer id, so every event touches exactly one such value; the functions here
build a new one rather than change it (nothing in a state is ever mutated, so
an unchanged mapping is shared between the old state and the new).

What is remembered is bounded in time: a decided quote and the position of a
quote that left are kept for :func:`memory_ms` (the memory horizon), then
:func:`forget` drops them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.core.frozen import fast_init
from streams.core.model import Change, Customer, Position, Quote
from streams.core.rules import Rules

#: How long a decided quote stays open for a late acceptance (a conversion), and how long
#: the position of a quote that left is remembered to drop its redelivered changes (at
#: least; longer when the rules' maximum age or attribution window is longer).
MEMORY_MS = 30 * 86_400_000


def memory_ms(rules: Rules) -> int:
    """The memory horizon: never shorter than the maximum age, so a quote the core forgot
    is too old to be offered again whatever row of it comes back."""
    return max(MEMORY_MS, rules.max_quote_age_ms(), rules.attribution_ms())


@fast_init
@dataclass(frozen=True, slots=True)
class OpenQuote:
    """A quote in the funnel: waiting for its deadline, or decided and awaiting a sale."""

    quote: Quote
    position: Position
    deadline_ms: int
    due_ms: int | None  # when to look at it again; None once decided
    decided_ms: int | None = None  # when it was offered or held out (kept for a late sale)
    triggered: bool = False  # offered (else held out)
    #: When it became offerable, as far as the core knows (the maximum age runs from it):
    #: its ``updated_at`` when the core saw it enter; else (a snapshot row, a quote the
    #: core forgot) its creation, the earliest it can have been quoted.
    quoted_ms: int = 0

    @property
    def decided(self) -> bool:
        return self.decided_ms is not None


@fast_init
@dataclass(frozen=True, slots=True)
class Left:
    """A quote that left the funnel: enough to drop its redelivered changes."""

    position: Position
    #: Closed for good (offered, held out, suppressed, superseded...): never a candidate again.
    decided: bool
    at_ms: int


@fast_init
@dataclass(frozen=True, slots=True)
class CustomerState:
    """Everything the core knows of one customer: their row, quotes and offers sent."""

    customer_id: int
    customer: Customer | None = None
    customer_position: Position | None = None
    quotes: Mapping[int, OpenQuote] = field(default_factory=dict)
    left: Mapping[int, Left] = field(default_factory=dict)
    offers_ms: tuple[int, ...] = ()
    #: Changes an earlier version of the core held back behind a due time (it decided as
    #: of the due time); applied at the next step. Nothing is queued any more.
    queue: tuple[Change, ...] = ()
    #: The newest TRUNCATE of the quotes table applied: quote changes older are dropped.
    quotes_truncated: Position | None = None

    @property
    def empty(self) -> bool:
        """Nothing worth keeping: the driver may delete the key."""
        return self.customer is None and not self.quotes and not self.left and not self.queue


def with_quotes(
    state: CustomerState, quotes: Mapping[int, OpenQuote], left: Mapping[int, Left]
) -> CustomerState:
    """``state`` with other quotes and left ones (the usual change of a step).

    Spelled out rather than ``dataclasses.replace`` or a ``**changes`` helper: those
    were half the core's time. The mappings are never mutated once in a state, so an
    unchanged one is shared, not copied.
    """
    return CustomerState(state.customer_id, state.customer, state.customer_position, quotes,
                         left, state.offers_ms, state.queue,
                         state.quotes_truncated)  # fmt: skip


def with_queue(state: CustomerState, queue: tuple[Change, ...]) -> CustomerState:
    """``state`` with another queue of held-back changes (emptied by the next step)."""
    return CustomerState(state.customer_id, state.customer, state.customer_position,
                         state.quotes, state.left, state.offers_ms, queue,
                         state.quotes_truncated)  # fmt: skip


def renewed(open_quote: OpenQuote, quote: Quote, position: Position) -> OpenQuote:
    """A newer row of a quote in the funnel: its deadline, decision and age stay."""
    return OpenQuote(quote, position, open_quote.deadline_ms, open_quote.due_ms,
                     open_quote.decided_ms, open_quote.triggered,
                     open_quote.quoted_ms)  # fmt: skip


def leave(
    state: CustomerState, quote_id: int, position: Position, decided: bool, at_ms: int
) -> CustomerState:
    """``state`` without the open quote ``quote_id``, remembered as left at ``position``."""
    quotes = state.quotes
    if quote_id in quotes:
        quotes = dict(quotes)
        del quotes[quote_id]
    left = dict(state.left)
    left[quote_id] = Left(position, decided, at_ms)
    return with_quotes(state, quotes, left)


def put(state: CustomerState, open_quote: OpenQuote) -> CustomerState:
    """``state`` with ``open_quote`` added, or replacing its older version."""
    quotes = dict(state.quotes)
    quotes[open_quote.quote.quote_id] = open_quote
    return with_quotes(state, quotes, state.left)


def stale(position: Position, seen: Position | None) -> bool:
    """A duplicate or an older change than the one applied (unknown positions: apply)."""
    return seen is not None and position.known and position.order <= seen.order


def next_due(state: CustomerState) -> int | None:
    """When a step has something to do for this customer without a change (None: never)."""
    first: int | None = None
    for open_quote in state.quotes.values():
        due = open_quote.due_ms
        if due is not None and (first is None or due < first):
            first = due
    return first


def first_due(quotes: Mapping[int, OpenQuote]) -> tuple[int, int] | None:
    """The earliest due time and its quote (the lowest id of equal ones), or None."""
    first: tuple[int, int] | None = None
    for quote_id, open_quote in quotes.items():
        due = open_quote.due_ms
        if due is not None and (first is None or (due, quote_id) < first):
            first = (due, quote_id)
    return first


#: What :func:`oldest_memory` gives for a state with nothing to forget: later than any time.
NOTHING_TO_FORGET = sys.maxsize


def oldest_memory(state: CustomerState) -> int:
    """The earliest time :func:`forget` weighs in ``state`` (a decided quote's decision, a
    left quote's leaving), or :data:`NOTHING_TO_FORGET`: forgetting before it changes
    nothing."""
    oldest = NOTHING_TO_FORGET
    for open_quote in state.quotes.values():
        decided = open_quote.decided_ms
        if decided and decided < oldest:
            oldest = decided
    for gone in state.left.values():
        if gone.at_ms < oldest:
            oldest = gone.at_ms
    return oldest


def forget(state: CustomerState, now_ms: int, rules: Rules) -> CustomerState:
    """Drop decided quotes and remembered positions past the memory horizon."""
    horizon = now_ms - memory_ms(rules)
    # Usually nothing is that old: find out without building anything.
    for open_quote in state.quotes.values():
        if (open_quote.decided_ms or now_ms) < horizon:
            break
    else:
        for gone in state.left.values():
            if gone.at_ms < horizon:
                break
        else:
            return state
    old_open = [k for k, q in state.quotes.items() if (q.decided_ms or now_ms) < horizon]
    quotes = {k: q for k, q in state.quotes.items() if k not in old_open}
    left = {k: v for k, v in state.left.items() if v.at_ms >= horizon}
    # A decided quote forgotten while open is still remembered as decided.
    left.update({k: Left(state.quotes[k].position, True, now_ms) for k in old_open})
    return with_quotes(state, quotes, left)
