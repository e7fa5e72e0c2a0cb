"""``quoteflow bench cdc``: how fast committed changes reach Kafka, against the slot's own pace.

Three rates over the *same* changes, in one run, so they compare:

* ``baseline_per_s``: reading the changes from a second replication slot and
  parsing the pgoutput messages, nothing else — the ceiling the source sets;
* ``decode_only_per_s``: the pure core on those messages, no Kafka: parse,
  convert the row, build the Debezium envelope, Avro-encode key and value;
* ``changes_per_s``: the connector itself, from its first read until Kafka
  acknowledged the last event (``acks=all``, idempotent producer).

Then latency: a writer commits ``rate`` changes per second for ``seconds``
seconds (ten rows per transaction) while the connector streams; each event's
latency runs from its transaction's commit timestamp to Kafka's
acknowledgement, both read off this machine's clock.

The workload runs on a copy of the quotes table in a schema of its own
(``quoteflow_bench``, with its own publication), so a running ``quoteflow cdc``
never sees it, and the events go to a scratch topic encoded for
``qms.public.quotes``' subject: the real topic stays clean.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench.report import ms_figure, per_second, percentile, rate_figure
from connectors.cdc import pgoutput as pg
from connectors.cdc.events import Capture, Position, RowDecoder, insert_events, source_block
from connectors.cdc.replication import ReplicationConnection
from connectors.cdc.sources import CDC_SOURCES
from connectors.cdc.stream import ChangeStream
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics import QUOTES
from schemas.serde import Serde, serde_from_settings

SCHEMA = "quoteflow_bench"
PUBLICATION = "quoteflow_bench"
TOPIC = QUOTES
BATCH_ROWS = 10_000
ROWS_PER_TXN = 10


@dataclass(frozen=True)
class BenchResult:
    changes: int
    changes_per_s: float
    baseline_per_s: float
    decode_only_per_s: float
    p50_ms: float
    p99_ms: float
    latency_changes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "changes_per_s": rate_figure(self.changes_per_s),
            "baseline_per_s": rate_figure(self.baseline_per_s),
            "decode_only_per_s": rate_figure(self.decode_only_per_s),
            "p50_ms": ms_figure(self.p50_ms),
            "p99_ms": ms_figure(self.p99_ms),
            "changes": self.changes,
            "latency_changes": self.latency_changes,
        }


def run_cdc_bench(
    settings: Settings, *, changes: int, rate: int, seconds: float, report: Reporter
) -> BenchResult:
    """The benchmark; a database that cannot be reached or refuses is one CdcError line."""
    try:
        return _run(settings, changes=changes, rate=rate, seconds=seconds, report=report)
    except psycopg.Error as exc:
        raise CdcError(
            f"bench: {error_gist(exc)} (is the stack up? `quoteflow stack up`)"
        ) from exc


def _run(
    settings: Settings, *, changes: int, rate: int, seconds: float, report: Reporter
) -> BenchResult:
    run = uuid.uuid4().hex[:8]
    bench = settings.model_copy(
        update={"cdc": settings.cdc.model_copy(update={"slot_prefix": f"bench_{run}"})}
    )
    source = dataclasses.replace(CDC_SOURCES[0], schema=SCHEMA, publication=PUBLICATION)
    database = source.database(settings.postgres)
    conninfo = settings.postgres.conninfo(database)
    baseline_slot = f"bench_{run}_baseline"
    from quoteflow.topics.admin import TopicAdmin

    with psycopg.connect(conninfo, autocommit=True) as conn:
        _create_table(conn)
        serde = serde_from_settings(settings.schema_registry)
        stream = ChangeStream(bench, source, serde, topic=TOPIC)
        try:
            prepared = stream.prepare()  # the connector's slot, before any change
            conn.execute(
                "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (baseline_slot,)
            )
            report(f"writing {changes:,} inserts in transactions of {BATCH_ROWS:,} rows")
            _bulk_insert(conn, changes, run)

            report("baseline: reading the changes from a slot, parsing only")
            payloads, baseline = _read_slot(conninfo, baseline_slot, changes)
            report(f"baseline: {per_second(changes, baseline):,.0f} changes/s")
            decode_only = _decode_only(payloads, prepared.capture, serde)
            del payloads
            report(f"decode only (no Kafka): {per_second(changes, decode_only):,.0f} changes/s")

            with TopicAdmin(settings).scratch("quoteflow.bench.", partitions=6) as scratch:
                latencies: list[float] = []
                stream = ChangeStream(
                    bench, source, serde, topic=TOPIC, produce_to=scratch, latencies_ms=latencies
                )
                streamed, latency = _stream(stream, changes, rate, seconds, conninfo, run,
                                            latencies, report)  # fmt: skip
        finally:
            serde.close()
            for slot in (stream.slot, baseline_slot):
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE slot_name = %s AND NOT active",
                    (slot,),
                )
            _drop(conn)
    return BenchResult(
        changes=changes,
        changes_per_s=per_second(changes, streamed),
        baseline_per_s=per_second(changes, baseline),
        decode_only_per_s=per_second(changes, decode_only),
        p50_ms=percentile(latency, 50),
        p99_ms=percentile(latency, 99),
        latency_changes=len(latency),
    )


def _drop(conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(PUBLICATION)))
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def _create_table(conn: psycopg.Connection[Any]) -> None:
    _drop(conn)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
    conn.execute(
        sql.SQL("CREATE TABLE {}.quotes (LIKE public.quotes INCLUDING ALL)").format(
            sql.Identifier(SCHEMA)
        )
    )
    table = sql.SQL("{}.quotes").format(sql.Identifier(SCHEMA))
    conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(table))


def _bulk_insert(conn: psycopg.Connection[Any], changes: int, run: str) -> None:
    statement = sql.SQL(
        "INSERT INTO {}.quotes (quote_ref, customer_id, product_code, channel, premium, currency,"
        " status, valid_until) SELECT %s || g, g %% 50000, 'MOTOR-COMP', 'WEB', 100 + g %% 900,"
        " 'GBP', 'QUOTED', date '2026-12-31' FROM generate_series(%s::bigint, %s::bigint) g"
    ).format(sql.Identifier(SCHEMA))
    for start in range(1, changes + 1, BATCH_ROWS):
        end = min(changes, start + BATCH_ROWS - 1)
        conn.execute(statement, (f"B-{run}-", start, end))


def _read_slot(conninfo: str, slot: str, changes: int) -> tuple[list[bytes], float]:
    """Read ``changes`` inserts from ``slot``, parsing each message; (payloads, seconds)."""
    conn = ReplicationConnection(conninfo)
    payloads: list[bytes] = []
    try:
        conn.start(slot, PUBLICATION)
        started = time.perf_counter()
        inserts = 0
        while inserts < changes:
            data = conn.read(30.0)  # the server decodes a whole transaction before sending it
            if data is None:
                raise CdcError(f"baseline slot {slot} stopped after {inserts} of {changes} changes")
            frame = pg.parse_copy_message(data)
            if isinstance(frame, pg.XLogData):
                message = pg.parse_message(frame.payload)
                payloads.append(bytes(frame.payload))
                if isinstance(message, pg.Insert):
                    inserts += 1
        return payloads, time.perf_counter() - started
    finally:
        conn.close()


def _decode_only(payloads: list[bytes], capture: Capture, serde: Serde) -> float:
    """The pure core over recorded messages: parse, row, envelope, encode (no Kafka)."""
    decoders: dict[int, RowDecoder] = {}
    started = time.perf_counter()
    xid, commit_us = 0, 0
    for lsn, payload in enumerate(payloads):
        message = pg.parse_message(payload)
        if isinstance(message, pg.Relation):
            decoders[message.oid] = RowDecoder(message, capture)
        elif isinstance(message, pg.Begin):
            xid, commit_us = message.xid, message.commit_us
        elif isinstance(message, pg.Insert):
            decoder = decoders[message.relation_oid]
            block = source_block(capture, Position(lsn, 0, xid, commit_us // 1000), version="bench")
            for event in insert_events(decoder, decoder.row(message.new), block, 0):
                assert event.key is not None and event.value is not None  # an insert's are set
                serde.encode(capture.key_schema, event.key, topic=TOPIC, is_key=True)
                serde.encode(capture.value_schema, event.value, topic=TOPIC)
    return time.perf_counter() - started


def _stream(
    stream: ChangeStream,
    changes: int,
    rate: int,
    seconds: float,
    conninfo: str,
    run: str,
    latencies: list[float],
    report: Reporter,
) -> tuple[float, list[float]]:
    """(seconds to stream the bulk changes into Kafka, latencies of the steady phase)."""
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            stream.run(stop, ready)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=work, name="bench-cdc", daemon=True)
    thread.start()
    try:
        if not ready.wait(60) or errors:
            raise errors[0] if errors else CdcError("the connector did not start")
        started = time.perf_counter()
        _wait(lambda: stream.stats.acked >= changes, errors, report, stream, changes)
        streamed = time.perf_counter() - started
        report(f"connector: {per_second(changes, streamed):,.0f} changes/s into Kafka")
        latencies.clear()
        report(f"latency: {rate:,} changes/s for {seconds:g}s")
        _steady_writer(conninfo, rate, seconds, run)
        target = changes + int(rate * seconds)
        _wait(lambda: stream.stats.acked >= target, errors, report, stream, target)
        return streamed, list(latencies)
    finally:
        stop.set()
        thread.join(60)


def _wait(
    done: Callable[[], bool], errors: list[BaseException], report: Reporter,
    stream: ChangeStream, target: int,
) -> None:  # fmt: skip
    last = time.monotonic()
    while not done():
        if errors:
            raise errors[0]
        time.sleep(0.01)
        if time.monotonic() - last > 5:
            report(f"  {stream.stats.acked:,} of {target:,} events acknowledged")
            last = time.monotonic()


def _steady_writer(conninfo: str, rate: int, seconds: float, run: str) -> None:
    statement = sql.SQL(
        "INSERT INTO {}.quotes (quote_ref, customer_id, product_code, channel, premium, currency,"
        " status, valid_until) SELECT %s || g, g %% 50000, 'MOTOR-COMP', 'WEB', 100, 'GBP',"
        " 'QUOTED', date '2026-12-31' FROM generate_series(%s::bigint, %s::bigint) g"
    ).format(sql.Identifier(SCHEMA))
    interval = ROWS_PER_TXN / rate
    with psycopg.connect(conninfo, autocommit=True) as conn:
        total = int(rate * seconds)
        next_at = time.perf_counter()
        for start in range(1, total + 1, ROWS_PER_TXN):
            conn.execute(statement, (f"L-{run}-", start, min(total, start + ROWS_PER_TXN - 1)))
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
