"""The replay benchmark's history: quote changes, their customers and the CDC's watermarks.

Pure and deterministic (a function of its :class:`History`), so the seeding
processes can each build their share of the same history without talking to
each other, and a test can compute what the core decides on it. Every quote
change is a distinct event with its own ids, commit time and LSN; the mix is
:func:`bench.workload.workload`'s (four in five create a quote, the fifth
accepts the quote created two events before), so the replay's figures compare
with the processor benchmark's.

Commit times advance ``step_ms`` per event, so that quotes fall due (and
triggers are decided and written) *during* the replay, not only at its end. A watermark record per
source follows every ``watermark_every`` quote events, as the CDC's heartbeat
does: the change topics' end offsets then, complete up to the last commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import workload as wl
from schemas import examples
from streams.core.model import Change

#: Minutes each quote waits before it is due (the bench's rules, ``wl.RULES_TOML``).
DELAY_MINUTES = 1
FIRST_LSN = 1_000


@dataclass(frozen=True, slots=True)
class History:
    """``events`` quote changes over ``customers`` customers, from ``start_ms``."""

    events: int
    customers: int
    start_ms: int
    quote_partitions: int
    customer_partitions: int
    watermark_every: int = 5_000

    @property
    def step_ms(self) -> int:
        """Commit time between two events: a customer's next quote (``customers`` events
        later) comes twice the delay after the last, so an open quote falls due before it
        and is not superseded, and the history spans many deadlines."""
        return max(1, -(-2 * DELAY_MINUTES * 60_000 // self.customers))

    def commit_ms(self, k: int) -> int:
        return self.start_ms + k * self.step_ms

    def chunks(self) -> list[range]:
        """The quote events between two watermark records."""
        every = self.watermark_every
        return [range(s, min(s + every, self.events)) for s in range(0, self.events, every)]

    def quote(self, k: int) -> tuple[int, int, str, str]:
        """Event ``k``'s (quote id, customer id, status, op)."""
        if k % wl.ACCEPT_EVERY == wl.ACCEPT_EVERY - 1:
            quote_id, status, op = k - 2, "ACCEPTED", "u"
        else:
            quote_id, status, op = k, "QUOTED", "c"
        return quote_id, quote_id % self.customers + 1, status, op

    def quote_partition(self, quote_id: int) -> int:
        """A quote's changes in one partition, in commit order (the connector keys by quote)."""
        return quote_id % self.quote_partitions

    def customer_partition(self, customer_id: int) -> int:
        return customer_id % self.customer_partitions


class _Clock:
    """ZonedTimestamp text of consecutive milliseconds: the second's text is made once."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, ms: int) -> str:
        second, milli = divmod(ms, 1000)
        if second != self._second:
            when = datetime.fromtimestamp(second, UTC)
            self._second, self._text = second, when.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._text}.{milli:03d}000Z"


def customer_envelopes(history: History) -> Iterator[tuple[int, dict[str, Any]]]:
    """(customer id, envelope) of every customer, committed just before the first quote."""
    at = history.start_ms - 1
    for customer_id in range(1, history.customers + 1):
        yield customer_id, wl.customer_envelope(customer_id, at_ms=at,
                                                lsn=FIRST_LSN + 10 * customer_id)  # fmt: skip


class QuoteEnvelopes:
    """Quote change envelopes as :func:`bench.workload.quote_envelope` makes them, faster:
    one template row and source block copied per event, the timestamps' text cached."""

    def __init__(self, history: History) -> None:
        self.history = history
        template = wl.quote_envelope(0, 1, "QUOTED", updated_ms=history.start_ms, lsn=FIRST_LSN)
        self._row: Mapping[str, Any] = template["after"]
        self._source: Mapping[str, Any] = template["source"]
        self._clock = _Clock()
        self._created = _Clock()  # created_at runs 5 s behind: its own cache

    @staticmethod
    def lsn_of(history: History, k: int) -> int:
        """Event ``k``'s LSN: after every customer's."""
        return FIRST_LSN + 10 * (history.customers + 1 + k)

    def __call__(self, k: int) -> dict[str, Any]:
        """Event ``k``'s envelope."""
        history = self.history
        quote_id, customer_id, status, op = history.quote(k)
        at, lsn = history.commit_ms(k), self.lsn_of(history, k)
        row = {**self._row, "quote_id": quote_id, "quote_ref": f"Q-{quote_id}",
               "customer_id": customer_id, "status": status,
               "created_at": self._created(at - 5_000), "updated_at": self._clock(at)}  # fmt: skip
        source = {**self._source, "ts_ms": at, "lsn": lsn,
                  "sequence": f'["{lsn - 5}","{lsn}"]'}  # fmt: skip
        return {"before": row if op == "u" else None, "after": row, "source": source, "op": op,
                "ts_ms": at + 412, "transaction": None}  # fmt: skip


def watermark_records(history: History, customer_ends: Mapping[int, int],
                      quote_ends: Sequence[Mapping[int, int]], *, quotes_topic: str,
                      customers_topic: str) -> Iterator[tuple[str, dict[str, Any]]]:  # fmt: skip
    """(source, record) of every watermark record, in the order the CDC writes them.

    ``quote_ends[j]``: each quotes partition's end offset after chunk ``j``. First
    the customers are complete and no quote exists yet; then, after each chunk, both
    sources are complete up to its last commit (crm has no new change: a heartbeat).
    """

    def record(source: str, topic: str, ends: Mapping[int, int], at_ms: int,
               lsn: int) -> dict[str, Any]:  # fmt: skip
        offsets = [{"partition": p, "offset": o} for p, o in sorted(ends.items())]
        return examples.cdc_watermark(source=source, topic=topic, watermark_ms=at_ms, lsn=lsn,
                                      offsets=offsets, emitted_ms=at_ms)  # fmt: skip

    lsns = QuoteEnvelopes.lsn_of
    zero = dict.fromkeys(range(history.quote_partitions), 0)
    first = lsns(history, -1)  # the heartbeat after the customers, before any quote
    yield "crm", record("crm", customers_topic, customer_ends, history.start_ms, first)
    yield "qms", record("qms", quotes_topic, zero, history.start_ms, first)
    for chunk, ends in zip(history.chunks(), quote_ends, strict=True):
        at = history.commit_ms(chunk[-1]) + 1  # complete for every commit before it
        lsn = lsns(history, chunk[-1]) + 1
        yield "qms", record("qms", quotes_topic, ends, at, lsn)
        yield "crm", record("crm", customers_topic, customer_ends, at, lsn)


def reference_items(history: History) -> Iterator[Change | int]:
    """The history as the replay should step it: changes in commit order, and the
    watermarks the records carry (the reference a test runs the core over)."""
    yield from wl.decoded_changes([e for _, e in customer_envelopes(history)])
    yield history.start_ms
    envelopes = QuoteEnvelopes(history)
    for chunk in history.chunks():
        yield from wl.decoded_changes([envelopes(k) for k in chunk])
        yield history.commit_ms(chunk[-1]) + 1
