"""The replay's event-time order: the same range read in any interleaving releases the same."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.model import Change
from streams.core.watermarks import SourceWatermark
from streams.replay.sequencer import Released, Sequencer, Span
from tests.test_streams.core_helpers import MINUTE, T0, Clock, customer, quote

pytestmark = pytest.mark.unit

Q, C = "q", "c"
SOURCES = {Q: "qms", C: "crm"}


@dataclass
class History:
    """What a CDC wrote: records per partition, and watermark records in topic order."""

    records: dict[tuple[str, int], list[tuple[int, Change]]]
    watermarks: list[SourceWatermark]

    def spans(self) -> dict[tuple[str, int], Span]:
        return {tp: Span(0, len(rs)) for tp, rs in self.records.items()}


@st.composite
def histories(draw: st.DrawFn) -> History:
    clock = Clock()
    records: dict[tuple[str, int], list[tuple[int, Change]]] = {
        (Q, 0): [], (Q, 1): [], (C, 0): []}  # fmt: skip
    watermarks: list[SourceWatermark] = []
    t = T0
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.integers(0, 3)) * MINUTE
        kind = draw(st.sampled_from(["quote", "quote", "customer", "mark"]))
        customer_id = draw(st.integers(1, 4))
        if kind == "mark":
            source = draw(st.sampled_from(["qms", "crm"]))
            topic = Q if source == "qms" else C
            ends = {p: len(rs) for (tp, p), rs in records.items() if tp == topic}
            watermarks.append(SourceWatermark(source, t, ends))
        elif kind == "customer":
            change: Change = clock.customer(customer(customer_id), at=t, customer_id=customer_id)
            records[(C, 0)].append((len(records[(C, 0)]), change))
        else:
            quote_id = draw(st.integers(1, 6))
            change = clock.quote(quote(quote_id, customer_id=customer_id, at=t))
            tp = (Q, draw(st.integers(0, 1)))
            records[tp].append((len(records[tp]), change))
    return History(records, watermarks)


def feed_in_order(history: History, order: list[int]) -> list[Released]:
    """Feed the history as a reader might: ``order`` picks the next source of input (a
    partition, or the watermark topic) each time; each keeps its own order."""
    sequencer = Sequencer(SOURCES, history.spans())
    queues: list[list[tuple[str, int, int, Change] | SourceWatermark]] = [
        [(tp[0], tp[1], offset, change) for offset, change in rs]
        for tp, rs in sorted(history.records.items())
    ]  # fmt: skip
    queues.append(list(history.watermarks))
    released: list[Released] = []
    picks = iter(order)
    while any(queues):
        live = [q for q in queues if q]
        item = live[next(picks, 0) % len(live)].pop(0)
        if isinstance(item, SourceWatermark):
            sequencer.watermark(item)
        else:
            topic, partition, offset, change = item
            sequencer.changes(topic, partition, offset, (change,))
        released.extend(sequencer.release())
    for tp, span in history.spans().items():
        sequencer.reached(tp[0], tp[1], span.end)
    released.extend(sequencer.finish())
    return released


@settings(max_examples=300)
@given(history=histories(), order=st.lists(st.integers(0, 10), max_size=200))
def test_any_read_interleaving_releases_the_same_sequence(history: History,
                                                          order: list[int]) -> None:  # fmt: skip
    canonical = feed_in_order(history, [])
    assert feed_in_order(history, order) == canonical


@settings(max_examples=300)
@given(history=histories(), order=st.lists(st.integers(0, 10), max_size=200))
def test_a_watermark_comes_after_every_change_committed_before_it(
        history: History, order: list[int]) -> None:  # fmt: skip
    released = feed_in_order(history, order)
    every = [c for rs in history.records.values() for _, c in rs]
    changes = [r for r in released if not isinstance(r, int)]
    assert sorted(map(id, changes)) == sorted(map(id, every))
    for index, item in enumerate(released):
        if isinstance(item, int):
            before = {id(r) for r in released[:index] if not isinstance(r, int)}
            due = [c for c in every if c.position.commit_ms < item]
            assert all(id(c) in before for c in due)
    marks = [r for r in released if isinstance(r, int)]
    assert marks == sorted(set(marks))  # only forward, never twice


def test_the_watermark_waits_for_both_sources_and_for_every_listed_partition() -> None:
    clock = Clock()
    a = clock.quote(quote(1, at=T0))
    seq = Sequencer(SOURCES, {(Q, 0): Span(0, 1), (Q, 1): Span(0, 0), (C, 0): Span(0, 0)})
    seq.watermark(SourceWatermark("qms", T0 + MINUTE, {0: 1, 1: 0}))
    assert list(seq.release()) == []  # partition 0 not read up to offset 1 yet
    assert seq.waiting_for() == [(Q, 0)]
    seq.changes(Q, 0, 0, (a,))
    assert list(seq.release()) == [a]  # released, but the CRM has not spoken: no watermark
    seq.watermark(SourceWatermark("crm", T0 + 2 * MINUTE, {0: 0}))
    assert list(seq.release()) == [T0 + MINUTE]  # the minimum of both sources


def test_a_partition_a_record_does_not_list_holds_the_watermark() -> None:
    seq = Sequencer(SOURCES, {(Q, 0): Span(0, 0), (Q, 1): Span(0, 0), (C, 0): Span(0, 0)})
    seq.watermark(SourceWatermark("crm", T0, {0: 0}))
    seq.watermark(SourceWatermark("qms", T0, {0: 0}))  # partition 1 unknown
    assert list(seq.release()) == []
    seq.watermark(SourceWatermark("qms", T0 + MINUTE, {0: 0, 1: 0}))
    assert list(seq.release()) == [T0]


def test_a_time_end_stops_at_the_first_record_past_it_and_drops_the_tail() -> None:
    clock = Clock()
    a, b = clock.quote(quote(1, at=T0)), clock.quote(quote(2, at=T0 + 5 * MINUTE))
    seq = Sequencer(SOURCES, {(Q, 0): Span(0, 2), (C, 0): Span(0, 0)},
                    stop_after_ms=T0 + 2 * MINUTE, tail=False)  # fmt: skip
    seq.changes(Q, 0, 0, (a,))
    seq.changes(Q, 0, 1, (b,))
    seq.watermark(SourceWatermark("crm", T0 + MINUTE, {0: 0}))
    seq.watermark(SourceWatermark("qms", T0 + MINUTE, {0: 1}))
    seq.watermark(SourceWatermark("qms", T0 + 6 * MINUTE, {0: 2}))
    assert list(seq.finish()) == [a, T0 + MINUTE]
    assert seq.ended


def test_a_record_vouching_past_an_offset_end_ends_the_range_and_the_tail_is_released() -> None:
    clock = Clock()
    a, b = clock.quote(quote(1, at=T0)), clock.quote(quote(2, at=T0 + MINUTE))
    seq = Sequencer(SOURCES, {(Q, 0): Span(0, 2), (C, 0): Span(0, 0)})
    seq.changes(Q, 0, 0, (a,))
    seq.changes(Q, 0, 1, (b,))
    seq.reached(Q, 0, 2)
    seq.watermark(SourceWatermark("crm", T0 + 9 * MINUTE, {0: 0}))
    seq.watermark(SourceWatermark("qms", T0 + 30 * MINUTE, {0: 1}))
    assert list(seq.release()) == [a, T0 + 9 * MINUTE]
    seq.watermark(SourceWatermark("qms", T0 + 60 * MINUTE, {0: 5}))  # past the end: stop
    assert list(seq.finish()) == [b]  # the tail: in the range, vouched for by nothing
    assert seq.ended
