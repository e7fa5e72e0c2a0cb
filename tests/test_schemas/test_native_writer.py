"""The C writer against the compiled writer: the same bytes, or it leaves the record to it."""

from __future__ import annotations

from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalog import default_catalog
from schemas.compiled import compile_writer
from schemas.native_writer import compile_native_writer

from .test_compiled import _records

pytestmark = pytest.mark.unit

#: A schema of every kind the C writer covers, defaults and named reuse included.
COVERED = parse_schema({"type": "record", "name": "Out", "namespace": "t", "fields": [
    {"name": "s", "type": "string"},
    {"name": "n", "type": "long"},
    {"name": "i", "type": "int"},
    {"name": "b", "type": "boolean"},
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
    {"name": "again", "type": "E"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "maybe", "type": ["null", "long"], "default": None},
    {"name": "either", "type": ["string", "null", "boolean"]},
    {"name": "inner", "type": {"type": "record", "name": "In", "fields": [
        {"name": "x", "type": ["null", "string"]}, {"name": "nothing", "type": "null"}]}},
    {"name": "tail", "type": "string", "default": "d"},
]})  # fmt: skip
#: The catalogue's versions the C writer covers (the replay's decisions among them).
SHIPPED = [v for v in default_catalog() if v.native_writer is not None]
SCHEMAS = [("covered", COVERED), *((v.label, v.parsed) for v in SHIPPED)]
_ODD = [None, True, 0, -1, 2**63, -(2**63) - 1, 1.5, "A", "é\ud800", b"x", {}, [], ("t.In", {})]


def _writers(parsed: Any) -> tuple[Any, Any]:
    native, compiled = compile_native_writer(parsed), compile_writer(parsed)
    assert native is not None and compiled is not None
    return native, compiled


def test_the_decisions_schema_is_covered() -> None:
    assert any(v.name == "abandonment_decision" for v in SHIPPED)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_compiled_writers_bytes(data: st.DataObject) -> None:
    _, parsed = data.draw(st.sampled_from(SCHEMAS))
    record = data.draw(_records(parsed, {}).filter(lambda r: _ints_only(r, parsed)))
    native, compiled = _writers(parsed)
    assert native(record) == compiled(record)


def _ints_only(record: Any, parsed: Any) -> bool:
    """Timestamps as ints: a datetime is the compiled writer's (the C writer refuses it)."""
    return all(not hasattr(v, "tzinfo") for v in record.values())


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_record_it_refuses_is_the_compiled_writers_to_write_or_refuse(
    data: st.DataObject,
) -> None:
    """Fields replaced by odd values, dropped or added: wherever the C writer writes, the
    compiled writer writes the same bytes (where it refuses, write_body asks it)."""
    _, parsed = data.draw(st.sampled_from(SCHEMAS))
    record = dict(data.draw(_records(parsed, {})))
    names = sorted(record)
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["odd", "drop", "add"]))
        name = data.draw(st.sampled_from(names))
        if action == "odd":
            record[name] = data.draw(st.sampled_from(_ODD))
        elif action == "drop":
            record.pop(name, None)
        else:
            record["extra"] = 1
    native, compiled = _writers(parsed)
    try:
        written = native(record)
    except (ValueError, TypeError, KeyError, OverflowError):
        return
    assert written == compiled(record)


def test_write_body_takes_the_c_writer_and_falls_back() -> None:
    version = next(v for v in SHIPPED if v.name == "abandonment_decision")
    record = {"decision_id": "d", "quote_id": 1, "quote_ref": "Q-1", "customer_id": None,
              "outcome": "HOLDOUT", "reason": "r", "decided_at": 5, "rule_version": "v",
              "replay": False}  # fmt: skip
    assert version.write_body(record) == version.writer(record)  # type: ignore[misc]

    class Text(str):
        pass

    odd = {**record, "reason": Text("r")}  # the C writer takes exact types only
    with pytest.raises(TypeError):
        version.native_writer(odd)  # type: ignore[misc]
    assert version.write_body(odd) == version.writer(odd)  # type: ignore[misc]


def test_schemas_it_leaves_to_the_compiled_writer() -> None:
    for field_type in ("bytes", "double", {"type": "array", "items": "long"},
                       ["null", {"type": "record", "name": "R", "fields": []}],
                       {"type": "int", "logicalType": "date"}):  # fmt: skip
        parsed = parse_schema({"type": "record", "name": "X", "fields": [
            {"name": "f", "type": field_type}]})  # fmt: skip
        assert compile_native_writer(parsed) is None
