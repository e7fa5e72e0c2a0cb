"""The compiled Avro writers against fastavro: same bytes for every schema of the catalogue."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalog import SchemaVersion, default_catalog
from schemas.compiled import compile_writer

pytestmark = pytest.mark.unit

VERSIONS = list(default_catalog())


def _records(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a parsed schema (non-negative decimals: see the decimal test below)."""
    if isinstance(schema, str):
        simple = {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(width=32, allow_nan=False),
            "double": st.floats(allow_nan=False),
            "string": st.text(max_size=20),
            "bytes": st.binary(max_size=20),
        }
        return simple[schema] if schema in simple else _records(named[schema], named)
    if isinstance(schema, list):
        return st.one_of([_records(branch, named) for branch in schema])
    logical = schema.get("logicalType")
    if logical == "decimal":
        scale, precision = schema.get("scale", 0), schema["precision"]
        return st.integers(0, 10**precision - 1).map(lambda u: Decimal(u).scaleb(-scale))
    if logical == "date":
        return st.dates()
    if logical == "timestamp-millis":
        return st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ) | st.integers(-(2**50), 2**50)
    kind = schema["type"]
    if kind == "record":
        named[schema["name"]] = schema
        return st.fixed_dictionaries(
            {f["name"]: _records(f["type"], named) for f in schema["fields"]}
        )
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_records(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), _records(schema["values"], named), max_size=3)
    return _records(kind, named)


def _fastavro(version: SchemaVersion, record: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, version.parsed, version.with_branches(record))
    return out.getvalue()


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.label)
def test_every_schema_of_the_catalogue_compiles(version: SchemaVersion) -> None:
    assert version.writer is not None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_bytes_as_fastavro(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(VERSIONS))
    record = data.draw(_records(version.parsed, {}))
    writer = version.writer
    assert writer is not None
    assert writer(record) == _fastavro(version, record)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (Decimal("0.00"), b"\x00"),
        (Decimal("1.27"), b"\x7f"),
        (Decimal("1.28"), b"\x00\x80"),
        (Decimal("-1.28"), b"\x80"),  # fastavro writes ff 80
        (Decimal("-1.29"), b"\xff\x7f"),
        (Decimal("-0.01"), b"\xff"),
        (Decimal("5"), b"\x01\xf4"),  # rescaled to 5.00
    ],
)
def test_decimals_are_the_minimal_twos_complement_of_the_unscaled_value(
    value: Decimal, encoded: bytes
) -> None:
    """As Java's BigInteger.toByteArray, so the bytes match Debezium's."""
    schema = parse_schema(
        {"type": "record", "name": "D", "fields": [
            {"name": "d", "type": {"type": "bytes", "logicalType": "decimal",
                                   "precision": 12, "scale": 2}},
        ]}
    )  # fmt: skip
    writer = compile_writer(schema)
    assert writer is not None
    data = writer({"d": value})
    assert data == bytes([len(encoded) * 2]) + encoded
    assert schemaless_reader(io.BytesIO(data), schema) == {"d": value}


ENVELOPE = default_catalog().latest("qms_quote_envelope")
ROW = {
    "quote_id": 1, "quote_ref": "Q-1", "customer_id": 2, "product_code": "P", "channel": "WEB",
    "premium": Decimal("1.00"), "currency": "GBP", "status": "QUOTED",
    "valid_until": date(2026, 1, 1), "created_at": "x", "updated_at": "x",
}  # fmt: skip
SOURCE = {
    "version": "1", "connector": "postgresql", "name": "qms", "ts_ms": 0, "snapshot": "false",
    "db": "qms", "sequence": None, "schema": "public", "table": "quotes", "txId": None,
    "lsn": None, "xmin": None,
}  # fmt: skip
EVENT = {"before": None, "after": ROW, "source": SOURCE, "op": "c", "ts_ms": 0, "transaction": None}


def test_a_valid_event_takes_the_compiled_path() -> None:
    assert ENVELOPE.write_body(EVENT) == _fastavro(ENVELOPE, EVENT)


@pytest.mark.parametrize(
    "event",
    [
        {**EVENT, "extra": 1},
        {**EVENT, "after": {**ROW, "extra": 1}},
        {**EVENT, "after": {**ROW, "quote_id": "1"}},
        {**EVENT, "after": {**ROW, "premium": Decimal("1.001")}},
        {**EVENT, "after": {**ROW, "premium": Decimal("NaN")}},
        {**EVENT, "after": {**ROW, "valid_until": datetime(2026, 1, 1)}},
        {k: v for k, v in EVENT.items() if k != "op"},
        {**EVENT, "after": [1]},
        {**EVENT, "ts_ms": 2**63},
    ],
    ids=["extra", "nested-extra", "type", "scale", "nan", "datetime-date", "missing", "union",
         "range"],
)  # fmt: skip
def test_anything_unusual_is_left_to_fastavro(event: dict[str, Any]) -> None:
    """None: fastavro then writes it or explains the failure, the same words either way."""
    assert ENVELOPE.write_body(event) is None


def test_a_missing_field_with_a_default_takes_its_default() -> None:
    event = {k: v for k, v in EVENT.items() if k != "transaction"}
    assert ENVELOPE.write_body(event) == _fastavro(ENVELOPE, EVENT)


@pytest.mark.parametrize(
    "field_type",
    [
        ["int", "long"],
        ["null", "int", "double"],
        [{"type": "record", "name": "A", "fields": []}, {"type": "record", "name": "B",
                                                         "fields": []}],
        {"type": "fixed", "name": "F", "size": 4},
        ["null", {"type": "enum", "name": "E", "symbols": ["X"]}],
        {"type": "int", "logicalType": "time-millis"},
    ],
    ids=["int-long", "int-double", "two-records", "fixed", "enum-in-union", "time-millis"],
)  # fmt: skip
def test_schemas_it_cannot_write_fast_are_left_to_fastavro(field_type: Any) -> None:
    schema = parse_schema(
        {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]}
    )
    assert compile_writer(schema) is None


@pytest.mark.parametrize("logical", ["timestamp-millis", "timestamp-micros"])
@given(moment=st.datetimes(timezones=st.just(UTC)))
def test_timestamps_as_fastavro_writes_them(logical: str, moment: datetime) -> None:
    schema = parse_schema(
        {"type": "record", "name": "T",
         "fields": [{"name": "t", "type": {"type": "long", "logicalType": logical}}]}
    )  # fmt: skip
    writer = compile_writer(schema)
    assert writer is not None
    out = io.BytesIO()
    schemaless_writer(out, schema, {"t": moment})
    assert writer({"t": moment}) == out.getvalue()


@given(n=st.integers(-(2**63), 2**63 - 1))
def test_longs_of_every_size_as_fastavro_writes_them(n: int) -> None:
    schema = parse_schema(
        {"type": "record", "name": "L", "fields": [{"name": "n", "type": "long"}]}
    )
    writer = compile_writer(schema)
    assert writer is not None
    out = io.BytesIO()
    schemaless_writer(out, schema, {"n": n})
    assert writer({"n": n}) == out.getvalue()
