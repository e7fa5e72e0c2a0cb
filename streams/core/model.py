"""What the detection core reads and writes: plain frozen dataclasses.

Times are epoch milliseconds (ints) everywhere in the core: they compare and
add cheaply, serialise without ambiguity, and are what the CDC source block
(``ts_ms``) and the output schemas (``timestamp-millis``) use. The ones made
per change event get :func:`~streams.core.frozen.fast_init` (a frozen
dataclass's own ``__init__`` was a large part of the core's cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Literal

from streams.core.frozen import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Position:
    """Where a change is in its source: orders the changes of one row, spots duplicates.

    Changes are ordered by *commit* position, Debezium's ``source.sequence``
    ``[lastCommitLsn, lsn]``: transactions reach the stream in commit order, and each
    carries the end of the one before it, so ``(commit_lsn, lsn)`` grows with commit
    order. The raw ``lsn`` alone does not: a transaction that wrote a row before a
    snapshot chunk read it, and committed after, has a lower LSN than the snapshot
    row yet is the newer truth. ``commit_lsn`` 0 means no sequence (read as Debezium's
    null: before the first commit seen); ``lsn`` 0 too means unknown (a producer that
    fills neither): such a change is applied, since it cannot be ordered.
    """

    lsn: int
    commit_ms: int
    commit_lsn: int = 0

    @property
    def order(self) -> tuple[int, int]:
        return (self.commit_lsn, self.lsn)

    @property
    def known(self) -> bool:
        return self.lsn != 0 or self.commit_lsn != 0


@fast_init
@dataclass(frozen=True, slots=True)
class Quote:
    """The quote columns the rules and the e-mail need (one QMS row)."""

    quote_id: int
    quote_ref: str
    customer_id: int
    product_code: str
    channel: str
    premium: Decimal
    currency: str
    status: str
    created_ms: int
    updated_ms: int


@fast_init
@dataclass(frozen=True, slots=True)
class Customer:
    """The customer columns the rules and the e-mail need (one CRM row)."""

    customer_id: int
    first_name: str
    email: str | None
    marketing_consent: bool
    timezone: str
    segment: str | None


@fast_init
@dataclass(frozen=True, slots=True)
class QuoteChange:
    """A quote change routed to one customer: ``quote`` None means the quote left them
    (deleted, or moved to another customer)."""

    customer_id: int
    quote_id: int
    quote: Quote | None
    position: Position


@fast_init
@dataclass(frozen=True, slots=True)
class CustomerChange:
    """A customer change: ``customer`` None means deleted."""

    customer_id: int
    customer: Customer | None
    position: Position


@fast_init
@dataclass(frozen=True, slots=True)
class TableTruncated:
    """A ``TRUNCATE`` of a source table: it names no row, so it applies to every customer.

    Everything of that table older than ``position`` is gone (quotes close, customer rows
    are forgotten); a change older than it that arrives later must resurrect nothing.
    """

    table: Literal["quotes", "customers"]
    position: Position


class Outcome(Enum):
    """Decision outcomes; the names are the ``DecisionOutcome`` symbols of the schema."""

    SUPPRESSED = "SUPPRESSED"
    HOLDOUT = "HOLDOUT"
    UNMATCHED = "UNMATCHED"
    CONVERTED = "CONVERTED"


@dataclass(frozen=True, slots=True)
class Offer:
    code: str
    description: str
    discount_pct: float | None
    template_id: str
    subject: str


@fast_init
@dataclass(frozen=True, slots=True)
class Trigger:
    """One abandoned quote to e-mail (the ``abandonment_trigger`` record's content)."""

    trigger_id: str
    quote: Quote
    customer: Customer
    offer: Offer
    deadline_ms: int
    fire_ms: int  # event time it fired for: the deadline, or later (quiet hours, grace)
    watermark_ms: int  # the source watermark when it fired: the source was read this far
    rule_version: str


@fast_init
@dataclass(frozen=True, slots=True)
class Decision:
    """Any other outcome of an abandoned (or converted) quote, for the funnel."""

    decision_id: str
    quote: Quote
    customer_id: int | None
    outcome: Outcome
    reason: str
    decided_ms: int  # event time, like Trigger.fire_ms
    rule_version: str


Output = Trigger | Decision
Change = QuoteChange | CustomerChange | TableTruncated
#: A change of one customer's rows (a truncate has no customer).
RowChange = QuoteChange | CustomerChange
