"""Following a requested snapshot from another process: where it stands, its rate and ETA.

`quoteflow snapshot` reads, every moment, the two things the CDC keeps about a
snapshot outside its memory: its state file (the progress record, keyed by the
request id, written once the slot confirmed each chunk) and its replication
slot (whether a `quoteflow cdc` reads it, and how far it confirmed). This
module turns a series of those readings into what a person wants to see; it
does no I/O, so every phase is unit-tested.

The phases, in the order a request usually goes through them:

``waiting``    the CDC has not reached the request in the WAL yet
``no-cdc``     no `quoteflow cdc` reads the slot: the request waits in it
``running``    the snapshot runs (``paused`` when its CDC stopped mid-way:
               the next one resumes after the last confirmed chunk)
``done``, ``cancelled``, ``failed``, ``ignored``   how it ended (failed: its
               filter failed on a row; ignored: another snapshot was running
               when the CDC met the request)
``lost``       the slot confirmed past the request, yet the state file never
               named it: this process reads another state file than the CDC
               (``cdc.state_dir``, ``cdc.slot_prefix``)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from connectors.cdc.watermarks import SnapshotState

Phase = Literal[
    "waiting", "no-cdc", "running", "paused", "done", "cancelled", "failed", "ignored", "lost"
]
#: Phases after which there is nothing more to follow.
FINAL: frozenset[Phase] = frozenset({"done", "cancelled", "failed", "ignored", "lost"})

#: The rate is measured over this window: long enough to smooth chunk steps, short
#: enough to follow pacing changes.
RATE_WINDOW_S = 20.0
#: How long the slot must stay confirmed past the request, the request unseen, before
#: the follower calls it lost: the CDC writes its state file just after confirming.
LOST_AFTER_S = 5.0


@dataclass(frozen=True)
class Reading:
    """One look at the CDC's bookkeeping, at monotonic time ``at``."""

    at: float
    state: SnapshotState | None
    slot_active: bool
    confirmed_lsn: int


@dataclass(frozen=True)
class View:
    """What the follower shows after a reading."""

    phase: Phase
    rows: int = 0
    chunks: int = 0
    rows_per_s: float | None = None
    eta_s: float | None = None
    note: str = ""

    @property
    def final(self) -> bool:
        return self.phase in FINAL


class Follower:
    """The view of snapshot ``request_id`` from successive readings.

    ``request_lsn`` is where the request sits in the WAL, when known (it is, right
    after ``quoteflow snapshot`` wrote it; not when following again by id), and
    ``total`` the rows the snapshot should read, when known.
    """

    def __init__(self, request_id: str, *, request_lsn: int | None, total: int | None) -> None:
        self.request_id = request_id
        self.request_lsn = request_lsn
        self.total = total
        self._samples: deque[tuple[float, int]] = deque()
        self._passed_since: float | None = None

    def see(self, reading: Reading) -> View:
        state = reading.state
        if state is not None and state.snapshot_id == self.request_id:
            return self._ours(reading, state)
        past = state.outcome_of(self.request_id) if state is not None else None
        if past is not None:
            return View(past.outcome, past.rows, past.chunks, note=past.note)
        if self._lost(reading):
            return View(
                "lost",
                note="the CDC went past the request but its state file never named it:"
                " is this the CDC's cdc.state_dir and cdc.slot_prefix?",
            )
        if not reading.slot_active:
            return View("no-cdc", note="no `quoteflow cdc` is running: the request waits")
        return View("waiting", note="the CDC has not reached the request yet")

    def _ours(self, reading: Reading, state: SnapshotState) -> View:
        self._samples.append((reading.at, state.rows))
        while len(self._samples) > 2 and reading.at - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        if state.done:
            return View(state.outcome, state.rows, state.chunks, note=state.failed or "")
        rate = self.rate()
        eta = None
        if rate and self.total is not None:
            eta = max(0, self.total - state.rows) / rate
        if not reading.slot_active:
            note = "its `quoteflow cdc` stopped: the next one resumes after the last chunk"
            return View("paused", state.rows, state.chunks, None, None, note)
        return View("running", state.rows, state.chunks, rate, eta)

    def rate(self) -> float | None:
        """Rows a second over the window (None until two readings a moment apart)."""
        if len(self._samples) < 2:
            return None
        (t0, r0), (t1, r1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.5:
            return None
        return max(0.0, (r1 - r0) / (t1 - t0))

    def _lost(self, reading: Reading) -> bool:
        passed = self.request_lsn is not None and reading.confirmed_lsn > self.request_lsn
        if not passed:
            self._passed_since = None
            return False
        if self._passed_since is None:
            self._passed_since = reading.at
        return reading.at - self._passed_since >= LOST_AFTER_S
