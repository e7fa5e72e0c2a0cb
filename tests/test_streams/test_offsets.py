"""The commit offset after transaction markers (streams.transactions._contiguous_new_offset).

Pure: the function reads and updates a faust consumer's bookkeeping (acknowledged
offsets, recorded gaps, last committed offset), here a plain object holding it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st
from intervaltree import IntervalTree

from streams import transactions
from streams.transactions import HOLE_FILL_S, _contiguous_new_offset

pytestmark = pytest.mark.unit

TP0 = TP("by-customer", 0)


@dataclass
class Books:
    _acked: dict[TP, list[int]] = field(default_factory=lambda: defaultdict(list))
    _acked_index: dict[TP, set[int]] = field(default_factory=lambda: defaultdict(set))
    _gap: dict[TP, IntervalTree] = field(default_factory=lambda: defaultdict(IntervalTree))
    _committed_offset: dict[TP, Any] = field(default_factory=lambda: defaultdict(lambda: None))
    _read_offset: dict[TP, Any] = field(default_factory=dict)
    last_read: int | None = None

    def read(self, offsets: list[int]) -> None:
        """Consume and acknowledge ``offsets`` in order, recording gaps as faust does."""
        last = self.last_read
        for offset in offsets:
            if last and offset - last > 1:  # faust: r_offset + 1 .. offset, end exclusive + 1
                committed = self._committed_offset[TP0]
                start = max(last + 1, committed + 1) if committed is not None else last + 1
                self._gap[TP0].addi(start, offset + 1)
                self._gap[TP0].merge_overlaps()
            self._acked[TP0].append(offset)
            self._acked_index[TP0].add(offset)
            last = offset
        self.last_read = last

    def commit(self) -> int | None:
        offset = _contiguous_new_offset(self, TP0)
        if offset is not None:
            self._committed_offset[TP0] = offset
        return offset


def test_one_commit_passes_every_transaction_marker() -> None:
    # Records 0-3, a marker at 4, records 5-8, a marker at 9, records 10-12.
    books = Books()
    books.read([0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12])
    assert books.commit() == 13
    assert books._acked[TP0] == []
    assert books._acked_index[TP0] == set()


def test_an_unacknowledged_record_holds_the_commit_before_it() -> None:
    books = Books()
    books.read([0, 1, 2])
    books._acked[TP0].remove(1)  # still being processed
    assert books.commit() == 1
    books._acked[TP0].append(1)
    assert books.commit() == 3


@given(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=60),
       st.integers(min_value=1, max_value=5))  # fmt: skip
def test_committing_in_any_rhythm_ends_past_the_last_record(steps: list[int], every: int) -> None:
    """Offsets with holes of one or two markers; commits every ``every`` records or so:
    the last commit is the last record's offset + 1, and never goes backwards."""
    offsets, offset = [], 0
    for step_ in steps:
        offset += step_
        offsets.append(offset)
    books, committed = Books(), 0
    for start in range(0, len(offsets), every):
        books.read(offsets[start:start + every])
        result = books.commit()
        if result is not None:
            assert result >= committed
            committed = result
    books.commit()
    assert books._committed_offset[TP0] == offsets[-1] + 1
    assert books._acked[TP0] == []


def test_a_hole_nothing_fills_is_committed_past_well_before_the_fence(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen after a restart on a ten-minute backlog: faust's recovery resumed a partition
    before it set the read offset gaps are measured from, so the transaction markers right
    after the committed offset were never recorded as a gap. Nothing of the partition
    committed, its transaction stayed open, and the broker fenced it at 60 s. Offsets
    before the first acknowledged one were never delivered (a partition's events are
    handled in order): after HOLE_FILL_S the commit passes them, with a warning."""
    now = [1000.0]
    monkeypatch.setattr(transactions, "clock", lambda: now[0])
    books = Books()
    books._committed_offset[TP0] = 990
    books._read_offset[TP0] = 996
    books.read([995, 996])  # 990-994 never delivered, no gap recorded for them
    with caplog.at_level("WARNING", logger="quoteflow.streams"):
        assert books.commit() is None  # a record still in processing closes it soon
        now[0] += HOLE_FILL_S - 0.1
        books.read([997])
        assert books.commit() is None
        assert caplog.records == []
        now[0] += 0.1
        assert books.commit() == 998
    (record,) = caplog.records
    assert "never delivered" in record.getMessage()
    assert (record.partition, record.committed, record.first_acked) == (0, 990, [995, 996, 997])
    assert books._acked[TP0] == []
    # The next hole starts its own clock.
    books._acked[TP0].append(1001)
    assert books.commit() is None


def test_a_hole_that_closes_in_time_commits_without_skipping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    monkeypatch.setattr(transactions, "clock", lambda: now[0])
    books = Books()
    books._committed_offset[TP0] = 10
    books.read([12, 13])
    assert books.commit() is None
    now[0] += 1
    books._acked[TP0].append(11)  # the record in processing is acknowledged
    assert books.commit() == 14
    now[0] += HOLE_FILL_S * 2  # its clock was reset: a later hole waits its own time
    books._acked[TP0].append(16)  # 14-15 not delivered, no gap recorded
    assert books.commit() is None
