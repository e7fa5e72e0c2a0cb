"""The real Debezium beside ``quoteflow cdc``: the same changes decode into the same events.

Kafka Connect standalone runs Debezium's PostgreSQL connector (jars from Maven
Central, ``connectors/debezium/qms.properties``) against the stack's
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

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.debezium.connect import ConnectorRun, connect_standalone, connector_config
from quoteflow.settings import Settings
from schemas.debezium import as_date
from tests.helpers import delete_subjects, free_ports

from . import types_table as tt
from .conftest import Record, drop_slot, end_offsets, read_new, streaming
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
    topics = [f"{prefix}.public.quotes", f"{prefix}.{tt.SCHEMA}.{tt.TABLE}"]
    admin = AdminClient(cdc_settings.kafka.as_librdkafka_dict())
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
        future.result()
    run: ConnectorRun = connector_config(
        cdc_settings, "qms", name=f"test-{slot}", slot=slot,
        overrides={
            "table.include.list": f"public.quotes,{tt.SCHEMA}.{tt.TABLE}",
            "snapshot.mode": "no_data",
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
