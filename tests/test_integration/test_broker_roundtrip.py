"""Every schema through the real broker: encode, produce, consume, decode, compare.

Keys follow the topic catalogue (``quoteflow.topics.catalog``): Avro with the
topic's key schema for the CDC envelopes, a UTF-8 string otherwise. Every test
runs with both serdes: the registry's (Confluent wire format, through the
stack's real Schema Registry, with the subjects the session registered and
auto-registration off, as in production) and the embedded one (single-object
encoding). Records are encoded for their catalogue topic, whose subject the
registry knows, and produced to a uuid topic per test, so tests never read each
other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer

from quoteflow.settings import Settings
from quoteflow.topics.catalog import CATALOGUE, TopicSpec
from quoteflow.topics.readback import read_partition
from schemas import examples
from schemas.catalog import default_catalog
from schemas.framing import Format, detect_format
from schemas.serde import Serde, make_serde, serde_from_settings
from tests.conftest import TopicFactory

pytestmark = pytest.mark.integration

#: Which topic (and so which key) each value schema travels on.
SPEC_BY_VALUE: dict[str, TopicSpec] = {spec.value_schema: spec for spec in CATALOGUE}
#: Header naming the value schema, so one topic can carry every kind of record.
SCHEMA_HEADER = "quoteflow.schema"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Sent:
    """One record as produced: the originals and their bytes."""

    schema: str
    key: dict[str, Any] | str
    value: dict[str, Any]
    key_bytes: bytes
    value_bytes: bytes


#: The framing each serde must put on the wire.
FRAMING: dict[str, Format] = {"registry": "confluent", "embedded": "single-object"}


@pytest.fixture(scope="module", params=sorted(FRAMING))
def serde(request: pytest.FixtureRequest, stack: object, settings: Settings) -> Iterator[Serde]:
    """The configured registry serde (the stack's registry), or the embedded one."""
    built = (
        serde_from_settings(settings.schema_registry)
        if request.param == "registry"
        else make_serde(None)
    )
    assert settings.schema_registry.auto_register is False
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def framing(serde: Serde, request: pytest.FixtureRequest) -> Format:
    return FRAMING[request.node.callspec.params["serde"]]


def encode(serde: Serde, topic: str, schema: str, value: dict[str, Any], n: int) -> Sent:
    """Key and value as ``value``'s catalogue topic has them; ``n`` makes string keys unique.

    Encoded for the catalogue topic (its registry subject), whatever ``topic``
    the test then produces to.
    """
    spec = SPEC_BY_VALUE[schema]
    key: dict[str, Any] | str
    if spec.key_schema is None:
        key = f"{schema}-{n}-{topic}"
        key_bytes = key.encode("utf-8")
    else:
        key = examples.example(spec.key_schema)
        key_bytes = serde.encode(spec.key_schema, key, topic=spec.name, is_key=True)
    value_bytes = serde.encode(schema, value, topic=spec.name)
    return Sent(schema, key, value, key_bytes, value_bytes)


def decode(serde: Serde, message: Message) -> tuple[str, Any, dict[str, Any]]:
    """(value schema, key, value) of a consumed message, the schema read from its header."""
    headers = dict(message.headers() or [])
    header = headers[SCHEMA_HEADER]
    assert isinstance(header, bytes)
    schema = header.decode("utf-8")
    spec = SPEC_BY_VALUE[schema]
    key_bytes, value_bytes = message.key(), message.value()
    assert isinstance(key_bytes, bytes)
    assert isinstance(value_bytes, bytes)
    key: Any
    if spec.key_schema is None:
        key = key_bytes.decode("utf-8")
    else:
        key = serde.decode(spec.key_schema, key_bytes, topic=spec.name, is_key=True)
    return schema, key, serde.decode(schema, value_bytes, topic=spec.name)


def assert_same(decoded: Any, original: Any, path: str = "") -> None:
    """Equal, and of the same Python types all the way down.

    Timestamps come back in UTC: equal as instants to an original in another
    offset, but always timezone-aware. Decimals come back as Decimal with the
    schema's scale, dates as date (not datetime).
    """
    assert decoded == original, path
    assert type(decoded) is type(original), f"{path}: {type(decoded)} != {type(original)}"
    if isinstance(original, dict):
        for name, value in original.items():
            assert_same(decoded[name], value, f"{path}.{name}")
    elif isinstance(original, list):
        for index, (got, want) in enumerate(zip(decoded, original, strict=True)):
            assert_same(got, want, f"{path}[{index}]")
    elif isinstance(original, datetime):
        assert decoded.utcoffset() == timedelta(0), path
    elif isinstance(original, Decimal):
        assert decoded.as_tuple().exponent == original.as_tuple().exponent, path
    elif isinstance(original, date):
        assert not isinstance(decoded, datetime), path


def producer(settings: Settings, **extra: str) -> Producer:
    return Producer(
        {
            **settings.kafka.as_librdkafka_dict(),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            **extra,
        }
    )


def produce(client: Producer, topic: str, records: Sequence[Sent]) -> list[str]:
    """Queue ``records``; the returned list fills with delivery errors as they are reported."""
    errors: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    for sent in records:
        client.produce(
            topic,
            key=sent.key_bytes,
            value=sent.value_bytes,
            headers=[(SCHEMA_HEADER, sent.schema.encode("utf-8"))],
            on_delivery=delivered,
        )
    return errors


def test_the_topic_catalogue_covers_every_schema() -> None:
    """So the tests below, which go by topic, put every schema through the broker."""
    keys = {spec.key_schema for spec in CATALOGUE if spec.key_schema is not None}
    assert set(SPEC_BY_VALUE) | keys == set(default_catalog().names())


@pytest.mark.parametrize("schema", sorted(SPEC_BY_VALUE))
def test_every_example_round_trips_through_the_broker(
    settings: Settings, topic_factory: TopicFactory, serde: Serde, framing: Format, schema: str
) -> None:
    topic = topic_factory(f"test.roundtrip.{schema.replace('_', '-')}")
    sent = [
        encode(serde, topic, schema, build(), n)
        for n, build in enumerate(examples.VARIANTS[schema])
    ]
    client = producer(settings)
    errors = produce(client, topic, sent)
    assert client.flush(TIMEOUT_S) == 0, "not every record was acknowledged"
    assert errors == []

    conf = settings.kafka.as_librdkafka_dict()
    received = read_partition(
        conf, topic, want=len(sent), isolation="read_committed", timeout_s=TIMEOUT_S
    )
    assert len(received) == len(sent), "more records in the topic than were produced"
    for original, message in zip(sent, received, strict=True):
        assert message.key() == original.key_bytes
        assert message.value() == original.value_bytes
        assert detect_format(original.value_bytes) == framing
        got_schema, key, value = decode(serde, message)
        assert got_schema == schema
        assert_same(key, original.key)
        assert_same(value, original.value)


def test_read_committed_sees_exactly_the_committed_transactions(
    settings: Settings, topic_factory: TopicFactory, serde: Serde
) -> None:
    topic = topic_factory("test.transactions")
    first = [encode(serde, topic, s, examples.example(s), 0) for s in sorted(SPEC_BY_VALUE)]
    aborted = [
        encode(serde, topic, schema, record, 100 + n)
        for n, (schema, _variant, record) in enumerate(examples.all_examples())
        if schema in SPEC_BY_VALUE
    ]
    second = [
        encode(serde, topic, schema, build(), 200 + n)
        for schema in sorted(SPEC_BY_VALUE)
        for n, build in enumerate(examples.VARIANTS[schema][1:])
    ]
    assert len(first) == len(SPEC_BY_VALUE)
    assert aborted
    assert second

    client = producer(settings, **{"transactional.id": f"test-{uuid.uuid4()}"})
    client.init_transactions(TIMEOUT_S)
    for batch, commit in ((first, True), (aborted, False), (second, True)):
        client.begin_transaction()
        errors = produce(client, topic, batch)
        if commit:
            client.commit_transaction(TIMEOUT_S)
        else:
            assert client.flush(TIMEOUT_S) == 0  # the aborted records do reach the log
            client.abort_transaction(TIMEOUT_S)
        assert errors == []

    # Reading all of `second` means reading past the aborted records, which sit before it.
    conf = settings.kafka.as_librdkafka_dict()
    committed = first + second
    received = read_partition(
        conf, topic, want=len(committed), isolation="read_committed", timeout_s=TIMEOUT_S
    )
    assert len(received) == len(committed), "an aborted record reached read_committed"
    for original, message in zip(committed, received, strict=True):
        schema, key, value = decode(serde, message)
        assert schema == original.schema
        assert_same(key, original.key)
        assert_same(value, original.value)

    # The aborted records are in the log all the same: read_uncommitted shows them.
    everything = [*first, *aborted, *second]
    uncommitted = read_partition(
        conf, topic, want=len(everything), isolation="read_uncommitted", timeout_s=TIMEOUT_S
    )
    assert [m.value() for m in uncommitted] == [s.value_bytes for s in everything]
