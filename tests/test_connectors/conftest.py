"""Fixtures for the CDC tests against the stack's real PostgreSQL and Kafka.

Every test streams through a replication slot of its own (dropped afterwards),
so tests never resume each other's positions, and reads only what was written
to the change topics after the offsets it noted when it started.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from connectors.cdc.sources import CDC_SOURCES, CdcSource
from connectors.cdc.stream import ChangeStream
from quoteflow.settings import Settings, load_settings
from schemas.catalog import SchemaCatalog
from schemas.serde import Serde, serde_from_settings
from tests.conftest import TopicFactory
from tests.helpers import end_offsets

SOURCES = {s.server_name: s for s in CDC_SOURCES}
QUOTES = "qms.public.quotes"


@pytest.fixture
def cdc_settings(stack: object, tmp_path: Path) -> Iterator[Settings]:
    """Settings with a slot prefix and state folder of this test's own; slots dropped after.

    No initial snapshot: these tests are about the stream (the snapshot tests turn it on).
    """
    prefix = f"test_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        cdc={
            "slot_prefix": prefix, "status_interval_s": 0.2, "snapshot": "never",
            "state_dir": tmp_path / "cdc-state",
        }
    )  # fmt: skip
    try:
        yield settings
    finally:
        for source in CDC_SOURCES:
            drop_slot(settings, source, f"{prefix}_{source.server_name}")


def drop_slot(settings: Settings, source: CdcSource, slot: str) -> None:
    """Drop ``slot`` once no process holds it (a killed walsender takes a moment to go)."""
    with psycopg.connect(
        settings.postgres.conninfo(source.database(settings.postgres)), autocommit=True
    ) as conn:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is None:
                return
            if not row[0]:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                return
            time.sleep(0.2)
        raise AssertionError(f"slot {slot} stayed active")


@dataclass
class Running:
    stream: ChangeStream
    stop: threading.Event
    thread: threading.Thread
    errors: list[BaseException]

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the stream did not stop"
        if self.errors:
            raise self.errors[0]


@contextmanager
def streaming(
    settings: Settings,
    name: str,
    *,
    source: CdcSource | None = None,
    catalog: SchemaCatalog | None = None,
    **options: Any,
) -> Iterator[Running]:
    """A ChangeStream for source ``name`` in a thread, ready (slot created) on entry.

    ``source``, ``catalog`` and ``options`` (ChangeStream's keywords) capture a
    table other than the source's own (the column-type tests' table).
    """
    serde = serde_from_settings(settings.schema_registry, catalog=catalog)
    stream = ChangeStream(settings, source or SOURCES[name], serde, **options)
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            stream.run(stop, ready)
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(60), "the stream did not start"
    running = Running(stream, stop, thread, errors)
    try:
        if errors:
            raise errors[0]
        yield running
    finally:
        if thread.is_alive() or not errors:
            running.finish()
        serde.close()


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: dict[str, Any] | None
    value: dict[str, Any] | None  # None: tombstone


def read_new(
    settings: Settings,
    topic: str,
    since: dict[int, int],
    *,
    until: Callable[[list[Record]], bool],
    key_schema: str,
    value_schema: str,
    timeout_s: float = 30.0,
    catalog: SchemaCatalog | None = None,
) -> list[Record]:
    """Records written to ``topic`` after ``since``, decoded, until ``until(records)`` holds."""
    serde: Serde = serde_from_settings(settings.schema_registry, catalog=catalog)
    consumer = Consumer(
        {
            **settings.kafka.as_librdkafka_dict(),
            "group.id": f"quoteflow-test-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 20,
        }
    )
    records: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, p, o) for p, o in since.items()])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not until(records):
            message = consumer.poll(0.1)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise AssertionError(f"reading {topic}: {error}")
            if error is not None:
                continue
            raw_key, raw_value = message.key(), message.value()
            # An empty key_schema: a string key (not decoded; such topics key by name).
            key = (
                serde.decode(key_schema, raw_key, topic=topic, is_key=True)
                if raw_key and key_schema
                else None
            )
            value = serde.decode(value_schema, raw_value, topic=topic) if raw_value else None
            records.append(Record(message.partition() or 0, message.offset() or 0, key, value))
    finally:
        consumer.close()
        serde.close()
    assert until(records), f"timed out with {len(records)} records from {topic}"
    return records


def read_to_end(
    settings: Settings, topic: str, since: dict[int, int], *, key_schema: str, value_schema: str
) -> list[Record]:
    """Every record from ``since`` up to the topic's end offsets as they are now."""
    until = end_offsets(settings, topic)
    want = sum(until[p] - since.get(p, 0) for p in until)
    return read_new(
        settings, topic, since, until=lambda records: len(records) >= want,
        key_schema=key_schema, value_schema=value_schema, timeout_s=60,
    )  # fmt: skip


def wait_confirmed_past(running: Running, conninfo: str, timeout_s: float = 120) -> None:
    """Until the stream confirmed everything committed so far (every event acknowledged)."""
    from connectors.cdc.pgoutput import parse_lsn

    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = parse_lsn(str(row[0]))
    deadline = time.monotonic() + timeout_s
    while running.stream.stats.confirmed_lsn < target:
        assert not running.errors, running.errors
        assert time.monotonic() < deadline, "the stream did not catch up"
        time.sleep(0.05)


@pytest.fixture
def types_db(cdc_settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """The QMS database with the every-type table (``types_table``), dropped afterwards."""
    from . import types_table

    with psycopg.connect(cdc_settings.postgres.conninfo("qms"), autocommit=True) as conn:
        types_table.create(conn)
        try:
            yield conn
        finally:
            types_table.drop(conn)


@dataclass(frozen=True)
class Own:
    """A test's change topic (as many partitions as the real one) and watermark topic."""

    changes: str
    marks: str

    def options(self) -> dict[str, Any]:
        return {"topic": QUOTES, "produce_to": self.changes, "watermarks_to": self.marks}


@pytest.fixture
def own(topic_factory: TopicFactory) -> Own:
    """A 6-partition change topic and a watermark topic of this test's own."""
    return Own(topic_factory("test.cdc.quotes", partitions=6), topic_factory("test.cdc.marks"))


def heartbeating(settings: Settings, interval_s: float = 0.2) -> Settings:
    return settings.model_copy(
        update={"cdc": settings.cdc.model_copy(update={"heartbeat_interval_s": interval_s})}
    )


def read_watermarks(
    settings: Settings, own: Own, since: dict[int, int], after_ms: int
) -> list[dict[str, Any]]:
    """This test's stream's watermarks published since ``since``, until one is past ``after_ms``."""

    def past(records: list[Record]) -> bool:
        return any(r.value and r.value["watermark_ms"] > after_ms for r in records)

    records = read_new(
        settings, own.marks, since, until=past, timeout_s=30,
        key_schema="", value_schema="cdc_watermark",
    )  # fmt: skip
    marks = [r.value for r in records if r.value]
    assert all(m["source"] == "qms" and m["topic"] == own.changes for m in marks)
    return marks
