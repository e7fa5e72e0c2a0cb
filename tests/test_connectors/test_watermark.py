"""The source watermark: what it promises a consumer, checked against the real stack.

A watermark says: every transaction committed before ``watermark_ms`` is in
the change topic below ``offsets``. So reading each partition only up to those
offsets must already yield every row committed before that time — and an idle
source must keep its watermark moving, so a processor is never left waiting.

Each test's stream writes its changes and its watermarks to topics of its own
(``produce_to``, ``watermarks_to``): the real watermark topic also carries the
records of every other stream of the source (a running connector, other tests),
any of which would satisfy a check meant for this one.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from quoteflow.settings import Settings
from tests.conftest import TopicFactory

from .conftest import (
    Own,
    Record,
    end_offsets,
    heartbeating,
    read_new,
    read_watermarks,
    streaming,
    wait_confirmed_past,
)

pytestmark = pytest.mark.integration


def test_reading_up_to_a_watermark_yields_every_change_committed_before_it(
    cdc_settings: Settings, own: Own
) -> None:
    settings = heartbeating(cdc_settings)
    since = end_offsets(settings, own.changes)
    marks_since = end_offsets(settings, own.marks)
    run = uuid.uuid4().hex[:6]
    with (
        streaming(settings, "qms", **own.options()) as running,
        psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn,
    ):
        ids = set()
        for t in range(5):
            with conn.transaction():
                for n in range(20):
                    row = conn.execute(
                        "INSERT INTO quotes (quote_ref, customer_id, product_code, channel,"
                        " premium, currency, valid_until) VALUES (%s, 1, 'P', 'WEB', %s, 'GBP',"
                        " '2026-12-31') RETURNING quote_id",
                        (f"W-{run}-{t}-{n}", Decimal(n)),
                    ).fetchone()
                    assert row is not None
                    ids.add(int(row[0]))
        committed = conn.execute(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
        ).fetchone()
        assert committed is not None
        marks = read_watermarks(settings, own, marks_since, int(committed[0]))
        stats = running.stream.stats
    mark = next(m for m in marks if m["watermark_ms"] > committed[0])
    assert mark["emitted_ms"] >= mark["watermark_ms"]
    bounds = {o["partition"]: o["offset"] for o in mark["offsets"]}
    assert bounds, "the watermark names the partitions that received changes"

    # Read exactly up to the bounds, no further: every row committed before is there.
    def below_bounds(records: list[Record]) -> bool:
        seen = {(r.partition, r.offset) for r in records}
        return all((p, o - 1) in seen or o <= since.get(p, 0) for p, o in bounds.items())

    limited = read_new(
        settings, own.changes, since, until=below_bounds, timeout_s=30,
        key_schema="qms_quote_key", value_schema="qms_quote_envelope",
    )  # fmt: skip
    inside = [r for r in limited if r.offset < bounds.get(r.partition, 0)]
    assert ids <= {r.key["quote_id"] for r in inside if r.key and r.value}
    assert stats.watermarks >= 1 and stats.lag_bytes >= 0


def test_an_idle_source_keeps_its_watermark_moving(cdc_settings: Settings, own: Own) -> None:
    settings = heartbeating(cdc_settings)
    marks_since = end_offsets(settings, own.marks)
    with streaming(settings, "qms", **own.options()):
        start_ms = int(time.time() * 1000)
        first = read_watermarks(settings, own, marks_since, start_ms)
        later = read_watermarks(settings, own, marks_since, start_ms + 1_000)
    times = [m["watermark_ms"] for m in later]
    assert times == sorted(times) and times[-1] - first[0]["watermark_ms"] >= 800


def test_watermarks_end_offsets_are_partition_offsets_of_the_change_topic(
    cdc_settings: Settings, own: Own
) -> None:
    """The bounds are real offsets: none beyond the topic's end when it was published."""
    settings = heartbeating(cdc_settings)
    marks_since = end_offsets(settings, own.marks)
    with (
        streaming(settings, "qms", **own.options()),
        psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn,
    ):
        conn.execute(
            "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium,"
            " currency, valid_until) VALUES (%s, 1, 'P', 'WEB', 1, 'GBP', '2026-12-31')",
            (f"E-{uuid.uuid4().hex[:6]}",),
        )
        marks = read_watermarks(settings, own, marks_since, int(time.time() * 1000))
        ends = end_offsets(settings, own.changes)
    assert marks and any(mark["offsets"] for mark in marks)
    for mark in marks:
        for entry in mark["offsets"]:
            assert 0 <= entry["offset"] <= ends[entry["partition"]]


def _insert_quote(conn: psycopg.Connection[Any], ref: str) -> None:
    conn.execute(
        "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium,"
        " currency, valid_until) VALUES (%s, 1, 'P', 'WEB', 1, 'GBP', '2026-12-31')",
        (ref,),
    )


def test_after_a_restart_every_watermark_lists_every_partition_from_its_end_offset(
    cdc_settings: Settings, topic_factory: TopicFactory
) -> None:
    """A restarted connector knows nothing it acknowledged before; a record listing only
    the partitions written since would read as "nothing there" for the others (issue 15,
    item 2). Every record lists every partition, at least at its end offset at start."""
    partitions = 12
    own = Own(topic_factory("test.cdc.quotes", partitions=partitions),
              topic_factory("test.cdc.marks"))  # fmt: skip
    settings = heartbeating(cdc_settings)
    conninfo = settings.postgres.conninfo("qms")
    run = uuid.uuid4().hex[:6]
    with (
        streaming(settings, "qms", **own.options()) as running,
        psycopg.connect(conninfo, autocommit=True) as conn,
    ):
        for n in range(2 * partitions):
            _insert_quote(conn, f"R-{run}-{n}")
        wait_confirmed_past(running, conninfo)
    at_start = end_offsets(settings, own.changes)
    assert sum(at_start.values()) >= 2 * partitions
    marks_since = end_offsets(settings, own.marks)

    # The same slot again: a restart. One insert reaches one partition.
    with (
        streaming(settings, "qms", **own.options()),
        psycopg.connect(conninfo, autocommit=True) as conn,
    ):
        _insert_quote(conn, f"R-{run}-after")
        committed = conn.execute(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
        ).fetchone()
        assert committed is not None
        marks = read_watermarks(settings, own, marks_since, int(committed[0]))
    ends = end_offsets(settings, own.changes)
    written = {p for p in ends if ends[p] > at_start[p]}
    assert 0 < len(written) < partitions, "precondition: only some partitions got a write"
    assert marks
    for mark in marks:
        offsets = {o["partition"]: o["offset"] for o in mark["offsets"]}
        assert sorted(offsets) == sorted(at_start), mark
        assert all(offsets[p] >= at_start[p] for p in at_start), (mark, at_start)
