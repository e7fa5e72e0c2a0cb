"""Compiled peeks against fastavro: the same values at the same paths, errors never a crash."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import HealthCheck, example, find, given, settings
from hypothesis import strategies as st

from schemas.catalog import SchemaVersion, default_catalog
from schemas.errors import DecodeError, PeekPathError
from schemas.native_projection import NATIVE_ERRORS, compile_native_peek
from schemas.peek import Peek, compile_peek

from .avro_values import (
    KITCHEN_SINK,
    KITCHEN_SINK_PARSED,
    at_path,
    body,
    decoded,
    non_ascii_text,
    peekable_paths,
    values,
)
from .evolve import field
from .test_debezium import ENVELOPES, debezium_envelope

pytestmark = pytest.mark.unit

VERSIONS = list(default_catalog())
QUOTE = default_catalog().latest("qms_quote_envelope")
CUSTOMER_PATHS = ["after.customer_id", "before.customer_id"]


def _reversed_fields(raw: Any) -> Any:
    """``raw`` with the fields of every record in reverse order: another writer layout."""
    if isinstance(raw, list):
        return [_reversed_fields(item) for item in raw]
    if not isinstance(raw, dict):
        return raw
    out = {k: _reversed_fields(v) for k, v in raw.items()}
    if raw.get("type") == "record":
        out["fields"] = list(reversed(out["fields"]))
    return out


def _debezium_writers() -> list[tuple[str, Any]]:
    writers = []
    for name in ENVELOPES:
        raw = debezium_envelope(name)
        writers.append((f"debezium-{name}", parse_schema(raw)))
        # Reversed, the row's definition moves under `after`; `before` refers to it by name.
        flipped = _reversed_fields(json.loads(json.dumps(raw)))
        after, before = field(flipped["fields"], "after"), field(flipped["fields"], "before")
        after["type"], before["type"] = before["type"], after["type"]
        writers.append((f"debezium-reversed-{name}", parse_schema(flipped)))
    return writers


WRITERS: list[tuple[str, Any]] = [
    *((v.label, v.parsed) for v in VERSIONS),
    *_debezium_writers(),
    ("kitchen sink", KITCHEN_SINK_PARSED),
]
WRITER_IDS = [label for label, _ in WRITERS]


_COMPILED: dict[tuple[str, tuple[str, ...], bool], Peek] = {}


def _compiled(label: str, parsed: Any, paths: list[str], *, to_end: bool = False) -> Peek:
    """compile_peek, once per writer, paths and mode: hypothesis draws the same ones often."""
    key = (label, tuple(paths), to_end)
    if key not in _COMPILED:
        _COMPILED[key] = compile_peek(parsed, paths, to_end=to_end, label=label)
    return _COMPILED[key]


def _expected(parsed: Any, data: bytes, paths: list[str]) -> tuple[Any, ...]:
    record = decoded(parsed, data)
    return tuple(at_path(record, path) for path in paths)


# -- the same values as fastavro ---------------------------------------------------------


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), to_end=st.booleans())
def test_every_path_of_every_writer_peeks_what_fastavro_decodes(
    data: st.DataObject, to_end: bool
) -> None:
    label, parsed = data.draw(st.sampled_from(WRITERS))
    everything = list(peekable_paths(parsed))
    paths = data.draw(st.lists(st.sampled_from(everything), min_size=1, unique=True))
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    message = b"\x00\x01\x02" + body(parsed, record)  # a frame before the body
    peek = _compiled(label, parsed, paths, to_end=to_end)
    assert peek(message, 3) == _expected(parsed, message[3:], paths)


@pytest.mark.parametrize(("label", "parsed"), WRITERS, ids=WRITER_IDS)
@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_all_paths_at_once(label: str, parsed: Any, data: st.DataObject) -> None:
    paths = list(peekable_paths(parsed))
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    message = body(parsed, record)
    assert _compiled(label, parsed, paths)(message, 0) == _expected(parsed, message, paths)


DEBEZIUM = [(label, parsed) for label, parsed in WRITERS if label.startswith("debezium-")]


@pytest.mark.parametrize(("label", "parsed"), DEBEZIUM, ids=[label for label, _ in DEBEZIUM])
@pytest.mark.parametrize(("has_before", "has_after"), [(0, 0), (0, 1), (1, 0), (1, 1)])
@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_customer_of_a_debezium_layout_change(
    label: str, parsed: Any, has_before: int, has_after: int, data: st.DataObject
) -> None:
    named = parsed["__named_schemas"]
    row = next(name for name in named if name.endswith(".Value"))
    record = data.draw(values(parsed, named))
    record["before"] = data.draw(values(row, named)) if has_before else None
    record["after"] = data.draw(values(row, named)) if has_after else None
    message = body(parsed, record)
    after, before = _compiled(label, parsed, CUSTOMER_PATHS)(message, 0)
    assert after == (record["after"]["customer_id"] if has_after else None)
    assert before == (record["before"]["customer_id"] if has_before else None)
    assert (after, before) == _expected(parsed, message, CUSTOMER_PATHS)


def _first(strategy: st.SearchStrategy[Any]) -> Any:
    return find(strategy, lambda _: True)


def test_a_peek_takes_the_raw_schema_too() -> None:
    named = KITCHEN_SINK_PARSED["__named_schemas"]
    data = body(KITCHEN_SINK_PARSED, _first(values(KITCHEN_SINK_PARSED, named)))
    assert compile_peek(KITCHEN_SINK, ["big"])(data, 0) == compile_peek(
        KITCHEN_SINK_PARSED, ["big"]
    )(data, 0)


# -- truncated and corrupt bodies ------------------------------------------------------------


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_truncated_body_is_a_decode_error_or_peeks_the_same(data: st.DataObject) -> None:
    label, parsed = data.draw(st.sampled_from(WRITERS))
    paths = data.draw(st.lists(st.sampled_from(list(peekable_paths(parsed))), min_size=1,
                               unique=True))  # fmt: skip
    whole = body(parsed, data.draw(values(parsed, parsed["__named_schemas"])))
    expected = _expected(parsed, whole, paths)
    cut = data.draw(st.integers(0, max(0, len(whole) - 1)))
    if whole:
        with pytest.raises(DecodeError, match="corrupt or truncated Avro body"):
            _compiled(label, parsed, paths, to_end=True)(whole[:cut], 0)
    # Stopping after the last needed field, bytes after it are never looked at.
    with contextlib.suppress(DecodeError):
        assert _compiled(label, parsed, paths)(whole[:cut], 0) == expected


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), to_end=st.booleans())
def test_corrupt_bytes_are_a_decode_error_never_another_exception(
    data: st.DataObject, to_end: bool
) -> None:
    label, parsed = data.draw(st.sampled_from(WRITERS))
    paths = data.draw(st.lists(st.sampled_from(list(peekable_paths(parsed))), min_size=1,
                               unique=True))  # fmt: skip
    whole = bytearray(body(parsed, data.draw(values(parsed, parsed["__named_schemas"]))))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(1, 4))):
        if whole:
            whole[rng.randrange(len(whole))] = rng.randrange(256)
    peek = _compiled(label, parsed, paths, to_end=to_end)
    try:
        peek(bytes(whole), 0)
    except DecodeError as exc:
        assert label in str(exc)


def test_bytes_left_over_are_refused_when_walking_to_the_end() -> None:
    data = body(QUOTE.parsed, _first(values(QUOTE.parsed, QUOTE.parsed["__named_schemas"])))
    assert compile_peek(QUOTE.parsed, CUSTOMER_PATHS)(data + b"\x00", 0)
    with pytest.raises(DecodeError, match="bytes left over"):
        compile_peek(QUOTE.parsed, CUSTOMER_PATHS, to_end=True)(data + b"\x00", 0)


LONG = {"type": "record", "name": "L", "fields": [{"name": "s", "type": "string"},
                                                   {"name": "n", "type": "long"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x01", "a negative length"),  # zigzag 1 is -1
        (b"\x81\x01", "a negative length"),  # -65, two bytes
        (b"\x02", "truncated|IndexError"),  # one byte of string announced, none there
        (b"\x00" + b"\xff" * 11, "a varint longer than a long"),
        (b"\x00\x80", "IndexError"),  # the varint never ends
    ],
)
def test_what_is_wrong_is_named(data: bytes, what: str) -> None:
    with pytest.raises(DecodeError, match=what):
        compile_peek(LONG, ["n"], label="L")(data, 0)


@pytest.mark.parametrize("index", [b"\x04", b"\x01", b"\x80\x01"])
def test_a_union_index_out_of_range_is_corrupt(index: bytes) -> None:
    peek = compile_peek(QUOTE.parsed, ["before.customer_id"])
    with pytest.raises(DecodeError, match="a union index out of range"):
        peek(index + b"\x00" * 40, 0)


def test_a_string_that_is_not_utf8_is_corrupt() -> None:
    with pytest.raises(DecodeError, match="UnicodeDecodeError"):
        compile_peek(LONG, ["s"])(b"\x04\xff\xfe\x00", 0)


def test_an_enum_index_out_of_range_is_corrupt() -> None:
    peek = compile_peek(KITCHEN_SINK, ["colour"])
    with pytest.raises(DecodeError, match="IndexError"):
        peek(b"\x00\x00\x00" + b"\x00" * 12 + b"\x00\x00\x06", 0)


# -- what can be peeked ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["after.nope"], "has no field 'after.nope'"),
        (["after"], "field path 'after' ends at a record"),
        (["source"], "field path 'source' ends at a record"),
        (["before.customer_id", "before.customer_id"], "asked for twice"),
        (["after", "after.customer_id"], "goes through another path's value"),
        (["after.customer_id", "after"], "asked for twice, or inside another"),
        (["after..customer_id"], "has no field|empty part"),
        ([], "at least one field path"),
    ],
)
def test_paths_it_cannot_peek_are_refused_naming_them(paths: list[str], message: str) -> None:
    with pytest.raises(PeekPathError, match=message):
        compile_peek(QUOTE.parsed, paths, label=QUOTE.label)


@pytest.mark.parametrize(
    ("path", "message"),
    [("tags", "ends at a array"), ("counts", "ends at a map"), ("inner.items.sku", "no field"),
     ("mixed", "ends at a array"), ("inner", "ends at a record")],
)  # fmt: skip
def test_arrays_and_maps_are_stepped_over_not_peeked(path: str, message: str) -> None:
    with pytest.raises(PeekPathError, match=message):
        compile_peek(KITCHEN_SINK, [path])


def test_a_peek_is_of_a_valid_record_schema() -> None:
    with pytest.raises(PeekPathError, match="not a record schema"):
        compile_peek({"type": "array", "items": "long"}, ["x"])
    with pytest.raises(PeekPathError, match="not a valid Avro schema"):
        compile_peek({"type": "record", "name": "R", "fields": [{"name": "x", "type": "Nope"}]},
                     ["x"])  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.label)
def test_every_shipped_schema_compiles_a_peek_of_all_its_paths(version: SchemaVersion) -> None:
    assert compile_peek(version.parsed, list(peekable_paths(version.parsed)), to_end=True)


@example(blocks=[[1, 2, 3], [4]])
@settings(deadline=None)
@given(blocks=st.lists(st.lists(st.integers(-(2**40), 2**40), min_size=1), max_size=4))
def test_array_blocks_with_sizes_are_skipped_by_size(blocks: list[list[int]]) -> None:
    # Writers may split an array into blocks, each with a negative count and its byte
    # size (fastavro never does, Java's writers may): the peek skips such a block whole.
    schema = {"type": "record", "name": "B", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "after", "type": "long"}]}  # fmt: skip
    parsed = parse_schema(schema)
    data = bytearray()
    for block in blocks:
        items = b"".join(body(parse_schema({"type": "record", "name": "X", "fields": [
            {"name": "v", "type": "long"}]}), {"v": item}) for item in block)  # fmt: skip
        data += _zigzag(-len(block)) + _zigzag(len(items)) + items
    data += b"\x00" + _zigzag(42)
    every = [item for block in blocks for item in block]
    assert decoded(parsed, bytes(data)) == {"xs": every, "after": 42}
    assert compile_peek(parsed, ["after"], to_end=True)(bytes(data), 0) == (42,)


def _zigzag(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z >= 0x80:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


@pytest.mark.parametrize("items", ["null", {"type": "fixed", "name": "F", "size": 0},
                                   {"type": "record", "name": "E", "fields": []}])  # fmt: skip
def test_a_huge_count_of_items_without_bytes_is_not_counted_through(items: Any) -> None:
    schema = {"type": "record", "name": "B", "fields": [
        {"name": "xs", "type": {"type": "array", "items": items}},
        {"name": "after", "type": "long"}]}  # fmt: skip
    data = _zigzag(2**62) + b"\x00" + _zigzag(7)
    assert compile_peek(schema, ["after"], to_end=True)(data, 0) == (7,)


def test_a_block_count_past_the_end_of_the_body_is_corrupt() -> None:
    schema = {"type": "record", "name": "B", "fields": [
        {"name": "xs", "type": {"type": "map", "values": "long"}},
        {"name": "after", "type": "long"}]}  # fmt: skip
    with pytest.raises(DecodeError, match="a block count past the end of the body"):
        compile_peek(schema, ["after"])(_zigzag(2**62) + b"\x00" * 40, 0)


def test_a_boolean_is_what_fastavro_reads_even_when_not_0_or_1() -> None:
    schema = parse_schema({"type": "record", "name": "F", "fields": [
        {"name": "flag", "type": "boolean"}]})  # fmt: skip
    for byte in (b"\x00", b"\x01", b"\x02", b"\xff"):
        assert compile_peek(schema, ["flag"])(byte, 0) == (decoded(schema, byte)["flag"],)


# -- the C walk of a peek (schemas.native_projection.compile_native_peek) -----------------


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_c_peek_reads_what_the_python_peek_reads(data: st.DataObject) -> None:
    """On valid bodies the same values; on cut or overwritten ones, wherever the C walk
    reads, the Python peek reads the same (where it refuses, the Peeker asks Python)."""
    label, parsed = data.draw(st.sampled_from(WRITERS))
    paths = data.draw(st.lists(st.sampled_from(list(peekable_paths(parsed))), min_size=1,
                               unique=True))  # fmt: skip
    native = compile_native_peek(parsed, paths)
    if label == "kitchen sink":  # recursive: left to the Python peek
        assert native is None
        return
    assert native is not None
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    whole = body(parsed, record)
    python = _compiled(label, parsed, paths)
    try:
        assert native(whole, 0) == python(whole, 0)
    except NATIVE_ERRORS:
        assert non_ascii_text(record)  # a skipped string is checked to be ASCII
        return
    mangled = bytearray(whole)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(0, 3))):
        if mangled:
            mangled[rng.randrange(len(mangled))] = rng.choice([rng.randrange(256), 0xFF, 0x80])
    mangled = mangled[: data.draw(st.integers(0, len(mangled)))]
    try:
        read = native(bytes(mangled), 0)
    except NATIVE_ERRORS:
        return
    assert read == python(bytes(mangled), 0)


def test_the_peeker_takes_the_c_peek() -> None:
    from schemas.peeker import Peeker
    from schemas.serde import make_serde

    serde = make_serde(None)
    peeker = Peeker(serde, QUOTE.name, CUSTOMER_PATHS)
    record = _first(values(QUOTE.parsed, QUOTE.parsed["__named_schemas"]))
    message = serde.encode(QUOTE.name, record, topic="t")
    assert peeker.values(message, topic="t") == _expected(QUOTE.parsed, message[10:],
                                                          list(CUSTOMER_PATHS))  # fmt: skip
    peek, _ = next(iter(peeker._by_frame.values()))
    assert peek.__qualname__.startswith("_native_first")
