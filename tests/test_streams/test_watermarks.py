"""The watermark through repartitioning: markers sent when safe, the minimum taken."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.watermarks import (
    Marker,
    SourceWatermark,
    Watermarks,
    newest_ready_markers,
    ready_markers,
)

pytestmark = pytest.mark.unit

W = SourceWatermark("qms", 5_000, {0: 10, 1: 3})


def test_a_marker_only_once_the_partition_is_read_to_the_offset() -> None:
    assert ready_markers(W, {0: 9, 1: 3}, {}) == [Marker("qms", 1, 5_000)]
    assert ready_markers(W, {0: 10, 1: 3}, {}) == [Marker("qms", 0, 5_000), Marker("qms", 1, 5_000)]


def test_a_partition_the_record_does_not_list_holds() -> None:
    """Absent means unknown (e.g. a CDC that restarted and wrote nothing there yet), never
    empty: an acceptance on that partition may still be in flight."""
    assert ready_markers(W, {2: 0}, {}) == []
    assert ready_markers(W, {2: 1_000_000}, {}) == []
    assert ready_markers(SourceWatermark("qms", 5_000, {}), {0: 10}, {}) == []


def test_an_older_record_that_lists_the_partition_still_moves_it() -> None:
    history = [SourceWatermark("qms", 1_000, {0: 5, 2: 4}), SourceWatermark("qms", 2_000, {0: 8})]
    assert newest_ready_markers(history, {0: 8, 2: 4}, {}) == [
        Marker("qms", 0, 2_000), Marker("qms", 2, 1_000)]


def test_markers_only_move_forward() -> None:
    assert ready_markers(W, {0: 10}, {0: 5_000}) == []
    assert ready_markers(W, {0: 10}, {0: 6_000}) == []


def test_the_watermark_is_the_minimum_once_every_partition_spoke() -> None:
    marks = Watermarks.expecting({"qms": 2, "crm": 1})
    marks = marks.with_markers([Marker("qms", 0, 100), Marker("qms", 1, 90)])
    assert marks.watermark_ms == 0  # crm has not spoken
    assert marks.lagging() == [("crm", 0)]
    marks = marks.with_markers([Marker("crm", 0, 95), Marker("qms", 1, 80)])  # older: ignored
    assert marks.watermark_ms == 90
    assert marks.lagging() == [("qms", 1)]
    assert marks.with_markers([Marker("other", 0, 1)]).seen == marks.seen


@given(
    markers=st.lists(
        st.builds(Marker, st.sampled_from(["qms", "crm"]), st.integers(0, 2),
                  st.integers(1, 10_000)),
        max_size=40,
    )
)  # fmt: skip
def test_the_watermark_never_goes_back_and_never_passes_a_partition(
    markers: list[Marker],
) -> None:
    marks = Watermarks.expecting({"qms": 3, "crm": 2})
    last = 0
    for marker in markers:
        marks = marks.with_markers([marker])
        assert marks.watermark_ms >= last
        last = marks.watermark_ms
        for key in marks.expected:
            assert marks.watermark_ms <= marks.seen.get(key, 0) or marks.watermark_ms == 0


def test_the_newest_record_passed_is_the_marker_sent() -> None:
    history = [SourceWatermark("qms", 1_000, {0: 5, 1: 2}),
               SourceWatermark("qms", 2_000, {0: 8, 1: 2}),
               SourceWatermark("qms", 3_000, {0: 12, 1: 4})]  # fmt: skip
    # Partition 0 committed up to 9: the 2,000 record, not the newest; partition 1 is past all.
    assert newest_ready_markers(history, {0: 9, 1: 4}, {}) == [
        Marker("qms", 0, 2_000), Marker("qms", 1, 3_000)]
    # Nothing newer than what was sent, and nothing the position has not passed.
    assert newest_ready_markers(history, {0: 9, 1: 1}, {0: 2_000}) == []
    assert newest_ready_markers([], {0: 9}, {}) == []
