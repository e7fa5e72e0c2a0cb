"""The abandonment state machine of one customer: quotes in, triggers and decisions out.

All of a customer's state is one value (:class:`CustomerState`): the customer
row, their open quotes, what was decided for quotes that left, and the times
of the offers they were sent. Quotes and customers are co-partitioned by
customer id, so every event touches exactly one such value, and the functions
here take it and return a new one with the outputs (:class:`Step`). Nothing
is mutated, nothing is read from a clock.

Time. A quote becomes a candidate when it reaches an offerable status; its
deadline is the moment it did (``updated_at``) plus the delay for its product
and channel. A due quote is decided only once the *watermark* has passed its
due time — every change committed by then has reached the core (the driver
takes the lower of the QMS and CRM source watermarks), so an acceptance or a
consent withdrawal committed in time has been seen, however late it arrived.

It is decided *with everything known* when the decision is made (``now_ms``:
the wall clock live, the watermark in a replay): every change read by then is
applied as it arrives, so a consent withdrawal or a new address committed after
the due time but already read wins, quiet hours are judged when the e-mail
would go out, and the frequency cap counts every offer made in its period
whatever order quotes were decided in. A quote quoted longer ago than the
rules' maximum age is never offered; holdout is drawn last, among quotes that
would have been sent, so offered and held-out quotes are alike but for the
e-mail.

Duplicates and stale changes are dropped by commit position (Debezium's
``source.sequence``), also for quotes that already left (their last position is
remembered), so a change delivered twice never decides twice.

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

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streams.core.frozen import fast_init
from streams.core.model import (
    Change,
    Customer,
    CustomerChange,
    Decision,
    Outcome,
    Output,
    Position,
    Quote,
    QuoteChange,
    TableTruncated,
    Trigger,
)
from streams.core.rules import Rules, email_problem

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


def _with(
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


def _with_queue(state: CustomerState, queue: tuple[Change, ...]) -> CustomerState:
    return CustomerState(state.customer_id, state.customer, state.customer_position,
                         state.quotes, state.left, state.offers_ms, queue,
                         state.quotes_truncated)  # fmt: skip


def _renewed(open_quote: OpenQuote, quote: Quote, position: Position) -> OpenQuote:
    """A newer row of a quote in the funnel: its deadline, decision and age stay."""
    return OpenQuote(quote, position, open_quote.deadline_ms, open_quote.due_ms,
                     open_quote.decided_ms, open_quote.triggered,
                     open_quote.quoted_ms)  # fmt: skip


@fast_init
@dataclass(frozen=True, slots=True)
class Step:
    state: CustomerState
    outputs: tuple[Output, ...] = ()
    #: Due quotes the watermark has not reached yet: the earliest due time held back.
    held_ms: int | None = None


def trigger_id(quote_id: int, rule_version: str) -> str:
    return hashlib.sha256(f"trigger:{quote_id}:{rule_version}".encode()).hexdigest()[:32]


def decision_id(quote_id: int, rule_version: str, outcome: Outcome) -> str:
    text = f"decision:{quote_id}:{rule_version}:{outcome.value}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def next_due(state: CustomerState) -> int | None:
    """When :func:`step` has something to do for this customer without a change (None: never)."""
    first: int | None = None
    for open_quote in state.quotes.values():
        due = open_quote.due_ms
        if due is not None and (first is None or due < first):
            first = due
    return first


def _first_due(quotes: Mapping[int, OpenQuote]) -> tuple[int, int] | None:
    """The earliest due time and its quote (the lowest id of equal ones), or None."""
    first: tuple[int, int] | None = None
    for quote_id, open_quote in quotes.items():
        due = open_quote.due_ms
        if due is not None and (first is None or (due, quote_id) < first):
            first = (due, quote_id)
    return first


def step(
    state: CustomerState, change: Change | None, now_ms: int, watermark_ms: int, rules: Rules
) -> Step:
    """Take ``change`` (if any), then decide every quote the time allows.

    ``now_ms`` is the wall clock live and the watermark in a replay: decisions are
    made as of it. ``watermark_ms`` says every change committed *before* it has been
    given to the core (a heartbeat stamped W was written after every transaction that
    committed before W; one committing in the same millisecond may follow it), so a
    quote due at D is decided once the watermark is past D, with every change read
    by then.
    """
    outputs: list[Output] = []
    if state.queue:  # held back by an earlier version of the core: apply now, in order
        queue, state = state.queue, _with_queue(state, ())
        for queued in queue:
            state, applied = _apply(state, queued, rules)
            outputs.extend(applied)
    if change is not None:
        state, applied = _apply(state, change, rules)
        if applied:
            outputs.extend(applied)
    held: int | None = None
    while True:
        due = _first_due(state.quotes)
        if due is None or due[0] > now_ms:
            break
        if watermark_ms <= due[0]:
            held = due[0]
            break
        state, output = _decide(state, state.quotes[due[1]], now_ms, watermark_ms, rules)
        if output is not None:
            outputs.append(output)
    return Step(_forget(state, min(now_ms, watermark_ms), rules), tuple(outputs), held)


def _apply(
    state: CustomerState, change: Change, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    if isinstance(change, QuoteChange):
        return _apply_quote(state, change, rules)
    if isinstance(change, TableTruncated):
        return _apply_truncate(state, change, rules)
    return _apply_customer(state, change)


def _leave(
    state: CustomerState, quote_id: int, position: Position, decided: bool, at_ms: int
) -> CustomerState:
    quotes = state.quotes
    if quote_id in quotes:
        quotes = dict(quotes)
        del quotes[quote_id]
    left = dict(state.left)
    left[quote_id] = Left(position, decided, at_ms)
    return _with(state, quotes, left)


def _put(state: CustomerState, open_quote: OpenQuote) -> CustomerState:
    quotes = dict(state.quotes)
    quotes[open_quote.quote.quote_id] = open_quote
    return _with(state, quotes, state.left)


def _decision(
    quote: Quote, customer_id: int | None, outcome: Outcome, reason: str, at_ms: int, rules: Rules
) -> Decision:
    return Decision(
        decision_id(quote.quote_id, rules.version, outcome),
        quote, customer_id, outcome, reason, at_ms, rules.version,
    )  # fmt: skip


def _stale(position: Position, seen: Position | None) -> bool:
    """A duplicate or an older change than the one applied (unknown positions: apply)."""
    return seen is not None and position.known and position.order <= seen.order


def _apply_quote(
    state: CustomerState, change: QuoteChange, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    """A quote change of this customer: enter, stay in, or leave the funnel."""
    quote_id, position = change.quote_id, change.position
    if _stale(position, state.quotes_truncated):  # the row was gone before this was read
        return _truncated_before(state, change, rules)
    current = state.quotes.get(quote_id)
    gone = state.left.get(quote_id)
    seen = current or gone
    if _stale(position, None if seen is None else seen.position):
        return state, ()
    was_decided = (current is not None and current.decided_ms is not None) or (
        gone is not None and gone.decided
    )
    quote = change.quote
    if quote is None:  # deleted, or moved to another customer
        return _leave(state, quote_id, position, was_decided, position.commit_ms), ()
    if rules.is_exit(quote.status):
        outputs: tuple[Output, ...] = ()
        if quote.status == rules.statuses.accepted:
            state, outputs = _accepted(state, quote, position, rules)
        return _leave(state, quote_id, position, was_decided, position.commit_ms), outputs
    if not rules.is_offerable(quote.status):
        if current is not None and current.decided_ms is not None:
            return _put(state, _renewed(current, quote, position)), ()
        return _leave(state, quote_id, position, was_decided, position.commit_ms), ()
    # Offerable.
    if was_decided:
        if current is None:  # closed for good, and offerable again: remember, never re-offer
            return _leave(state, quote_id, position, True, position.commit_ms), ()
        return _put(state, _renewed(current, quote, position)), ()
    if current is not None:  # still a candidate: newer row, same deadline
        return _put(state, _renewed(current, quote, position)), ()
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
            outputs.append(_decision(open_quote.quote, state.customer_id, Outcome.CONVERTED,
                                     reason, at_ms, rules))  # fmt: skip
    if not closing:
        return state, ()
    quotes = dict(state.quotes)
    left = dict(state.left)
    for open_quote in closing:
        other_id = open_quote.quote.quote_id
        del quotes[other_id]
        left[other_id] = Left(open_quote.position, True, at_ms)
    return _with(state, quotes, left), tuple(outputs)


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
                return _leave(state, quote.quote_id, position, True, position.commit_ms)
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
    return _with(state, quotes, left)


def _apply_customer(
    state: CustomerState, change: CustomerChange
) -> tuple[CustomerState, tuple[Output, ...]]:
    """The CRM row of this customer (None: deleted); its quotes are decided later.

    A customer who arrives after their quote's deadline ends the wait for them: the
    quotes that waited for a CRM row (until the unmatched grace period's end) are due
    again at their deadline, so the offer goes out now rather than at the grace end.
    """
    if _stale(change.position, state.customer_position):
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


TRUNCATED_QUOTES = "truncated: the quotes table was truncated"


def _older(position: Position, truncate: Position) -> bool:
    """Did the truncate remove what ``position`` wrote? Yes if it committed before it; a
    truncate that cannot be ordered removes everything (hold rather than send)."""
    return not truncate.known or position.order < truncate.order


def _newest(seen: Position | None, position: Position) -> Position:
    return position if seen is None or seen.order < position.order else seen


def _truncated_before(
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
    decision = _decision(quote, state.customer_id, Outcome.SUPPRESSED, TRUNCATED_QUOTES,
                         truncate.commit_ms, rules)  # fmt: skip
    return _leave(state, quote_id, change.position, True, truncate.commit_ms), (decision,)


def _apply_truncate(
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
            outputs.append(_decision(open_quote.quote, state.customer_id, Outcome.SUPPRESSED,
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


def _decide(
    state: CustomerState, open_quote: OpenQuote, at_ms: int, watermark_ms: int, rules: Rules
) -> tuple[CustomerState, Output | None]:
    """One due quote, as of ``at_ms`` (now): wait more, or decide.

    The checks run in an order that says why: age first (nothing else matters for a
    quote that old), then who the customer is and whether they may be contacted, then
    when (quiet hours wait, they do not drop), how often, what to offer — and only
    then, among quotes that would have been sent, whether the customer is held out.
    """
    quote, customer = open_quote.quote, state.customer

    def close(outcome: Outcome, reason: str) -> tuple[CustomerState, Output]:
        decision = _decision(quote, state.customer_id if customer else None, outcome, reason,
                             at_ms, rules)  # fmt: skip
        return _leave(state, quote.quote_id, open_quote.position, True, at_ms), decision

    def due_again(due_ms: int) -> OpenQuote:
        return OpenQuote(quote, open_quote.position, open_quote.deadline_ms, due_ms,
                         open_quote.decided_ms, open_quote.triggered,
                         open_quote.quoted_ms)  # fmt: skip

    quoted_ms = open_quote.quoted_ms or quote.created_ms
    if at_ms - quoted_ms > rules.max_quote_age_ms():
        return close(
            Outcome.SUPPRESSED,
            f"too_old: quoted more than {rules.max_quote_age_days} day(s) before the decision",
        )
    if customer is None:
        grace_end = open_quote.deadline_ms + rules.unmatched.grace_minutes * 60_000
        if at_ms < grace_end or watermark_ms <= grace_end:  # a customer in time may be unread
            return _put(state, due_again(grace_end)), None
        return close(Outcome.UNMATCHED, "customer not in the CRM within the grace period")
    if not customer.marketing_consent:
        return close(Outcome.SUPPRESSED, "no marketing consent")
    problem = email_problem(customer.email)
    if problem is not None:
        return close(Outcome.SUPPRESSED, problem)
    resume = rules.quiet_until(at_ms, customer.timezone)
    if resume > at_ms:
        return _put(state, due_again(resume)), None
    window = rules.frequency_window_ms()
    recent = sum(1 for t in state.offers_ms if abs(at_ms - t) < window)
    if recent >= rules.frequency_cap.max_offers:
        cap = rules.frequency_cap
        return close(
            Outcome.SUPPRESSED,
            f"frequency cap: {cap.max_offers} offer(s) in {cap.period_days} day(s)",
        )
    offer = rules.select_offer(quote, customer)
    if offer is None:
        return close(Outcome.SUPPRESSED, "no offer matches the quote")
    # Holdout counts towards the cap like an offer: both groups are capped alike.
    offers_ms = _remember_offer(state.offers_ms, at_ms, window)
    output: Output
    if rules.in_holdout(customer.customer_id):
        output = _decision(quote, customer.customer_id, Outcome.HOLDOUT, "holdout group",
                           at_ms, rules)  # fmt: skip
        triggered = False
    else:
        output = Trigger(
            trigger_id(quote.quote_id, rules.version), quote, customer, offer,
            open_quote.deadline_ms, at_ms, watermark_ms, rules.version,
        )  # fmt: skip
        triggered = True
    decided = OpenQuote(quote, open_quote.position, open_quote.deadline_ms, None, at_ms,
                        triggered, open_quote.quoted_ms)  # fmt: skip
    quotes = dict(state.quotes)
    quotes[quote.quote_id] = decided
    state = CustomerState(state.customer_id, customer, state.customer_position, quotes,
                          state.left, offers_ms, state.queue,
                          state.quotes_truncated)  # fmt: skip
    return state, output


def _remember_offer(offers_ms: tuple[int, ...], at_ms: int, window_ms: int) -> tuple[int, ...]:
    """Every offer that can still count for a cap, with this one, in time order (none is
    replaced by another: out-of-order decisions never erase a later offer)."""
    newest = max((at_ms, *offers_ms))
    return tuple(sorted(t for t in (*offers_ms, at_ms) if t > newest - window_ms))


def _forget(state: CustomerState, now_ms: int, rules: Rules) -> CustomerState:
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
    return _with(state, quotes, left)


def run_in_event_time(
    items: Iterable[Change | int], rules: Rules
) -> tuple[dict[int, CustomerState], list[Output]]:
    """Run a recorded sequence in event time: changes, and watermarks (ints, epoch ms).

    The reference semantics a driver must match (the tests hold both to it): each
    watermark is also the clock, and decides everything due up to it.
    """
    states: dict[int, CustomerState] = {}
    outputs: list[Output] = []
    watermark = 0
    truncations = Truncations()
    for item in items:
        if isinstance(item, int):
            watermark = max(watermark, item)
            for customer_id in sorted(states):
                result = step(states[customer_id], None, watermark, watermark, rules)
                states[customer_id] = result.state
                outputs.extend(result.outputs)
            continue
        if isinstance(item, TableTruncated):  # every customer, like the live driver
            truncations = truncations.after(item)
            for customer_id in sorted(states):
                result = step(states[customer_id], item, watermark, watermark, rules)
                states[customer_id] = result.state
                outputs.extend(result.outputs)
            continue
        state = states.get(item.customer_id) or truncations.fresh(item.customer_id)
        result = step(state, item, watermark, watermark, rules)
        states[item.customer_id] = result.state
        outputs.extend(result.outputs)
    return states, outputs
