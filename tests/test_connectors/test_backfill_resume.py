"""A `--where` backfill survives kill -9 of `quoteflow cdc`: every matching row, none other.

The real commands in subprocesses, as in production: `quoteflow cdc qms` on
topics of this test's own (``topics.prefix``), `quoteflow snapshot` asking
for a filtered snapshot; the CDC is killed with SIGKILL after two confirmed
chunks, started again, and the snapshot resumes after the last confirmed
chunk with the same filter (at-least-once: a chunk in flight may come twice,
no matching row is missing, no other row appears).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from quoteflow.settings import Settings
from quoteflow.topics import QUOTES, WATERMARKS
from quoteflow.topics.admin import TopicAdmin
from tests.helpers import end_offsets

from .conftest import read_to_end
from .test_backfill import INSERT, _state, _wait_state

pytestmark = pytest.mark.integration

CHUNK = 50


@pytest.fixture
def prefix(cdc_settings: Settings) -> Iterator[str]:
    """The change and watermark topics under a prefix of this test's own, deleted after."""
    prefix = f"test.backfill.{uuid.uuid4().hex[:8]}."
    admin = TopicAdmin(cdc_settings)
    specs = [
        dataclasses.replace(spec, name=prefix + spec.name)
        for spec in admin.catalogue
        if spec.name in (QUOTES, WATERMARKS)
    ]
    admin.create(specs)
    try:
        yield prefix
    finally:
        kafka = AdminClient(cdc_settings.kafka.as_librdkafka_dict())
        for future in kafka.delete_topics([s.name for s in specs]).values():
            future.result()


def _env(settings: Settings, prefix: str, rows_per_s: int) -> dict[str, str]:
    return {
        **os.environ,
        "QUOTEFLOW_CDC__SLOT_PREFIX": settings.cdc.slot_prefix,
        "QUOTEFLOW_CDC__STATE_DIR": str(settings.cdc.state_dir),
        "QUOTEFLOW_CDC__SNAPSHOT": "never",
        "QUOTEFLOW_CDC__STATUS_INTERVAL_S": "0.2",
        "QUOTEFLOW_CDC__SNAPSHOT_CHUNK_ROWS": str(CHUNK),
        "QUOTEFLOW_CDC__SNAPSHOT_ROWS_PER_S": str(rows_per_s),
        "QUOTEFLOW_TOPICS__PREFIX": prefix,
        "COLUMNS": "200",
    }


def _cdc(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "quoteflow", "cdc", "qms"], env=env,
                                stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip


def _wait_streaming(settings: Settings, proc: subprocess.Popen[bytes], log: Path) -> None:
    slot = f"{settings.cdc.slot_prefix}_qms"
    deadline = time.monotonic() + 60
    with psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn:
        query = "SELECT active FROM pg_replication_slots WHERE slot_name = %s"
        while conn.execute(query, (slot,)).fetchone() != (True,):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "quoteflow cdc did not start streaming"
            time.sleep(0.2)


def _snapshot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quoteflow", "snapshot", "qms", *args],
                          env=env, capture_output=True, text=True, timeout=180,
                          check=False)  # fmt: skip


def test_a_killed_cdc_resumes_the_filtered_snapshot_and_delivers_every_matching_row(
    cdc_settings: Settings, prefix: str, tmp_path: Path
) -> None:
    run = f"BR-{uuid.uuid4().hex[:8]}"
    matching: set[int] = set()
    other: set[int] = set()
    with (
        psycopg.connect(cdc_settings.postgres.conninfo("qms"), autocommit=True) as conn,
        conn.transaction(),
    ):
        for n in range(900):
            status = "DRAFT" if n % 3 == 0 else "QUOTED"
            row = conn.execute(INSERT, (f"{run}-{n}", status)).fetchone()
            assert row is not None
            (other if status == "DRAFT" else matching).add(int(row[0]))
    where = f"quote_ref LIKE '{run}-%' AND status = 'QUOTED'"
    log = tmp_path / "cdc.log"
    slow = _env(cdc_settings, prefix, rows_per_s=200)

    first = _cdc(slow, log)
    try:
        _wait_streaming(cdc_settings, first, log)
        requested = _snapshot(slow, "--where", where, "--no-follow")
        assert requested.returncode == 0, requested.stdout + requested.stderr
        _wait_state(cdc_settings, lambda s: s.where == where and s.chunks >= 2, "two chunks")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    saved = _state(cdc_settings)
    assert saved is not None and not saved.done and saved.last_key is not None
    assert saved.where == where

    second = _cdc(_env(cdc_settings, prefix, rows_per_s=100_000), log)
    try:
        followed = _snapshot(slow, "--follow", saved.snapshot_id)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert followed.returncode == 0, followed.stdout + followed.stderr + log.read_text()
    assert second.returncode == 0 and "Traceback" not in log.read_text(), log.read_text()
    done = _state(cdc_settings)
    assert done is not None and done.done and done.snapshot_id == saved.snapshot_id

    topic = prefix + QUOTES
    start = {p: 0 for p in end_offsets(cdc_settings, topic)}
    records = read_to_end(cdc_settings, topic, start, key_schema="qms_quote_key",
                          value_schema="qms_quote_envelope")  # fmt: skip
    reads = [r.key["quote_id"] for r in records if r.key and r.value and r.value["op"] == "r"]
    assert matching <= set(reads)  # no matching row missing, whichever run read it
    assert not (other & set(reads)) and set(reads) <= matching  # the filter held after resume
    resumed_after = int(saved.last_key[0])
    # Resumed, not restarted: rows up to the saved key were read once, by the first run.
    assert sum(1 for q in reads if q <= resumed_after) == sum(
        1 for q in matching if q <= resumed_after
    )
    assert len(reads) - len(matching) <= 2 * CHUNK  # at most the unconfirmed chunks again
