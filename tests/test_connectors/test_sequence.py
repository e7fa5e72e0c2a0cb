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
from typing import Any

import psycopg
import pytest

from connectors.cdc.snapshot import request_snapshot
from quoteflow.settings import Settings

from .conftest import Own, Record, end_offsets, read_new, streaming, wait_confirmed_past

pytestmark = pytest.mark.integration

KEY, VALUE = "qms_quote_key", "qms_quote_envelope"


def sequence(value: dict[str, Any]) -> tuple[int, int]:
    """Debezium's sequence as the core compares it: [lastCommitLsn, lsn], null as 0."""
    last, lsn = json.loads(value["source"]["sequence"])
    return (int(last) if last is not None else 0, int(lsn))


def _insert(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium, currency,"
        " valid_until) VALUES (%s, 1, 'P', 'WEB', 1, 'GBP', '2026-12-31') RETURNING quote_id",
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
    cdc_settings: Settings, own: Own
) -> None:
    settings = cdc_settings.model_copy(
        update={"cdc": cdc_settings.cdc.model_copy(
            update={"snapshot_chunk_rows": 50, "snapshot_rows_per_s": None})}
    )  # fmt: skip
    conninfo = settings.postgres.conninfo("qms")
    with (
        streaming(settings, "qms", **own.options()) as running,
        psycopg.connect(conninfo, autocommit=True) as conn,
        psycopg.connect(conninfo) as writer,
    ):
        quote_id = _insert(conn)
        wait_confirmed_past(running, conninfo)
        since = end_offsets(settings, own.changes)
        # Changed before the chunk is read, committed after it: the select sees the old row.
        writer.execute("UPDATE quotes SET status = 'ACCEPTED' WHERE quote_id = %s", (quote_id,))
        request_snapshot(conninfo, "public.quotes")
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
