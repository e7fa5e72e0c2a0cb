"""The CDC's lag: a real slot's bytes behind the server, and a source watermark's age.

The integration tests make slots of their own (a unique prefix) in the real
PostgreSQL, and write watermark records to a watermark topic of their own (a
unique topic prefix), so neither a running CDC nor another test is measured.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.cdc.lag import lag_seconds, read_slot, slot_from_row, source_lags
from connectors.cdc.watermark_tail import WINDOW, newest_by_key
from connectors.cdc.watermarks import source_watermark
from quoteflow.settings import Settings, load_settings
from quoteflow.topics import WATERMARKS
from schemas.serde import serde_from_settings
from tests.helpers import free_ports

from .conftest import drop_slot

SOURCES = ("qms", "crm")


# -- pure ------------------------------------------------------------------------------


@pytest.mark.unit
def test_a_slot_row_becomes_its_state() -> None:
    assert slot_from_row("s", None).state == "missing"
    active = slot_from_row("s", (True, 42, "reserved", 1024, "0/1"))
    assert (active.state, active.lag_bytes, active.active_pid) == ("active", 1024, 42)
    idle = slot_from_row("s", (False, None, "extended", 7, "0/1"))
    assert (idle.state, idle.lag_bytes, idle.active_pid) == ("inactive", 7, None)
    lost = slot_from_row("s", (False, None, "lost", None, None))
    assert lost.state == "lost" and "re-snapshot" in lost.problem


@pytest.mark.unit
def test_the_watermark_age_is_never_negative() -> None:
    assert lag_seconds(10_000, 4_000) == 6.0
    assert lag_seconds(10_000, 12_000) == 0.0  # the server's clock ahead of ours


@pytest.mark.unit
def test_the_newest_record_of_each_wanted_key_wins() -> None:
    records = [(1, b"qms", b"a"), (5, b"qms", b"b"), (3, b"qms", b"c"), (2, b"crm", b"d"),
               (4, b"other", b"e"), (6, None, b"f"), (7, b"crm", None)]  # fmt: skip
    assert newest_by_key(records, {b"qms", b"crm"}) == {b"qms": (5, b"b"), b"crm": (2, b"d")}


# -- the real slot ------------------------------------------------------------------------


@pytest.fixture
def lag_settings(stack: object) -> Iterator[Settings]:
    """A slot prefix and a topic prefix of this test's own; its qms slot dropped after."""
    run = uuid.uuid4().hex[:10]
    settings = load_settings(cdc={"slot_prefix": f"test_lag_{run}"},
                             topics={"prefix": f"test-lag-{run}."})  # fmt: skip
    try:
        yield settings
    finally:
        from connectors.cdc.sources import CDC_SOURCES

        drop_slot(settings, CDC_SOURCES[0], f"{settings.cdc.slot_prefix}_qms")


def make_slot(settings: Settings, slot: str) -> None:
    with psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))


@pytest.mark.integration
def test_a_slot_lags_by_the_wal_written_since_it_confirmed(lag_settings: Settings) -> None:
    slot = f"{lag_settings.cdc.slot_prefix}_qms"
    conninfo = lag_settings.postgres.conninfo("qms")
    assert read_slot(conninfo, slot).state == "missing"
    make_slot(lag_settings, slot)
    before = read_slot(conninfo, slot)
    assert before.state == "inactive" and before.lag_bytes is not None
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_logical_emit_message(true, 'test.lag', repeat('x', 100000))")
    after = read_slot(conninfo, slot)
    assert after.lag_bytes is not None
    assert after.lag_bytes >= before.lag_bytes + 100_000


@pytest.mark.integration
def test_an_unreachable_database_is_a_state_not_a_crash(lag_settings: Settings) -> None:
    [port] = free_ports(1)
    nobody = lag_settings.postgres.model_copy(update={"port": port, "connect_timeout_s": 2})
    found = read_slot(nobody.conninfo("qms"), "any")
    assert found.state == "unreachable" and found.problem


@pytest.mark.integration
def test_seconds_are_the_age_of_each_sources_newest_watermark(lag_settings: Settings) -> None:
    """The newest qms record sits behind more than a window of crm ones: found anyway."""
    topic = lag_settings.topics.prefix + WATERMARKS
    admin = AdminClient(lag_settings.kafka.as_librdkafka_dict())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    make_slot(lag_settings, f"{lag_settings.cdc.slot_prefix}_qms")
    now_ms = int(time.time() * 1000)
    serde = serde_from_settings(lag_settings.schema_registry)
    try:
        def mark(source: str, age_ms: int) -> bytes:
            record = source_watermark(source, f"{source}.t", now_ms - age_ms, 1, {0: 1}, now_ms)
            return serde.encode("cdc_watermark", record, topic=WATERMARKS)

        producer = Producer(lag_settings.kafka.as_librdkafka_dict())
        producer.produce(topic, key=b"qms", value=mark("qms", 60_000))
        producer.produce(topic, key=b"qms", value=mark("qms", 5_000))
        for n in range(WINDOW + 200):
            producer.produce(topic, key=b"crm", value=mark("crm", 3_000 - n))
        assert producer.flush(30) == 0

        qms, crm = source_lags(lag_settings, SOURCES, now_ms=now_ms)
        assert (qms.slot.state, qms.watermark_ms, qms.lag_s) == ("inactive", now_ms - 5_000, 5.0)
        assert crm.slot.state == "missing"  # no crm slot was made
        assert crm.lag_s == pytest.approx((3_000 - (WINDOW + 199)) / 1000)

        alone = load_settings(cdc={"slot_prefix": lag_settings.cdc.slot_prefix},
                              topics={"prefix": lag_settings.topics.prefix + "none."})  # fmt: skip
        [unknown] = source_lags(alone, ("qms",), now_ms=now_ms)
        assert unknown.lag_s is None and "watermarks unreadable" in unknown.seconds_note
    finally:
        serde.close()
        admin.delete_topics([topic])[topic].result()
