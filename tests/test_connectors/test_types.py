"""Every column type the connector maps, through the real PostgreSQL, Kafka and registry.

A table of every type (``types_table``) is captured by the connector itself
(``ChangeStream``) into a scratch topic, with schemas registered for it in
the stack's registry, and read back through the registry serde. The values
expected are written out by hand in the forms Debezium documents for its
defaults, not derived from the converter under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from schemas.catalog import SchemaCatalog
from tests.helpers import delete_subjects

from . import types_table as tt
from .conftest import Record, read_new, streaming

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOTE = "legacy remark " * 1_000  # ~14 kB, stored out of line (STORAGE EXTERNAL)

INSERT = f"""
INSERT INTO {tt.SCHEMA}.{tt.TABLE}
    (id, amount, happened_at, local_at, day, at_time, ref, doc, docb, mood, tags, counts,
     flag, ratio, small, note)
VALUES (1, 12345.67, '2026-03-29 01:30:00.5+01', '2026-03-29 01:30:00.123456', '1969-12-31',
        '23:59:59.999999', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{{"b": 1,  "a": [1, 2]}}',
        '{{"b": 1,  "a": [1, 2]}}', 'it''s complicated', ARRAY['a', 'b c', NULL, 'd"e', ''],
        ARRAY[1, NULL, -3], true, 0.1, -32768, %s)
"""

#: Row 1 as the events must carry it.
ROW_1: dict[str, Any] = {
    "id": 1,
    "amount": Decimal("12345.67"),
    "happened_at": "2026-03-29T00:30:00.500000Z",
    "local_at": int((datetime(2026, 3, 29, 1, 30, tzinfo=UTC) - EPOCH).total_seconds()) * 1_000_000
    + 123_456,
    "day": date(1969, 12, 31),
    "at_time": 86_400_000_000 - 1,
    "ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "doc": '{"b": 1,  "a": [1, 2]}',  # json keeps its text; jsonb is normalised
    "docb": '{"a": [1, 2], "b": 1}',
    "mood": "it's complicated",
    "tags": ["a", "b c", None, 'd"e', ""],
    "counts": [1, None, -3],
    "flag": True,
    "ratio": 0.1,
    "small": -32768,
    "note": NOTE,
}
NULLS: dict[str, Any] = {"id": 2, **{name: None for name in tt.COLUMNS}}


@pytest.fixture
def types_catalog(tmp_path: Path) -> SchemaCatalog:
    return tt.catalog_with_types(tmp_path / "schemas")


def _settings(cdc_settings: Settings, **cdc: Any) -> Settings:
    """The test's settings, allowed to register its scratch topic's subjects (producers
    register nothing by default), with no heartbeats (they go to the real watermark topic)."""
    return cdc_settings.model_copy(
        update={
            "schema_registry": cdc_settings.schema_registry.model_copy(
                update={"auto_register": True}
            ),
            "cdc": cdc_settings.cdc.model_copy(update={"heartbeat_interval_s": None, **cdc}),
        }
    )


def _capture(
    settings: Settings, catalog: SchemaCatalog, count: int, write: Callable[[], None]
) -> list[Record]:
    """Stream the types table into a scratch topic while ``write`` runs; its first records."""
    with TopicAdmin(settings).scratch("quoteflow.test.types.") as topic:
        try:
            with streaming(
                settings, "qms", source=tt.SOURCE, catalog=catalog,
                topic=topic, catalogue=[tt.topic_spec(topic)],
            ):  # fmt: skip
                write()
                return read_new(
                    settings, topic, {0: 0}, until=lambda rs: len(rs) >= count,
                    key_schema=tt.KEY_SCHEMA, value_schema=tt.VALUE_SCHEMA, catalog=catalog,
                )  # fmt: skip
        finally:
            delete_subjects(settings, topic)


def test_every_type_reaches_kafka_as_debezium_writes_it(
    cdc_settings: Settings, types_db: psycopg.Connection[Any], types_catalog: SchemaCatalog
) -> None:
    conn = types_db
    table = f"{tt.SCHEMA}.{tt.TABLE}"

    def write() -> None:
        conn.execute(INSERT.encode(), (NOTE,))
        conn.execute(f"INSERT INTO {table} (id) VALUES (2)".encode())
        # The note is not touched: pgoutput sends it as "unchanged TOAST" and the
        # event takes it from the old row (REPLICA IDENTITY FULL).
        conn.execute(f"UPDATE {table} SET flag = false WHERE id = 1".encode())
        conn.execute(f"UPDATE {table} SET id = 3 WHERE id = 2".encode())
        conn.execute(f"DELETE FROM {table} WHERE id = 1".encode())

    records = _capture(_settings(cdc_settings), types_catalog, 8, write)

    def op(record: Record) -> tuple[int, str | None]:
        assert record.key is not None
        return record.key["id"], record.value["op"] if record.value else None

    assert [op(r) for r in records] == [
        (1, "c"), (2, "c"), (1, "u"), (2, "d"), (2, None), (3, "c"), (1, "d"), (1, None),
    ]  # fmt: skip
    values = [r.value for r in records if r.value is not None]
    created, nulls, flagged, moved_out, moved_in, deleted = values

    assert created["before"] is None and created["after"] == ROW_1
    assert nulls["after"] == NULLS
    assert flagged["before"] == ROW_1
    assert flagged["after"] == {**ROW_1, "flag": False}  # the untouched TOASTed note included
    assert moved_out["before"] == NULLS and moved_out["after"] is None
    assert moved_in["after"] == {**NULLS, "id": 3}
    assert deleted["before"] == {**ROW_1, "flag": False} and deleted["after"] is None
    for value in values:
        source = value["source"]
        assert (source["name"], source["db"], source["schema"], source["table"]) == (
            "qms", "qms", tt.SCHEMA, tt.TABLE,
        )  # fmt: skip


def test_snapshot_reads_every_type_as_the_stream_does(
    cdc_settings: Settings, types_db: psycopg.Connection[Any], types_catalog: SchemaCatalog
) -> None:
    types_db.execute(INSERT.encode(), (NOTE,))
    types_db.execute(f"INSERT INTO {tt.SCHEMA}.{tt.TABLE} (id) VALUES (2)".encode())
    settings = _settings(cdc_settings, snapshot="initial")

    records = _capture(settings, types_catalog, 2, lambda: None)

    assert [(r.value or {}).get("op") for r in records] == ["r", "r"]
    assert [(r.value or {}).get("after") for r in records] == [ROW_1, NULLS]
