"""The incremental snapshot's pure parts: watermark and signal messages, chunks, state.

A chunk forgets the rows of keys changed inside its window (never outside it),
and the saved state round-trips through its file form, so a resumed snapshot
continues after the right key.
"""

from __future__ import annotations

import pytest

from connectors.cdc.watermarks import (
    PAST_KEPT,
    Chunk,
    PastSnapshot,
    SnapshotState,
    parse_watermark,
    snapshot_marker,
    watermark,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("mark", ["low", "high"])
def test_a_watermark_round_trips(mark: str) -> None:
    assert parse_watermark(watermark("c1", mark).encode()) == ("c1", mark)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"[]", b'{"chunk": "c"}', b'{"chunk": "c", "mark": "mid"}']
)
def test_other_messages_are_not_watermarks(content: bytes) -> None:
    assert parse_watermark(content) is None


def _chunk() -> Chunk:
    rows = {(1,): {"quote_id": 1}, (2,): {"quote_id": 2}, (3,): {"quote_id": 3}}
    return Chunk("c", 1, rows, ["3"], final=False)


def test_changes_before_the_low_watermark_leave_the_chunk_alone() -> None:
    chunk = _chunk()
    chunk.changed([(1,), (2,)])
    assert list(chunk.rows) == [(1,), (2,), (3,)]


def test_changes_inside_the_window_drop_their_keys_and_nothing_else() -> None:
    chunk = _chunk()
    chunk.window_open = True
    chunk.changed([(2,), (99,)])
    assert list(chunk.rows) == [(1,), (3,)]


def test_the_state_round_trips_through_its_file_form() -> None:
    state = SnapshotState("s1", "public.quotes", "incremental", ["42", "x"], 3, 300, False)
    assert SnapshotState.from_json(state.to_json()) == state
    with pytest.raises((ValueError, KeyError)):
        SnapshotState.from_json("[]")


def test_the_progress_record_round_trips_with_its_filter_times_and_past() -> None:
    past = [PastSnapshot("a1", "done", 10, 1, 5), PastSnapshot("b2", "ignored", note="x ran")]
    state = SnapshotState(
        "c3", "public.quotes", "incremental", ["7"], 2, 9, False, where="status = 'QUOTED'",
        cancelled=False, started_ms=1, updated_ms=2, past=past,
    )  # fmt: skip
    assert SnapshotState.from_json(state.to_json()) == state


def test_a_state_file_of_an_older_quoteflow_still_loads() -> None:
    old = '{"snapshot_id": "s1", "table": "public.quotes", "kind": "initial", "last_key": null,'
    old += ' "chunks": 1, "rows": 5, "done": false, "history": []}'
    state = SnapshotState.from_json(old)
    assert (state.where, state.past, state.rows) == (None, [], 5)


def test_the_past_keeps_the_newest_and_finds_an_outcome_by_id() -> None:
    state = SnapshotState("now", "public.quotes", "incremental")
    for n in range(PAST_KEPT + 5):
        state.past = state.remember(PastSnapshot(f"id{n}", "done", rows=n))
    assert len(state.past) == PAST_KEPT
    assert state.outcome_of("id0") is None
    found = state.outcome_of(f"id{PAST_KEPT + 4}")
    assert found is not None and found.rows == PAST_KEPT + 4
    ended = SnapshotState("x", "t", "incremental", rows=3, chunks=1, cancelled=True).ended(9)
    assert ended == PastSnapshot("x", "cancelled", 3, 1, 9)


def test_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        PastSnapshot.from_dict({"snapshot_id": "x", "outcome": "maybe"})


@pytest.mark.parametrize(
    ("kind", "first", "last", "expected"),
    [
        ("initial", True, False, "first"),
        ("initial", False, False, "true"),
        ("initial", False, True, "last"),
        ("initial", True, True, "first"),
        ("incremental", True, True, "incremental"),
    ],
)
def test_snapshot_markers_are_debeziums(kind: str, first: bool, last: bool, expected: str) -> None:
    assert snapshot_marker(kind, first=first, last=last) == expected


def test_a_heartbeat_carries_the_server_clock_and_junk_is_none() -> None:
    from connectors.cdc.watermarks import parse_heartbeat

    assert parse_heartbeat(b"1795401000544") == 1_795_401_000_544
    assert parse_heartbeat(b"soon") is None


def test_a_source_watermark_lists_partitions_in_order_and_encodes() -> None:
    from connectors.cdc.watermarks import source_watermark
    from schemas.embedded import EmbeddedSerde

    record = source_watermark("qms", "qms.public.quotes", 1_000, 42, {3: 7, 0: 12}, 1_010)
    assert record["offsets"] == [{"partition": 0, "offset": 12}, {"partition": 3, "offset": 7}]
    data = EmbeddedSerde().encode("cdc_watermark", record, topic="quoteflow.cdc.watermarks")
    decoded = EmbeddedSerde().decode("cdc_watermark", data, topic="quoteflow.cdc.watermarks")
    assert decoded == record
