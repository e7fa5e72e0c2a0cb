"""The change decoder through the stack's real Schema Registry: the same changes, the same refusals.

``test_decoding.py`` proves it against the mock registry; this proves it where
the writer schema comes back by id from the real one, for our writer (the
projection) and Debezium's (the serde's resolution), on good, corrupt,
truncated and extended messages. Subjects are per test (uuid names), deleted
afterwards.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given
from hypothesis import settings as examples_of
from hypothesis import strategies as st

from quoteflow.settings import Settings
from schemas import examples
from schemas.catalog import default_catalog
from schemas.errors import SerdeError
from streams.replay.decoding import CUSTOMER_SCHEMA, QUOTE_SCHEMA, ChangeDecoder
from tests.helpers import delete_subjects, registry_serde
from tests.test_schemas.test_debezium import as_debezium_writes_it, debezium_envelope

from .test_decoding import envelopes, mangle, outcome, reference

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(stack: object, settings: Settings) -> Iterator[str]:
    """A uuid topic name (no Kafka topic: only its registry subjects are used)."""
    name = f"test.decoding.{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        for suffix in ("", ".dbz", ".crm"):
            delete_subjects(settings, name + suffix)



_SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@examples_of(deadline=None, max_examples=60, derandomize=True, suppress_health_check=_SLOW)
@given(data=st.data())
def test_the_real_registry_decodes_alike(settings: Settings, topic: str,
                                         data: st.DataObject) -> None:  # fmt: skip
    schema = data.draw(st.sampled_from([QUOTE_SCHEMA, CUSTOMER_SCHEMA]))
    where = topic if schema == QUOTE_SCHEMA else topic + ".crm"
    producer = registry_serde(settings, auto_register=True)
    try:
        written = [producer.encode(schema, data.draw(envelopes(schema)), topic=where)
                   for _ in range(5)]  # fmt: skip
    except SerdeError:
        return  # a union value fastavro cannot place: nothing to read
    finally:
        producer.close()
    consumer = registry_serde(settings, auto_register=False)  # a fresh client: nothing cached
    try:
        decoder = ChangeDecoder(consumer)
        for value in written:
            value = mangle(data.draw, value)
            assert outcome(decoder, schema, value, where) == reference(consumer, schema,
                                                                       value, where)  # fmt: skip
    finally:
        consumer.close()


def test_our_writer_and_debeziums_through_the_real_registry(settings: Settings,
                                                             topic: str) -> None:  # fmt: skip
    producer = registry_serde(settings, auto_register=True)
    builds = examples.VARIANTS[QUOTE_SCHEMA]
    ours = [producer.encode(QUOTE_SCHEMA, build(), topic=topic) for build in builds]
    debezium = AvroSerializer(producer.client, json.dumps(debezium_envelope(QUOTE_SCHEMA)))
    context = SerializationContext(topic + ".dbz", MessageField.VALUE)
    theirs = [debezium(as_debezium_writes_it(build()), context) or b"" for build in builds]
    producer.close()

    consumer = registry_serde(settings, auto_register=False)
    try:
        decoder = ChangeDecoder(consumer)
        assert consumer.writer_of(QUOTE_SCHEMA, ours[0], topic=topic).key == (
            default_catalog().latest(QUOTE_SCHEMA).sha256)
        rng = random.Random(19)
        for mine, its in zip(ours, theirs, strict=True):
            assert outcome(decoder, QUOTE_SCHEMA, mine, topic) == reference(
                consumer, QUOTE_SCHEMA, mine, topic)
            assert outcome(decoder, QUOTE_SCHEMA, its, topic + ".dbz") == reference(
                consumer, QUOTE_SCHEMA, its, topic + ".dbz")
            assert outcome(decoder, QUOTE_SCHEMA, mine, topic)[0] == "changes"
            for broken in (mine[: rng.randrange(len(mine))], mine + b"\x00",
                           mine[:-3] + b"\xff\xff\xff"):  # fmt: skip
                assert outcome(decoder, QUOTE_SCHEMA, broken, topic) == reference(
                    consumer, QUOTE_SCHEMA, broken, topic)
    finally:
        consumer.close()
