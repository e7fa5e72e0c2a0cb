"""Random values of any parsed Avro schema, its peekable field paths, and a schema using it all.

For the peek's property tests: the peek must agree with fastavro on whatever a
writer schema holds, so the values cover every Avro type and the logical types
fastavro converts, and the paths every single value reachable through records
and unions of records.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import strategies as st

_PRIMITIVES = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "string": st.text(max_size=70),  # past 63 bytes the length takes two varint bytes
    "bytes": st.binary(max_size=70),
}
_MOMENTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
#: Deeper than this, a union takes its null branch when it has one (recursive schemas end).
_MAX_DEPTH = 4


def values(schema: Any, named: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of ``schema`` (fastavro's parsed form; ``named`` its named types)."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        return values(named[schema], named, depth)
    if isinstance(schema, list):
        if depth >= _MAX_DEPTH and "null" in schema:
            return st.none()
        return st.one_of([values(branch, named, depth + 1) for branch in schema])
    logical = schema.get("logicalType")
    kind = schema["type"]
    if logical == "decimal":
        scale, precision = schema.get("scale", 0), schema["precision"]
        return st.integers(-(10**precision) + 1, 10**precision - 1).map(
            lambda u: Decimal(u).scaleb(-scale)
        )
    if logical == "date" and kind == "int":
        return st.dates()
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
        return _MOMENTS
    if logical == "uuid" and kind == "string":
        return st.uuids()
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: values(f["type"], named, depth + 1) for f in schema["fields"]}
        )
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(
            st.text(max_size=5), values(schema["values"], named, depth + 1), max_size=3
        )
    return values(kind, named, depth)


def _resolved(schema: Any, named: Mapping[str, Any]) -> Any:
    return named.get(schema, schema) if isinstance(schema, str) else schema


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return str(schema["type"]) if isinstance(schema["type"], str) else "nested"


def peekable_paths(parsed: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Iterator[str]:
    """Every field path of ``parsed`` ending at a single value, through records and unions."""
    named = parsed.get("__named_schemas", {})
    # A field of two branches of one union (Left.n, Right.n) is one path.
    yield from dict.fromkeys(_paths(parsed, named, "", (*seen, str(parsed["name"]))))


def _paths(record: Mapping[str, Any], named: Mapping[str, Any], prefix: str,
           seen: tuple[str, ...]) -> Iterator[str]:  # fmt: skip
    for spec in record["fields"]:
        path = f"{prefix}{spec['name']}"
        kind = _resolved(spec["type"], named)
        branches = kind if isinstance(kind, list) else [kind]
        resolved = [_resolved(b, named) for b in branches]
        kinds = {_kind(b) for b in resolved}
        if not kinds & {"record", "array", "map", "nested"}:
            yield path
        for branch in resolved:
            if _kind(branch) == "record" and branch["name"] not in seen:
                yield from _paths(branch, named, f"{path}.", (*seen, branch["name"]))


def at_path(record: Any, path: str) -> Any:
    """What a full decode holds at ``path``: None where a union took a branch without it."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def body(parsed: Any, record: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parsed, record)
    return out.getvalue()


def decoded(parsed: Any, data: bytes) -> Any:
    source = io.BytesIO(data)
    record = schemaless_reader(source, parsed, None)
    assert source.read() == b"", "bytes left over"
    return record


#: One record with every kind of Avro type, nested, repeated, in unions, and recursive.
KITCHEN_SINK: dict[str, Any] = {
    "type": "record",
    "name": "Sink",
    "namespace": "test.peek",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ratio", "type": "float"},
        {"name": "exact", "type": "double"},
        {"name": "blob", "type": "bytes"},
        {"name": "label", "type": {"type": "string", "connect.name": "x.Label"}},
        {"name": "colour", "type": {"type": "enum", "name": "Colour",
                                    "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counts", "type": {"type": "map", "values": ["null", "long"]}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal",
                                   "precision": 9, "scale": 2}},
        {"name": "cost", "type": {"type": "fixed", "name": "Cost", "size": 6,
                                  "logicalType": "decimal", "precision": 9, "scale": 3}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
            {"name": "n", "type": "long"},
            {"name": "items", "type": {"type": "array", "items": {
                "type": "record", "name": "Item", "fields": [
                    {"name": "sku", "type": "string"},
                    {"name": "qty", "type": ["null", "int"]},
                ]}}},
            {"name": "first", "type": ["null", "Item"]},
        ]}},
        {"name": "either", "type": [
            "null",
            {"type": "record", "name": "Left", "fields": [
                {"name": "n", "type": "long"}, {"name": "side", "type": "string"}]},
            {"type": "record", "name": "Right", "fields": [
                {"name": "code", "type": "Colour"}, {"name": "n", "type": "double"}]},
            "string",
        ]},
        {"name": "chain", "type": ["null", {"type": "record", "name": "Link", "fields": [
            {"name": "value", "type": "long"},
            {"name": "next", "type": ["null", "Link"]},
        ]}]},
        {"name": "mixed", "type": ["null", "boolean", "int", "string", "Digest", "Colour",
                                   {"type": "array", "items": "long"}]},
        {"name": "same", "type": "Digest"},
        {"name": "last", "type": ["null", "long"]},
    ],
}  # fmt: skip

KITCHEN_SINK_PARSED = parse_schema(KITCHEN_SINK)


def non_ascii_text(value: Any) -> bool:
    """Whether a decoded value holds a string past ASCII (a skipped one is not vouched for)."""
    if isinstance(value, str):
        return not value.isascii()
    if isinstance(value, dict):
        return any(non_ascii_text(k) or non_ascii_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(non_ascii_text(v) for v in value)
    return False
