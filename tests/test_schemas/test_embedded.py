"""The embedded serde: single-object encoding against the catalogue."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import examples
from schemas.catalog import SchemaCatalog, default_catalog
from schemas.debezium import parse_zoned_timestamp
from schemas.embedded import EmbeddedSerde
from schemas.errors import (
    DecodeError,
    EncodeError,
    SchemaNotFound,
    SerdeError,
    UnknownWriterSchema,
)
from schemas.framing import SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MARKER

from .evolve import AddVersion, field, fields, latest_raw

pytestmark = pytest.mark.unit

TOPIC = "quote-abandonment.triggers"
SAMPLES = examples.all_examples()
SAMPLE_IDS = [f"{name}-{sample}" for name, sample, _ in SAMPLES]


def _encoded_samples() -> list[tuple[str, bytes]]:
    serde = EmbeddedSerde(default_catalog())
    return [(name, serde.encode(name, record, topic=TOPIC)) for name, _, record in SAMPLES]


ENCODED = _encoded_samples()


@pytest.mark.parametrize(("schema_name", "sample", "record"), SAMPLES, ids=SAMPLE_IDS)
def test_round_trip(
    embedded: EmbeddedSerde, schema_name: str, sample: str, record: dict[str, Any]
) -> None:
    data = embedded.encode(schema_name, record, topic=TOPIC)
    assert embedded.decode(schema_name, data, topic=TOPIC) == record


@pytest.mark.parametrize(("schema_name", "sample", "record"), SAMPLES, ids=SAMPLE_IDS)
def test_header_is_marker_and_little_endian_fingerprint(
    embedded: EmbeddedSerde,
    catalog: SchemaCatalog,
    schema_name: str,
    sample: str,
    record: dict[str, Any],
) -> None:
    data = embedded.encode(schema_name, record, topic=TOPIC, is_key=schema_name.endswith("_key"))
    assert data[:2] == b"\xc3\x01"
    fp = int.from_bytes(data[2:10], "little")
    assert fp == catalog.latest(schema_name).fingerprint


def test_logical_types_come_back_typed(embedded: EmbeddedSerde) -> None:
    data = embedded.encode("qms_quote_envelope", examples.quote_created(), topic=TOPIC)
    after = embedded.decode("qms_quote_envelope", data, topic=TOPIC)["after"]
    assert after["premium"] == Decimal("612.37")
    assert isinstance(after["premium"], Decimal)
    assert after["valid_until"] == examples.quote_value()["valid_until"]
    assert isinstance(after["valid_until"], date)
    # timestamptz columns are Debezium ZonedTimestamp strings: the CEST time
    # the example was built from was written, and comes back, in UTC.
    assert after["updated_at"] == "2024-07-01T09:15:03.654321Z"
    updated = parse_zoned_timestamp(after["updated_at"])
    assert updated == datetime(2024, 7, 1, 9, 15, 3, 654321, tzinfo=UTC)
    assert updated.tzinfo is UTC


def test_a_datetime_for_a_zoned_timestamp_is_refused_with_its_semantic_type(
    embedded: EmbeddedSerde,
) -> None:
    record = examples.quote_created()
    record["after"]["created_at"] = datetime(2024, 7, 1, 9, 15, 3, tzinfo=UTC)
    with pytest.raises(EncodeError) as info:
        embedded.encode("qms_quote_envelope", record, topic=TOPIC)
    assert (
        "'qms.public.quotes.Value.created_at' expects string (io.debezium.time.ZonedTimestamp), "
        "got datetime"
    ) in str(info.value)


def test_timestamp_millis_drops_microseconds(embedded: EmbeddedSerde) -> None:
    fired = datetime(2024, 7, 1, 9, 15, 4, 7999, tzinfo=UTC)
    record = examples.abandonment_trigger(fired_at=fired)
    data = embedded.encode("abandonment_trigger", record, topic=TOPIC)
    decoded = embedded.decode("abandonment_trigger", data, topic=TOPIC)
    assert decoded["fired_at"] == fired.replace(microsecond=7000)


def test_omitted_fields_with_defaults_are_filled(embedded: EmbeddedSerde) -> None:
    record = examples.abandonment_trigger()
    del record["replay"]
    del record["offer"]["discount_pct"]
    data = embedded.encode("abandonment_trigger", record, topic=TOPIC)
    decoded = embedded.decode("abandonment_trigger", data, topic=TOPIC)
    assert decoded["replay"] is False
    assert decoded["offer"]["discount_pct"] is None


def test_unknown_schema_name(embedded: EmbeddedSerde) -> None:
    with pytest.raises(SchemaNotFound, match="known schemas: abandonment_decision"):
        embedded.encode("nope", {}, topic=TOPIC)
    with pytest.raises(SchemaNotFound, match="'nope'"):
        embedded.decode("nope", ENCODED[0][1], topic=TOPIC)


class TestEncodingInvalidRecords:
    """Records that do not fit fail with the schema and field named, never a value."""

    def assert_no_personal_data(self, error: BaseException) -> None:
        rendered = "".join(traceback.format_exception(error))
        assert examples.EXAMPLE_EMAIL not in rendered
        assert "Jane" not in str(error)

    def encode_error(self, serde: EmbeddedSerde, record: object) -> EncodeError:
        with pytest.raises(EncodeError) as info:
            serde.encode("abandonment_trigger", record, topic=TOPIC)  # type: ignore[arg-type]
        self.assert_no_personal_data(info.value)
        message = str(info.value)
        assert "abandonment_trigger v3" in message
        assert repr(TOPIC) in message
        return info.value

    def test_wrong_type_in_a_union(self, embedded: EmbeddedSerde) -> None:
        record = examples.abandonment_trigger(
            offer=examples.offer(discount_pct=examples.EXAMPLE_EMAIL)
        )
        error = self.encode_error(embedded, record)
        assert "quoteflow.v1.Offer.discount_pct" in str(error)
        assert "null | double" in str(error)
        assert "got str" in str(error)

    def test_email_where_a_long_belongs(self, embedded: EmbeddedSerde) -> None:
        error = self.encode_error(
            embedded, examples.abandonment_trigger(quote_id=examples.EXAMPLE_EMAIL)
        )
        assert "quoteflow.v1.AbandonmentTrigger.quote_id" in str(error)
        assert "expects long" in str(error)

    def test_missing_field_without_default(self, embedded: EmbeddedSerde) -> None:
        record = examples.abandonment_trigger()
        del record["email"]
        error = self.encode_error(embedded, record)
        assert "'email' is missing" in str(error)

    def test_null_in_a_required_field(self, embedded: EmbeddedSerde) -> None:
        error = self.encode_error(embedded, examples.abandonment_trigger(email=None))
        assert "AbandonmentTrigger.email' expects string, got null or missing" in str(error)

    def test_field_not_in_the_schema(self, embedded: EmbeddedSerde) -> None:
        record = {**examples.abandonment_trigger(), "emial": examples.EXAMPLE_EMAIL}
        error = self.encode_error(embedded, record)
        assert "fields not in the schema: emial" in str(error)

    def test_decimal_with_too_many_places(self, embedded: EmbeddedSerde) -> None:
        error = self.encode_error(
            embedded, examples.abandonment_trigger(premium=Decimal("612.375"))
        )
        assert "scale" in str(error)

    def test_float_for_money(self, embedded: EmbeddedSerde) -> None:
        error = self.encode_error(embedded, examples.abandonment_trigger(premium=612.37))
        assert "AbandonmentTrigger.premium' expects decimal(12,2), got float" in str(error)

    def test_not_a_mapping(self, embedded: EmbeddedSerde) -> None:
        error = self.encode_error(embedded, [examples.EXAMPLE_EMAIL])
        assert "expected a mapping" in str(error)

    def test_enum_symbol_that_does_not_exist(self, embedded: EmbeddedSerde) -> None:
        record = examples.abandonment_decision(outcome="MAYBE")
        with pytest.raises(EncodeError, match=r"AbandonmentDecision\.outcome' expects enum"):
            embedded.encode("abandonment_decision", record, topic=TOPIC)


class TestDecodingBadBytes:
    """Anything but a valid message raises a DecodeError saying what is wrong."""

    def decode(self, serde: EmbeddedSerde, data: bytes, name: str = "abandonment_trigger") -> str:
        with pytest.raises(DecodeError) as info:
            serde.decode(name, data, topic=TOPIC)
        assert repr(TOPIC) in str(info.value)
        return str(info.value)

    def test_empty(self, embedded: EmbeddedSerde) -> None:
        assert "empty message" in self.decode(embedded, b"")

    def test_marker_only(self, embedded: EmbeddedSerde) -> None:
        assert "truncated: 2 byte(s)" in self.decode(embedded, SINGLE_OBJECT_MARKER)

    @pytest.mark.parametrize("length", range(1, SINGLE_OBJECT_HEADER_LEN))
    def test_truncated_header(self, embedded: EmbeddedSerde, length: int) -> None:
        data = embedded.encode("abandonment_trigger", examples.abandonment_trigger(), topic=TOPIC)
        assert "truncated" in self.decode(embedded, data[:length])

    def test_every_truncation_of_every_sample_is_refused(self, embedded: EmbeddedSerde) -> None:
        for name, data in ENCODED:
            for cut in range(SINGLE_OBJECT_HEADER_LEN, len(data)):
                with pytest.raises(DecodeError):
                    embedded.decode(name, data[:cut], topic=TOPIC)

    def test_wrong_marker(self, embedded: EmbeddedSerde) -> None:
        message = self.decode(embedded, b"\xc3\x02" + bytes(20))
        assert "starts with c302, expected c301" in message

    def test_confluent_wire_format(self, embedded: EmbeddedSerde) -> None:
        data = b"\x00\x00\x00\x00\x07" + ENCODED[0][1][SINGLE_OBJECT_HEADER_LEN:]
        message = self.decode(embedded, data)
        assert "Confluent wire format (schema id 7)" in message
        assert "registry" in message

    def test_unknown_fingerprint(self, embedded: EmbeddedSerde) -> None:
        data = SINGLE_OBJECT_MARKER + (12345).to_bytes(8, "little") + b"\x00"
        with pytest.raises(UnknownWriterSchema, match="0000000000003039"):
            embedded.decode("abandonment_trigger", data, topic=TOPIC)

    def test_big_endian_fingerprint_is_not_accepted(
        self, embedded: EmbeddedSerde, catalog: SchemaCatalog
    ) -> None:
        good = embedded.encode("qms_quote_key", examples.quote_key(), topic=TOPIC)
        swapped = good[:2] + good[2:10][::-1] + good[10:]
        with pytest.raises(UnknownWriterSchema):
            embedded.decode("qms_quote_key", swapped, topic=TOPIC)

    def test_written_with_another_schema(self, embedded: EmbeddedSerde) -> None:
        data = embedded.encode("abandonment_decision", examples.abandonment_decision(), topic=TOPIC)
        message = self.decode(embedded, data, "abandonment_trigger")
        assert "written with abandonment_decision v1" in message

    def test_trailing_bytes(self, embedded: EmbeddedSerde) -> None:
        data = embedded.encode("qms_quote_key", examples.quote_key(), topic=TOPIC)
        assert "1 byte(s) left over" in self.decode(embedded, data + b"\x00", "qms_quote_key")

    def test_date_out_of_range(self, tmp_path: Path) -> None:
        # 2**31 - 1 days after 1970 is a valid Avro date but no datetime.date.
        directory = tmp_path / "avro" / "dated"
        directory.mkdir(parents=True)
        schema = {
            "type": "record",
            "name": "Dated",
            "fields": [{"name": "day", "type": {"type": "int", "logicalType": "date"}}],
        }
        (directory / "v1.avsc").write_text(json.dumps(schema), encoding="utf-8")
        serde = EmbeddedSerde(SchemaCatalog(tmp_path / "avro"))
        header = SINGLE_OBJECT_MARKER + serde.catalog.latest("dated").fingerprint_bytes
        body = b"\xfe\xff\xff\xff\x0f"  # zig-zag varint of 2**31 - 1
        with pytest.raises(DecodeError, match="OverflowError"):
            serde.decode("dated", header + body, topic=TOPIC)


class TestEvolution:
    """Data written before a new version landed is read with the new version."""

    def test_v1_data_gets_the_v2_default(
        self, embedded: EmbeddedSerde, catalog_dir: Path, add_version: AddVersion
    ) -> None:
        old = embedded.encode("abandonment_trigger", examples.abandonment_trigger(), topic=TOPIC)
        raw = latest_raw("abandonment_trigger")
        raw["fields"].append({"name": "locale", "type": "string", "default": "en-GB"})
        add_version("abandonment_trigger", raw)
        upgraded = EmbeddedSerde(SchemaCatalog(catalog_dir))

        decoded = upgraded.decode("abandonment_trigger", old, topic=TOPIC)
        assert decoded == {**examples.abandonment_trigger(), "locale": "en-GB"}

        new = upgraded.encode("abandonment_trigger", decoded, topic=TOPIC)
        assert new[2:10] == upgraded.catalog.latest("abandonment_trigger").fingerprint_bytes
        assert upgraded.decode("abandonment_trigger", new, topic=TOPIC) == decoded
        # An old consumer meeting v2 data must say so, not misread it.
        with pytest.raises(UnknownWriterSchema, match="newer schema"):
            embedded.decode("abandonment_trigger", new, topic=TOPIC)

    def test_v1_envelope_read_after_a_column_is_added(
        self, embedded: EmbeddedSerde, catalog_dir: Path, add_version: AddVersion
    ) -> None:
        old = embedded.encode("qms_quote_envelope", examples.quote_accepted(), topic=TOPIC)
        raw = latest_raw("qms_quote_envelope")
        fields(raw, "before").append(
            {"name": "broker_id", "type": ["null", "long"], "default": None}
        )
        add_version("qms_quote_envelope", raw)
        decoded = EmbeddedSerde(SchemaCatalog(catalog_dir)).decode(
            "qms_quote_envelope", old, topic=TOPIC
        )
        assert decoded["before"]["broker_id"] is None
        assert decoded["after"]["broker_id"] is None
        assert decoded["after"]["status"] == "ACCEPTED"

    def test_dropped_enum_symbol_reads_as_the_enum_default(
        self, catalog_dir: Path, tmp_path: Path
    ) -> None:
        # v1 had a DEFERRED outcome, v2 dropped it: old DEFERRED data reads as UNKNOWN.
        with_deferred = latest_raw("abandonment_decision")
        field(with_deferred["fields"], "outcome")["type"]["symbols"].append("DEFERRED")
        old_dir = tmp_path / "old" / "abandonment_decision"
        old_dir.mkdir(parents=True)
        (old_dir / "v1.avsc").write_text(json.dumps(with_deferred), encoding="utf-8")
        old = EmbeddedSerde(SchemaCatalog(old_dir.parent)).encode(
            "abandonment_decision", examples.abandonment_decision(outcome="DEFERRED"), topic=TOPIC
        )

        new_dir = catalog_dir / "abandonment_decision"
        (new_dir / "v1.avsc").write_text(json.dumps(with_deferred), encoding="utf-8")
        (new_dir / "v2.avsc").write_text(
            json.dumps(latest_raw("abandonment_decision")), encoding="utf-8"
        )
        upgraded = EmbeddedSerde(SchemaCatalog(catalog_dir))
        assert upgraded.decode("abandonment_decision", old, topic=TOPIC)["outcome"] == "UNKNOWN"

    def test_unresolvable_versions_raise_decode_error(
        self, embedded: EmbeddedSerde, catalog_dir: Path, add_version: AddVersion
    ) -> None:
        old = embedded.encode("dead_letter", examples.dead_letter(), topic=TOPIC)
        raw = latest_raw("dead_letter")
        raw["fields"].append({"name": "owner", "type": "string"})  # no default
        add_version("dead_letter", raw)
        with pytest.raises(DecodeError, match="not BACKWARD compatible"):
            EmbeddedSerde(SchemaCatalog(catalog_dir)).decode("dead_letter", old, topic=TOPIC)


_FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _decode_or_serde_error(serde: EmbeddedSerde, name: str, data: bytes) -> None:
    try:
        result = serde.decode(name, data, topic=TOPIC)
    except SerdeError:
        return
    assert isinstance(result, dict)


@_FUZZ
@given(
    sample=st.sampled_from(ENCODED),
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
    _decode_or_serde_error(EmbeddedSerde(default_catalog()), name, bytes(corrupted))


@_FUZZ
@given(name=st.sampled_from(sorted({n for n, _ in ENCODED})), body=st.binary(max_size=300))
def test_random_bodies_behind_a_valid_header(name: str, body: bytes) -> None:
    serde = EmbeddedSerde(default_catalog())
    header = SINGLE_OBJECT_MARKER + serde.catalog.latest(name).fingerprint_bytes
    _decode_or_serde_error(serde, name, header + body)
