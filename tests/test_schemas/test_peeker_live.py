"""Peeking through the stack's real Schema Registry: writer schemas fetched by id, once.

``test_peeker.py`` proves the logic against the mock registry; this proves the
registry path for real: the schema a producer registered comes back by id, its
key is that of the same text in the catalogue, and a writer of Debezium's
layout peeks the same customers a decode reads. Subjects are per test (uuid
names), deleted afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from quoteflow.settings import Settings
from schemas import examples
from schemas.catalog import default_catalog
from schemas.errors import UnknownWriterSchema
from schemas.peeker import CustomerIds
from tests.helpers import delete_subjects, registry_serde

from .test_debezium import as_debezium_writes_it, debezium_envelope

pytestmark = pytest.mark.integration

SCHEMA = "qms_quote_envelope"


@pytest.fixture
def topics(stack: object, settings: Settings) -> Iterator[tuple[str, str]]:
    """Two uuid topic names (no Kafka topic: only their registry subjects are used)."""
    names = (f"test.peek.{uuid.uuid4().hex[:8]}", f"test.peek.dbz.{uuid.uuid4().hex[:8]}")
    try:
        yield names
    finally:
        for name in names:
            delete_subjects(settings, name)



def test_customers_through_the_real_registry(
    settings: Settings, topics: tuple[str, str]
) -> None:
    ours, theirs = topics
    producer = registry_serde(settings, auto_register=True)
    builds = examples.VARIANTS[SCHEMA]
    written = [producer.encode(SCHEMA, build(), topic=ours) for build in builds]
    debezium = AvroSerializer(producer.client, json.dumps(debezium_envelope(SCHEMA)))
    context = SerializationContext(theirs, MessageField.VALUE)
    from_debezium = [debezium(as_debezium_writes_it(build()), context) for build in builds]
    producer.close()

    consumer = registry_serde(settings, auto_register=False)  # a fresh client: nothing cached
    try:
        customers = CustomerIds(consumer, SCHEMA)
        writer = consumer.writer_of(SCHEMA, written[0], topic=ours)
        assert writer.key == default_catalog().latest(SCHEMA).sha256
        assert writer.label == f"schema id {int.from_bytes(written[0][1:5], 'big')}"
        for build, mine, its in zip(builds, written, from_debezium, strict=True):
            assert its is not None
            row = build()["after"] or build()["before"]
            expected = None if row is None else row["customer_id"]
            assert customers(mine, topic=ours) == expected
            assert customers(its, topic=theirs) == expected
            decoded = consumer.decode(SCHEMA, its, topic=theirs)
            assert (decoded["after"] or decoded["before"] or {}).get("customer_id") == expected
        assert consumer.writer_of(SCHEMA, from_debezium[0] or b"", topic=theirs).key != writer.key
    finally:
        consumer.close()


def test_an_id_the_registry_never_issued(settings: Settings, stack: object) -> None:
    serde = registry_serde(settings, auto_register=False)
    try:
        with pytest.raises(UnknownWriterSchema, match="no schema with id 2147483000"):
            serde.writer_of(SCHEMA, b"\x00" + (2_147_483_000).to_bytes(4, "big") + b"\x00",
                            topic="test.peek.none")  # fmt: skip
    finally:
        serde.close()
