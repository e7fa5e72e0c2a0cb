"""Compiled readers against fastavro: the same records from the same bytes, errors alike."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.compiled_reader import COMPILED_READ_ERRORS, Reader, compile_reader
from schemas.embedded import READ_ERRORS

from .avro_values import KITCHEN_SINK, body, decoded, values
from .test_peek import WRITERS

pytestmark = pytest.mark.unit

#: Every writer of the peek's tests but the recursive kitchen sink, which fastavro keeps.
READABLE = [(label, parsed) for label, parsed in WRITERS if label != "kitchen sink"]
_NO_CHAIN = {**KITCHEN_SINK, "name": "Flat",
             "fields": [f for f in KITCHEN_SINK["fields"] if f["name"] != "chain"]}  # fmt: skip
_READERS: dict[str, Reader | None] = {}


def _reader(label: str, parsed: Any) -> Reader:
    if label not in _READERS:
        _READERS[label] = compile_reader(parsed)
    found = _READERS[label]
    assert found is not None
    return found


def _all() -> list[tuple[str, Any]]:
    from fastavro import parse_schema

    return [*READABLE, ("flat kitchen sink", parse_schema(_NO_CHAIN))]


ALL = _all()


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_same_record_as_fastavro(data: st.DataObject) -> None:
    label, parsed = data.draw(st.sampled_from(ALL))
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    message = b"\x01\x02" + body(parsed, record)
    assert _reader(label, parsed)(message, 2) == (decoded(parsed, message[2:]), len(message))


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_corrupt_or_truncated_bodies_raise_only_read_errors(data: st.DataObject) -> None:
    label, parsed = data.draw(st.sampled_from(ALL))
    whole = bytearray(body(parsed, data.draw(values(parsed, parsed["__named_schemas"]))))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(0, 3))):
        if whole:
            whole[rng.randrange(len(whole))] = rng.randrange(256)
    cut = data.draw(st.integers(0, len(whole)))
    with contextlib.suppress(COMPILED_READ_ERRORS):
        _reader(label, parsed)(bytes(whole[:cut]), 0)


def test_a_recursive_record_is_left_to_fastavro() -> None:
    from fastavro import parse_schema

    assert compile_reader(parse_schema(KITCHEN_SINK)) is None


def test_an_array_of_many_nulls_is_not_mistaken_for_a_corrupt_count() -> None:
    from fastavro import parse_schema

    parsed = parse_schema({"type": "record", "name": "N", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "null"}}]})  # fmt: skip
    data = body(parsed, {"xs": [None] * 300})
    assert _reader("nulls", parsed)(data, 0) == ({"xs": [None] * 300}, len(data))


def test_what_it_raises_the_serdes_already_catch_but_one() -> None:
    # The serdes catch READ_ERRORS for fastavro; a compiled reader adds only its own Corrupt.
    extra = set(COMPILED_READ_ERRORS) - set(READ_ERRORS)
    assert [e.__name__ for e in extra] == ["Corrupt"]
