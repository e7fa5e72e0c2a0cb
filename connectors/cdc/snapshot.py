"""The incremental snapshot's I/O: chunk selects and watermark writes, and its state file.

The stream (:mod:`connectors.cdc.stream`) decides *when*; this module selects
one chunk by primary key between a low and a high watermark
(:mod:`connectors.cdc.watermarks` explains why that is consistent with the
stream), on an ordinary connection with the replication session's settings,
casting every column to text so the rows decode exactly like pgoutput's.

Gentle on the legacy database: one indexed range scan of ``cdc.snapshot_chunk_rows``
rows per chunk, at most ``cdc.snapshot_rows_per_s`` rows a second, and no
writes but two WAL messages per chunk. A requested snapshot's ``--where``
predicate joins the chunk's keyset bound (``AND (<predicate>)``); the select
runs in a read-only transaction of its own, so the operator's text can read
but never write, whatever it says.

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

from connectors.cdc import requests
from connectors.cdc.events import Capture, RowDecoder
from connectors.cdc.pgoutput import Column, Relation
from connectors.cdc.values import SESSION_OPTIONS
from connectors.cdc.watermarks import (
    WATERMARK_PREFIX,
    Chunk,
    PastSnapshot,
    SnapshotState,
    watermark,
)
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist, error_primary
from quoteflow.settings import CdcSettings


class FilterFailed(CdcError):
    """A chunk's select failed on the data, with a ``--where`` filter: the filter's fault
    (a division by zero, a bad cast on some row), so the snapshot stops, not the CDC."""


def state_path(cdc: CdcSettings, slot: str) -> Path:
    """Where the stream of ``slot`` keeps its snapshot's progress (one file per slot)."""
    assert cdc.state_dir is not None  # filled in by Settings
    return cdc.state_dir / f"{slot}.snapshot.json"


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


def request_snapshot(
    conninfo: str,
    table: str,
    *,
    request_id: str | None = None,
    where: str | None = None,
    slot: str | None = None,
) -> str:
    """Write a re-snapshot request into the source's WAL; returns its LSN.

    ``where`` is written as given: the caller checked it first
    (:func:`connectors.cdc.backfill.check_where`). ``slot`` addresses the CDC
    reading that slot (None: any CDC of the table).
    """
    return emit_request(conninfo, requests.SnapshotRequest(table, request_id, where, slot))


def emit_request(conninfo: str, request: requests.Request) -> str:
    """Write ``request`` into the source's WAL (transactional: ordered with the changes)."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_logical_emit_message(true, %s, %s)::text",
                (requests.SIGNAL_PREFIX, requests.encode(request)),
            ).fetchone()
    except psycopg.Error as exc:
        raise CdcError(f"cannot write the snapshot request: {error_gist(exc)}") from exc
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
        self._select: dict[str | None, tuple[sql.Composed, sql.Composed]] = {}
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
        first, after = self._statements(state.where)
        try:
            self._emit(conn, watermark(chunk_id, "low"))
            params: list[Any] = [*(state.last_key or []), self._chunk_rows + 1]
            with conn.transaction():  # read-only: a --where predicate can never write
                conn.execute("SET TRANSACTION READ ONLY")
                rows = conn.execute(after if state.last_key else first, params).fetchall()
            self._emit(conn, watermark(chunk_id, "high"))
        except psycopg.Error as exc:
            if state.where is not None and not isinstance(exc, psycopg.OperationalError):
                raise FilterFailed(
                    f"the filter failed on {self._capture.qualified_name}: {error_primary(exc)}"
                ) from exc
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

    def _statements(self, where: str | None) -> tuple[sql.Composed, sql.Composed]:
        """The first chunk's select and the next ones' (keyset pagination on the key),
        filtered by ``where`` when the request had one."""
        if where not in self._select:
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
            after = sql.SQL(" WHERE ({}) > ({})").format(key_list, bounds)
            if where is None:
                self._select[where] = (base + order, base + after + order)
            else:
                # The operator's text, checked before it was requested; "%" doubled, as the
                # query has parameters and "%" would otherwise start a placeholder.
                filtered = sql.SQL("({})").format(sql.SQL(where.replace("%", "%%")))
                self._select[where] = (
                    base + sql.SQL(" WHERE ") + filtered + order,
                    base + after + sql.SQL(" AND ") + filtered + order,
                )
        return self._select[where]

    @staticmethod
    def _emit(conn: psycopg.Connection[Any], content: str) -> None:
        conn.execute("SELECT pg_logical_emit_message(true, %s, %s)", (WATERMARK_PREFIX, content))


def new_state(
    table: str,
    kind: Literal["initial", "incremental"],
    *,
    snapshot_id: str | None = None,
    where: str | None = None,
    past: list[PastSnapshot] | None = None,
) -> SnapshotState:
    now_ms = time.time_ns() // 1_000_000
    return SnapshotState(
        snapshot_id=snapshot_id or requests.new_request_id(), table=table, kind=kind,
        where=where, started_ms=now_ms, updated_ms=now_ms, past=past or [],
    )  # fmt: skip

