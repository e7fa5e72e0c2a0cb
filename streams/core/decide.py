"""Deciding one due quote: age, consent, quiet hours, frequency cap, offer, holdout.

A due quote is decided *with everything known* when the decision is made
(``now_ms``: the wall clock live, the watermark in a replay): every change read
by then has been applied as it arrived, so a consent withdrawal or a new
address committed after the due time but already read wins, quiet hours are
judged when the e-mail would go out, and the frequency cap counts every offer
made in its period whatever order quotes were decided in. A quote quoted longer
ago than the rules' maximum age is never offered; holdout is drawn last, among
quotes that would have been sent, so offered and held-out quotes are alike but
for the e-mail.
"""

from __future__ import annotations

from streams.core.ids import new_decision, trigger_id
from streams.core.model import Outcome, Output, Trigger
from streams.core.rules import Rules, email_problem
from streams.core.state import CustomerState, OpenQuote, leave, put


def decide(
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
        decision = new_decision(quote, state.customer_id if customer else None, outcome, reason,
                             at_ms, rules)  # fmt: skip
        return leave(state, quote.quote_id, open_quote.position, True, at_ms), decision

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
            return put(state, due_again(grace_end)), None
        return close(Outcome.UNMATCHED, "customer not in the CRM within the grace period")
    if not customer.marketing_consent:
        return close(Outcome.SUPPRESSED, "no marketing consent")
    problem = email_problem(customer.email)
    if problem is not None:
        return close(Outcome.SUPPRESSED, problem)
    resume = rules.quiet_until(at_ms, customer.timezone)
    if resume > at_ms:
        return put(state, due_again(resume)), None
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
        output = new_decision(quote, customer.customer_id, Outcome.HOLDOUT, "holdout group",
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
