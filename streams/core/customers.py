"""The join with the CRM: a customer's row arriving, changing or going away.

Quotes wait for their customer's row, not the other way round: the row is kept
as it comes (the newest by commit position) and the quotes are decided later,
with whatever row is known then.
"""

from __future__ import annotations

from streams.core.model import CustomerChange, Output
from streams.core.state import CustomerState, OpenQuote, stale


def apply_customer(
    state: CustomerState, change: CustomerChange
) -> tuple[CustomerState, tuple[Output, ...]]:
    """The CRM row of this customer (None: deleted); its quotes are decided later.

    A customer who arrives after their quote's deadline ends the wait for them: the
    quotes that waited for a CRM row (until the unmatched grace period's end) are due
    again at their deadline, so the offer goes out now rather than at the grace end.
    """
    if stale(change.position, state.customer_position):
        return state, ()
    quotes = state.quotes
    if state.customer is None and change.customer is not None:
        quotes = {quote_id: _due_at_deadline(open_quote)
                  for quote_id, open_quote in quotes.items()}  # fmt: skip
    updated = CustomerState(state.customer_id, change.customer, change.position, quotes,
                            state.left, state.offers_ms, state.queue,
                            state.quotes_truncated)  # fmt: skip
    return updated, ()


def _due_at_deadline(open_quote: OpenQuote) -> OpenQuote:
    due = open_quote.due_ms
    if due is None or due <= open_quote.deadline_ms:
        return open_quote
    return OpenQuote(open_quote.quote, open_quote.position, open_quote.deadline_ms,
                     open_quote.deadline_ms, open_quote.decided_ms, open_quote.triggered,
                     open_quote.quoted_ms)  # fmt: skip
