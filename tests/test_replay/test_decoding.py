"""The replay lanes' change decoder against ``quote_changes(serde.decode(...))``: alike.

Both serdes (the registry one on confluent-kafka's in-memory mock here;
``test_decoding_live.py`` against the stack's registry), our writer (the
projection) and Debezium's (the serde's resolution), on generated envelopes
that the core accepts or refuses, and on corrupt, truncated or extended bodies.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import examples
from schemas.catalog import default_catalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import SerdeError
from schemas.registry import RegistrySerde
from schemas.serde import Serde
from streams.core.changes import ChangeError, customer_change, quote_changes
from streams.replay.decoding import CUSTOMER_SCHEMA, QUOTE_SCHEMA, ChangeDecoder
from tests.test_schemas.avro_values import values
from tests.test_schemas.test_debezium import as_debezium_writes_it, debezium_envelope

pytestmark = pytest.mark.unit

QUOTES, CUSTOMERS = "qms.public.quotes", "crm.public.customers"
_SETTINGS = settings(deadline=None, max_examples=250, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip


def reference(serde: Serde, schema: str, value: bytes, topic: str) -> tuple[str, Any]:
    """What the lanes did before: the serde's full decode, then the core's parsing."""
    try:
        record = serde.decode(schema, value, topic=topic)
        if schema == QUOTE_SCHEMA:
            return ("changes", list(quote_changes(record)))
        change = customer_change(record)
        return ("changes", [] if change is None else [change])
    except (SerdeError, ChangeError) as exc:
        return (type(exc).__name__, str(exc))


def outcome(decoder: ChangeDecoder, schema: str, value: bytes, topic: str) -> tuple[str, Any]:
    read = decoder.quote if schema == QUOTE_SCHEMA else decoder.customer
    try:
        return ("changes", list(read(value, topic=topic)))
    except (SerdeError, ChangeError) as exc:
        return (type(exc).__name__, str(exc))


def _canonical(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_MOMENTS = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(UTC)).map(_canonical)  # fmt: skip
_SEQUENCES = st.one_of(
    st.none(), st.just('[null,"5"]'),
    st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)).map(lambda t: f'["{t[0]}","{t[1]}"]'),
    st.text(max_size=12),
)  # fmt: skip


@st.composite
def envelopes(draw: st.DrawFn, schema: str) -> dict[str, Any]:
    """Random envelopes, most of them made readable for the core (canonical timestamps,
    a known op, a sequence of LSNs), so both acceptance and each refusal are met."""
    parsed = default_catalog().latest(schema).parsed
    assert isinstance(parsed, dict)
    record: dict[str, Any] = draw(values(parsed, parsed["__named_schemas"]))
    if draw(st.integers(0, 9)) != 7:  # 7: not a bound, which hypothesis draws often
        record["op"] = draw(st.sampled_from(["c", "u", "r", "d", "c", "u", "t", "x"]))
        record["source"]["sequence"] = draw(_SEQUENCES)
        for side in ("before", "after"):
            row = record[side]
            if row is not None:
                row["created_at"] = draw(_MOMENTS)
                row["updated_at"] = draw(st.one_of(st.just(row["created_at"]), _MOMENTS))
                if "consent_updated_at" in row and row["consent_updated_at"] is not None:
                    row["consent_updated_at"] = draw(_MOMENTS)
    return record


def mangle(draw: Callable[[Any], Any], value: bytes) -> bytes:
    """Usually the message as written; else bytes overwritten, cut, or some left over."""
    how = draw(st.sampled_from(["as is", "as is", "overwrite", "cut", "extend"]))
    if how == "overwrite":
        out = bytearray(value)
        rng = random.Random(draw(st.integers(0, 2**32)))
        for _ in range(draw(st.integers(1, 3))):
            out[rng.randrange(len(out))] = rng.choice([rng.randrange(256), 0xFF, 0x80, 0x00])
        return bytes(out)
    if how == "cut":
        return value[: draw(st.integers(0, len(value) - 1))]
    if how == "extend":
        return value + draw(st.binary(min_size=1, max_size=3))
    return value


def _registry() -> RegistrySerde:
    return RegistrySerde(SchemaRegistryClient.new_client({"url": "mock://decoding"}))


@pytest.fixture(params=["embedded", "registry"])
def serde(request: pytest.FixtureRequest) -> Iterator[Serde]:
    made: Serde = EmbeddedSerde() if request.param == "embedded" else _registry()
    yield made
    made.close()


def _warm(serde: Serde) -> ChangeDecoder:
    """A decoder that has learned our writer's frame of both topics (the fast path)."""
    decoder = ChangeDecoder(serde)
    for schema, topic in ((QUOTE_SCHEMA, QUOTES), (CUSTOMER_SCHEMA, CUSTOMERS)):
        value = serde.encode(schema, examples.VARIANTS[schema][0](), topic=topic)
        assert outcome(decoder, schema, value, topic) == reference(serde, schema, value, topic)
    return decoder


@pytest.fixture
def decoder(serde: Serde) -> ChangeDecoder:
    """One per test, kept across hypothesis' examples, as a lane keeps its own."""
    return _warm(serde)


@pytest.mark.parametrize("schema", [QUOTE_SCHEMA, CUSTOMER_SCHEMA])
@_SETTINGS
@given(data=st.data())
def test_the_same_changes_or_the_same_refusal(serde: Serde, decoder: ChangeDecoder,
                                             schema: str, data: st.DataObject) -> None:  # fmt: skip
    topic = QUOTES if schema == QUOTE_SCHEMA else CUSTOMERS
    try:
        written = serde.encode(schema, data.draw(envelopes(schema)), topic=topic)
    except SerdeError:
        return  # a union value fastavro cannot place: nothing to read
    value = mangle(data.draw, written)
    assert outcome(decoder, schema, value, topic) == reference(serde, schema, value, topic)


def test_the_projection_is_used_for_our_writer_only(serde: Serde) -> None:
    """The fast path is taken (no full decode) for the latest schema; a Debezium writer
    (registry) is decoded by the serde, with the same changes as the full decode."""
    decoder = _warm(serde)
    value = serde.encode(QUOTE_SCHEMA, examples.VARIANTS[QUOTE_SCHEMA][0](), topic=QUOTES)
    calls: list[bytes] = []
    original = serde.decode

    def counting(schema: str, data: bytes, *, topic: str, is_key: bool = False) -> Any:
        calls.append(data)
        return original(schema, data, topic=topic, is_key=is_key)

    serde.decode = counting  # type: ignore[method-assign]
    try:
        decoder.quote(value, topic=QUOTES)
        assert calls == []
        left_over = outcome(decoder, QUOTE_SCHEMA, value + b"\x00", QUOTES)
        assert len(calls) == 1  # bytes left over: the serde decides
        # The embedded serde refuses them; the registry's compiled path never looked.
        assert (left_over[0] == "changes") is isinstance(serde, RegistrySerde)
        if isinstance(serde, RegistrySerde):
            _debezium_writer_decodes_alike(serde, decoder, calls)
    finally:
        serde.decode = original  # type: ignore[method-assign]


def _debezium_writer_decodes_alike(serde: RegistrySerde, decoder: ChangeDecoder,
                                   calls: list[bytes]) -> None:  # fmt: skip
    context = SerializationContext("dbz." + QUOTES, MessageField.VALUE)
    writer: Callable[[Any, Any], bytes | None] = AvroSerializer(
        serde.client, json.dumps(debezium_envelope(QUOTE_SCHEMA)))
    for build in examples.VARIANTS[QUOTE_SCHEMA]:
        value = writer(as_debezium_writes_it(build()), context)
        assert value is not None
        before = len(calls)
        got = outcome(decoder, QUOTE_SCHEMA, value, "dbz." + QUOTES)
        assert len(calls) > before  # decoded by the serde, never projected
        assert got == reference(serde, QUOTE_SCHEMA, value, "dbz." + QUOTES)
