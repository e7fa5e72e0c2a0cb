"""Schema evolution through the stack's real Schema Registry and the real broker.

The mock registry of ``test_registry.py`` proves the serde's logic; these
prove what the registry itself promises: it refuses an incompatible version
(HTTP 409) exactly where ``python -m schemas.compat`` does, old and new readers
read each other's records through Kafka where BACKWARD_TRANSITIVE says they
can, and an id it never issued is a clear error naming the id and the topic.
Each test uses a uuid topic, so its subjects are its own (deleted afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from quoteflow.settings import Settings
from quoteflow.topics.readback import read_partition
from schemas import examples
from schemas.catalog import SchemaCatalog, default_catalog
from schemas.compat import check_catalog
from schemas.errors import RegistryError, UnknownWriterSchema
from schemas.serde import Serde, make_serde
from schemas.subjects.admin import SubjectAdmin
from schemas.subjects.plan import Subject
from tests.conftest import TopicFactory
from tests.helpers import delete_subjects

from .evolve import AddVersion, latest_raw

pytestmark = pytest.mark.integration

SCHEMA = "abandonment_trigger"


@pytest.fixture
def topic(topic_factory: TopicFactory, settings: Settings) -> Iterator[str]:
    name = topic_factory(f"test.evolution.{uuid.uuid4().hex[:8]}")
    try:
        yield name
    finally:
        delete_subjects(settings, name)


def _admin(settings: Settings, catalog: SchemaCatalog, topic: str) -> SubjectAdmin:
    subject = Subject(f"{topic}-value", topic, False, SCHEMA)
    return SubjectAdmin(settings, catalog=catalog, subject_list=[subject])


def _serde(settings: Settings, catalog: SchemaCatalog) -> Serde:
    """A producer's or consumer's serde on ``catalog``: registry, no auto-registration."""
    registry = settings.schema_registry
    return make_serde(registry.url, catalog=catalog, auto_register=False)


def _produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = Producer({**settings.kafka.as_librdkafka_dict(), "acks": "all"})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0


def test_old_and_new_readers_read_each_others_records_through_kafka(
    settings: Settings, topic: str, catalog_dir: Path, add_version: AddVersion
) -> None:
    raw = latest_raw(SCHEMA)
    raw["fields"].append({"name": "locale", "type": ["null", "string"], "default": None})
    add_version(SCHEMA, raw)
    v2_catalog = SchemaCatalog(catalog_dir)
    assert check_catalog(v2_catalog) == []  # what CI checks agrees with the registry below

    shipped = len(default_catalog().versions(SCHEMA))
    with _admin(settings, v2_catalog, topic) as admin:
        [registration] = admin.register()
    assert [v.version for v, _ in registration.registered] == list(range(1, shipped + 2))
    old, new = _serde(settings, default_catalog()), _serde(settings, v2_catalog)
    try:
        v1_record = examples.abandonment_trigger()
        v2_record = {**examples.abandonment_trigger(), "locale": "en-GB"}
        written = [
            old.encode(SCHEMA, v1_record, topic=topic),
            new.encode(SCHEMA, v2_record, topic=topic),
        ]
        ids = [int.from_bytes(data[1:5], "big") for data in written]
        assert ids == [schema_id for _, schema_id in registration.registered][-2:]
        _produce(settings, topic, written)
        messages = read_partition(settings.kafka.as_librdkafka_dict(), topic, want=2)
        values = [m.value() or b"" for m in messages]

        # The new reader reads old records (BACKWARD): the new field takes its default.
        assert new.decode(SCHEMA, values[0], topic=topic) == {**v1_record, "locale": None}
        assert new.decode(SCHEMA, values[1], topic=topic) == v2_record
        # The old reader reads new records too (an optional field is FORWARD compatible).
        assert old.decode(SCHEMA, values[0], topic=topic) == v1_record
        assert old.decode(SCHEMA, values[1], topic=topic) == v1_record
    finally:
        old.close()
        new.close()


def test_an_incompatible_version_is_refused_by_the_registry_and_by_schemas_compat(
    settings: Settings, topic: str, catalog_dir: Path, add_version: AddVersion
) -> None:
    with _admin(settings, default_catalog(), topic) as admin:
        admin.register()
    raw = latest_raw(SCHEMA)
    raw["fields"].append({"name": "channel_code", "type": "string"})  # required: no default
    add_version(SCHEMA, raw)
    broken = SchemaCatalog(catalog_dir)

    problems = check_catalog(broken)
    assert problems and all("channel_code" in p for p in problems), problems
    with _admin(settings, broken, topic) as admin:
        with pytest.raises(RegistryError) as refused:
            admin.register()
        [after] = admin.compare()
    shipped = len(default_catalog().versions(SCHEMA))
    assert f"registering abandonment_trigger v{shipped + 1} refused, incompatible" in str(
        refused.value
    )
    assert getattr(refused.value.__cause__, "http_status_code", None) == 409
    # Nothing changed: the subject still ends at the shipped version, now behind.
    assert after.state == "behind" and len(after.registered) == shipped


def test_a_record_with_an_unknown_schema_id_is_a_serde_error_naming_id_and_topic(
    settings: Settings, topic: str
) -> None:
    body = b"\x02"  # any Avro body: the id is looked up first
    unknown = 987_654_321
    _produce(settings, topic, [b"\x00" + unknown.to_bytes(4, "big") + body])
    [message] = read_partition(settings.kafka.as_librdkafka_dict(), topic, want=1)
    serde = _serde(settings, default_catalog())
    try:
        with pytest.raises(UnknownWriterSchema) as caught:
            serde.decode(SCHEMA, message.value() or b"", topic=topic)
    finally:
        serde.close()
    assert f"no schema with id {unknown}" in str(caught.value)
    assert repr(topic) in str(caught.value)
