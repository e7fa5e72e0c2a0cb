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
naming the chunk. A re-snapshot is requested the same way, with
:data:`SIGNAL_PREFIX`, so the request is ordered with the changes and waits in
the slot if no connector runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

WATERMARK_PREFIX = "quoteflow.snapshot"
SIGNAL_PREFIX = "quoteflow.signal"
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


def signal(table: str) -> str:
    return json.dumps({"snapshot": table}, separators=(",", ":"))


def parse_signal(content: bytes) -> str | None:
    """The table a re-snapshot signal asks for, or None."""
    try:
        table = json.loads(content)["snapshot"]
    except (ValueError, KeyError, TypeError):
        return None
    return table if isinstance(table, str) else None


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


@dataclass
class SnapshotState:
    """A snapshot's progress, saved once the slot confirmed past a chunk (resumable)."""

    snapshot_id: str
    table: str
    kind: Literal["initial", "incremental"]
    last_key: list[str] | None = None  # None: from the beginning
    chunks: int = 0
    rows: int = 0
    done: bool = False
    history: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SnapshotState:
        data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError("not an object")
        return cls(
            snapshot_id=str(data["snapshot_id"]),
            table=str(data["table"]),
            kind="incremental" if data.get("kind") == "incremental" else "initial",
            last_key=[str(v) for v in data["last_key"]] if data.get("last_key") else None,
            chunks=int(data.get("chunks", 0)),
            rows=int(data.get("rows", 0)),
            done=bool(data.get("done", False)),
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
