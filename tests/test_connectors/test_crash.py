"""kill -9 of `quoteflow cdc` mid-stream loses nothing; duplicates carry their first position.

The connector runs as the real command in a subprocess while a writer commits
transactions; it is killed with SIGKILL (no drain, no final status update)
while changes are in flight, restarted, and the topic must then hold every
inserted row at least once, each duplicate with the same source position
(LSN and transaction id) as its first delivery, so consumers can drop it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from connectors.cdc.watermarks import SnapshotState
from quoteflow.settings import Settings

from .conftest import Record, end_offsets, read_new, read_to_end

pytestmark = pytest.mark.integration

QUOTES = "qms.public.quotes"
TRANSACTIONS = 60
ROWS_PER_TRANSACTION = 25


def _start(
    settings: Settings, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`quoteflow cdc qms` with this test's slot; its output goes to ``log`` (never blocks)."""
    env = {
        **os.environ,
        "QUOTEFLOW_CDC__SLOT_PREFIX": settings.cdc.slot_prefix,
        "QUOTEFLOW_CDC__STATUS_INTERVAL_S": "0.2",
        "QUOTEFLOW_CDC__SNAPSHOT": settings.cdc.snapshot,
        "QUOTEFLOW_CDC__STATE_DIR": str(settings.cdc.state_dir),
        **(extra_env or {}),  # last: the test's own choices win
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "quoteflow", "cdc", "qms"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an operator stops the connector; it drains and confirms."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def _assert_clean_exit(proc: subprocess.Popen[bytes], log: Path) -> None:
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def _slot_active(settings: Settings, slot: str) -> bool:
    with psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
    return bool(row and row[0])


def _wait_streaming(
    settings: Settings, slot: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 60
    while not _slot_active(settings, slot):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "quoteflow cdc did not start streaming"
        time.sleep(0.2)


def test_kill_9_mid_stream_loses_nothing_and_duplicates_keep_their_position(
    cdc_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "cdc.log"
    slot = f"{cdc_settings.cdc.slot_prefix}_qms"
    since = end_offsets(cdc_settings, QUOTES)
    batch = uuid.uuid4().hex[:8]
    inserted: list[int] = []

    def write() -> None:
        with psycopg.connect(cdc_settings.postgres.conninfo("qms")) as conn:
            for t in range(TRANSACTIONS):
                with conn.transaction():
                    for r in range(ROWS_PER_TRANSACTION):
                        row = conn.execute(
                            "INSERT INTO quotes (quote_ref, customer_id, product_code, channel,"
                            " premium, currency, valid_until) VALUES (%s, 1, 'P', 'WEB', %s,"
                            " 'GBP', '2026-12-31') RETURNING quote_id",
                            (f"Q-K-{batch}-{t}-{r}", Decimal("1.00")),
                        ).fetchone()
                        assert row is not None
                        inserted.append(int(row[0]))
                time.sleep(0.03)

    first = _start(cdc_settings, log)
    try:
        _wait_streaming(cdc_settings, slot, first, log)
        writer = threading.Thread(target=write)
        writer.start()
        # Kill once Kafka holds some of the changes (a new broker takes a moment to give the
        # idempotent producer its id), while the writer is still committing more.
        deadline = time.monotonic() + 60
        while sum(n - since[p] for p, n in end_offsets(cdc_settings, QUOTES).items()) == 0:
            assert time.monotonic() < deadline, "nothing reached Kafka"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        at_kill = end_offsets(cdc_settings, QUOTES)
        writer.join(120)
        assert len(inserted) == TRANSACTIONS * ROWS_PER_TRANSACTION
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert "Traceback" not in log.read_text()
    # Killed mid-stream: some changes had reached Kafka, the rest were still to come.
    delivered_before_kill = sum(at_kill[p] - since[p] for p in since)
    assert 0 < delivered_before_kill < len(inserted)

    second = _start(cdc_settings, log)
    try:
        _wait_streaming(cdc_settings, slot, second, log)
        wanted = set(inserted)

        def complete(records: list[Record]) -> bool:
            return wanted <= {r.key["quote_id"] for r in records if r.key and r.value}

        records = read_new(
            cdc_settings, QUOTES, since, until=complete, timeout_s=90,
            key_schema="qms_quote_key", value_schema="qms_quote_envelope",
        )  # fmt: skip
    finally:
        _stop(second)
    _assert_clean_exit(second, log)

    positions: dict[int, set[tuple[int, int]]] = defaultdict(set)
    deliveries: dict[int, int] = defaultdict(int)
    for record in records:
        if record.key and record.value and record.key["quote_id"] in wanted:
            source = record.value["source"]
            positions[record.key["quote_id"]].add((source["lsn"], source["txId"]))
            deliveries[record.key["quote_id"]] += 1
    assert set(positions) == wanted  # nothing lost
    assert all(len(p) == 1 for p in positions.values())  # a duplicate is the same change
    duplicates = sum(deliveries.values()) - len(wanted)
    assert duplicates <= len(wanted)  # bounded: at most one redelivery of the unconfirmed tail


def test_kill_9_mid_snapshot_resumes_after_the_last_confirmed_chunk(
    cdc_settings: Settings, tmp_path: Path
) -> None:
    from connectors.cdc.snapshot import load_state

    log = tmp_path / "cdc.log"
    slot = f"{cdc_settings.cdc.slot_prefix}_qms"
    state_file = tmp_path / "cdc-state" / f"{slot}.snapshot.json"
    with psycopg.connect(cdc_settings.postgres.conninfo("qms"), autocommit=True) as conn:
        with conn.transaction():
            for n in range(3_000):
                conn.execute(
                    "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium,"
                    " currency, valid_until) VALUES (%s, 1, 'P', 'WEB', 1, 'GBP', '2026-12-31')",
                    (f"Q-S-{uuid.uuid4().hex[:6]}-{n}",),
                )
        existing = {int(r[0]) for r in conn.execute("SELECT quote_id FROM quotes")}
    since = end_offsets(cdc_settings, QUOTES)
    paced = {
        "QUOTEFLOW_CDC__SNAPSHOT": "initial",
        "QUOTEFLOW_CDC__SNAPSHOT_CHUNK_ROWS": "250",
        # Slow enough that few chunks are in flight when the first run is killed (it is
        # killed after two confirmed ones), whatever the size of the shared stack's table.
        "QUOTEFLOW_CDC__SNAPSHOT_ROWS_PER_S": "1000",
    }
    first = _start(cdc_settings, log, paced)
    try:
        deadline = time.monotonic() + 60
        while (load_state(state_file) or _NOTHING).chunks < 2:
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no chunk was confirmed"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    saved = load_state(state_file)
    assert saved is not None and not saved.done and saved.last_key is not None

    second = _start(cdc_settings, log, {**paced, "QUOTEFLOW_CDC__SNAPSHOT_ROWS_PER_S": "1000000"})
    try:
        deadline = time.monotonic() + 120
        while not (load_state(state_file) or _NOTHING).done:
            assert second.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the snapshot did not finish"
            time.sleep(0.1)
        # The state says done only once the slot confirmed the last chunk: all of it is in Kafka.
        records = read_to_end(
            cdc_settings, QUOTES, since,
            key_schema="qms_quote_key", value_schema="qms_quote_envelope",
        )  # fmt: skip
    finally:
        _stop(second)
    _assert_clean_exit(second, log)
    reads = [r.key["quote_id"] for r in records if r.key and r.value and r.value["op"] == "r"]
    assert existing <= set(reads)  # every row, whichever run read it
    resumed_after = int(saved.last_key[0])
    # The second run did not start over: rows up to the saved key were read once (by the first
    # run), at most the unconfirmed chunk after it twice.
    assert sum(1 for q in reads if q <= resumed_after) == sum(
        1 for q in existing if q <= resumed_after
    )
    assert len(reads) - len(existing) <= 2 * 250


_NOTHING = SnapshotState("", "", "initial")
