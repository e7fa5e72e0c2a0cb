"""The CDC's side of requests, without a database: what each one does to the snapshot state.

A request starts a snapshot under its id and with its filter; one met while a
snapshot runs is ignored and the state says so (a follower would otherwise wait
for ever); a cancellation stops only the snapshot it names. Each change reaches
the state file only once the slot confirmed past the request's transaction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.cdc import pgoutput as pg
from connectors.cdc.events import Capture
from connectors.cdc.interleave import Interleave
from connectors.cdc.progress import Txn
from connectors.cdc.requests import SIGNAL_PREFIX, CancelRequest, SnapshotRequest, encode
from connectors.cdc.snapshot import load_state
from connectors.cdc.stats import Stats
from connectors.cdc.watermarks import SnapshotState
from quoteflow.settings import CdcSettings

pytestmark = pytest.mark.unit

CAPTURE = Capture("public", "quotes", "qms.public.quotes", "k", "v", ("quote_id",), "qms", "qms",
                  False)  # fmt: skip
WHERE = "status = 'QUOTED'"


def _interleave(
    tmp_path: Path, snapshot: SnapshotState | None = None, slot: str | None = None
) -> Interleave:
    return Interleave(CdcSettings(), "dbname=none", CAPTURE, snapshot, tmp_path / "s.json",
                      Stats(), slot=slot)  # fmt: skip


def _message(request: SnapshotRequest | CancelRequest) -> pg.LogicalMessage:
    return pg.LogicalMessage(True, 100, SIGNAL_PREFIX, encode(request).encode())


def _txn(end_lsn: int) -> Txn:
    return Txn(end_lsn=end_lsn)


def test_a_request_starts_a_snapshot_under_its_id_saved_once_confirmed(tmp_path: Path) -> None:
    interleave = _interleave(tmp_path)
    interleave.signal(_message(SnapshotRequest("public.quotes", "aaaaaa", WHERE)), _txn(200))
    state = interleave.snapshot
    assert state is not None and (state.snapshot_id, state.where) == ("aaaaaa", WHERE)
    assert state.kind == "incremental" and not state.done and state.started_ms > 0
    interleave.confirmed(199)
    assert load_state(tmp_path / "s.json") is None  # not before the slot passed the request
    interleave.confirmed(200)
    assert load_state(tmp_path / "s.json") == state


def test_another_tables_request_is_not_ours(tmp_path: Path) -> None:
    interleave = _interleave(tmp_path)
    interleave.signal(_message(SnapshotRequest("public.customers", "aaaaaa")), _txn(200))
    assert interleave.snapshot is None


def test_a_request_for_another_slots_cdc_is_not_ours(tmp_path: Path) -> None:
    interleave = _interleave(tmp_path, slot="mine_qms")
    other = SnapshotRequest("public.quotes", "aaaaaa", WHERE, "theirs_qms")
    interleave.signal(_message(other), _txn(200))
    assert interleave.snapshot is None
    interleave.signal(_message(CancelRequest("public.quotes", "aaaaaa", "theirs_qms")), _txn(250))
    mine = SnapshotRequest("public.quotes", "bbbbbb", WHERE, "mine_qms")
    interleave.signal(_message(mine), _txn(300))
    assert interleave.snapshot is not None and interleave.snapshot.snapshot_id == "bbbbbb"


def test_a_request_while_one_runs_is_ignored_and_recorded(tmp_path: Path) -> None:
    running = SnapshotState("aaaaaa", "public.quotes", "incremental", rows=10)
    interleave = _interleave(tmp_path, running)
    interleave.signal(_message(SnapshotRequest("public.quotes", "bbbbbb", WHERE)), _txn(200))
    state = interleave.snapshot
    assert state is not None and state.snapshot_id == "aaaaaa" and state.rows == 10
    ignored = state.outcome_of("bbbbbb")
    assert ignored is not None and ignored.outcome == "ignored" and "aaaaaa" in ignored.note


def test_a_new_request_after_a_finished_one_remembers_how_it_ended(tmp_path: Path) -> None:
    done = SnapshotState("aaaaaa", "public.quotes", "incremental", rows=7, chunks=1, done=True)
    interleave = _interleave(tmp_path, done)
    interleave.signal(_message(SnapshotRequest("public.quotes", "bbbbbb")), _txn(200))
    state = interleave.snapshot
    assert state is not None and state.snapshot_id == "bbbbbb" and state.where is None
    past = state.outcome_of("aaaaaa")
    assert past is not None and (past.outcome, past.rows) == ("done", 7)


def test_a_cancellation_stops_only_the_snapshot_it_names(tmp_path: Path) -> None:
    running = SnapshotState("aaaaaa", "public.quotes", "incremental", rows=10)
    interleave = _interleave(tmp_path, running)
    interleave.signal(_message(CancelRequest("public.quotes", "cccccc")), _txn(200))
    assert interleave.snapshot is not None and not interleave.snapshot.done
    interleave.signal(_message(CancelRequest("public.quotes", "aaaaaa")), _txn(300))
    state = interleave.snapshot
    assert state is not None and state.done and state.cancelled and state.rows == 10
    assert state.outcome == "cancelled"
    interleave.confirmed(300)
    saved = load_state(tmp_path / "s.json")
    assert saved is not None and saved.cancelled
