"""What-if: two rules versions over one history, and what one would do that the other did not.

Each quote's *verdict* under a rules version is its first decision: a trigger
(with its offer and send time) or a suppression, holdout or unmatched decision
(with its reason). A later CONVERTED decision is attribution, not a choice the
rules made, so it is not compared. The comparison runs online: a quote's two
verdicts are compared as soon as both exist and then forgotten, so a what-if
over millions of quotes holds only the quotes one side has decided and the
other not yet. A quote one side has not decided by the end of the range may
still be waiting there (quiet hours moved it past the end, say): it is shown
with the time it is due, as a ``DUE`` verdict, so a later send reads as a
changed send time rather than a lost trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from streams.core.model import Outcome, Output, Trigger

Kind = Literal["only_a", "only_b", "offer", "send_time", "reason"]
#: In the order the table shows them, with their headings.
KINDS: dict[Kind, str] = {
    "only_a": "trigger only in A",
    "only_b": "trigger only in B",
    "offer": "changed offer",
    "send_time": "changed send time",
    "reason": "changed suppression reason",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rules version decided for one quote."""

    outcome: str  # "TRIGGER", a decision outcome, or "DUE" (still waiting at the end)
    at_ms: int  # send (fire) time of a trigger, decision time otherwise
    offer: str | None = None
    reason: str | None = None

    @property
    def triggered(self) -> bool:
        return self.outcome == "TRIGGER"

    @property
    def waiting(self) -> bool:
        return self.outcome == DUE


DUE = "DUE"
#: Where a quote waits at the end of the range under one side's rules: (side, customer id,
#: quote id) -> its due time, None if that side holds nothing for it.
Waiting = Callable[[int, int, int], int | None]


@dataclass(frozen=True, slots=True)
class Difference:
    kind: Kind
    quote_id: int
    quote_ref: str
    customer_id: int
    a: Verdict | None
    b: Verdict | None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "quote_id": self.quote_id, "quote_ref": self.quote_ref,
                "customer_id": self.customer_id,
                "a": None if self.a is None else asdict(self.a),
                "b": None if self.b is None else asdict(self.b)}  # fmt: skip


def verdict(output: Output) -> Verdict | None:
    """The verdict an output carries (None: a conversion, which is not a rules choice)."""
    if isinstance(output, Trigger):
        return Verdict("TRIGGER", output.fire_ms, offer=output.offer.code)
    if output.outcome is Outcome.CONVERTED:
        return None
    return Verdict(output.outcome.value, output.decided_ms, reason=output.reason)


def differ(a: Verdict | None, b: Verdict | None) -> Kind | None:
    """How two verdicts of one quote differ, if they do in a way marketing cares about."""
    a_sent, b_sent = a is not None and a.triggered, b is not None and b.triggered
    if (a_sent and b is not None and b.waiting) or (b_sent and a is not None and a.waiting):
        return "send_time"  # sent by one, still to be sent by the other
    if a_sent and not b_sent:
        return "only_a"
    if b_sent and not a_sent:
        return "only_b"
    if a is None or b is None:  # neither sent; one side has not decided (yet)
        return None if a is None and b is None else "reason"
    if a_sent:
        if a.offer != b.offer:
            return "offer"
        return "send_time" if a.at_ms != b.at_ms else None
    return "reason" if (a.outcome, a.reason) != (b.outcome, b.reason) else None


class Comparison:
    """Verdicts of rules A and B as they come; differences as soon as both are known."""

    def __init__(self) -> None:
        #: quote -> (side, verdict, (ref, customer)) of the side that decided first
        self._pending: dict[int, tuple[int, Verdict, tuple[str, int]]] = {}
        self.differences: list[Difference] = []
        self.compared = 0

    def add(self, side: int, output: Output) -> None:
        """``side`` 0 is A, 1 is B."""
        found = verdict(output)
        if found is None:
            return
        quote = output.quote
        customer_id = (output.customer.customer_id if isinstance(output, Trigger)
                       else output.customer_id or quote.customer_id)  # fmt: skip
        other = self._pending.get(quote.quote_id)
        if other is None:
            self._pending[quote.quote_id] = (side, found, (quote.quote_ref, customer_id))
            return
        if other[0] == side:  # a second verdict on one side: the first one stands
            return
        del self._pending[quote.quote_id]
        a, b = (found, other[1]) if side == 0 else (other[1], found)
        self._record(quote.quote_id, quote.quote_ref, customer_id, a, b)

    def finish(self, waiting: Waiting = lambda _side, _customer, _quote: None) -> list[Difference]:
        """Quotes only one side decided within the range are differences too; ``waiting``
        tells when the other side has the quote due (DUE verdict)."""
        for quote_id, (side, found, (ref, customer_id)) in sorted(self._pending.items()):
            due = waiting(1 - side, customer_id, quote_id)
            other = None if due is None else Verdict(DUE, due)
            a, b = (found, other) if side == 0 else (other, found)
            self._record(quote_id, ref, customer_id, a, b)
        self._pending.clear()
        return sorted(self.differences, key=lambda d: (list(KINDS).index(d.kind), d.quote_id))

    def _record(self, quote_id: int, ref: str, customer_id: int, a: Verdict | None,
                b: Verdict | None) -> None:  # fmt: skip
        self.compared += 1
        kind = differ(a, b)
        if kind is not None:
            self.differences.append(Difference(kind, quote_id, ref, customer_id, a, b))
