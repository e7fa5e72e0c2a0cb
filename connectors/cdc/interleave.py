"""A stream's snapshot, interleaved with its changes: chunks selected between WAL watermarks.

The algorithm is in :mod:`connectors.cdc.watermarks`; this is its moving part:
select a chunk when the stream has room, drop the keys the WAL changes inside
the chunk's window, emit what is left at its high watermark, and save the
snapshot's progress only once the slot confirmed past it (a crash replays it).

Requests (:mod:`connectors.cdc.requests`) start a snapshot, filtered by their
``where``, under their id, or cancel the one running; a request met while
another snapshot runs is ignored, and the state file says so, since the
operator following it would otherwise wait for ever.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from connectors.cdc import pgoutput as pg
from connectors.cdc import requests
from connectors.cdc.events import Capture, Event, Position, RowDecoder, read_events, source_block
from connectors.cdc.producing import Producing
from connectors.cdc.progress import Txn
from connectors.cdc.setup import Prepared
from connectors.cdc.snapshot import FilterFailed, Snapshotter, load_state, new_state, save_state
from connectors.cdc.stats import Stats
from connectors.cdc.watermarks import (
    Chunk,
    PastSnapshot,
    SnapshotState,
    parse_watermark,
    snapshot_marker,
)
from quoteflow import __version__
from quoteflow.settings import CdcSettings

log = logging.getLogger("quoteflow.cdc")


def snapshot_to_run(
    prepared: Prepared, capture: Capture, state_file: Path, *, never: bool
) -> SnapshotState | None:
    """A snapshot to run or resume: the initial one of a new slot, or one in progress
    (``never``: a new slot takes no initial snapshot)."""
    if prepared.created_slot:
        if never:
            state_file.unlink(missing_ok=True)  # a lost slot's state is meaningless
            return None
        initial = new_state(capture.qualified_name, "initial")
        save_state(state_file, initial)  # a crash before the first chunk still resumes
        return initial
    saved = load_state(state_file)
    return saved if saved is not None and not saved.done else None


class Interleave:
    """Owns the snapshot's state, its connection, the chunk out, and the checkpoints
    waiting for the slot's confirmation."""

    def __init__(
        self,
        cdc: CdcSettings,
        conninfo: str,
        capture: Capture,
        snapshot: SnapshotState | None,
        state_file: Path,
        stats: Stats,
        *,
        slot: str | None = None,
    ) -> None:
        """``slot``: this stream's, so it takes only requests for it (or for any)."""
        self._cdc, self._conninfo, self._capture, self._slot = cdc, conninfo, capture, slot
        self._state_file, self._stats = state_file, stats
        self.snapshot = snapshot
        self._snapshotter: Snapshotter | None = None
        self._decoder: RowDecoder | None = None
        self.chunk: Chunk | None = None
        #: (transaction, snapshot state after it): saved once the slot confirms past it.
        self._checkpoints: list[tuple[Txn, SnapshotState]] = []

    def maybe_select_chunk(self, pending: int) -> None:
        """Select the next chunk when a snapshot runs, none is out, and pacing allows
        (``pending``: events awaiting acknowledgement)."""
        state = self.snapshot
        if state is None or self.chunk is not None or state.done:
            return
        if self._snapshotter is None:
            cdc = self._cdc
            self._snapshotter = Snapshotter(
                self._conninfo, self._capture,
                chunk_rows=cdc.snapshot_chunk_rows, rows_per_s=cdc.snapshot_rows_per_s,
            )  # fmt: skip
            self._decoder = RowDecoder(self._snapshotter.relation(), self._capture)
            log.info(
                "snapshot running",
                extra={"table": state.table, "kind": state.kind, "snapshot": state.snapshot_id,
                       "resume_after": state.last_key, "filtered": state.where is not None},
            )  # fmt: skip
        if time.monotonic() < self._snapshotter.next_at:
            return
        if pending >= self._cdc.max_in_flight // 2:
            return
        assert self._decoder is not None
        try:
            self.chunk = self._snapshotter.select_chunk(state, state.chunks + 1, self._decoder)
        except FilterFailed as exc:
            self._fail(state, str(exc))

    def _fail(self, state: SnapshotState, reason: str) -> None:
        """The request's filter failed on a row: stop the snapshot, keep the stream.

        Raising would stop the CDC, and its restart would resume the same filter and fail
        again, for ever. The failure is saved with the chunks before it (once the slot
        confirmed them), or at once when none waits.
        """
        failed = dataclasses.replace(state, done=True, failed=reason, updated_ms=_now_ms())
        self.snapshot, self.chunk = failed, None
        self._stats.snapshot_done = True
        log.error("snapshot stopped: its filter failed",
                  extra={"snapshot": state.snapshot_id, "reason": reason})  # fmt: skip
        if self._checkpoints:
            self._checkpoints.append((self._checkpoints[-1][0], failed))
        else:
            save_state(self._state_file, failed)

    def read_timeout(self, longest: float) -> float:
        """How long to wait for the server: not past the moment the next chunk is due."""
        if self.snapshot is None or self.snapshot.done or self.chunk is not None:
            return longest
        due = self._snapshotter.next_at if self._snapshotter is not None else 0.0
        return min(longest, max(0.0, due - time.monotonic()))

    def changed(self, events: list[Event]) -> None:
        """Changes read from the WAL: inside a chunk's window, their keys' rows are stale."""
        if self.chunk is not None:
            self.chunk.changed(tuple(e.key.values()) for e in events if e.key is not None)

    def watermark(
        self,
        message: pg.LogicalMessage,
        position: Callable[[int], Position],
        producing: Producing,
    ) -> None:
        """A chunk's low watermark opens its window; its high one emits the rows left."""
        parsed = parse_watermark(message.content)
        chunk, state = self.chunk, self.snapshot
        if parsed is None or chunk is None or state is None or parsed[0] != chunk.chunk_id:
            return  # another process's, or a chunk a crash left behind: its rows were not kept
        if parsed[1] == "low":
            chunk.window_open = True
            return
        decoder = self._decoder
        assert decoder is not None
        rows = list(chunk.rows.values())
        now_ms = time.time_ns() // 1_000_000
        at = position(message.lsn)
        for index, row in enumerate(rows):
            marker = snapshot_marker(
                state.kind,
                first=state.rows == 0 and index == 0,
                last=chunk.final and index == len(rows) - 1,
            )
            block = source_block(self._capture, at, version=__version__, snapshot=marker)
            for event in read_events(decoder, row, block, now_ms):
                producing.produce(event)
        self._stats.snapshot_rows += len(rows)
        after = dataclasses.replace(
            state, last_key=chunk.last_key, chunks=state.chunks + 1,
            rows=state.rows + len(rows), done=chunk.final, updated_ms=now_ms,
        )  # fmt: skip
        assert producing.txn is not None  # a watermark is a transactional message
        self._checkpoints.append((producing.txn, after))
        self.snapshot, self.chunk = after, None
        if after.done:
            self._stats.snapshot_done = True
            log.info("snapshot complete", extra={"table": after.table, "rows": after.rows})

    def signal(self, message: pg.LogicalMessage, txn: Txn | None) -> None:
        """A request for this table: start a snapshot, or cancel the one running.

        Whatever it changes is saved once the slot confirmed past the request, like a
        chunk: a crash before that replays the request itself.
        """
        request = requests.parse(message.content)
        if request is None or not requests.for_slot(
            request, self._capture.qualified_name, self._slot
        ):
            return
        assert txn is not None  # a request is a transactional message
        current = self.snapshot
        if isinstance(request, requests.CancelRequest):
            if current is None or current.done or current.snapshot_id != request.request_id:
                return  # finished already, or never started: nothing to stop
            self.snapshot = dataclasses.replace(
                current, done=True, cancelled=True, updated_ms=_now_ms()
            )
            self.chunk = None  # its watermarks, when met, belong to no chunk
            self._stats.snapshot_done = True
            log.warning("snapshot cancelled", extra={"snapshot": current.snapshot_id,
                                                     "rows": current.rows})  # fmt: skip
        elif current is not None and not current.done:
            log.warning(
                "snapshot requested while one runs; ignored",
                extra={"table": request.table, "request": request.request_id,
                       "running": current.snapshot_id},
            )  # fmt: skip
            if request.request_id is None:
                return
            note = f"snapshot {current.snapshot_id} was running"
            ignored = PastSnapshot(request.request_id, "ignored", ended_ms=_now_ms(), note=note)
            self.snapshot = dataclasses.replace(current, past=current.remember(ignored))
        else:
            past = current.remember(current.ended(_now_ms())) if current is not None else []
            self.snapshot = new_state(
                request.table, "incremental", snapshot_id=request.request_id,
                where=request.where, past=past,
            )  # fmt: skip
            self.chunk = None
            self._stats.snapshot_done = False
            log.info(
                "snapshot requested",
                extra={"table": request.table, "snapshot": self.snapshot.snapshot_id,
                       "filtered": request.where is not None},
            )  # fmt: skip
        self._checkpoints.append((txn, self.snapshot))

    def confirmed(self, lsn: int) -> None:
        """Save the snapshot progress the slot's confirmed ``lsn`` now covers."""
        while self._checkpoints:
            txn, state = self._checkpoints[0]
            if txn.end_lsn is None or lsn < txn.end_lsn:
                break
            save_state(self._state_file, state)
            self._checkpoints.pop(0)

    def close(self) -> None:
        if self._snapshotter is not None:
            self._snapshotter.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
