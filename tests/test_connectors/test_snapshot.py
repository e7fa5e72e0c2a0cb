"""The incremental snapshot against the real stack: consistent with the stream, and on demand.

The property (DBLog's): whatever the interleaving of snapshot chunks and
concurrent writes, folding the change topic per key (r/c/u set the row, d and
tombstones remove it) gives exactly the table's final state. Random workloads
from fixed seeds write while small chunks are selected, so chunk windows and
changes overlap many times.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from connectors.cdc.snapshot import request_snapshot
from quoteflow.settings import Settings

from .conftest import (
    Record,
    Running,
    end_offsets,
    read_to_end,
    streaming,
    wait_confirmed_past,
)

pytestmark = pytest.mark.integration

QUOTES = "qms.public.quotes"
KEY, VALUE = "qms_quote_key", "qms_quote_envelope"
INSERT = (
    "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium, currency,"
    " status, valid_until) VALUES (%s, %s, 'P', 'WEB', %s, 'GBP', %s, '2026-12-31')"
    " RETURNING quote_id"
)
STATUSES = ["DRAFT", "QUOTED", "ACCEPTED", "DECLINED", "EXPIRED"]


def _snapshotting(settings: Settings, **cdc: Any) -> Settings:
    return settings.model_copy(
        update={"cdc": settings.cdc.model_copy(update={"snapshot": "initial", **cdc})}
    )


def _fold(records: list[Record]) -> dict[int, tuple[str, Decimal]]:
    """The state a compacting consumer ends with: per key, the last event wins."""
    state: dict[int, tuple[str, Decimal]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if record.key is None:
            continue
        quote_id = record.key["quote_id"]
        after = record.value["after"] if record.value else None
        if after is None:
            state.pop(quote_id, None)
        else:
            state[quote_id] = (after["status"], after["premium"])
    return state


def _table(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, Decimal]]:
    return {
        int(r[0]): (str(r[1]), r[2])
        for r in conn.execute("SELECT quote_id, status, premium FROM quotes").fetchall()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshot_and_concurrent_writes_end_in_the_tables_state(
    cdc_settings: Settings, seed: int
) -> None:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    conninfo = cdc_settings.postgres.conninfo("qms")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with conn.transaction():  # rows that exist before the slot: only the snapshot has them
            for n in range(600):
                conn.execute(INSERT, (f"S-{run}-{n}", n, Decimal(n % 97), "QUOTED"))
        since = end_offsets(cdc_settings, QUOTES)
        settings = _snapshotting(cdc_settings, snapshot_chunk_rows=97, snapshot_rows_per_s=None)
        done = threading.Event()

        def write() -> None:
            with psycopg.connect(conninfo, autocommit=True) as writer:
                ids = [int(r[0]) for r in writer.execute("SELECT quote_id FROM quotes")]
                for n in range(400):
                    action = rng.random()
                    if action < 0.2 or not ids:
                        row = writer.execute(
                            INSERT, (f"W-{run}-{n}", n, Decimal("1.50"), "DRAFT")
                        ).fetchone()
                        assert row is not None
                        ids.append(int(row[0]))
                    elif action < 0.85:
                        writer.execute(
                            "UPDATE quotes SET status = %s, premium = premium + 1"
                            " WHERE quote_id = %s",
                            (rng.choice(STATUSES), rng.choice(ids)),
                        )
                    else:
                        gone = ids.pop(rng.randrange(len(ids)))
                        writer.execute("DELETE FROM quotes WHERE quote_id = %s", (gone,))
                    if n % 50 == 0:
                        time.sleep(0.005)
            done.set()

        with streaming(settings, "qms") as running:
            thread = threading.Thread(target=write)
            thread.start()
            thread.join(120)
            assert done.is_set()
            _wait_snapshot_done(running)
            wait_confirmed_past(running, conninfo)
            records = read_to_end(settings, QUOTES, since, key_schema=KEY, value_schema=VALUE)
        expected = _table(conn)
    ops = {r.value["op"] for r in records if r.value}
    assert {"r", "c", "u", "d"} <= ops  # snapshot rows and every kind of change interleaved
    markers = [r.value["source"]["snapshot"] for r in records if r.value and r.value["op"] == "r"]
    assert markers.count("first") == 1 and markers.count("last") == 1
    assert _fold(records) == expected


def _wait_snapshot_done(running: Running, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not running.stream.stats.snapshot_done:
        assert not running.errors, running.errors
        assert time.monotonic() < deadline, "the snapshot did not finish"
        time.sleep(0.05)


def test_a_requested_snapshot_reads_every_row_as_incremental(cdc_settings: Settings) -> None:
    conninfo = cdc_settings.postgres.conninfo("qms")
    with streaming(cdc_settings, "qms") as running, psycopg.connect(
        conninfo, autocommit=True
    ) as conn:
        conn.execute(INSERT, (f"R-{uuid.uuid4().hex[:6]}", 1, Decimal(1), "QUOTED"))
        since = end_offsets(cdc_settings, QUOTES)
        expected = set(_table(conn))
        # Addressed to this test's CDC: other tests' streams of the table stay out of it.
        request_snapshot(conninfo, "public.quotes", slot=running.stream.slot)
        _wait_snapshot_done(running)
        wait_confirmed_past(running, conninfo)
        records = read_to_end(cdc_settings, QUOTES, since, key_schema=KEY, value_schema=VALUE)
        assert running.stream.stats.snapshot_rows >= len(expected)
    assert expected <= {r.key["quote_id"] for r in records if r.key and r.value}
    reads = [r.value for r in records if r.value and r.value["op"] == "r"]
    assert reads and all(v["source"]["snapshot"] == "incremental" for v in reads)
    assert all(v["before"] is None and v["after"] is not None for v in reads)
    assert len({v["source"]["lsn"] for v in reads}) >= 1
