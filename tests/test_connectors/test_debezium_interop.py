"""The real Debezium beside ``quoteflow cdc``: the same changes decode into the same events.

Kafka Connect standalone runs Debezium's PostgreSQL connector (jars from Maven
Central, ``devstack/debezium/qms.properties``) against the stack's
PostgreSQL, Kafka and registry, while our ChangeStream captures the same
tables. Debezium's topics are routed to this test's own (a RegexRouter), and
its slot and publication are its own. Both producers' records are read back
with *our* reader schemas through the registry, and compared change by change.

What still differs, asserted here so a change on either side shows up:

* Debezium writes ``io.debezium.time.Date`` without Avro's date logical type, so
  its dates decode to int days where ours decode to ``date`` (same number);
* ``source.version`` names each connector, and the envelope's ``ts_ms`` is each
  one's own processing time;
* Debezium's schemas carry more (``ts_us``/``ts_ns``, ``source.origin``...):
  our readers skip them, which is why readers must decode with the writer's schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.children import WorkerProcess
from devstack.debezium.connect import (
    ConnectDistributed,
    ConnectorRun,
    connect_distributed,
    connect_standalone,
    connector_config,
)
from quoteflow.settings import Settings, load_settings
from schemas.debezium import as_date
from schemas.serde import serde_from_settings
from tests.helpers import delete_subjects, drop_topics, free_ports
from tests.test_streams.test_processor import DELAY_S, RULES, _env

from . import types_table as tt
from .conftest import SOURCES, Record, drop_slot, end_offsets, read_new, streaming
from .test_types import INSERT, NOTE

pytestmark = pytest.mark.integration

QUOTES = "qms.public.quotes"


@pytest.fixture
def debezium(
    cdc_settings: Settings, tmp_path: Path, types_db: psycopg.Connection[Any]
) -> Iterator[str]:
    """Debezium streaming public.quotes and the types table into ``<prefix>.<schema>.<table>``."""
    prefix = f"quoteflow.test.dbz.{uuid.uuid4().hex[:8]}"
    slot = f"dbz_{uuid.uuid4().hex[:10]}"
    topics = [f"{prefix}.public.quotes", f"{prefix}.{tt.SCHEMA}.{tt.TABLE}",
              f"{prefix}.message", f"{prefix}.heartbeat.qms"]  # fmt: skip
    admin = AdminClient(cdc_settings.kafka.as_librdkafka_dict())
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
        future.result()
    run: ConnectorRun = connector_config(
        cdc_settings, "qms", name=f"test-{slot}", slot=slot,
        overrides={
            "table.include.list": f"public.quotes,{tt.SCHEMA}.{tt.TABLE}",
            "snapshot.mode": "no_data",
            "topic.heartbeat.prefix": f"{prefix}.heartbeat",
            "transforms": "route",
            "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex": r"qms\.(.*)",
            "transforms.route.replacement": f"{prefix}.$1",
        },
    )  # fmt: skip
    home = tmp_path / "connect"
    home.mkdir()
    try:
        with connect_standalone(
            cdc_settings, run, rest_port=free_ports(1)[0], home=home, report=print
        ):
            yield prefix
    finally:
        drop_slot(cdc_settings, tt.SOURCE, slot)
        types_db.execute(f'DROP PUBLICATION IF EXISTS "{slot}"'.encode())
        for topic in topics:
            delete_subjects(cdc_settings, topic)
        for future in admin.delete_topics(topics).values():
            future.result()


def _logical(record: Record, dates: tuple[str, ...]) -> tuple[Any, ...]:
    """What a change means, with the documented differences taken out."""
    if record.value is None:
        return (record.key, None)
    value = record.value

    def row(data: dict[str, Any] | None) -> dict[str, Any] | None:
        if data is None:
            return None
        return {k: as_date(v) if k in dates and v is not None else v for k, v in data.items()}

    source = {k: v for k, v in value["source"].items() if k != "version"}
    return (record.key, value["op"], row(value["before"]), row(value["after"]), source)


def test_debezium_and_quoteflow_write_the_same_quote_changes(
    cdc_settings: Settings, debezium: str, types_db: psycopg.Connection[Any]
) -> None:
    ours_since = end_offsets(cdc_settings, QUOTES)
    settings = cdc_settings.model_copy(
        update={"cdc": cdc_settings.cdc.model_copy(update={"heartbeat_interval_s": None})}
    )
    ref = f"Q-DBZ-{uuid.uuid4().hex[:8]}"
    with streaming(settings, "qms"):
        row = types_db.execute(
            "INSERT INTO public.quotes (quote_ref, customer_id, product_code, channel, premium,"
            " currency, status, valid_until) VALUES (%s, 424242, 'MOTOR', 'WEB', 1234.56, 'EUR',"
            " 'DRAFT', '2026-12-31') RETURNING quote_id",
            (ref,),
        ).fetchone()
        assert row is not None
        quote_id = row[0]
        moved = quote_id + 2_000_000_000
        types_db.execute("UPDATE quotes SET status = 'QUOTED' WHERE quote_id = %s", (quote_id,))
        types_db.execute("UPDATE quotes SET quote_id = %s WHERE quote_id = %s", (moved, quote_id))
        types_db.execute("DELETE FROM quotes WHERE quote_id = %s", (moved,))
        ids = {quote_id, moved}

        def mine(records: list[Record]) -> list[Record]:
            return [r for r in records if r.key is not None and r.key["quote_id"] in ids]

        read = {"key_schema": "qms_quote_key", "value_schema": "qms_quote_envelope"}
        theirs = read_new(
            settings, f"{debezium}.public.quotes", {0: 0},
            until=lambda rs: len(mine(rs)) >= 7, **read,
        )  # fmt: skip
        ours = read_new(
            settings, QUOTES, ours_since, until=lambda rs: len(mine(rs)) >= 7, **read
        )

    dates = ("valid_until",)
    theirs_logical = [_logical(r, dates) for r in mine(theirs)]
    ours_logical = [_logical(r, dates) for r in mine(ours)]
    assert [(t[0], t[1]) for t in theirs_logical] == [
        ({"quote_id": quote_id}, "c"), ({"quote_id": quote_id}, "u"),
        ({"quote_id": quote_id}, "d"), ({"quote_id": quote_id}, None),
        ({"quote_id": moved}, "c"), ({"quote_id": moved}, "d"), ({"quote_id": moved}, None),
    ]  # fmt: skip
    # Ours spread over partitions by key; per key, the order is the same.
    assert _by_key(ours_logical) == _by_key(theirs_logical)
    created = mine(theirs)[0].value
    assert created is not None and created["after"]["premium"] == Decimal("1234.56")
    assert created["after"]["valid_until"] == (date(2026, 12, 31) - date(1970, 1, 1)).days
    assert created["source"]["version"].endswith(".Final")


def _by_key(changes: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """Changes per key, in order: a key's records share a partition, so this order holds."""
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for change in changes:
        grouped.setdefault(repr(change[0]), []).append(change)
    return grouped


def test_debezium_and_quoteflow_write_every_type_alike(
    cdc_settings: Settings,
    debezium: str,
    types_db: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    catalog = tt.catalog_with_types(tmp_path / "schemas")
    settings = cdc_settings.model_copy(
        update={
            "schema_registry": cdc_settings.schema_registry.model_copy(
                update={"auto_register": True}
            ),
            "cdc": cdc_settings.cdc.model_copy(update={"heartbeat_interval_s": None}),
        }
    )
    table = f"{tt.SCHEMA}.{tt.TABLE}"
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    ours_topic = f"quoteflow.test.types.{uuid.uuid4().hex[:8]}"
    for future in admin.create_topics([NewTopic(ours_topic, 1, 1)]).values():
        future.result()
    read = {"key_schema": tt.KEY_SCHEMA, "value_schema": tt.VALUE_SCHEMA, "catalog": catalog}
    try:
        with streaming(
            settings, "qms", source=tt.SOURCE, catalog=catalog,
            topic=ours_topic, catalogue=[tt.topic_spec(ours_topic)],
        ):  # fmt: skip
            types_db.execute(INSERT.encode(), (NOTE,))
            types_db.execute(f"INSERT INTO {table} (id) VALUES (2)".encode())
            types_db.execute(f"UPDATE {table} SET flag = false WHERE id = 1".encode())
            types_db.execute(f"UPDATE {table} SET id = 3 WHERE id = 2".encode())
            types_db.execute(f"DELETE FROM {table} WHERE id = 1".encode())
            theirs = read_new(
                settings, f"{debezium}.{table}", {0: 0}, until=lambda rs: len(rs) >= 8, **read
            )
            ours = read_new(settings, ours_topic, {0: 0}, until=lambda rs: len(rs) >= 8, **read)
    finally:
        delete_subjects(settings, ours_topic)
        for future in admin.delete_topics([ours_topic]).values():
            future.result()

    dates = ("day",)
    assert [_logical(r, dates) for r in theirs] == [_logical(r, dates) for r in ours]


# -- Debezium as the producer: `quoteflow watermarks`, then a trigger --------------------------


@dataclass
class Pipeline:
    """Debezium (Connect distributed, both sources) writing one test's prefixed topics."""

    settings: Settings
    prefix: str
    connect: ConnectDistributed
    home: Path

    def env(self) -> dict[str, str]:
        watermarks = self.settings.watermarks
        return {
            **_env(self.settings),
            "QUOTEFLOW_TOPICS__PREFIX": self.prefix,
            "QUOTEFLOW_WATERMARKS__CONNECT_OFFSETS_TOPIC": watermarks.connect_offsets_topic,
            "QUOTEFLOW_WATERMARKS__CONNECTORS": json.dumps(watermarks.connectors),
            "QUOTEFLOW_WATERMARKS__INTERVAL_S": "0.2",
            "QUOTEFLOW_LOG__LEVEL": "INFO",
        }


PIPELINE_TOPICS = {
    "qms.public.quotes": 2, "crm.public.customers": 2, "qms.message": 1, "crm.message": 1,
    "dbz-heartbeat.qms": 1, "dbz-heartbeat.crm": 1,
    "quoteflow.abandonment.triggers": 2, "quoteflow.abandonment.decisions": 2,
    "quoteflow.cdc.watermarks": 1, "quoteflow.dead-letter": 1,
}  # fmt: skip


@pytest.fixture
def pipeline(stack: object, tmp_path: Path) -> Iterator[Pipeline]:
    run = uuid.uuid4().hex[:8]
    prefix = f"test.dbzwm.{run}."
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    group = f"test-dbzwm-{run}-connect"
    connectors = {"qms": f"test-dbzwm-{run}-qms", "crm": f"test-dbzwm-{run}-crm"}
    settings = load_settings(
        topics={"partitions": 2, "prefix": prefix},
        schema_registry={"auto_register": True},
        streams={"app_id": f"test-dbzwm-{run}",
                 "data_dir": tmp_path / "streams", "rules_file": rules,
                 "tick_interval_s": 0.2, "commit_interval_s": 0.2},
        watermarks={"connect_offsets_topic": f"{group}-offsets", "connectors": connectors},
    )  # fmt: skip
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    for future in admin.create_topics(
        [NewTopic(prefix + name, n, 1) for name, n in PIPELINE_TOPICS.items()]
    ).values():
        future.result()
    slots = {source: f"dbzwm_{source}_{run}" for source in ("qms", "crm")}
    runs = [
        connector_config(
            settings, source, name=connectors[source], slot=slots[source],
            overrides={
                "snapshot.mode": "no_data",
                "topic.heartbeat.prefix": f"{prefix}dbz-heartbeat",
                "transforms": "route",
                "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
                "transforms.route.regex": rf"{source}\.(.*)",
                "transforms.route.replacement": f"{prefix}{source}.$1",
            },
        )
        for source in ("qms", "crm")
    ]  # fmt: skip
    home = tmp_path / "connect"
    home.mkdir()
    try:
        with connect_distributed(
            settings, runs, rest_port=free_ports(1)[0], home=home, group_id=group,
            offsets_topic=f"{group}-offsets", report=print,
        ) as connect:  # fmt: skip
            yield Pipeline(settings, prefix, connect, tmp_path)
    finally:
        for source, slot in slots.items():
            drop_slot(settings, SOURCES[source], slot)
            with psycopg.connect(settings.postgres.conninfo(source), autocommit=True) as db:
                db.execute(f'DROP PUBLICATION IF EXISTS "{slot}"'.encode())
        drop_topics(settings, (prefix, f"test-dbzwm-{run}"), prefix)


def test_with_debezium_as_the_producer_quoteflow_watermarks_lets_a_trigger_fire(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Debezium writes quotes and customers; `quoteflow watermarks` turns its heartbeats and
    Connect's committed offsets into watermarks; `quoteflow process` fires the abandoned
    quote and not the one accepted in time (without the watermarks, nothing ever fires)."""
    settings, run = pipeline.settings, uuid.uuid4().hex[:8]
    base = 8_000_000_000 + int(run, 16) % 1_000_000_000
    abandoned_customer, accepting_customer = base, base + 1
    quoted_at = datetime.fromtimestamp(time.time() - DELAY_S + 20, UTC)  # due in 20 s
    watermarks = WorkerProcess(["-m", "quoteflow", "watermarks"], pipeline.env(),
                               tmp_path / "watermarks.log")  # fmt: skip
    worker = WorkerProcess(["-m", "quoteflow", "process"], pipeline.env(), tmp_path / "worker.log")
    ids: list[int] = []
    try:
        with (
            psycopg.connect(settings.postgres.conninfo("crm"), autocommit=True) as crm,
            psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as qms,
        ):
            for customer in (abandoned_customer, accepting_customer):
                crm.execute(
                    "INSERT INTO public.customers (customer_id, first_name, last_name, email,"
                    " marketing_consent) VALUES (%s, 'Ada', 'Lovelace', %s, true)",
                    (customer, f"dbzwm-{run}-{customer}@example.com"),
                )
            for customer in (abandoned_customer, accepting_customer):
                row = qms.execute(
                    "INSERT INTO public.quotes (quote_ref, customer_id, product_code, channel,"
                    " premium, currency, status, valid_until, created_at, updated_at)"
                    " VALUES (%s, %s, 'MOTOR', 'WEB', 456.00, 'EUR', 'QUOTED', '2030-12-31',"
                    " %s, %s) RETURNING quote_id",
                    (f"Q-DBZWM-{run}-{customer}", customer, quoted_at, quoted_at),
                ).fetchone()
                assert row is not None
                ids.append(row[0])
            abandoned, accepted = ids
            qms.execute(
                "UPDATE public.quotes SET status = 'ACCEPTED', updated_at = %s WHERE quote_id = %s",
                (quoted_at + timedelta(seconds=2), accepted),
            )
            triggers = _our_triggers(pipeline, ids, until=lambda ts: len(ts) >= 1, timeout_s=150)
            assert [t["quote_id"] for t in triggers] == [abandoned], (
                _tail(watermarks) + "\n" + _tail(worker)
            )
            (trigger,) = triggers
            deadline = trigger["deadline_at"].timestamp()
            assert abs(deadline - (quoted_at.timestamp() + DELAY_S)) < 0.01
            assert trigger["source_watermark_at"].timestamp() > deadline
            assert trigger["fired_at"].timestamp() - deadline < 30
            # The accepted quote had the same deadline, so it is decided by now: no trigger.
            time.sleep(3)
            again = _our_triggers(pipeline, ids, until=lambda ts: False, timeout_s=5)
            assert [t["quote_id"] for t in again] == [abandoned]
            # The records are `quoteflow cdc`'s: per source, every partition listed.
            records = _watermark_records(pipeline)
            for source in ("qms", "crm"):
                mine = [r for r in records if r["source"] == source]
                assert mine, f"no watermark for {source}"
                assert all(sorted(o["partition"] for o in r["offsets"]) == [0, 1] for r in mine)
                assert [r["watermark_ms"] for r in mine] == sorted(r["watermark_ms"] for r in mine)
            for db, table, column, values in (
                (qms, "quotes", "quote_id", ids),
                (crm, "customers", "customer_id", [abandoned_customer, accepting_customer]),
            ):
                db.execute(f"DELETE FROM public.{table} WHERE {column} = ANY(%s)".encode(),
                           (values,))  # fmt: skip
    finally:
        worker.stop()
        watermarks.stop()


def _tail(process: WorkerProcess) -> str:
    return process.log.read_text(errors="replace")[-2500:]


def _read_topic(pipeline: Pipeline, topic: str, schema: str, *, until: Any,
                timeout_s: float) -> list[dict[str, Any]]:  # fmt: skip
    settings = pipeline.settings
    serde = serde_from_settings(settings.schema_registry)
    consumer = Consumer({
        **settings.kafka.as_librdkafka_dict(), "group.id": f"test-read-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([pipeline.prefix + topic])
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(records):
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            records.append(serde.decode(schema, message.value() or b"",
                                        topic=pipeline.prefix + topic))  # fmt: skip
    finally:
        consumer.close()
        serde.close()
    return records


def _our_triggers(pipeline: Pipeline, ids: list[int], *, until: Any,
                  timeout_s: float) -> list[dict[str, Any]]:  # fmt: skip
    """Triggers of this test's quotes (other tests' rows pass through the same tables)."""

    def ours(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r["quote_id"] in ids]

    records = _read_topic(
        pipeline, "quoteflow.abandonment.triggers", "abandonment_trigger",
        until=lambda rs: until(ours(rs)), timeout_s=timeout_s,
    )  # fmt: skip
    return ours(records)


def _watermark_records(pipeline: Pipeline) -> list[dict[str, Any]]:
    return _read_topic(pipeline, "quoteflow.cdc.watermarks", "cdc_watermark",
                       until=lambda rs: False, timeout_s=4)  # fmt: skip


def test_quoteflow_watermarks_names_the_missing_topics_in_one_line(stack: object) -> None:
    """Before Debezium's topics exist there is nothing to read: say which, and what to do."""
    prefix = f"test.dbzwm.missing.{uuid.uuid4().hex[:8]}."
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    env.update({"QUOTEFLOW_TOPICS__PREFIX": prefix, "COLUMNS": "200"})
    done = subprocess.run(
        [sys.executable, "-m", "quoteflow", "watermarks"], env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert f"{prefix}qms.message" in done.stderr and "connect-offsets" in done.stderr
