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
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Left:
    """A quote that left the funnel: enough to drop its redelivered changes."""

    position: Position
    decided: bool  # it was decided (offered, held out, suppressed...): never again
    at_ms: int


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


_STATE_FIELDS = ("customer", "customer_position", "quotes", "left", "offers_ms", "queue")
_QUOTE_FIELDS = ("quote", "position", "deadline_ms", "due_ms", "decided_ms", "triggered")


def _evolve(state: CustomerState, **changes: Any) -> CustomerState:
    """``dataclasses.replace``, without its generic cost (it was half the core's time)."""
    return CustomerState(
        state.customer_id,
        *[changes[f] if f in changes else getattr(state, f) for f in _STATE_FIELDS],
    )


def _evolve_quote(open_quote: OpenQuote, **changes: Any) -> OpenQuote:
    return OpenQuote(
        *[changes[f] if f in changes else getattr(open_quote, f) for f in _QUOTE_FIELDS]
    )


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
    dues = [q.due_ms for q in state.quotes.values() if q.due_ms is not None]
    return min(dues) if dues else None


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
        first_due = next_due(state)
        if not state.queue and (first_due is None or change.position.commit_ms <= first_due):
            # Nothing due before it: apply now (what the queue would do, without it).
            state, applied = _apply(state, change, rules)
            outputs.extend(applied)
        else:
            state = _evolve(state, queue=_enqueue(state.queue, change))
    held: int | None = None
    while True:
        due = min(
            ((q.due_ms, k) for k, q in state.quotes.items() if q.due_ms is not None),
            default=None,
        )
        head = state.queue[0] if state.queue else None
        if head is not None and (due is None or head.position.commit_ms <= due[0]):
            state = _evolve(state, queue=state.queue[1:])
            state, applied = _apply(state, head, rules)
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
        result = _apply_quote(state, change, rules)
    else:
        result = _apply_customer(state, change)
    return result.state, result.outputs


def _stale(state: CustomerState, quote_id: int, position: Position) -> bool:
    if position.lsn == 0:
        return False  # a producer without positions: cannot order, apply
    seen = state.quotes.get(quote_id) or state.left.get(quote_id)
    return seen is not None and position.lsn <= seen.position.lsn


def _leave(
    state: CustomerState,
    quote_id: int,
    position: Position,
    decided: bool,
    at_ms: int,
    **changes: object,
) -> CustomerState:
    quotes = dict(state.quotes)
    quotes.pop(quote_id, None)
    left = dict(state.left)
    left[quote_id] = Left(position, decided, at_ms)
    return _evolve(state, quotes=quotes, left=left, **changes)


def _put(state: CustomerState, open_quote: OpenQuote) -> CustomerState:
    quotes = dict(state.quotes)
    quotes[open_quote.quote.quote_id] = open_quote
    return _evolve(state, quotes=quotes)


def _decision(
    quote: Quote, customer_id: int | None, outcome: Outcome, reason: str, at_ms: int, rules: Rules
) -> Decision:
    return Decision(
        decision_id(quote.quote_id, rules.version, outcome),
        quote, customer_id, outcome, reason, at_ms, rules.version,
    )  # fmt: skip


def _apply_quote(state: CustomerState, change: QuoteChange, rules: Rules) -> Step:
    """A quote change of this customer: enter, stay in, or leave the funnel."""
    quote_id, position = change.quote_id, change.position
    if _stale(state, quote_id, position):
        return Step(state)
    current = state.quotes.get(quote_id)
    was_decided = (current is not None and current.decided) or (
        quote_id in state.left and state.left[quote_id].decided
    )
    quote = change.quote
    if quote is None:  # deleted, or moved to another customer
        return Step(_leave(state, quote_id, position, was_decided, position.commit_ms))
    if rules.is_exit(quote.status):
        outputs: tuple[Output, ...] = ()
        if current is not None and current.decided and quote.status == rules.statuses.accepted:
            # A sale after the decision: the offer (or the holdout) converted.
            reason = "accepted after the offer" if current.triggered else "accepted in holdout"
            outputs = (
                _decision(quote, state.customer_id, Outcome.CONVERTED, reason,
                          position.commit_ms, rules),
            )  # fmt: skip
        return Step(_leave(state, quote_id, position, was_decided, position.commit_ms), outputs)
    if not rules.is_offerable(quote.status):
        if current is not None and current.decided:
            return Step(_put(state, _evolve_quote(current, quote=quote, position=position)))
        return Step(_leave(state, quote_id, position, was_decided, position.commit_ms))
    # Offerable.
    if was_decided:
        if current is None:  # decided, left, and offerable again: remember, never re-offer
            return Step(_leave(state, quote_id, position, True, position.commit_ms))
        return Step(_put(state, _evolve_quote(current, quote=quote, position=position)))
    if current is not None:  # still a candidate: newer row, same deadline
        return Step(_put(state, _evolve_quote(current, quote=quote, position=position)))
    return _enter(state, quote, position, rules)


def _enter(state: CustomerState, quote: Quote, position: Position, rules: Rules) -> Step:
    """A new candidate; it supersedes the customer's older undecided candidates for the
    same product (or is superseded by a newer one)."""
    rank = (quote.created_ms, quote.quote_id)
    rivals = [
        q for q in state.quotes.values()
        if not q.decided and q.quote.product_code == quote.product_code
    ]  # fmt: skip
    if any((q.quote.created_ms, q.quote.quote_id) > rank for q in rivals):
        return Step(_leave(state, quote.quote_id, position, False, position.commit_ms))
    for rival in rivals:
        state = _leave(state, rival.quote.quote_id, rival.position, False, position.commit_ms)
    deadline = quote.updated_ms + rules.delay_ms(quote.product_code, quote.channel)
    return Step(_put(state, OpenQuote(quote, position, deadline, deadline)))


def _apply_customer(state: CustomerState, change: CustomerChange) -> Step:
    """The CRM row of this customer (None: deleted); its quotes are decided later."""
    last = state.customer_position
    if last is not None and change.position.lsn and change.position.lsn <= last.lsn:
        return Step(state)
    return Step(_evolve(state, customer=change.customer, customer_position=change.position))


def _decide(
    state: CustomerState, open_quote: OpenQuote, at_ms: int, watermark_ms: int, rules: Rules
) -> tuple[CustomerState, Output | None]:
    """One due quote, as of ``at_ms`` (its due time): wait more, or decide."""
    quote, customer = open_quote.quote, state.customer

    def close(outcome: Outcome, reason: str) -> tuple[CustomerState, Output]:
        decision = _decision(quote, state.customer_id if customer else None, outcome, reason,
                             at_ms, rules)  # fmt: skip
        return _leave(state, quote.quote_id, open_quote.position, True, at_ms), decision

    if customer is None:
        grace_end = open_quote.deadline_ms + rules.unmatched.grace_minutes * 60_000
        if at_ms < grace_end:
            return _put(state, _evolve_quote(open_quote, due_ms=grace_end)), None
        return close(Outcome.UNMATCHED, "customer not in the CRM within the grace period")
    if not customer.marketing_consent:
        return close(Outcome.SUPPRESSED, "no marketing consent")
    problem = email_problem(customer.email)
    if problem is not None:
        return close(Outcome.SUPPRESSED, problem)
    resume = rules.quiet_until(at_ms, customer.timezone)
    if resume > at_ms:
        return _put(state, _evolve_quote(open_quote, due_ms=resume)), None
    if rules.in_holdout(customer.customer_id):
        decision = _decision(quote, customer.customer_id, Outcome.HOLDOUT, "holdout group",
                             at_ms, rules)  # fmt: skip
        held = _evolve_quote(open_quote, due_ms=None, decided_ms=at_ms)
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
    sent = _evolve_quote(open_quote, due_ms=None, decided_ms=at_ms, triggered=True)
    state = _evolve(_put(state, sent), offers_ms=(*recent, at_ms))
    return state, trigger


def _forget(state: CustomerState, now_ms: int) -> CustomerState:
    """Drop decided quotes and remembered positions past :data:`MEMORY_MS`."""
    horizon = now_ms - MEMORY_MS
    old_open = [k for k, q in state.quotes.items() if (q.decided_ms or now_ms) < horizon]
    old_left = [k for k, v in state.left.items() if v.at_ms < horizon]
    if not old_open and not old_left:
        return state
    quotes = {k: q for k, q in state.quotes.items() if k not in old_open}
    left = {k: v for k, v in state.left.items() if v.at_ms >= horizon}
    # A decided quote forgotten while open is still remembered as decided.
    left.update({k: Left(state.quotes[k].position, True, now_ms) for k in old_open})
    return _evolve(state, quotes=quotes, left=left)


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
