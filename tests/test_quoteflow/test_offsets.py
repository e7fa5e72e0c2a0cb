"""``quoteflow.offsets``: a commit goes up to the first unfinished offset, never past it.

Committing too far loses work for good (a restart resumes after records never
finished); committing too little only repeats some. So the properties pin
safety first: whatever the order offsets finish in, the committable offset is
the first read offset not done (or the next to read when all are), it never
moves backwards, and ``pending`` counts what is read and not done.
``contiguous_run`` is the same rule where no offset is skipped.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quoteflow.offsets import InFlightOffsets, contiguous_run

pytestmark = pytest.mark.unit


def test_nothing_read_nothing_to_commit() -> None:
    track = InFlightOffsets()
    assert track.committable() is None
    assert track.pending == 0


def test_a_commit_waits_for_the_first_unfinished_offset() -> None:
    track = InFlightOffsets()
    for offset in (10, 11, 14):  # 12 and 13: transaction markers, never read
        track.read(offset)
    track.done(11)
    track.done(14)
    assert track.committable() == 10
    assert track.pending == 1
    track.done(10)
    assert track.committable() == 15
    assert track.pending == 0


@st.composite
def reads_and_finishes(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Increasing offsets with gaps, and the order a subset of them finishes in."""
    start = draw(st.integers(0, 1_000))
    gaps = draw(st.lists(st.integers(1, 3), max_size=40))
    offsets = [start]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    finished = draw(st.lists(st.sampled_from(offsets), unique=True))
    return offsets, finished


@given(reads_and_finishes(), st.data())
def test_the_committable_offset_is_the_first_read_one_not_done(
    case: tuple[list[int], list[int]], data: st.DataObject
) -> None:
    offsets, finished = case
    track = InFlightOffsets()
    read: list[int] = []
    done: set[int] = set()
    last: int | None = None
    # Reads and finishes interleave: an offset finishes only once read.
    pending_reads, pending_done = list(offsets), list(finished)
    while pending_reads or pending_done:
        ready = [o for o in pending_done if o in read]
        if not ready or (pending_reads and data.draw(st.booleans())):
            offset = pending_reads.pop(0)
            track.read(offset)
            read.append(offset)
        else:
            offset = data.draw(st.sampled_from(ready))
            pending_done.remove(offset)
            track.done(offset)
            done.add(offset)
        unfinished = [o for o in read if o not in done]
        expected = unfinished[0] if unfinished else read[-1] + 1
        committable = track.committable()
        assert committable == expected
        assert last is None or committable >= last
        assert all(o in done for o in read if o < committable)
        assert track.pending == len(unfinished)
        last = committable


@given(st.lists(st.integers(0, 60), max_size=50))
def test_the_contiguous_run_stops_at_the_first_missing_offset(offsets: list[int]) -> None:
    run, rest = contiguous_run(offsets)
    assert run + rest == sorted(set(offsets))
    if not offsets:
        assert run == []
        return
    assert run[0] == min(offsets)
    assert run == list(range(run[0], run[-1] + 1))
    assert run[-1] + 1 not in offsets
    assert all(o > run[-1] + 1 for o in rest)
