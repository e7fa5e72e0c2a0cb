"""Backfill against the real stack: `--where` snapshots, refused predicates, progress, resume.

Each test tags its own rows (``quote_ref`` ``<tag>-<run>-<n>``) so a predicate
on the tag selects exactly them in the shared QMS table, streams through a
slot and a change topic of its own, and runs `quoteflow snapshot` as the real
command in a subprocess, beside the CDC, as an operator does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
import pytest

from connectors.cdc.requests import new_request_id
from connectors.cdc.snapshot import load_state, request_snapshot, state_path
from connectors.cdc.watermarks import SnapshotState
from quoteflow.settings import Settings
from tests.helpers import end_offsets

from .conftest import Own, Record, read_to_end, streaming, wait_confirmed_past

pytestmark = pytest.mark.integration

QUOTES = "qms.public.quotes"
KEY, VALUE = "qms_quote_key", "qms_quote_envelope"
INSERT = (
    "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium, currency,"
    " status, valid_until) VALUES (%s, 1, 'P', 'WEB', 1, 'GBP', %s, '2026-12-31')"
    " RETURNING quote_id"
)


def _paced(settings: Settings, chunk_rows: int, rows_per_s: int | None) -> Settings:
    cdc = {"snapshot_chunk_rows": chunk_rows, "snapshot_rows_per_s": rows_per_s}
    return settings.model_copy(update={"cdc": settings.cdc.model_copy(update=cdc)})


def _rows(settings: Settings, tag: str, count: int) -> tuple[str, set[int], set[int]]:
    """``count`` tagged rows, two in three QUOTED: the predicate, matching and other ids."""
    run = f"{tag}-{uuid.uuid4().hex[:8]}"
    matching: set[int] = set()
    other: set[int] = set()
    with (
        psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn,
        conn.transaction(),
    ):
        for n in range(count):
            status = "DRAFT" if n % 3 == 0 else "QUOTED"
            row = conn.execute(INSERT, (f"{run}-{n}", status)).fetchone()
            assert row is not None
            (other if status == "DRAFT" else matching).add(int(row[0]))
    return f"quote_ref LIKE '{run}-%' AND status = 'QUOTED'", matching, other


def _state(settings: Settings) -> SnapshotState | None:
    return load_state(state_path(settings.cdc, f"{settings.cdc.slot_prefix}_qms"))


def _wait_state(settings: Settings, ready: Any, what: str, timeout_s: float = 120) -> SnapshotState:
    deadline = time.monotonic() + timeout_s
    while True:
        state = _state(settings)
        if state is not None and ready(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {state}"
        time.sleep(0.1)


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "QUOTEFLOW_CDC__SLOT_PREFIX": settings.cdc.slot_prefix,
        "QUOTEFLOW_CDC__STATE_DIR": str(settings.cdc.state_dir),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }


def _snapshot_cli(
    settings: Settings, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quoteflow", "snapshot", "qms", *args], env=_env(settings),
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def _records(settings: Settings, topic: str) -> list[Record]:
    """Every record of this test's own ``topic``, from its start."""
    start = {p: 0 for p in end_offsets(settings, topic)}
    return read_to_end(settings, topic, start, key_schema=KEY, value_schema=VALUE)


def _reads(settings: Settings, topic: str) -> list[int]:
    records = _records(settings, topic)
    return [r.key["quote_id"] for r in records if r.key and r.value and r.value["op"] == "r"]


def test_a_where_snapshot_emits_exactly_the_matching_rows(cdc_settings: Settings, own: Own) -> None:
    where, matching, other = _rows(cdc_settings, "BW", 300)
    settings = _paced(cdc_settings, chunk_rows=40, rows_per_s=None)
    conninfo = settings.postgres.conninfo("qms")
    with streaming(settings, "qms", **own.options()) as running:
        request_id = new_request_id()
        request_snapshot(conninfo, "public.quotes", request_id=request_id, where=where,
                         slot=running.stream.slot)  # fmt: skip
        state = _wait_state(settings, lambda s: s.snapshot_id == request_id and s.done, "done")
        wait_confirmed_past(running, conninfo)
        reads = _reads(settings, own.changes)
    assert sorted(reads) == sorted(matching)  # each matching row once, nothing else
    assert not other & set(reads)
    assert (state.rows, state.where, state.failed) == (len(matching), where, None)
    assert state.chunks == -(-len(matching) // 40)  # ceil: the last chunk says it is the last


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("nosuch > 1", 'column "nosuch" does not exist'),
        ("1=1; DROP TABLE quotes", "contains ';'"),
        ("quote_id", "must be type boolean"),
        ("true) OR (true", "closes a parenthesis"),
        ("updated_at >= 'yesterday-ish'", "invalid input syntax"),
    ],
)
def test_a_bad_predicate_is_refused_in_one_line_and_nothing_is_requested(
    cdc_settings: Settings, own: Own, where: str, says: str
) -> None:
    conninfo = cdc_settings.postgres.conninfo("qms")
    with streaming(cdc_settings, "qms", **own.options()) as running:
        done = _snapshot_cli(cdc_settings, "--where", where)
        wait_confirmed_past(running, conninfo)  # a request, had one been written, is met
        assert running.stream.stats.snapshot_rows == 0
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quoteflow: error: "), done.stderr
    assert says in lines[0]
    assert "requested" not in done.stdout
    assert _state(cdc_settings) is None  # no snapshot ever started
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT to_regclass('public.quotes')").fetchone() == ("quotes",)


def test_a_filter_failing_on_a_row_stops_the_snapshot_not_the_cdc(
    cdc_settings: Settings, own: Own
) -> None:
    conninfo = cdc_settings.postgres.conninfo("qms")
    with streaming(cdc_settings, "qms", **own.options()) as running:
        request_id = new_request_id()
        # Plans fine; divides by zero on the first row it reads.
        request_snapshot(conninfo, "public.quotes", request_id=request_id,
                         where="1 / (quote_id - quote_id) = 0",
                         slot=running.stream.slot)  # fmt: skip
        state = _wait_state(cdc_settings, lambda s: s.snapshot_id == request_id and s.done, "end")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(INSERT, (f"BF-{uuid.uuid4().hex[:8]}", "QUOTED")).fetchone()
        assert row is not None
        wait_confirmed_past(running, conninfo)  # still streaming: the change after it arrives
        assert not running.errors
        records = _records(cdc_settings, own.changes)
    assert state.failed is not None and "division by zero" in state.failed
    assert any(r.key and r.key["quote_id"] == row[0] and r.value and r.value["op"] == "c"
               for r in records)  # fmt: skip


def test_progress_reaches_the_end_and_rows_are_the_matching_count(
    cdc_settings: Settings, own: Own
) -> None:
    where, matching, _ = _rows(cdc_settings, "BP", 450)
    settings = _paced(cdc_settings, chunk_rows=50, rows_per_s=600)
    with streaming(settings, "qms", **own.options()):
        done = _snapshot_cli(settings, "--where", where)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"where {where}: {len(matching):,} (counted)" in out
    last = out.strip().splitlines()[-1]
    assert last.endswith(f"done: {len(matching)} rows in {-(-len(matching) // 50)} chunks"), out
    assert "rows read" in out and "rows/s" in out  # the summary table and the rate


def test_ctrl_c_stops_following_only_and_following_again_reaches_the_end(
    cdc_settings: Settings, own: Own
) -> None:
    where, matching, _ = _rows(cdc_settings, "BC", 600)
    settings = _paced(cdc_settings, chunk_rows=50, rows_per_s=150)
    with streaming(settings, "qms", **own.options()):
        follower = subprocess.Popen(
            [sys.executable, "-m", "quoteflow", "snapshot", "qms", "--where", where],
            env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            running = _wait_state(settings, lambda s: s.where == where and s.rows > 0, "running")
            follower.send_signal(signal.SIGINT)
            out, _ = follower.communicate(timeout=30)
        finally:
            if follower.poll() is None:
                follower.kill()
        assert follower.returncode == 130, out
        assert "Traceback" not in out
        assert f"quoteflow snapshot qms --follow {running.snapshot_id}" in out
        assert f"quoteflow snapshot qms --cancel {running.snapshot_id}" in out
        again = _snapshot_cli(settings, "--follow", running.snapshot_id)
        assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith(
        f"snapshot {running.snapshot_id} done: {len(matching)} rows"
    )


def test_a_cancelled_snapshot_stops_after_its_chunk_in_flight(
    cdc_settings: Settings, own: Own
) -> None:
    where, matching, _ = _rows(cdc_settings, "BX", 600)
    settings = _paced(cdc_settings, chunk_rows=50, rows_per_s=100)
    with streaming(settings, "qms", **own.options()):
        requested = _snapshot_cli(settings, "--where", where, "--no-follow")
        assert requested.returncode == 0, requested.stdout + requested.stderr
        request_id = _wait_state(settings, lambda s: s.rows > 0, "running").snapshot_id
        assert f"--follow {request_id}" in requested.stdout
        refused = _snapshot_cli(settings, "--where", where)  # one snapshot at a time
        cancelled = _snapshot_cli(settings, "--cancel", request_id)
        followed = _snapshot_cli(settings, "--follow", request_id)
    assert refused.returncode == 1 and "is still running" in refused.stderr
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    assert followed.returncode == 0, followed.stdout + followed.stderr
    state = _state(settings)
    assert state is not None and state.cancelled and 0 < state.rows < len(matching)
    assert f"snapshot {request_id} cancelled: {state.rows} rows" in followed.stdout
