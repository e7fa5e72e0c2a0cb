"""The pure part of the incremental snapshot: watermark messages, chunks, and their state.

DBLog's algorithm (and Debezium's incremental snapshots): for each chunk of
rows, selected by primary key, write a *low* watermark into the WAL, select
the chunk, write a *high* watermark. The stream meets both watermarks in WAL
order. A change met between them is newer than (or as new as) what the select
saw, so its key leaves the chunk; at the high watermark the chunk's remaining
rows are emitted as ``r`` events. Rows and changes therefore never go out of
order per key, and no change is lost: the slot streams every change anyway.

Watermarks are ``pg_logical_emit_message`` records (no table is written on
the legacy database): prefix :data:`WATERMARK_PREFIX`, content a small JSON
naming the chunk. A re-snapshot is requested the same way
(:mod:`connectors.cdc.requests`), so the request is ordered with the changes
and waits in the slot if no connector runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

WATERMARK_PREFIX = "quoteflow.snapshot"
#: Heartbeats: non-transactional messages whose content is the server's clock (epoch ms).
HEARTBEAT_PREFIX = "quoteflow.heartbeat"

Mark = Literal["low", "high"]
#: What a key looks like in chunk bookkeeping: the primary key's values, in key order.
KeyTuple = tuple[Any, ...]


def watermark(chunk_id: str, mark: Mark) -> str:
    return json.dumps({"chunk": chunk_id, "mark": mark}, separators=(",", ":"))


def parse_watermark(content: bytes) -> tuple[str, Mark] | None:
    """(chunk id, mark) of a watermark message, or None if it is not one of ours."""
    try:
        data = json.loads(content)
        chunk, mark = str(data["chunk"]), data["mark"]
    except (ValueError, KeyError, TypeError):
        return None
    return (chunk, mark) if mark in ("low", "high") else None


@dataclass
class Chunk:
    """One selected chunk, waiting for its watermarks in the stream."""

    chunk_id: str
    number: int
    rows: dict[KeyTuple, dict[str, Any]]  # in primary-key order
    last_key: list[str] | None  # the key's text values of the last selected row: resume point
    final: bool  # nothing after this chunk
    window_open: bool = False

    def changed(self, keys: Iterable[KeyTuple]) -> None:
        """A change met inside the window: its keys' selected rows are stale."""
        if self.window_open:
            for key in keys:
                self.rows.pop(key, None)


#: How a snapshot ended: read to its end, cancelled by request, its filter failed on a row,
#: or (a request) ignored because another snapshot was running.
Outcome = Literal["done", "cancelled", "failed", "ignored"]
_OUTCOMES = ("done", "cancelled", "failed", "ignored")

#: How many finished snapshots the state remembers, for ``quoteflow snapshot --follow``.
PAST_KEPT = 20


@dataclass(frozen=True)
class PastSnapshot:
    """How a snapshot (or a request the CDC ignored) ended, kept so a follower learns it."""

    snapshot_id: str
    outcome: Outcome
    rows: int = 0
    chunks: int = 0
    ended_ms: int = 0
    note: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PastSnapshot:
        outcome = data.get("outcome")
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown snapshot outcome {outcome!r}")
        return cls(
            snapshot_id=str(data["snapshot_id"]), outcome=outcome,
            rows=int(data.get("rows", 0)), chunks=int(data.get("chunks", 0)),
            ended_ms=int(data.get("ended_ms", 0)), note=str(data.get("note", "")),
        )  # fmt: skip


@dataclass
class SnapshotState:
    """A snapshot's progress, saved once the slot confirmed past a chunk (resumable).

    It is also the snapshot's progress record for ``quoteflow snapshot``, which
    reads the file from another process: ``snapshot_id`` is the request's id,
    ``where`` its filter (a resumed run applies it again), the times say when it
    started and last moved, and ``past`` how the last few ended.
    """

    snapshot_id: str
    table: str
    kind: Literal["initial", "incremental"]
    last_key: list[str] | None = None  # None: from the beginning
    chunks: int = 0
    rows: int = 0
    done: bool = False
    where: str | None = None
    cancelled: bool = False
    #: Why the snapshot stopped on its own (its filter failed on a row), when it did.
    failed: str | None = None
    started_ms: int = 0
    updated_ms: int = 0
    past: list[PastSnapshot] = field(default_factory=list)

    def ended(self, now_ms: int) -> PastSnapshot:
        """This snapshot as one of the past, once done or cancelled."""
        return PastSnapshot(
            self.snapshot_id, self.outcome, self.rows, self.chunks, now_ms, self.failed or ""
        )

    @property
    def outcome(self) -> Outcome:
        if self.failed is not None:
            return "failed"
        return "cancelled" if self.cancelled else "done"

    def remember(self, *finished: PastSnapshot) -> list[PastSnapshot]:
        """``past`` with ``finished`` added, the oldest dropped past :data:`PAST_KEPT`."""
        return [*self.past, *finished][-PAST_KEPT:]

    def outcome_of(self, snapshot_id: str) -> PastSnapshot | None:
        return next((p for p in reversed(self.past) if p.snapshot_id == snapshot_id), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SnapshotState:
        data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError("not an object")
        where = data.get("where")
        return cls(
            snapshot_id=str(data["snapshot_id"]),
            table=str(data["table"]),
            kind="incremental" if data.get("kind") == "incremental" else "initial",
            last_key=[str(v) for v in data["last_key"]] if data.get("last_key") else None,
            chunks=int(data.get("chunks", 0)),
            rows=int(data.get("rows", 0)),
            done=bool(data.get("done", False)),
            where=str(where) if where is not None else None,
            cancelled=bool(data.get("cancelled", False)),
            failed=str(data["failed"]) if data.get("failed") is not None else None,
            started_ms=int(data.get("started_ms", 0)),
            updated_ms=int(data.get("updated_ms", 0)),
            past=[PastSnapshot.from_dict(p) for p in data.get("past", [])],
        )


def snapshot_marker(kind: str, *, first: bool, last: bool) -> str:
    """``source.snapshot`` of an ``r`` event, as Debezium writes it."""
    if kind == "incremental":
        return "incremental"
    if first:
        return "first"
    return "last" if last else "true"


def parse_heartbeat(content: bytes) -> int | None:
    """The server clock (epoch ms) a heartbeat carries, or None."""
    try:
        return int(content)
    except ValueError:
        return None


def source_watermark(
    source: str, topic: str, watermark_ms: int, lsn: int, acked: Mapping[int, int], now_ms: int
) -> dict[str, Any]:
    """The cdc_watermark record: ``acked`` maps partition -> offset after the last acknowledged
    event; every event before the heartbeat is below it (later ones may be too: a consumer
    then reads a little more than it needs, never less). ``acked`` holds *every* partition
    of the topic (seeded with their end offsets when the stream started): a consumer reads
    a partition the record leaves out as unknown and holds."""
    return {
        "source": source,
        "topic": topic,
        "watermark_ms": watermark_ms,
        "lsn": lsn,
        "offsets": [{"partition": p, "offset": o} for p, o in sorted(acked.items())],
        "emitted_ms": now_ms,
    }
