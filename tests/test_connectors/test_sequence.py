"""``source.sequence`` orders a key's events by commit position (issue 15, item 3).

A snapshot row carries its chunk's high-watermark LSN; a transaction that
changed the row *before* the chunk was read but committed *after* it carries
its change's lower LSN. Ordered by ``source.lsn`` the snapshot row would hide
that later-committed change (an acceptance, a consent withdrawal); ordered by
Debezium's ``sequence`` ``[lastCommitLsn, lsn]`` (null read as 0) it comes
after, as it does in the topic. And a restarted stream's sequences continue
past those of the run before.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from connectors.cdc.snapshot import request_snapshot
from connectors.cdc.sources import CdcSource
from quoteflow.settings import Settings

from .conftest import Own, Record, end_offsets, read_new, streaming, wait_confirmed_past

pytestmark = pytest.mark.integration

KEY, VALUE = "qms_quote_key", "qms_quote_envelope"


def sequence(value: dict[str, Any]) -> tuple[int, int]:
    """Debezium's sequence as the core compares it: [lastCommitLsn, lsn], null as 0."""
    last, lsn = json.loads(value["source"]["sequence"])
    return (int(last) if last is not None else 0, int(lsn))


@pytest.fixture
def scratch_quotes(cdc_settings: Settings) -> Iterator[CdcSource]:
    """A copy of public.quotes in a schema and publication of its own: a snapshot of it
    reads this test's rows only, not every row other tests left in the shared table (19k
    in a CI run, which made the snapshot outlast the read)."""
    name = f"quoteflow_seq_{uuid.uuid4().hex[:8]}"
    ident = sql.Identifier(name)
    with psycopg.connect(cdc_settings.postgres.conninfo("qms"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        conn.execute(sql.SQL("CREATE TABLE {}.quotes (LIKE public.quotes INCLUDING ALL)")
                     .format(ident))  # fmt: skip
        conn.execute(sql.SQL("ALTER TABLE {}.quotes REPLICA IDENTITY FULL").format(ident))
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}.quotes").format(ident, ident))
        try:
            yield CdcSource("qms_database", "qms.sql", "quotes", name, "qms", schema=name)
        finally:
            conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(ident))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))


def _insert(conn: psycopg.Connection[Any], table: str = "quotes") -> int:
    row = conn.execute(
        sql.SQL("INSERT INTO {} (quote_ref, customer_id, product_code, channel, premium,"
                " currency, valid_until) VALUES (%s, 1, 'P', 'WEB', 1, 'GBP', '2026-12-31')"
                " RETURNING quote_id").format(sql.SQL(table)),
        (f"Q-{uuid.uuid4().hex[:8]}",),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _events_of(
    settings: Settings, own: Own, since: dict[int, int], quote_id: int, ops: set[str],
    count: int = 1,
) -> list[dict[str, Any]]:
    """``quote_id``'s events since ``since``, in topic order, once one of each op and
    ``count`` events are there."""

    def mine(records: list[Record]) -> list[dict[str, Any]]:
        return [
            r.value for r in sorted(records, key=lambda r: r.offset)
            if r.value and r.key and r.key["quote_id"] == quote_id
        ]  # fmt: skip

    records = read_new(
        settings, own.changes, since, timeout_s=60, key_schema=KEY, value_schema=VALUE,
        until=lambda records: ops <= {v["op"] for v in mine(records)}
        and len(mine(records)) >= count,
    )  # fmt: skip
    return mine(records)


def test_a_change_committed_after_a_chunk_read_orders_after_its_snapshot_row(
    cdc_settings: Settings, own: Own, scratch_quotes: CdcSource
) -> None:
    settings = cdc_settings.model_copy(
        update={"cdc": cdc_settings.cdc.model_copy(
            update={"snapshot_chunk_rows": 50, "snapshot_rows_per_s": None})}
    )  # fmt: skip
    conninfo = settings.postgres.conninfo("qms")
    table = scratch_quotes.qualified_table
    with (
        streaming(settings, "qms", source=scratch_quotes, **own.options()) as running,
        psycopg.connect(conninfo, autocommit=True) as conn,
        psycopg.connect(conninfo) as writer,
    ):
        quote_id = _insert(conn, table)
        wait_confirmed_past(running, conninfo)
        since = end_offsets(settings, own.changes)
        # Changed before the chunk is read, committed after it: the select sees the old row.
        writer.execute(sql.SQL("UPDATE {} SET status = 'ACCEPTED' WHERE quote_id = %s")
                       .format(sql.SQL(table)), (quote_id,))  # fmt: skip
        request_snapshot(conninfo, table)
        _events_of(settings, own, since, quote_id, {"r"})  # the chunk's high watermark was read
        writer.commit()
        events = _events_of(settings, own, since, quote_id, {"r", "u"})
        deadline = time.monotonic() + 120
        while not running.stream.stats.snapshot_done:  # leave no chunk half-way at stop
            assert time.monotonic() < deadline and not running.errors
            time.sleep(0.05)
    read = next(v for v in events if v["op"] == "r")
    update = next(v for v in events if v["op"] == "u")
    assert read["after"]["status"] != "ACCEPTED" and update["after"]["status"] == "ACCEPTED"
    assert events.index(update) > events.index(read)  # the topic's order
    assert int(update["source"]["lsn"]) < int(read["source"]["lsn"])  # why the LSN is wrong
    assert sequence(update) > sequence(read)  # the sequence agrees with the topic


def test_sequences_of_a_row_keep_rising_across_a_restart(cdc_settings: Settings, own: Own) -> None:
    conninfo = cdc_settings.postgres.conninfo("qms")
    since = end_offsets(cdc_settings, own.changes)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with streaming(cdc_settings, "qms", **own.options()) as running:
            quote_id = _insert(conn)
            conn.execute("UPDATE quotes SET premium = 2 WHERE quote_id = %s", (quote_id,))
            wait_confirmed_past(running, conninfo)
        with streaming(cdc_settings, "qms", **own.options()):  # the same slot: a restart
            conn.execute("UPDATE quotes SET premium = 3 WHERE quote_id = %s", (quote_id,))
            events = _events_of(cdc_settings, own, since, quote_id, {"c", "u"}, count=3)
    assert [v["after"]["premium"] for v in events] == [1, 2, 3]
    sequences = [sequence(v) for v in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3
