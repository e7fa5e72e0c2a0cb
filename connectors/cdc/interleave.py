"""A stream's snapshot, interleaved with its changes: chunks selected between WAL watermarks.

The algorithm is in :mod:`connectors.cdc.watermarks`; this is its moving part:
select a chunk when the stream has room, drop the keys the WAL changes inside
the chunk's window, emit what is left at its high watermark, and save the
snapshot's progress only once the slot confirmed past it (a crash replays it).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from connectors.cdc import pgoutput as pg
from connectors.cdc.events import Capture, Event, Position, RowDecoder, read_events, source_block
from connectors.cdc.producing import Producing
from connectors.cdc.progress import Txn
from connectors.cdc.setup import Prepared
from connectors.cdc.snapshot import Snapshotter, load_state, new_state, save_state
from connectors.cdc.stats import Stats
from connectors.cdc.watermarks import (
    Chunk,
    SnapshotState,
    parse_signal,
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
    ) -> None:
        self._cdc, self._conninfo, self._capture = cdc, conninfo, capture
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
                       "resume_after": state.last_key},
            )  # fmt: skip
        if time.monotonic() < self._snapshotter.next_at:
            return
        if pending >= self._cdc.max_in_flight // 2:
            return
        assert self._decoder is not None
        self.chunk = self._snapshotter.select_chunk(state, state.chunks + 1, self._decoder)

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
            rows=state.rows + len(rows), done=chunk.final,
        )  # fmt: skip
        assert producing.txn is not None  # a watermark is a transactional message
        self._checkpoints.append((producing.txn, after))
        self.snapshot, self.chunk = after, None
        if after.done:
            self._stats.snapshot_done = True
            log.info("snapshot complete", extra={"table": after.table, "rows": after.rows})

    def signal(self, message: pg.LogicalMessage, txn: Txn | None) -> None:
        """A re-snapshot request for this table starts an incremental snapshot."""
        table = parse_signal(message.content)
        if table != self._capture.qualified_name:
            return
        if self.snapshot is not None and not self.snapshot.done:
            log.warning("snapshot requested while one runs; ignored", extra={"table": table})
            return
        self.snapshot = new_state(table, "incremental")
        self.chunk = None
        self._stats.snapshot_done = False
        # Saved once the slot confirmed past the signal, like a chunk: a crash before
        # that replays the signal itself.
        assert txn is not None
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
