"""The incremental snapshot's I/O: chunk selects and watermark writes, and its state file.

The stream (:mod:`connectors.cdc.stream`) decides *when*; this module selects
one chunk by primary key between a low and a high watermark
(:mod:`connectors.cdc.watermarks` explains why that is consistent with the
stream), on an ordinary connection with the replication session's settings,
casting every column to text so the rows decode exactly like pgoutput's.

Gentle on the legacy database: one indexed range scan of ``cdc.snapshot_chunk_rows``
rows per chunk, at most ``cdc.snapshot_rows_per_s`` rows a second, and no
writes but two WAL messages per chunk.

Progress is kept in a small JSON file per slot (``cdc.state_dir``), written
atomically and only once the slot confirmed past a chunk: a crash repeats at
most the chunks after it (duplicates, never a gap). Losing the file restarts
the snapshot from the first row, again with duplicates only.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from connectors.cdc.events import Capture, RowDecoder
from connectors.cdc.pgoutput import Column, Relation
from connectors.cdc.values import SESSION_OPTIONS
from connectors.cdc.watermarks import (
    SIGNAL_PREFIX,
    WATERMARK_PREFIX,
    Chunk,
    SnapshotState,
    signal,
    watermark,
)
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist


def load_state(path: Path) -> SnapshotState | None:
    try:
        return SnapshotState.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CdcError(
            f"snapshot state {path} is unreadable ({type(exc).__name__}): move it away to"
            " restart the snapshot from the first row"
        ) from exc


def save_state(path: Path, state: SnapshotState) -> None:
    """Write-then-rename with fsync: the file is the old state or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(state.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def request_snapshot(conninfo: str, table: str) -> str:
    """Write a re-snapshot signal into the source's WAL; returns its LSN."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_logical_emit_message(true, %s, %s)::text",
                (SIGNAL_PREFIX, signal(table)),
            ).fetchone()
    except psycopg.Error as exc:
        raise CdcError(f"cannot write the snapshot signal: {error_gist(exc)}") from exc
    assert row is not None
    return str(row[0])


class Snapshotter:
    """Chunks of one captured table, each between two watermarks."""

    def __init__(
        self, conninfo: str, capture: Capture, *, chunk_rows: int, rows_per_s: int | None
    ) -> None:
        self._conninfo = conninfo
        self._capture = capture
        self._chunk_rows = chunk_rows
        self._rows_per_s = rows_per_s
        self._conn: psycopg.Connection[Any] | None = None
        self._relation: Relation | None = None
        self._select: tuple[sql.Composed, sql.Composed] | None = None
        self._types: dict[str, str] = {}
        self.next_at = 0.0

    def relation(self) -> Relation:
        """The table's columns as pgoutput sends them (non-dropped, non-generated, by attnum)."""
        if self._relation is None:
            rows = self._db().execute(
                """
                SELECT c.oid, a.attname, a.atttypid, a.atttypmod,
                       format_type(a.atttypid, a.atttypmod)
                FROM pg_attribute a
                JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0
                  AND NOT a.attisdropped AND a.attgenerated = ''
                ORDER BY a.attnum
                """,
                (self._capture.schema, self._capture.table),
            ).fetchall()
            if not rows:
                raise CdcError(f"table {self._capture.qualified_name} has no columns to snapshot")
            columns = tuple(
                Column(str(r[1]), int(r[2]), int(r[3]), str(r[1]) in self._capture.primary_key)
                for r in rows
            )
            self._types = {str(r[1]): str(r[4]) for r in rows}
            self._relation = Relation(
                int(rows[0][0]), self._capture.schema, self._capture.table, "f", columns
            )
        return self._relation

    def select_chunk(self, state: SnapshotState, number: int, decoder: RowDecoder) -> Chunk:
        """Low watermark, the chunk after ``state.last_key``, high watermark."""
        chunk_id = uuid.uuid4().hex
        conn = self._db()
        first, after = self._statements()
        try:
            self._emit(conn, watermark(chunk_id, "low"))
            params: list[Any] = [*(state.last_key or []), self._chunk_rows + 1]
            rows = conn.execute(after if state.last_key else first, params).fetchall()
            self._emit(conn, watermark(chunk_id, "high"))
        except psycopg.Error as exc:
            raise CdcError(
                f"snapshot of {self._capture.qualified_name} failed: {error_gist(exc)}"
            ) from exc
        final = len(rows) <= self._chunk_rows
        rows = rows[: self._chunk_rows]
        selected: dict[tuple[Any, ...], dict[str, Any]] = {}
        for values in rows:
            row = decoder.row(values)
            selected[tuple(decoder.key(row).values())] = row
        names = [c.name for c in self.relation().columns]
        key_index = [names.index(k) for k in self._capture.primary_key]  # the key's order
        last_key = [str(rows[-1][i]) for i in key_index] if rows else state.last_key
        if self._rows_per_s:
            self.next_at = time.monotonic() + len(rows) / self._rows_per_s
        return Chunk(chunk_id, number, selected, last_key, final)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- internals --------------------------------------------------------------
    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self._conninfo, autocommit=True, options=SESSION_OPTIONS
                )
            except psycopg.Error as exc:
                raise CdcError(f"snapshot connection failed: {error_gist(exc)}") from exc
        return self._conn

    def _statements(self) -> tuple[sql.Composed, sql.Composed]:
        """The first chunk's select and the next ones' (keyset pagination on the key)."""
        if self._select is None:
            relation = self.relation()
            table = sql.Identifier(self._capture.schema, self._capture.table)
            columns = sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in relation.columns
            )
            key = self._capture.primary_key
            # Table-qualified: a bare name in ORDER BY means the *output* column first, and
            # "quote_id::text" keeps the name quote_id, so chunks would sort as text and the
            # keyset bound (compared as the key's type) would skip rows.
            key_list = sql.SQL(", ").join(
                sql.Identifier(self._capture.schema, self._capture.table, k) for k in key
            )
            bounds = sql.SQL(", ").join(
                sql.SQL("%s::{}").format(sql.SQL(self._types[k])) for k in key
            )
            base = sql.SQL("SELECT {} FROM {}").format(columns, table)
            order = sql.SQL(" ORDER BY {} LIMIT %s").format(key_list)
            self._select = (
                base + order,
                base + sql.SQL(" WHERE ({}) > ({})").format(key_list, bounds) + order,
            )
        return self._select

    @staticmethod
    def _emit(conn: psycopg.Connection[Any], content: str) -> None:
        conn.execute("SELECT pg_logical_emit_message(true, %s, %s)", (WATERMARK_PREFIX, content))


def new_state(table: str, kind: Literal["initial", "incremental"]) -> SnapshotState:
    return SnapshotState(snapshot_id=uuid.uuid4().hex[:12], table=table, kind=kind)
