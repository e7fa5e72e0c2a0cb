"""The due index against the obvious answer: a scan of every customer's due time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.due import DueIndex

pytestmark = pytest.mark.unit

ops = st.lists(
    st.tuples(st.integers(0, 20), st.one_of(st.none(), st.integers(0, 100)), st.integers(0, 100)),
    max_size=200,
)


def _against_a_scan(steps: list[tuple[int, int | None, int]], *, take: bool) -> None:
    """Every answer of ``ready`` (or ``take``: the customers leave until set again) is
    what a scan of every customer's due time says."""
    index, truth = DueIndex(), dict[int, int]()
    for customer_id, due_ms, now_ms in steps:
        index.set(customer_id, due_ms)
        if due_ms is None:
            truth.pop(customer_id, None)
        else:
            truth[customer_id] = due_ms
        expected = sorted((at, c) for c, at in truth.items() if at <= now_ms)
        answer = index.take(now_ms) if take else index.ready(now_ms)
        assert answer == [c for _, c in expected]
        if take:
            for _, c in expected:
                del truth[c]
        assert len(index) == len(truth)


@given(ops)
def test_ready_is_what_a_scan_of_every_due_time_says(
    steps: list[tuple[int, int | None, int]],
) -> None:
    _against_a_scan(steps, take=False)


@given(ops)
def test_take_is_what_a_scan_of_every_due_time_says(
    steps: list[tuple[int, int | None, int]],
) -> None:
    _against_a_scan(steps, take=True)


@given(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**45), 2**45)),
                max_size=50))  # fmt: skip
def test_any_avro_long_customer_and_any_time_orders_as_the_pair(
    entries: list[tuple[int, int]],
) -> None:
    index = DueIndex()
    for customer_id, due_ms in entries:
        index.set(customer_id, due_ms)
    expected = sorted((at, c) for c, at in index.due.items())
    assert index.ready(2**45) == [c for _, c in expected]


def test_a_customer_id_past_an_avro_long_is_refused() -> None:
    with pytest.raises(ValueError, match="Avro long"):
        DueIndex().set(2**63, 1)


def test_stale_entries_are_dropped_when_they_pile_up() -> None:
    index = DueIndex()
    for k in range(5_000):
        index.set(1, k)  # one customer, moved 5,000 times
    assert len(index._heap) <= 2 * len(index) + 1024
    assert index.ready(10_000) == [1]


@given(st.dictionaries(st.integers(0, 50), st.integers(0, 100), max_size=40), st.integers(1, 10))
def test_a_limited_ready_is_the_earliest_of_the_full_answer(due: dict[int, int],
                                                           limit: int) -> None:  # fmt: skip
    """A bounded round decides the earliest due first; the rest come next round."""
    index = DueIndex()
    for customer_id, at in due.items():
        index.set(customer_id, at)
    everything = index.ready(60)
    assert index.ready(60, limit) == everything[:limit]
    for customer_id in everything[:limit]:
        index.set(customer_id, None)  # decided
    assert index.ready(60) == everything[limit:]
