"""The heartbeat's time against commit times, on the real PostgreSQL (issue 15, item 10).

PostgreSQL stamps a commit (``RecordTransactionCommit``) *before* it inserts
the commit record into the WAL. A heartbeat written between the two has a
lower LSN than the commit and a later clock: a watermark taken from its clock
would claim "everything committed before H was read" while a commit stamped
before H is still to come.

The window is microseconds wide in production; here it is held open for a
second and a half with gdb, which stops the committing backend at the entry of
``XactLogCommitRecord`` (its commit time is an argument: already taken; its
record not yet inserted) — the real server's real commit path, only slowed.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from connectors.cdc.pgoutput import parse_lsn
from quoteflow.settings import Settings

from .conftest import Own, end_offsets, heartbeating, read_new, streaming

pytestmark = pytest.mark.integration

PAUSE_S = 1.5


@contextmanager
def commit_paused_in_wal_insert(pid: int) -> Iterator[threading.Event]:
    """gdb attached to backend ``pid``: its next commit stops after its commit time was taken
    and before its commit record is in the WAL, for ``PAUSE_S``; the event is set then.

    gdb itself removes the breakpoint and detaches after the pause (a breakpoint left
    behind would crash the backend, and with it the shared server).
    """
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.fail("gdb is needed to hold a commit between its timestamp and its WAL record")
    command = [
        gdb, "-q", "-nx", "-batch", "-p", str(pid), "-iex", "set auto-solib-add off",
        "-ex", "break XactLogCommitRecord", "-ex", "echo ARMED\\n", "-ex", "continue",
        "-ex", "echo HIT\\n", "-ex", f"shell sleep {PAUSE_S}", "-ex", "delete", "-ex", "detach",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    armed, hit = threading.Event(), threading.Event()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            if line.startswith("ARMED"):
                armed.set()
            elif line.startswith("HIT"):
                hit.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert armed.wait(30), f"gdb did not set its breakpoint: {output[-5:]}"
        yield hit
    finally:
        code = process.wait(60)
        reader.join(5)
        assert process.stdout is not None
        process.stdout.close()
        assert code == 0, f"gdb failed: {output[-5:]}"


def test_a_commit_stamped_before_a_heartbeat_but_logged_after_it_is_not_passed(
    cdc_settings: Settings, own: Own
) -> None:
    """Every watermark published for a heartbeat whose WAL record precedes a commit record
    is at most that commit's time: else a consumer would decide on "everything before
    watermark_ms was read" with that commit (an acceptance, say) still to come."""
    settings = heartbeating(cdc_settings, 0.1)
    conninfo = settings.postgres.conninfo("qms")
    with (
        streaming(settings, "qms", **own.options()),
        psycopg.connect(conninfo, autocommit=True) as admin,
        psycopg.connect(conninfo) as writer,
    ):
        row = admin.execute(
            "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium,"
            " currency, valid_until) VALUES ('HB-' || md5(random()::text), 1, 'P', 'WEB', 1,"
            " 'GBP', '2026-12-31') RETURNING quote_id"
        ).fetchone()
        assert row is not None
        quote_id = int(row[0])
        changes_since = end_offsets(settings, own.changes)
        marks_since = end_offsets(settings, own.marks)
        writer.execute("UPDATE quotes SET premium = 2 WHERE quote_id = %s", (quote_id,))
        committing = threading.Thread(target=writer.commit)
        with commit_paused_in_wal_insert(writer.info.backend_pid) as paused:
            committing.start()
            assert paused.wait(30), "the commit did not reach its WAL insert"
            hit = admin.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            assert hit is not None
            stamped = parse_lsn(str(hit[0]))
            time.sleep(PAUSE_S / 2)  # heartbeats go into the WAL ahead of the commit record
            mid = admin.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            assert mid is not None
            before_commit_record = parse_lsn(str(mid[0]))
        committing.join(30)
        assert not committing.is_alive()

        def updated(records: list[Any]) -> bool:
            return any(r.value and r.value["op"] == "u" for r in records)

        changes = read_new(
            settings, own.changes, changes_since, until=updated, timeout_s=30,
            key_schema="qms_quote_key", value_schema="qms_quote_envelope",
        )  # fmt: skip
        update = next(
            r.value for r in changes
            if r.value and r.value["op"] == "u" and r.key and r.key["quote_id"] == quote_id
        )  # fmt: skip
        commit_ms = int(update["source"]["ts_ms"])

        def past_pause(records: list[Any]) -> bool:
            return any(r.value and r.value["lsn"] > before_commit_record for r in records)

        records = read_new(
            settings, own.marks, marks_since, until=past_pause, timeout_s=30,
            key_schema="", value_schema="cdc_watermark",
        )  # fmt: skip
        marks = [r.value for r in records if r.value]
    ahead = [m for m in marks if m["lsn"] < before_commit_record]
    assert any(m["lsn"] > stamped for m in ahead), (
        "precondition: a watermark for a heartbeat logged while the commit was stamped"
        " but not yet logged"
    )
    assert int(update["source"]["lsn"]) < stamped  # the change itself came earlier
    passed = [(m["watermark_ms"], m["lsn"]) for m in ahead if m["watermark_ms"] > commit_ms]
    assert not passed, f"watermarks past the commit time {commit_ms} before its record: {passed}"
