"""The core's whole per-event path in one call, for benchmarks (and a test of the plumbing).

:func:`run_core` is what the stream processor does for each record once it is
decoded — a change event becomes core changes, each is stepped on its
customer's state — without Kafka, faust or the state codec, so a benchmark can
time the core alone: decode the envelopes first, then time ``run_core``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.core.changes import customer_change, quote_changes
from streams.core.detector import CustomerState
from streams.core.event_time import EventTimeRun
from streams.core.model import Change, Output, TableTruncated
from streams.core.rules import Rules


@dataclass(frozen=True, slots=True)
class CoreRun:
    """What a run read and gave: counts for a benchmark, outputs and states for a test."""

    events: int  # envelopes read (tombstones included)
    changes: int  # core changes they gave
    outputs: tuple[Output, ...]  # triggers and decisions, in the order they came
    states: Mapping[int, CustomerState]  # by customer id, as the run left them


def run_core(envelopes: Iterable[Mapping[str, Any] | None], rules: Rules) -> CoreRun:
    """Read decoded change envelopes of the quotes and customers tables, in order.

    The table is the envelope's ``source.table`` (``customers``, else quotes), as
    Debezium and our connector write it; a tombstone (None) gives nothing. Time is
    event time, as in a replay of one ordered source: a change is stepped at the
    watermark before it, then the watermark (the clock too) moves to its commit time
    and every customer with a quote due before it is stepped, as the processor does
    on a watermark marker — decisions are made with every change read by then. An
    envelope the core cannot use raises :class:`~streams.core.changes.ChangeError`
    (the processor sends those to its dead-letter topic).
    """
    run = EventTimeRun(rules)
    outputs: list[Output] = []
    events = changes = 0
    for envelope in envelopes:
        events += 1
        if envelope is None:
            continue
        source = envelope.get("source")
        table = source.get("table") if isinstance(source, Mapping) else None
        found: Iterable[Change]
        if table == "customers":
            customer = customer_change(envelope)
            found = () if customer is None else (customer,)
        else:
            found = quote_changes(envelope)
        for change in found:
            changes += 1
            outputs.extend(run.apply(change))
            if not isinstance(change, TableTruncated):
                outputs.extend(run.advance(change.position.commit_ms))
    return CoreRun(events, changes, tuple(outputs), run.states)

