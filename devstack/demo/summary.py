"""The demo's verdict, worked out from what the pipeline wrote and the ESP received.

Pure: given the plan and the observations (records read from the run's topics,
the sandbox's per-trigger counts and receive times) it says what is still
outstanding and builds the summary, so both are unit-tested without a broker.
The JSON keys are a contract (the test of ``make demo`` and anyone scripting
the demo read them): ``quotes``, ``abandoned``, ``triggered``, ``holdout``,
``delivered`` and ``deadline_to_esp_p99_ms`` at least.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from devstack.demo.observe import Seen
from devstack.demo.plan import Plan, PlannedQuote


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (a value that occurred, never an interpolation); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def run_deliveries(sandbox: Mapping[str, int], earlier: Mapping[str, int],
                   ours: Set[str]) -> dict[str, int]:  # fmt: skip
    """Deliveries per trigger id of the run: the sandbox's counts for the run's own trigger
    ids (its sink also delivers what other writers' rows triggered), plus what the sandbox
    of an interrupted part counted before it was stopped (a resumed run has a new one)."""
    counts = {t: n for t, n in sandbox.items() if t in ours}
    for t, n in earlier.items():
        counts[t] = counts.get(t, 0) + n
    return counts


def delivered_quotes(seen: Seen, delivered: Mapping[str, int]) -> set[int]:
    return {t.quote_id for t in seen.triggers if delivered.get(t.trigger_id, 0) > 0}


def outstanding(plan: Plan, seen: Seen, delivered: Mapping[str, int]) -> list[PlannedQuote]:
    """Quotes whose expected outcome is not visible yet: an offer not yet triggered and
    delivered, a decision not yet recorded. Quotes expected to produce nothing (accepted
    in time, deleted, held for quiet hours, ...) are never outstanding: absence cannot be
    awaited, it is checked once everything else has arrived."""
    sent = delivered_quotes(seen, delivered)
    decisions = {(q, o) for q, o, _ in seen.decisions}
    missing = []
    for quote in plan.quotes:
        expect = quote.expect
        no_offer = expect.trigger and quote.quote_id not in sent
        no_decision = expect.decision and (quote.quote_id, expect.decision) not in decisions
        if no_offer or no_decision:
            missing.append(quote)
    return missing


def surprises(plan: Plan, seen: Seen) -> list[str]:
    """Quotes whose outcome differs from the plan's (an offer or a decision the rules should
    not have given it, or one missing), one line each; empty when all went as planned."""
    triggered = Counter(t.quote_id for t in seen.triggers)
    decided: dict[int, set[str]] = {}
    for quote_id, outcome, _ in seen.decisions:
        decided.setdefault(quote_id, set()).add(outcome)
    lines = []
    for quote in plan.quotes:
        expect = quote.expect
        got_trigger = triggered.get(quote.quote_id, 0)
        got = decided.get(quote.quote_id, set())
        want = {expect.decision} if expect.decision else set()
        if got_trigger != (1 if expect.trigger else 0) or got != want:
            lines.append(
                f"quote {quote.quote_id} ({quote.case.value}): expected "
                f"{'an offer' if expect.trigger else 'no offer'}"
                f"{' and ' + expect.decision if expect.decision else ''}, got {got_trigger}"
                f" offer(s){' and ' + ', '.join(sorted(got)) if got else ''}"
            )  # fmt: skip
    return lines


@dataclass(frozen=True)
class Summary:
    run: str
    quotes: int
    accepted: int
    abandoned: int
    triggered: int
    delivered: int
    holdout: int
    unmatched: int
    converted: int
    suppressed: dict[str, int]
    held_quiet_hours: int
    held_zones: tuple[str, ...]
    deadline_to_esp_p50_ms: float | None
    deadline_to_esp_p99_ms: float | None
    surprises: tuple[str, ...]
    #: Changes of other writers' rows the run's pipeline also read (not counted above).
    foreign_changes: int
    seconds: float
    logs: str

    @property
    def ok(self) -> bool:
        """The demo's own verdict: something was abandoned and offered, and every offer
        on the triggers topic reached the ESP exactly once."""
        return self.abandoned > 0 and self.triggered > 0 and self.delivered == self.triggered

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run, "quotes": self.quotes, "accepted": self.accepted,
            "abandoned": self.abandoned, "triggered": self.triggered,
            "delivered": self.delivered, "holdout": self.holdout,
            "unmatched": self.unmatched, "converted": self.converted,
            "suppressed": dict(self.suppressed), "held_quiet_hours": self.held_quiet_hours,
            "deadline_to_esp_p50_ms": self.deadline_to_esp_p50_ms,
            "deadline_to_esp_p99_ms": self.deadline_to_esp_p99_ms,
            "as_planned": not self.surprises, "foreign_changes": self.foreign_changes,
            "seconds": round(self.seconds, 1),
            "logs": self.logs,
        }  # fmt: skip

    def rows(self) -> list[tuple[str, str]]:
        """The summary table, in the order a person reads the funnel."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value / 1000:.1f} s"

        rows = [
            ("quotes written", str(self.quotes)),
            ("accepted", str(self.accepted)),
            ("abandoned (past their deadline)", str(self.abandoned)),
            ("triggered (offers decided)", str(self.triggered)),
        ]
        rows += [(f"suppressed: {reason}", str(n)) for reason, n in sorted(self.suppressed.items())]
        rows += [
            ("unmatched (customer never in the CRM)", str(self.unmatched)),
            ("holdout (control group, no e-mail)", str(self.holdout)),
            ("held for quiet hours (sent when they end)" + (
                f" ({', '.join(self.held_zones)})" if self.held_zones else ""),
             str(self.held_quiet_hours)),
            ("delivered (the ESP sandbox's count)", str(self.delivered)),
            ("converted (accepted after the offer)", str(self.converted)),
            ("deadline -> ESP p50 / p99",
             f"{ms(self.deadline_to_esp_p50_ms)} / {ms(self.deadline_to_esp_p99_ms)}"),
            ("other writers' changes (not counted)", str(self.foreign_changes)),
            ("logs", self.logs),
        ]  # fmt: skip
        return rows


def summarize(*, run: str, plan: Plan, seen: Seen, delivered: Mapping[str, int],
              received_ms: Mapping[str, int], seconds: float, logs: str) -> Summary:  # fmt: skip
    """The summary of a finished run. ``delivered`` and ``received_ms`` are the sandbox's."""
    outcomes = Counter(o for _, o, _ in seen.decisions)
    suppressed = Counter(r for _, o, r in seen.decisions if o == "SUPPRESSED")
    decided = seen.decided
    held = [q for q in plan.quotes if q.expect.held and q.quote_id not in decided]
    held_zones = sorted({plan.customers_by_id[q.customer_id].timezone for q in held
                         if q.customer_id in plan.customers_by_id})  # fmt: skip
    latencies = [float(received_ms[t.trigger_id] - t.deadline_ms) for t in seen.triggers
                 if t.trigger_id in received_ms]  # fmt: skip
    return Summary(
        run=run, quotes=len(plan.quotes),
        accepted=sum(1 for s in seen.status.values() if s == "ACCEPTED"),
        abandoned=plan.abandoned, triggered=len(seen.triggers),
        delivered=sum(delivered.values()),  # the run's own sandbox: all of it is ours
        holdout=outcomes["HOLDOUT"], unmatched=outcomes["UNMATCHED"],
        converted=outcomes["CONVERTED"], suppressed=dict(suppressed),
        held_quiet_hours=len(held), held_zones=tuple(held_zones),
        deadline_to_esp_p50_ms=percentile(latencies, 50),
        deadline_to_esp_p99_ms=percentile(latencies, 99),
        surprises=tuple(surprises(plan, seen)), foreign_changes=seen.foreign,
        seconds=seconds, logs=logs,
    )  # fmt: skip
