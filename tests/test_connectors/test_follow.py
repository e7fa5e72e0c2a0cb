"""Following a snapshot from its progress record: every phase, the rate and the ETA.

The follower sees only what another process can see (the CDC's state file
and its slot), so these readings are built by hand, as the CDC would leave
them at each moment of a request's life.
"""

from __future__ import annotations

import pytest

from connectors.cdc.follow import LOST_AFTER_S, Follower, Reading
from connectors.cdc.watermarks import PastSnapshot, SnapshotState

pytestmark = pytest.mark.unit

ID = "0123456789ab"


def _state(snapshot_id: str = ID, **fields: object) -> SnapshotState:
    return SnapshotState(snapshot_id, "public.quotes", "incremental", **fields)  # type: ignore[arg-type]


def _read(at: float, state: SnapshotState | None, *, active: bool = True, lsn: int = 0) -> Reading:
    return Reading(at, state, active, lsn)


def test_before_the_cdc_meets_the_request_it_waits_and_says_whether_a_cdc_runs() -> None:
    follower = Follower(ID, request_lsn=1_000, total=100)
    assert follower.see(_read(0, None)).phase == "waiting"
    assert follower.see(_read(1, _state("other", rows=5))).phase == "waiting"
    no_cdc = follower.see(_read(2, None, active=False))
    assert no_cdc.phase == "no-cdc" and "waits" in no_cdc.note


def test_running_shows_rows_chunks_rate_and_eta() -> None:
    follower = Follower(ID, request_lsn=None, total=1_000)
    first = follower.see(_read(0, _state(rows=0, chunks=0)))
    assert (first.phase, first.rows_per_s, first.eta_s) == ("running", None, None)
    view = follower.see(_read(2, _state(rows=200, chunks=2)))
    assert (view.phase, view.rows, view.chunks) == ("running", 200, 2)
    assert view.rows_per_s == pytest.approx(100.0)
    assert view.eta_s == pytest.approx(8.0)  # 800 rows left at 100 rows/s


def test_the_rate_forgets_readings_older_than_its_window() -> None:
    follower = Follower(ID, request_lsn=None, total=None)
    follower.see(_read(0, _state(rows=0)))
    follower.see(_read(30, _state(rows=30_000)))  # fast at first
    view = follower.see(_read(60, _state(rows=30_600)))  # then slow
    assert view.rows_per_s == pytest.approx(20.0)
    assert view.eta_s is None  # no total, no ETA


def test_a_cdc_stopped_mid_snapshot_pauses_it() -> None:
    follower = Follower(ID, request_lsn=None, total=10)
    view = follower.see(_read(0, _state(rows=5, chunks=1), active=False))
    assert view.phase == "paused" and "resumes" in view.note and view.rows == 5


@pytest.mark.parametrize(("cancelled", "phase"), [(False, "done"), (True, "cancelled")])
def test_the_end_of_the_snapshot_is_final(cancelled: bool, phase: str) -> None:
    follower = Follower(ID, request_lsn=None, total=10)
    view = follower.see(_read(0, _state(rows=10, chunks=2, done=True, cancelled=cancelled)))
    assert (view.phase, view.rows, view.final) == (phase, 10, True)


def test_an_outcome_in_the_past_is_found_after_another_snapshot_started() -> None:
    follower = Follower(ID, request_lsn=None, total=None)
    later = _state("later", past=[PastSnapshot(ID, "done", rows=42, chunks=3)])
    view = follower.see(_read(0, later))
    assert (view.phase, view.rows, view.chunks, view.final) == ("done", 42, 3, True)


def test_a_request_met_while_another_snapshot_ran_is_ignored() -> None:
    follower = Follower(ID, request_lsn=None, total=None)
    note = "snapshot other was running"
    view = follower.see(_read(0, _state("other", past=[PastSnapshot(ID, "ignored", note=note)])))
    assert view.phase == "ignored" and view.final and view.note == note


def test_a_slot_past_the_request_without_a_record_of_it_is_lost_only_after_a_while() -> None:
    follower = Follower(ID, request_lsn=1_000, total=None)
    assert follower.see(_read(0, None, lsn=1_001)).phase == "waiting"  # the file may lag
    assert follower.see(_read(LOST_AFTER_S - 1, None, lsn=1_001)).phase == "waiting"
    lost = follower.see(_read(LOST_AFTER_S, None, lsn=1_001))
    assert lost.phase == "lost" and lost.final and "state_dir" in lost.note


def test_without_the_requests_position_nothing_is_called_lost() -> None:
    follower = Follower(ID, request_lsn=None, total=None)
    assert follower.see(_read(0, None, lsn=10**9)).phase == "waiting"
    assert follower.see(_read(100, None, lsn=10**9)).phase == "waiting"


def test_a_filter_that_failed_on_a_row_ends_the_snapshot_with_the_reason() -> None:
    follower = Follower(ID, request_lsn=None, total=10)
    view = follower.see(_read(0, _state(rows=3, done=True, failed="division by zero")))
    assert (view.phase, view.final, view.note) == ("failed", True, "division by zero")
