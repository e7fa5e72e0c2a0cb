"""A table with a column of every PostgreSQL type the CDC connector maps, and its Avro schemas.

The production tables use only some types (bigint, text, numeric, date,
timestamptz, boolean); this one covers the rest the issue names — timestamp
without time zone, time, uuid, json, jsonb, an enum, arrays, NULLs and a
TOASTed text — in the ``quoteflow_types`` schema of the QMS database, with a
publication of its own so ``quoteflow cdc`` never sees it.

The Avro schemas are what Debezium's PostgreSQL connector derives with its
defaults, written by hand from its documentation: they are built from the
quotes envelope (same ``Source`` block and envelope fields), with the row
record swapped, so a change here cannot drift from the production layout.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from connectors.cdc.sources import CdcSource
from quoteflow.topics.catalog import TopicSpec
from schemas.catalog import SchemaCatalog, default_catalog

SCHEMA = "quoteflow_types"
TABLE = "all_types"
PUBLICATION = "quoteflow_types"
KEY_SCHEMA = "cdc_types_key"
VALUE_SCHEMA = "cdc_types_envelope"
NAMESPACE = f"qms.{SCHEMA}.{TABLE}"

#: The types table as a CDC source of the QMS database (server name qms, like Debezium's).
SOURCE = CdcSource("qms_database", "qms.sql", TABLE, PUBLICATION, "qms", schema=SCHEMA)

DDL = f"""
CREATE SCHEMA {SCHEMA};
CREATE TYPE {SCHEMA}.mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE TABLE {SCHEMA}.{TABLE} (
    id          bigint PRIMARY KEY,
    amount      numeric(12,2),
    happened_at timestamptz,
    local_at    timestamp,
    day         date,
    at_time     time,
    ref         uuid,
    doc         json,
    docb        jsonb,
    mood        {SCHEMA}.mood,
    tags        text[],
    counts      integer[],
    flag        boolean,
    ratio       double precision,
    small       smallint,
    note        text
);
ALTER TABLE {SCHEMA}.{TABLE} REPLICA IDENTITY FULL;
-- TOAST the note out of line even when it would compress: what a legacy large text does.
ALTER TABLE {SCHEMA}.{TABLE} ALTER COLUMN note SET STORAGE EXTERNAL;
CREATE PUBLICATION {PUBLICATION} FOR TABLE {SCHEMA}.{TABLE};
"""


def create(conn: psycopg.Connection[Any]) -> None:
    drop(conn)
    conn.execute(DDL.encode())


def drop(conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(PUBLICATION)))
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def _optional(avro_type: Any) -> dict[str, Any]:
    return {"type": ["null", avro_type], "default": None}


def _connect(base: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": base, "connect.version": 1, "connect.name": name, **extra}


#: Column -> Avro type, as Debezium 3 writes each with its defaults (all nullable but id).
COLUMNS: dict[str, Any] = {
    "amount": {
        "type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2,
        "connect.version": 1,
        "connect.parameters": {"scale": "2", "connect.decimal.precision": "12"},
        "connect.name": "org.apache.kafka.connect.data.Decimal",
    },
    "happened_at": _connect("string", "io.debezium.time.ZonedTimestamp"),
    "local_at": _connect("long", "io.debezium.time.MicroTimestamp"),
    "day": {"type": "int", "logicalType": "date"},
    "at_time": _connect("long", "io.debezium.time.MicroTime"),
    "ref": _connect("string", "io.debezium.data.Uuid"),
    "doc": _connect("string", "io.debezium.data.Json"),
    "docb": _connect("string", "io.debezium.data.Json"),
    "mood": _connect("string", "io.debezium.data.Enum"),
    "tags": {"type": "array", "items": ["null", "string"]},
    "counts": {"type": "array", "items": ["null", "int"]},
    "flag": "boolean",
    "ratio": "double",
    "small": {"type": "int", "connect.type": "int16"},
    "note": "string",
}  # fmt: skip


def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """(key schema, envelope schema) for the types table, from the quotes envelope."""
    catalog = default_catalog()
    key = copy.deepcopy(dict(catalog.latest("qms_quote_key").raw))
    key.update(namespace=NAMESPACE, fields=[{"name": "id", "type": "long"}])
    envelope = copy.deepcopy(dict(catalog.latest("qms_quote_envelope").raw))
    envelope["namespace"] = NAMESPACE
    value = envelope["fields"][0]["type"][1]
    assert value["name"] == "Value", "the quotes envelope's first field is no longer before"
    value["doc"] = "One row of the types table."
    value["fields"] = [{"name": "id", "type": "long"}] + [
        {"name": name, **_optional(avro)} for name, avro in COLUMNS.items()
    ]
    return key, envelope


def catalog_with_types(root: Path) -> SchemaCatalog:
    """The repository's schemas plus the types table's, in a folder of their own."""
    shutil.copytree(default_catalog().root, root)
    key, envelope = _schemas()
    for name, raw in ((KEY_SCHEMA, key), (VALUE_SCHEMA, envelope)):
        (root / name).mkdir()
        (root / name / "v1.avsc").write_text(json.dumps(raw, indent=2))
    return SchemaCatalog(root)


def topic_spec(topic: str) -> TopicSpec:
    return TopicSpec(
        name=topic, partitions=1, cleanup_policy="delete", retention_ms=-1,
        value_schema=VALUE_SCHEMA, key_schema=KEY_SCHEMA, purpose="column-type tests",
    )  # fmt: skip
