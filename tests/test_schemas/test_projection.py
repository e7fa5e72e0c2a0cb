"""Projections, generated Python and the C walk alike, against the compiled full reader:
the same fields, never laxer."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import native_projection
from schemas.compiled_reader import COMPILED_READ_ERRORS, compile_reader
from schemas.native_projection import compile_native_projection
from schemas.projection import PROJECTION_ERRORS, Projection, compile_projection, tree

from .avro_values import KITCHEN_SINK, body, non_ascii_text, peekable_paths, values
from .test_compiled_reader import ALL, _reader

pytestmark = pytest.mark.unit

_SETTINGS = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
#: Both projections: the generated Python, and the C walk of schemas/_native.pyx.
COMPILERS = {"python": compile_projection, "c": compile_native_projection}
_PROJECTIONS: dict[tuple[str, str, tuple[str, ...]], Projection] = {}


def _projection(label: str, parsed: Any, paths: list[str], kind: str = "python") -> Projection:
    key = (kind, label, tuple(paths))
    if key not in _PROJECTIONS:
        found = COMPILERS[kind](parsed, paths)
        assert found is not None
        _PROJECTIONS[key] = found
    return _PROJECTIONS[key]


def test_the_c_walk_is_built() -> None:
    """`pip install` (make install) builds it: without it a replay lane is several times
    slower at decoding (the Python projection, same results)."""
    assert native_projection.available()


def cut(value: Any, need: Any) -> Any:
    """The full record's value as a projection onto ``need`` gives it."""
    if need is True or not isinstance(value, dict):
        return value
    return {name: cut(value[name], inner) for name, inner in need.items() if name in value}


def _path_sets(parsed: Any) -> list[list[str]]:
    """A few sets of paths per writer (each compiled once): one leaf, random halves of
    the leaves, records read whole, and a field no record has."""
    leaves = list(peekable_paths(parsed))
    records = sorted({p.rsplit(".", 1)[0] for p in leaves if "." in p})
    rng = random.Random(len(leaves))
    halves = [rng.sample(leaves, max(1, len(leaves) // 2)) for _ in range(3)]
    return [leaves[:1], *halves, [*records, *leaves[-1:], "no_such_field"]]


_PATH_SETS = {label: _path_sets(parsed) for label, parsed in ALL}


def _paths(data: st.DataObject, label: str) -> list[str]:
    return data.draw(st.sampled_from(_PATH_SETS[label]))


@_SETTINGS
@given(data=st.data())
def test_the_full_readers_fields(data: st.DataObject) -> None:
    label, parsed = data.draw(st.sampled_from(ALL))
    kind = data.draw(st.sampled_from(sorted(COMPILERS)))
    paths = _paths(data, label)
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    message = b"\x01\x02" + body(parsed, record)
    full, end = _reader(label, parsed)(message, 2)
    try:
        projected = _projection(label, parsed, paths, kind)(message, 2)
    except PROJECTION_ERRORS:
        assert non_ascii_text(full)  # the only valid body it leaves to the serde
        return
    assert projected == (cut(full, tree(paths)), end)


def _mangled(data: st.DataObject, whole: bytes) -> bytes:
    """Random bytes overwritten (non-ASCII ones often), then maybe cut or extended."""
    out = bytearray(whole)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(0, 3))):
        if out:
            out[rng.randrange(len(out))] = rng.choice([rng.randrange(256), 0xFF, 0xC3, 0x80])
    cut_at = data.draw(st.integers(0, len(out)))
    return bytes(out[:cut_at]) + data.draw(st.sampled_from([b"", b"\x00", b"\xff"]))


@settings(deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_never_laxer_than_the_full_reader(data: st.DataObject) -> None:
    """Whatever a projection accepts to its end, the full reader reads alike; what it
    refuses it refuses with the errors the projector catches."""
    label, parsed = data.draw(st.sampled_from(ALL))
    kind = data.draw(st.sampled_from(sorted(COMPILERS)))
    paths = _paths(data, label)
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    message = _mangled(data, body(parsed, record))
    try:
        projected, end = _projection(label, parsed, paths, kind)(message, 0)
    except PROJECTION_ERRORS:
        return
    if end != len(message):
        return  # the projector decodes those in full
    full, full_end = _reader(label, parsed)(message, 0)  # must not raise
    assert (cut(full, tree(paths)), full_end) == (projected, end)


@pytest.mark.parametrize("kind", sorted(COMPILERS))
@pytest.mark.parametrize(
    "field_type", [
        "string",
        ["null", "string"],
        ["null", "string", "long"],
        {"type": "map", "values": "string"},
        {"type": "array", "items": "string"},
        {"type": "record", "name": "Inner", "fields": [{"name": "s", "type": "string"}]},
    ],
    ids=["string", "optional string", "union with a long", "map", "array", "record"],
)  # fmt: skip
def test_a_skipped_string_that_is_not_utf8_is_not_vouched_for(field_type: Any,
                                                              kind: str) -> None:  # fmt: skip
    """Not decoded, so not checked: the projection refuses any byte past ASCII in it."""
    parsed = parse_schema({"type": "record", "name": "R", "fields": [
        {"name": "skipped", "type": field_type}, {"name": "kept", "type": "long"}]})  # fmt: skip
    record = {"skipped": _one_string(field_type, "é"), "kept": 7}
    good = body(parsed, record)
    bad = good.replace("é".encode(), b"\xff\xfe")
    project = COMPILERS[kind](parsed, ["kept"])
    reader = compile_reader(parsed)
    assert project is not None and reader is not None
    if field_type_is_read(field_type):  # read (and checked) whole, then dropped
        assert project(good, 0)[0] == {"kept": 7}
    else:
        with pytest.raises(PROJECTION_ERRORS):
            project(good, 0)  # valid UTF-8, but unchecked: the serde decides
    with pytest.raises(PROJECTION_ERRORS):
        project(bad, 0)
    with pytest.raises(COMPILED_READ_ERRORS):
        reader(bad, 0)
    ascii_record = {"skipped": _one_string(field_type, "e"), "kept": 7}
    assert project(body(parsed, ascii_record), 0)[0] == {"kept": 7}


def field_type_is_read(field_type: Any) -> bool:
    return isinstance(field_type, dict) and field_type["type"] in ("map", "array")


def _one_string(field_type: Any, text: str) -> Any:
    if isinstance(field_type, dict):
        return {"map": {"k": text}, "array": [text], "record": {"s": text}}[field_type["type"]]
    return text


@pytest.mark.parametrize("kind", sorted(COMPILERS))
def test_skipped_values_the_full_reader_refuses_are_refused(kind: str) -> None:
    """An overlong varint, an enum index past its symbols, a date out of range."""
    parsed = parse_schema({"type": "record", "name": "R", "fields": [
        {"name": "n", "type": "long"},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"]}},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
        {"name": "kept", "type": "boolean"}]})  # fmt: skip
    project = COMPILERS[kind](parsed, ["kept"])
    reader = compile_reader(parsed)
    assert project is not None and reader is not None
    good = b"\x02" + b"\x00" + b"\x00" + b"\x01"
    assert project(good, 0) == ({"kept": True}, 4)
    overlong = b"\xff" * 10 + b"\x01" + b"\x00\x00\x01"
    far_date = b"\x02\x00" + b"\xfe\xff\xff\xff\x0f" + b"\x01"  # 2**31 - 1 days
    for bad in (overlong, b"\x02\x04\x00\x01", far_date):
        with pytest.raises(COMPILED_READ_ERRORS):
            reader(bad, 0)
        with pytest.raises(PROJECTION_ERRORS):
            project(bad, 0)


@pytest.mark.parametrize("kind", sorted(COMPILERS))
def test_a_recursive_record_is_left_to_the_serde(kind: str) -> None:
    assert COMPILERS[kind](parse_schema(KITCHEN_SINK), ["id"]) is None


def test_the_c_walk_reads_every_long_and_refuses_past_one() -> None:
    """Zigzag varints at a 64-bit long's edges read as the full reader reads them; a
    tenth byte with bits past 64 (the full reader reads up to 70) is refused."""
    parsed = parse_schema({"type": "record", "name": "L", "fields": [
        {"name": "n", "type": "long"}]})  # fmt: skip
    project, reader = compile_native_projection(parsed, ["n"]), compile_reader(parsed)
    assert project is not None and reader is not None
    for n in (0, -1, 1, 63, -64, 64, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)):
        message = body(parsed, {"n": n})
        assert project(message, 0) == reader(message, 0) == ({"n": n}, len(message))
    past = b"\xfe" + b"\xff" * 8 + b"\x03"  # 2**64 + ...: 65 bits
    assert reader(past, 0)[0]["n"] >= 2**63
    with pytest.raises(PROJECTION_ERRORS):
        project(past, 0)


def test_tree_of_paths() -> None:
    assert tree(["a.b", "a.c", "d"]) == {"a": {"b": True, "c": True}, "d": True}
    assert tree(["a", "a.b"]) == {"a": True}
    assert tree(["a.b", "a"]) == {"a": True}


def test_what_it_raises_is_what_the_compiled_reader_raises() -> None:
    assert set(PROJECTION_ERRORS) == set(COMPILED_READ_ERRORS)
