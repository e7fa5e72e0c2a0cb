"""The registry serde, against confluent-kafka's in-memory mock registry."""

from __future__ import annotations

import socket
import traceback
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import examples
from schemas.catalog import SchemaCatalog, default_catalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import DecodeError, EncodeError, RegistryError, SerdeError, UnknownWriterSchema
from schemas.registry import RegistrySerde

from .evolve import AddVersion, latest_raw

pytestmark = pytest.mark.unit

TOPIC = "qms.public.quotes"
SAMPLES = examples.all_examples()
SAMPLE_IDS = [f"{name}-{sample}" for name, sample, _ in SAMPLES]


def serde_for(url: str, catalog: SchemaCatalog | None = None, **kwargs: Any) -> RegistrySerde:
    client = SchemaRegistryClient.new_client({"url": url})
    return RegistrySerde(client, catalog or default_catalog(), **kwargs)


@pytest.fixture
def registry(registry_url: str) -> RegistrySerde:
    """A registry serde over a fresh mock registry."""
    return serde_for(registry_url)


@pytest.mark.parametrize(("schema_name", "sample", "record"), SAMPLES, ids=SAMPLE_IDS)
def test_round_trip_and_wire_format(
    registry: RegistrySerde,
    embedded: EmbeddedSerde,
    schema_name: str,
    sample: str,
    record: dict[str, Any],
) -> None:
    is_key = schema_name.endswith("_key")
    data = registry.encode(schema_name, record, topic=TOPIC, is_key=is_key)

    subject = f"{TOPIC}-{'key' if is_key else 'value'}"
    registered = registry.client.get_latest_version(subject)
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == registered.schema_id
    assert registry.decode(schema_name, data, topic=TOPIC, is_key=is_key) == record
    # The second read takes the fast path (the writer schema parsed once): the same record.
    assert registry.decode(schema_name, data, topic=TOPIC, is_key=is_key) == record

    # Same Avro body as the embedded serde writes, so logical types match too.
    single = embedded.encode(schema_name, record, topic=TOPIC)
    assert data[5:] == single[10:]


def test_keys_and_values_use_topic_name_subjects(registry: RegistrySerde) -> None:
    registry.encode("qms_quote_key", examples.quote_key(), topic=TOPIC, is_key=True)
    registry.encode("qms_quote_envelope", examples.quote_created(), topic=TOPIC)
    registry.encode("abandonment_trigger", examples.abandonment_trigger(), topic="triggers")
    assert sorted(registry.client.get_subjects()) == [
        f"{TOPIC}-key",
        f"{TOPIC}-value",
        "triggers-value",
    ]


def test_without_auto_register_an_unregistered_schema_is_refused(registry_url: str) -> None:
    strict = serde_for(registry_url, auto_register=False)
    with pytest.raises(RegistryError, match="not registered under subject 'triggers-value'"):
        strict.encode("abandonment_trigger", examples.abandonment_trigger(), topic="triggers")

    # Once registered (here by an auto-registering producer) it is found.
    registering = RegistrySerde(strict.client, default_catalog())
    registering.encode("abandonment_trigger", examples.abandonment_trigger(), topic="triggers")
    data = strict.encode("abandonment_trigger", examples.abandonment_trigger(), topic="triggers")
    assert strict.decode("abandonment_trigger", data, topic="triggers")["quote_id"] == 1_000_042


def test_old_version_data_is_resolved_to_the_latest(
    registry: RegistrySerde, catalog_dir: Path, add_version: AddVersion
) -> None:
    old = registry.encode("abandonment_trigger", examples.abandonment_trigger(), topic="triggers")
    raw = latest_raw("abandonment_trigger")
    raw["fields"].append({"name": "locale", "type": ["null", "string"], "default": None})
    add_version("abandonment_trigger", raw)
    upgraded = RegistrySerde(registry.client, SchemaCatalog(catalog_dir))

    decoded = upgraded.decode("abandonment_trigger", old, topic="triggers")
    assert decoded == {**examples.abandonment_trigger(), "locale": None}

    new = upgraded.encode("abandonment_trigger", {**decoded, "locale": "en-GB"}, topic="triggers")
    assert int.from_bytes(new[1:5], "big") != int.from_bytes(old[1:5], "big")
    assert upgraded.decode("abandonment_trigger", new, topic="triggers")["locale"] == "en-GB"
    # An old consumer reads the newer data too (the new field is dropped).
    assert registry.decode("abandonment_trigger", new, topic="triggers") == (
        examples.abandonment_trigger()
    )


def test_invalid_record_error_has_no_personal_data(registry: RegistrySerde) -> None:
    record = examples.abandonment_trigger(offer=examples.offer(discount_pct=examples.EXAMPLE_EMAIL))
    with pytest.raises(EncodeError) as info:
        registry.encode("abandonment_trigger", record, topic="triggers")
    assert "quoteflow.v1.Offer.discount_pct" in str(info.value)
    assert "abandonment_trigger v3" in str(info.value)
    assert examples.EXAMPLE_EMAIL not in "".join(traceback.format_exception(info.value))


def test_strict_like_embedded_extra_fields_are_refused(registry: RegistrySerde) -> None:
    record = {**examples.abandonment_trigger(), "emial": "x"}
    with pytest.raises(EncodeError, match="fields not in the schema: emial"):
        registry.encode("abandonment_trigger", record, topic="triggers")


class TestDecodingBadBytes:
    """Bad input raises DecodeError (or its UnknownWriterSchema subclass) with a reason."""

    def test_single_object_bytes(self, registry: RegistrySerde, embedded: EmbeddedSerde) -> None:
        data = embedded.encode("abandonment_trigger", examples.abandonment_trigger(), topic=TOPIC)
        with pytest.raises(DecodeError, match="single-object encoding; read it without a registry"):
            registry.decode("abandonment_trigger", data, topic=TOPIC)

    @pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x00", b"\x01garbage"])
    def test_not_confluent_framed(self, registry: RegistrySerde, data: bytes) -> None:
        with pytest.raises(DecodeError, match="not Confluent wire format"):
            registry.decode("abandonment_trigger", data, topic=TOPIC)

    def test_unknown_schema_id(self, registry: RegistrySerde) -> None:
        with pytest.raises(UnknownWriterSchema, match="no schema with id 4242"):
            registry.decode(
                "qms_quote_key", b"\x00" + (4242).to_bytes(4, "big") + b"\x02", topic=TOPIC
            )

    @pytest.mark.parametrize("known_writer", [False, True])
    def test_data_of_another_schema(self, registry: RegistrySerde, known_writer: bool) -> None:
        data = registry.encode("abandonment_decision", examples.abandonment_decision(), topic=TOPIC)
        if known_writer:  # read once correctly: the wrong read then takes the fast path
            registry.decode("abandonment_decision", data, topic=TOPIC)
        with pytest.raises(DecodeError, match="cannot be read as abandonment_trigger v3"):
            registry.decode("abandonment_trigger", data, topic=TOPIC)

    @pytest.mark.parametrize("known_writer", [False, True])
    def test_truncated_body(self, registry: RegistrySerde, known_writer: bool) -> None:
        data = registry.encode("dead_letter", examples.dead_letter(), topic=TOPIC)
        if known_writer:
            registry.decode("dead_letter", data, topic=TOPIC)
        for cut in range(6, len(data)):
            with pytest.raises(DecodeError, match="corrupt or truncated"):
                registry.decode("dead_letter", data[:cut], topic=TOPIC)


def test_unreachable_registry_is_a_registry_error() -> None:
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SchemaRegistryClient({"url": f"http://127.0.0.1:{port}", "max.retries": 0})
    serde = RegistrySerde(client, default_catalog())
    with pytest.raises(RegistryError, match="cannot reach the schema registry"):
        serde.encode("qms_quote_key", examples.quote_key(), topic=TOPIC, is_key=True)
    with pytest.raises(RegistryError, match="cannot reach the schema registry"):
        serde.decode("qms_quote_key", b"\x00\x00\x00\x00\x01\x02", topic=TOPIC, is_key=True)


def _fuzz_registry() -> tuple[RegistrySerde, list[tuple[str, bytes]]]:
    serde = serde_for("mock://fuzz-registry")
    encoded = [(name, serde.encode(name, record, topic=TOPIC)) for name, _, record in SAMPLES]
    return serde, encoded


FUZZ_SERDE, FUZZ_ENCODED = _fuzz_registry()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(FUZZ_ENCODED),
    cut=st.floats(min_value=0, max_value=1),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.integers(min_value=1, max_value=255)),
        max_size=4,
    ),
)
def test_corrupted_messages_never_raise_anything_but_serde_errors(
    sample: tuple[str, bytes], cut: float, flips: list[tuple[int, int]]
) -> None:
    name, data = sample
    corrupted = bytearray(data[: round(len(data) * cut)])
    for index, mask in flips:
        if index < len(corrupted):
            corrupted[index] ^= mask
    try:
        result = FUZZ_SERDE.decode(name, bytes(corrupted), topic=TOPIC)
    except SerdeError:
        return
    assert isinstance(result, dict)


def test_the_fast_path_resolves_unless_the_writer_is_the_readers_own_text(
    registry: RegistrySerde, catalog_dir: Path, add_version: AddVersion
) -> None:
    # Each read twice: the first goes through the deserializer, the next takes the fast
    # path, which skips resolution only for a writer of the reader's very text.
    old = registry.encode("abandonment_trigger", examples.abandonment_trigger(), topic="triggers")
    raw = latest_raw("abandonment_trigger")
    raw["fields"].append({"name": "locale", "type": ["null", "string"], "default": None})
    add_version("abandonment_trigger", raw)
    upgraded = RegistrySerde(registry.client, SchemaCatalog(catalog_dir))
    new = upgraded.encode(
        "abandonment_trigger", {**examples.abandonment_trigger(), "locale": "en-GB"},
        topic="triggers",
    )  # fmt: skip
    for _ in range(2):
        assert upgraded.decode("abandonment_trigger", old, topic="triggers") == {
            **examples.abandonment_trigger(), "locale": None,
        }  # fmt: skip
        assert registry.decode("abandonment_trigger", new, topic="triggers") == (
            examples.abandonment_trigger()
        )
        assert upgraded.decode("abandonment_trigger", new, topic="triggers")["locale"] == "en-GB"
        assert registry.decode("abandonment_trigger", old, topic="triggers") == (
            examples.abandonment_trigger()
        )
