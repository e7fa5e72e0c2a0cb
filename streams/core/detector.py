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
consent withdrawal committed in time has been seen, however late it arrived —
and always *as of* its due time: changes committed after it wait in the
customer's queue until it is decided, quiet hours and frequency caps are
judged at the due time. So decisions depend on event time only, and a live run
(``now`` = wall clock) and a replay (``now`` = the watermark) decide alike.

Duplicates and stale changes are dropped by source position (LSN), also for
quotes that already left (their last position is remembered), so a change
delivered twice never decides twice.
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
    Trigger,
)
from streams.rules import Rules, email_problem

#: How long a decided quote stays open for a late acceptance (a conversion), and how long
#: the position of a quote that left is remembered to drop its redelivered changes.
MEMORY_MS = 30 * 86_400_000

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

    @property
    def decided(self) -> bool:
        return self.decided_ms is not None


@fast_init
@dataclass(frozen=True, slots=True)
class Left:
    """A quote that left the funnel: enough to drop its redelivered changes."""

    position: Position
    decided: bool  # it was decided (offered, held out, suppressed...): never again
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
    #: Changes committed after an undecided due time, in commit order: applied once it is.
    queue: tuple[Change, ...] = ()

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
                         left, state.offers_ms, state.queue)  # fmt: skip


def _with_queue(state: CustomerState, queue: tuple[Change, ...]) -> CustomerState:
    return CustomerState(state.customer_id, state.customer, state.customer_position,
                         state.quotes, state.left, state.offers_ms, queue)  # fmt: skip


def _renewed(open_quote: OpenQuote, quote: Quote, position: Position) -> OpenQuote:
    """A newer row of a quote in the funnel: its deadline and decision stay."""
    return OpenQuote(quote, position, open_quote.deadline_ms, open_quote.due_ms,
                     open_quote.decided_ms, open_quote.triggered)  # fmt: skip


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
    """Take ``change`` (if any), then do everything the time allows, in event-time order.

    ``now_ms`` is the wall clock live and the watermark in a replay; ``watermark_ms``
    says every change committed *before* it has been given to the core (a heartbeat
    stamped W was written after every transaction that committed before W; one
    committing in the same millisecond may follow it), so a quote due at D is decided
    once the watermark is past D.
    """
    outputs: list[Output] = []
    if change is not None:
        if not state.queue and (
            (first_due := next_due(state)) is None or change.position.commit_ms <= first_due
        ):
            # Nothing due before it: apply now (what the queue would do, without it).
            state, applied = _apply(state, change, rules)
            if applied:
                outputs.extend(applied)
        else:
            state = _with_queue(state, _enqueue(state.queue, change))
    held: int | None = None
    while True:
        due = _first_due(state.quotes)
        queue = state.queue
        if queue and (due is None or queue[0].position.commit_ms <= due[0]):
            state, applied = _apply(_with_queue(state, queue[1:]), queue[0], rules)
            outputs.extend(applied)
            continue
        if due is not None and due[0] <= now_ms:
            if watermark_ms > due[0]:
                state, output = _decide(state, state.quotes[due[1]], due[0], watermark_ms, rules)
                if output is not None:
                    outputs.append(output)
                continue
            held = due[0]
        break
    return Step(_forget(state, min(now_ms, watermark_ms)), tuple(outputs), held)


def _enqueue(queue: tuple[Change, ...], change: Change) -> tuple[Change, ...]:
    """Insert in commit order (then LSN); equal ones keep their arrival order."""
    key = (change.position.commit_ms, change.position.lsn)
    index = len(queue)
    while index > 0 and (queue[index - 1].position.commit_ms, queue[index - 1].position.lsn) > key:
        index -= 1
    return (*queue[:index], change, *queue[index:])


def _apply(
    state: CustomerState, change: Change, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    if isinstance(change, QuoteChange):
        return _apply_quote(state, change, rules)
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


def _apply_quote(
    state: CustomerState, change: QuoteChange, rules: Rules
) -> tuple[CustomerState, tuple[Output, ...]]:
    """A quote change of this customer: enter, stay in, or leave the funnel."""
    quote_id, position = change.quote_id, change.position
    current = state.quotes.get(quote_id)
    gone = state.left.get(quote_id)
    seen = current or gone
    if position.lsn and seen is not None and position.lsn <= seen.position.lsn:
        return state, ()  # a duplicate or a stale change (lsn 0: cannot order, apply)
    was_decided = (current is not None and current.decided_ms is not None) or (
        gone is not None and gone.decided
    )
    quote = change.quote
    if quote is None:  # deleted, or moved to another customer
        return _leave(state, quote_id, position, was_decided, position.commit_ms), ()
    if rules.is_exit(quote.status):
        outputs: tuple[Output, ...] = ()
        if (
            current is not None
            and current.decided_ms is not None
            and quote.status == rules.statuses.accepted
        ):
            # A sale after the decision: the offer (or the holdout) converted.
            reason = "accepted after the offer" if current.triggered else "accepted in holdout"
            outputs = (
                _decision(quote, state.customer_id, Outcome.CONVERTED, reason,
                          position.commit_ms, rules),
            )  # fmt: skip
        return _leave(state, quote_id, position, was_decided, position.commit_ms), outputs
    if not rules.is_offerable(quote.status):
        if current is not None and current.decided_ms is not None:
            return _put(state, _renewed(current, quote, position)), ()
        return _leave(state, quote_id, position, was_decided, position.commit_ms), ()
    # Offerable.
    if was_decided:
        if current is None:  # decided, left, and offerable again: remember, never re-offer
            return _leave(state, quote_id, position, True, position.commit_ms), ()
        return _put(state, _renewed(current, quote, position)), ()
    if current is not None:  # still a candidate: newer row, same deadline
        return _put(state, _renewed(current, quote, position)), ()
    return _enter(state, quote, position, rules), ()


def _enter(state: CustomerState, quote: Quote, position: Position, rules: Rules) -> CustomerState:
    """A new candidate; it supersedes the customer's older undecided candidates for the
    same product (or is superseded by a newer one)."""
    product = quote.product_code
    rank = (quote.created_ms, quote.quote_id)
    rivals = []
    for rival in state.quotes.values():
        if rival.decided_ms is None and rival.quote.product_code == product:
            if (rival.quote.created_ms, rival.quote.quote_id) > rank:
                return _leave(state, quote.quote_id, position, False, position.commit_ms)
            rivals.append(rival)
    quotes = dict(state.quotes)
    left = state.left
    if rivals:  # each leaves as it would alone, in one copy of the mappings
        left = dict(left)
        for rival in rivals:
            rival_id = rival.quote.quote_id
            quotes.pop(rival_id, None)
            left[rival_id] = Left(rival.position, False, position.commit_ms)
    deadline = quote.updated_ms + rules.delay_ms(product, quote.channel)
    quotes[quote.quote_id] = OpenQuote(quote, position, deadline, deadline)
    return _with(state, quotes, left)


def _apply_customer(
    state: CustomerState, change: CustomerChange
) -> tuple[CustomerState, tuple[Output, ...]]:
    """The CRM row of this customer (None: deleted); its quotes are decided later."""
    last = state.customer_position
    if last is not None and change.position.lsn and change.position.lsn <= last.lsn:
        return state, ()
    updated = CustomerState(state.customer_id, change.customer, change.position, state.quotes,
                            state.left, state.offers_ms, state.queue)  # fmt: skip
    return updated, ()


def _decide(
    state: CustomerState, open_quote: OpenQuote, at_ms: int, watermark_ms: int, rules: Rules
) -> tuple[CustomerState, Output | None]:
    """One due quote, as of ``at_ms`` (its due time): wait more, or decide."""
    quote, customer = open_quote.quote, state.customer

    def close(outcome: Outcome, reason: str) -> tuple[CustomerState, Output]:
        decision = _decision(quote, state.customer_id if customer else None, outcome, reason,
                             at_ms, rules)  # fmt: skip
        return _leave(state, quote.quote_id, open_quote.position, True, at_ms), decision

    def due_again(due_ms: int) -> OpenQuote:
        return OpenQuote(quote, open_quote.position, open_quote.deadline_ms, due_ms,
                         open_quote.decided_ms, open_quote.triggered)  # fmt: skip

    if customer is None:
        grace_end = open_quote.deadline_ms + rules.unmatched.grace_minutes * 60_000
        if at_ms < grace_end:
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
    if rules.in_holdout(customer.customer_id):
        decision = _decision(quote, customer.customer_id, Outcome.HOLDOUT, "holdout group",
                             at_ms, rules)  # fmt: skip
        held = OpenQuote(quote, open_quote.position, open_quote.deadline_ms, None, at_ms,
                         open_quote.triggered)  # fmt: skip
        return _put(state, held), decision
    window = rules.frequency_window_ms()
    recent = tuple(t for t in state.offers_ms if at_ms - window < t <= at_ms)
    if len(recent) >= rules.frequency_cap.max_offers:
        cap = rules.frequency_cap
        return close(
            Outcome.SUPPRESSED,
            f"frequency cap: {cap.max_offers} offer(s) in {cap.period_days} day(s)",
        )
    offer = rules.select_offer(quote, customer)
    if offer is None:
        return close(Outcome.SUPPRESSED, "no offer matches the quote")
    trigger = Trigger(
        trigger_id(quote.quote_id, rules.version), quote, customer, offer,
        open_quote.deadline_ms, at_ms, watermark_ms, rules.version,
    )  # fmt: skip
    sent = OpenQuote(quote, open_quote.position, open_quote.deadline_ms, None, at_ms, True)
    quotes = dict(state.quotes)
    quotes[quote.quote_id] = sent
    state = CustomerState(state.customer_id, customer, state.customer_position, quotes,
                          state.left, (*recent, at_ms), state.queue)  # fmt: skip
    return state, trigger


def _forget(state: CustomerState, now_ms: int) -> CustomerState:
    """Drop decided quotes and remembered positions past :data:`MEMORY_MS`."""
    horizon = now_ms - MEMORY_MS
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
    for item in items:
        if isinstance(item, int):
            watermark = max(watermark, item)
            for customer_id in sorted(states):
                result = step(states[customer_id], None, watermark, watermark, rules)
                states[customer_id] = result.state
                outputs.extend(result.outputs)
            continue
        state = states.get(item.customer_id) or CustomerState(item.customer_id)
        result = step(state, item, watermark, watermark, rules)
        states[item.customer_id] = result.state
        outputs.extend(result.outputs)
    return states, outputs
