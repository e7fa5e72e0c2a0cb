"""Peeking through both serdes: writer schemas from the frame, customers without a decode.

The registry cases run against confluent-kafka's in-memory mock registry;
``test_peeker_live.py`` repeats the registry path against the stack's real one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import schemaless_reader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas.peeker as peeker_module
from schemas import examples
from schemas.catalog import SchemaCatalog, default_catalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import DecodeError, PeekPathError, UnknownWriterSchema
from schemas.framing import CONFLUENT_HEADER_LEN, SINGLE_OBJECT_HEADER_LEN
from schemas.peeker import CustomerIds, Peeker
from schemas.registry import RegistrySerde
from schemas.serde import Serde

from .avro_values import values
from .test_debezium import ENVELOPES, as_debezium_writes_it, debezium_envelope
from .test_peek import _reversed_fields

pytestmark = pytest.mark.unit

TOPICS = {
    "qms_quote_envelope": "qms.public.quotes",
    "crm_customer_envelope": "crm.public.customers",
}


def _registry(url: str, catalog: SchemaCatalog | None = None) -> RegistrySerde:
    client = SchemaRegistryClient.new_client({"url": url})
    return RegistrySerde(client, catalog or default_catalog())


@pytest.fixture(params=["embedded", "registry"])
def serde(request: pytest.FixtureRequest, registry_url: str) -> Iterator[Serde]:
    """Each serde in turn: single-object encoding, then the Confluent wire format."""
    made: Serde = EmbeddedSerde() if request.param == "embedded" else _registry(registry_url)
    yield made
    made.close()


def _customer(record: dict[str, Any]) -> int | None:
    for side in ("after", "before"):
        if record[side] is not None:
            found: int = record[side]["customer_id"]
            return found
    return None


# -- writer_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sample", "record"), examples.all_examples(),
                         ids=[f"{n}-{s}" for n, s, _ in examples.all_examples()])  # fmt: skip
def test_writer_of_gives_the_schema_and_where_the_body_starts(
    serde: Serde, name: str, sample: str, record: dict[str, Any]
) -> None:
    is_key = name.endswith("_key")
    data = serde.encode(name, record, topic="t", is_key=is_key)
    writer = serde.writer_of(name, data, topic="t", is_key=is_key)
    latest = default_catalog().latest(name)
    expected_offset = (
        SINGLE_OBJECT_HEADER_LEN if isinstance(serde, EmbeddedSerde) else CONFLUENT_HEADER_LEN
    )
    assert writer.body_offset == expected_offset
    # The key is the schema text's hash: the same through either serde.
    assert writer.key == latest.sha256
    body = io.BytesIO(data[writer.body_offset :])
    assert schemaless_reader(body, writer.parsed, None) == record
    assert body.read() == b""
    assert serde.writer_of(name, data, topic="t", is_key=is_key) is writer  # cached


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", DecodeError, "empty message|not Confluent wire format"),
        (b"\xc3\x01" + b"\xee" * 8 + b"\x00", UnknownWriterSchema,
         "fingerprint eeeeeeeeeeeeeeee|not Confluent wire format: it is Avro single-object"),
        (b"\x00\x00\x00\x7f\xff\x02", UnknownWriterSchema,
         "Confluent wire format .schema id 32767.|no schema with id 32767"),
        (b"\x07nonsense", DecodeError, "not Avro single-object|not Confluent wire format"),
    ],
)  # fmt: skip
def test_writer_of_refuses_what_decode_refuses(
    serde: Serde, data: bytes, error: type[Exception], message: str
) -> None:
    if isinstance(serde, EmbeddedSerde) and data.startswith(b"\x00"):
        error = DecodeError  # single-object decoding names the other framing instead
    if isinstance(serde, RegistrySerde) and data.startswith(b"\xc3"):
        error = DecodeError
    with pytest.raises(error, match=message):
        serde.writer_of("qms_quote_envelope", data, topic="t")
    with pytest.raises(error, match=message):
        serde.decode("qms_quote_envelope", data, topic="t")


def test_the_embedded_serde_refuses_another_schemas_writer(embedded: EmbeddedSerde) -> None:
    data = embedded.encode("qms_quote_key", examples.quote_key(), topic="t", is_key=True)
    with pytest.raises(DecodeError, match="not with a version of 'qms_quote_envelope'"):
        embedded.writer_of("qms_quote_envelope", data, topic="t")


def test_a_registry_writer_with_references_is_refused(registry_url: str) -> None:
    serde = _registry(registry_url)
    client = serde.client
    from confluent_kafka.schema_registry import Schema, SchemaReference

    client.register_schema("dep-value", Schema(json.dumps({"type": "fixed", "name": "D",
                                                            "size": 2}), "AVRO"))  # fmt: skip
    with_ref = Schema(
        json.dumps({"type": "record", "name": "R", "fields": [{"name": "d", "type": "D"}]}),
        "AVRO",
        [SchemaReference("D", "dep-value", 1)],
    )
    schema_id = client.register_schema("r-value", with_ref)
    data = b"\x00" + schema_id.to_bytes(4, "big") + b"\x00\x00"
    with pytest.raises(DecodeError, match=f"schema id {schema_id} is not a self-contained"):
        serde.writer_of("qms_quote_envelope", data, topic="t")


# -- customers without a decode ------------------------------------------------------------------


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_the_customer_is_the_decoded_events_customer(serde: Serde, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ENVELOPES))
    parsed = default_catalog().latest(name).parsed
    record = data.draw(values(parsed, parsed["__named_schemas"]))
    message = serde.encode(name, record, topic=TOPICS[name])
    customers = CustomerIds(serde, name)
    assert customers(message, topic=TOPICS[name]) == _customer(
        serde.decode(name, message, topic=TOPICS[name])
    )


@pytest.mark.parametrize("build", examples.VARIANTS["qms_quote_envelope"],
                         ids=lambda b: b.__name__)  # fmt: skip
def test_every_kind_of_quote_change(serde: Serde, build: Any) -> None:
    record = build()
    message = serde.encode("qms_quote_envelope", record, topic="q")
    found = CustomerIds(serde, "qms_quote_envelope")(message, topic="q")
    assert found == _customer(record)
    if record["op"] == "t":
        assert found is None  # every lane takes it


@pytest.mark.parametrize("name", ENVELOPES)
@pytest.mark.parametrize("layout", ["debezium", "reversed"])
def test_debeziums_own_writer_schemas_through_the_registry(
    registry_url: str, name: str, layout: str
) -> None:
    # What a consumer of a real Debezium deployment sees: Debezium's writer schema
    # (more fields, connect.* properties; here also every record's fields reversed).
    serde = _registry(registry_url)
    raw = debezium_envelope(name)
    if layout == "reversed":
        raw = _reversed_fields(raw)
        fields = raw["fields"]
        after = next(f for f in fields if f["name"] == "after")
        before = next(f for f in fields if f["name"] == "before")
        after["type"], before["type"] = before["type"], after["type"]
    debezium = AvroSerializer(serde.client, json.dumps(raw))
    customers = CustomerIds(serde, name)
    for build in examples.VARIANTS[name]:
        record = build()
        context = SerializationContext(TOPICS[name], MessageField.VALUE)
        message = debezium(as_debezium_writes_it(record), context)
        assert message is not None
        assert customers(message, topic=TOPICS[name]) == _customer(record)
        assert _customer(serde.decode(name, message, topic=TOPICS[name])) == _customer(record)


def test_one_compile_per_writer_schema(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real = peeker_module.compile_peek

    def counting(parsed: Any, paths: Any, **kwargs: Any) -> Any:
        compiled.append(kwargs["label"])
        return real(parsed, paths, **kwargs)

    monkeypatch.setattr(peeker_module, "compile_peek", counting)
    serde = _registry(registry_url)
    customers = CustomerIds(serde, "qms_quote_envelope")
    builds = examples.VARIANTS["qms_quote_envelope"]
    ours = [serde.encode("qms_quote_envelope", build(), topic=topic)
            for topic in ("a", "b") for build in builds]  # fmt: skip
    debezium = AvroSerializer(serde.client, json.dumps(debezium_envelope("qms_quote_envelope")))
    theirs = debezium(as_debezium_writes_it(examples.quote_created()),
                      SerializationContext("c", MessageField.VALUE))  # fmt: skip
    assert theirs is not None
    for message in [*ours, theirs, *ours, theirs]:
        customers(message, topic="a")
    assert len(compiled) == 2  # ours (one text under two subjects) and Debezium's


def test_a_corrupt_body_names_the_topic(serde: Serde) -> None:
    message = serde.encode("qms_quote_envelope", examples.quote_created(), topic="q")
    frame = SINGLE_OBJECT_HEADER_LEN if isinstance(serde, EmbeddedSerde) else CONFLUENT_HEADER_LEN
    customers = CustomerIds(serde, "qms_quote_envelope")
    with pytest.raises(DecodeError, match=r"topic 'q'.*corrupt or truncated Avro body"):
        customers(message[:frame] + b"\x08", topic="q")
    with pytest.raises(DecodeError, match="a union index out of range"):
        customers(message[:frame] + b"\x04\x00", topic="q")
    assert customers(message, topic="q") == examples.quote_created()["after"]["customer_id"]


def test_a_writer_without_the_fields_is_a_path_error(serde: Serde) -> None:
    message = serde.encode("dead_letter", examples.dead_letter(), topic="dl")
    with pytest.raises(PeekPathError, match=r"topic 'dl'.*has no field 'after.customer_id'"):
        CustomerIds(serde, "dead_letter")(message, topic="dl")


def test_a_customer_id_that_is_not_a_long_is_refused(registry_url: str) -> None:
    serde = _registry(registry_url)
    raw = debezium_envelope("qms_quote_envelope")
    row = next(b for b in raw["fields"][0]["type"] if isinstance(b, dict))
    next(f for f in row["fields"] if f["name"] == "customer_id")["type"] = "string"
    record = as_debezium_writes_it(examples.quote_created())
    record["after"]["customer_id"] = "77001"
    message = AvroSerializer(serde.client, json.dumps(raw))(
        record, SerializationContext("q", MessageField.VALUE)
    )
    assert message is not None
    with pytest.raises(DecodeError, match="customer_id is str, expected a long"):
        CustomerIds(serde, "qms_quote_envelope")(message, topic="q")


def test_a_peeker_gives_its_paths_in_order(embedded: EmbeddedSerde) -> None:
    paths = ("op", "source.lsn", "after.quote_ref", "before.quote_id")
    peeker = Peeker(embedded, "qms_quote_envelope", paths)
    record = examples.quote_accepted()
    message = embedded.encode("qms_quote_envelope", record, topic="q")
    assert peeker.paths == paths
    assert peeker.values(message, topic="q") == (
        record["op"], record["source"]["lsn"], record["after"]["quote_ref"],
        record["before"]["quote_id"],
    )  # fmt: skip
