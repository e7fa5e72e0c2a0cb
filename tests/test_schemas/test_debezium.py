"""Change events written by a real Debezium connector resolve against our envelopes.

The writer schemas here mirror what Debezium's PostgreSQL connector registers,
through Confluent's AvroConverter, for our ``quotes`` and ``customers`` tables
with its *default* settings (``time.precision.mode=adaptive``,
``decimal.handling.mode=precise``, topic prefixes ``qms``/``crm``):

* the row (``Value``): ``timestamptz`` as ``io.debezium.time.ZonedTimestamp``
  strings, ``numeric(12,2)`` as Connect ``Decimal`` bytes, ``date`` as
  ``io.debezium.time.Date`` (a plain int of days, no Avro logical type), each
  with its ``connect.*`` properties;
* its PostgreSQL ``Source`` block (``snapshot`` an optional string enum, string
  branch first, default ``"false"``, plus the ``ts_us``/``ts_ns`` of 2.6+);
* its envelope extras (``ts_us``/``ts_ns``, ``connect.*`` on the records).

Literal column defaults, which Debezium may copy into the Avro fields, are left
out: a writer's defaults play no part in schema resolution.

Also here: property tests of ``schemas.debezium``, the helpers the CDC
connector and the processor use for those representations.
"""

from __future__ import annotations

import io
import json
import re
import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form
from hypothesis import example, given
from hypothesis import strategies as st

from schemas import examples
from schemas.catalog import SchemaCatalog, fingerprint64
from schemas.compat import backward_incompatibilities
from schemas.debezium import (
    DATE,
    DECIMAL,
    ZONED_TIMESTAMP,
    as_date,
    parse_zoned_timestamp,
    zoned_timestamp,
)
from schemas.embedded import EmbeddedSerde
from schemas.errors import DecodeError, EncodeError, UnknownWriterSchema
from schemas.framing import SINGLE_OBJECT_MARKER
from schemas.registry import RegistrySerde

from .evolve import field, fields, latest_raw

pytestmark = pytest.mark.unit

ENVELOPES = ("qms_quote_envelope", "crm_customer_envelope")
EPOCH_DAY = date(1970, 1, 1)

#: Debezium 2.x PostgreSQL source block, as the AvroConverter registers it.
DEBEZIUM_SOURCE: dict[str, Any] = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {
            "name": "snapshot",
            "type": [
                {
                    "type": "string",
                    "connect.version": 1,
                    "connect.parameters": {"allowed": "true,last,false,incremental"},
                    "connect.default": "false",
                    "connect.name": "io.debezium.data.Enum",
                },
                "null",
            ],
            "default": "false",
        },
        {"name": "db", "type": "string"},
        {"name": "sequence", "type": ["null", "string"], "default": None},
        {"name": "ts_us", "type": ["null", "long"], "default": None},
        {"name": "ts_ns", "type": ["null", "long"], "default": None},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", "type": ["null", "long"], "default": None},
        {"name": "lsn", "type": ["null", "long"], "default": None},
        {"name": "xmin", "type": ["null", "long"], "default": None},
    ],
    "connect.name": "io.debezium.connector.postgresql.Source",
}

#: timestamptz, time.precision.mode=adaptive (the default).
DEBEZIUM_ZONED_TIMESTAMP: dict[str, Any] = {
    "type": "string",
    "connect.version": 1,
    "connect.name": ZONED_TIMESTAMP,
}
#: date: days since the epoch, and no Avro logical type.
DEBEZIUM_DATE: dict[str, Any] = {"type": "int", "connect.version": 1, "connect.name": DATE}
#: numeric(12,2), decimal.handling.mode=precise (the default).
DEBEZIUM_DECIMAL_12_2: dict[str, Any] = {
    "type": "bytes",
    "scale": 2,
    "precision": 12,
    "connect.version": 1,
    "connect.parameters": {"scale": "2", "connect.decimal.precision": "12"},
    "connect.name": DECIMAL,
    "logicalType": "decimal",
}


def _optional(schema: Any) -> list[Any]:
    return ["null", schema]


#: The row schemas Debezium registers for our two tables (see qms.sql, crm.sql).
DEBEZIUM_VALUES: dict[str, dict[str, Any]] = {
    "qms_quote_envelope": {
        "type": "record",
        "name": "Value",
        "namespace": "qms.public.quotes",
        "fields": [
            {"name": "quote_id", "type": "long"},
            {"name": "quote_ref", "type": "string"},
            {"name": "customer_id", "type": "long"},
            {"name": "product_code", "type": "string"},
            {"name": "channel", "type": "string"},
            {"name": "premium", "type": DEBEZIUM_DECIMAL_12_2},
            {"name": "currency", "type": "string"},
            {"name": "status", "type": "string"},
            {"name": "valid_until", "type": DEBEZIUM_DATE},
            {"name": "created_at", "type": DEBEZIUM_ZONED_TIMESTAMP},
            {"name": "updated_at", "type": DEBEZIUM_ZONED_TIMESTAMP},
        ],
        "connect.name": "qms.public.quotes.Value",
    },
    "crm_customer_envelope": {
        "type": "record",
        "name": "Value",
        "namespace": "crm.public.customers",
        "fields": [
            {"name": "customer_id", "type": "long"},
            {"name": "first_name", "type": "string"},
            {"name": "last_name", "type": "string"},
            {"name": "email", "type": _optional("string"), "default": None},
            {"name": "phone", "type": _optional("string"), "default": None},
            {"name": "marketing_consent", "type": "boolean"},
            {
                "name": "consent_updated_at",
                "type": _optional(DEBEZIUM_ZONED_TIMESTAMP),
                "default": None,
            },
            {"name": "timezone", "type": "string"},
            {"name": "segment", "type": _optional("string"), "default": None},
            {"name": "created_at", "type": DEBEZIUM_ZONED_TIMESTAMP},
            {"name": "updated_at", "type": DEBEZIUM_ZONED_TIMESTAMP},
        ],
        "connect.name": "crm.public.customers.Value",
    },
}


def _copy(raw: Any) -> Any:
    return json.loads(json.dumps(raw))


def with_debezium_value(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """``raw`` (an envelope) with its row schema replaced by Debezium's."""
    before = field(raw["fields"], "before")
    at = next(i for i, branch in enumerate(before["type"]) if isinstance(branch, dict))
    before["type"][at] = _copy(DEBEZIUM_VALUES[name])
    return raw


def debezium_envelope(name: str) -> dict[str, Any]:
    """What Debezium registers for the topic of envelope ``name``: every part its own."""
    raw = with_debezium_value(latest_raw(name), name)
    raw["connect.version"] = 2
    raw["connect.name"] = f"{raw['namespace']}.{raw['name']}"
    envelope_fields: list[dict[str, Any]] = raw["fields"]
    field(envelope_fields, "source")["type"] = _copy(DEBEZIUM_SOURCE)
    at = envelope_fields.index(field(envelope_fields, "ts_ms")) + 1
    envelope_fields[at:at] = [
        {"name": "ts_us", "type": ["null", "long"], "default": None},
        {"name": "ts_ns", "type": ["null", "long"], "default": None},
    ]
    block = next(b for b in field(envelope_fields, "transaction")["type"] if isinstance(b, dict))
    block["connect.version"] = 1
    block["connect.name"] = "event.block"
    return raw


def debezium_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """``row`` with its dates as Debezium writes (and fastavro then reads) them: day numbers."""
    if row is None:
        return None
    return {k: (v - EPOCH_DAY).days if isinstance(v, date) else v for k, v in row.items()}


def read_from_debezium(record: dict[str, Any]) -> dict[str, Any]:
    """What ``record``, written by Debezium, decodes to with our reader schema."""
    return {
        **record,
        "before": debezium_row(record["before"]),
        "after": debezium_row(record["after"]),
    }


def as_debezium_writes_it(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as Debezium writes it: day-number dates and the fields we do not keep."""
    source = record["source"]
    return {
        **read_from_debezium(record),
        "source": {**source, "ts_us": source["ts_ms"] * 1000, "ts_ns": source["ts_ms"] * 10**6},
        "ts_us": record["ts_ms"] * 1000,
        "ts_ns": record["ts_ms"] * 10**6,
    }


def our_source(name: str) -> dict[str, Any]:
    source: dict[str, Any] = field(latest_raw(name)["fields"], "source")["type"]
    return source


def our_value(name: str) -> dict[str, Any]:
    """Our row schema, standalone: with the namespace it inherits from the envelope."""
    raw = latest_raw(name)
    before = field(raw["fields"], "before")["type"]
    value: dict[str, Any] = next(b for b in before if isinstance(b, dict))
    return {"namespace": raw["namespace"], **value}


def fastavro_round_trip(writer_raw: dict[str, Any], record: Any, reader: Any) -> Any:
    out = io.BytesIO()
    writer = parse_schema(_copy(writer_raw))
    schemaless_writer(out, writer, record)
    out.seek(0)
    decoded = schemaless_reader(out, writer, reader)
    assert out.read() == b"", "bytes left over"
    return decoded


ENVELOPE_VARIANTS = [(name, build) for name in ENVELOPES for build in examples.VARIANTS[name]]
ENVELOPE_VARIANT_IDS = [f"{name}-{build.__name__}" for name, build in ENVELOPE_VARIANTS]


# --- schemas ------------------------------------------------------------------


@pytest.mark.parametrize("name", ENVELOPES)
def test_debezium_source_block_is_backward_compatible(name: str) -> None:
    assert backward_incompatibilities(our_source(name), DEBEZIUM_SOURCE) == []


@pytest.mark.parametrize("name", ENVELOPES)
def test_debezium_value_is_backward_compatible(name: str) -> None:
    assert backward_incompatibilities(our_value(name), DEBEZIUM_VALUES[name]) == []


@pytest.mark.parametrize("name", ENVELOPES)
def test_debezium_envelope_is_backward_compatible(name: str) -> None:
    assert backward_incompatibilities(latest_raw(name), debezium_envelope(name)) == []


@pytest.mark.parametrize("name", ENVELOPES)
def test_our_value_is_laid_out_byte_for_byte_like_debeziums(name: str) -> None:
    # Same Parsing Canonical Form: the same fields, in the same order, of the
    # same Avro types, so the bytes of a row mean the same under either schema.
    ours = to_parsing_canonical_form(parse_schema(our_value(name)))
    theirs = to_parsing_canonical_form(parse_schema(_copy(DEBEZIUM_VALUES[name])))
    assert ours == theirs


@pytest.mark.parametrize("name", ENVELOPES)
def test_timestamps_and_decimals_carry_debeziums_connect_properties(name: str) -> None:
    ours = {f["name"]: f for f in fields(latest_raw(name), "before")}
    for theirs in DEBEZIUM_VALUES[name]["fields"]:
        their_type = theirs["type"]
        if ZONED_TIMESTAMP in json.dumps(their_type) or theirs["name"] == "premium":
            # The same type, down to the connect.* properties; ours adds docs only.
            assert ours[theirs["name"]]["type"] == their_type, theirs["name"]
            assert ours[theirs["name"]].get("default", "none") == theirs.get("default", "none")


def test_the_zoned_timestamp_columns_are_the_timestamptz_ones() -> None:
    zoned = {
        name: sorted(f["name"] for f in fields(latest_raw(name), "before") if "_at" in f["name"])
        for name in ENVELOPES
    }
    assert zoned == {
        "qms_quote_envelope": ["created_at", "updated_at"],
        "crm_customer_envelope": ["consent_updated_at", "created_at", "updated_at"],
    }
    for name in ENVELOPES:
        for f in fields(latest_raw(name), "before"):
            if f["name"].endswith("_at"):
                assert ZONED_TIMESTAMP in json.dumps(f["type"]), f["name"]
                assert "timestamp-" not in json.dumps(f["type"]), f["name"]


@pytest.mark.parametrize(
    "name", ["abandonment_trigger", "abandonment_decision", "esp_delivery_receipt", "dead_letter"]
)
def test_our_own_records_keep_timestamp_millis(name: str) -> None:
    text = json.dumps(latest_raw(name))
    assert '"logicalType": "timestamp-millis"' in text
    assert "connect." not in text


def test_a_plain_string_snapshot_could_not_read_debezium_data() -> None:
    # Why the field is a union: Debezium's schema allows null, a plain string cannot take it.
    reader = our_source("qms_quote_envelope")
    field(reader["fields"], "snapshot")["type"] = "string"
    assert backward_incompatibilities(reader, DEBEZIUM_SOURCE) == [
        "snapshot: values written as null cannot be read as string"
    ]


def test_the_old_micros_timestamps_could_not_read_debezium_data() -> None:
    # Why the columns are strings: timestamp-micros longs cannot read Debezium's default.
    reader = latest_raw("qms_quote_envelope")
    field(fields(reader, "before"), "created_at")["type"] = {
        "type": "long",
        "logicalType": "timestamp-micros",
    }
    assert backward_incompatibilities(reader, debezium_envelope("qms_quote_envelope")) == [
        "before.created_at: values written as string cannot be read as long",
        "after.created_at: values written as string cannot be read as long",
    ]


# --- data through fastavro ----------------------------------------------------


@pytest.mark.parametrize("snapshot", ["true", "last", "false", "incremental", None])
@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("qms_quote_envelope", examples.quote_snapshot_read),
        ("crm_customer_envelope", examples.customer_snapshot_last),
    ],
)
def test_debezium_snapshot_values_resolve_to_our_envelope(
    catalog: SchemaCatalog, name: str, build: Any, snapshot: str | None
) -> None:
    record = build()
    record["source"]["snapshot"] = snapshot
    decoded = fastavro_round_trip(
        debezium_envelope(name), as_debezium_writes_it(record), catalog.latest(name).parsed
    )
    assert decoded == read_from_debezium(record)


@pytest.mark.parametrize(("name", "build"), ENVELOPE_VARIANTS, ids=ENVELOPE_VARIANT_IDS)
def test_every_debezium_change_resolves_to_our_envelope(
    catalog: SchemaCatalog, name: str, build: Any
) -> None:
    # Inserts, updates, deletes, snapshot reads, truncates; nulls in optional columns.
    record = build()
    decoded = fastavro_round_trip(
        debezium_envelope(name), as_debezium_writes_it(record), catalog.latest(name).parsed
    )
    assert decoded == read_from_debezium(record)
    for row in (decoded["before"], decoded["after"]):
        if row is not None:
            assert isinstance(row["created_at"], str)
            assert parse_zoned_timestamp(row["created_at"]).tzinfo is UTC


def test_debezium_zoned_timestamps_in_every_shape_read_back_as_written(
    catalog: SchemaCatalog,
) -> None:
    # Debezium may drop trailing zeros of the fraction; the string is kept as is.
    record = examples.quote_created()
    record["after"]["created_at"] = "2026-11-22T13:05:01Z"
    record["after"]["updated_at"] = "2026-11-22T13:05:01.1Z"
    decoded = fastavro_round_trip(
        debezium_envelope("qms_quote_envelope"),
        as_debezium_writes_it(record),
        catalog.latest("qms_quote_envelope").parsed,
    )
    after = decoded["after"]
    assert after["created_at"] == "2026-11-22T13:05:01Z"
    assert parse_zoned_timestamp(after["updated_at"]) == datetime(
        2026, 11, 22, 13, 5, 1, 100000, tzinfo=UTC
    )


def test_debezium_decimals_come_back_as_decimals(catalog: SchemaCatalog) -> None:
    record = examples.quote_created()
    record["after"]["premium"] = Decimal("9999999999.99")  # the most numeric(12,2) holds
    decoded = fastavro_round_trip(
        debezium_envelope("qms_quote_envelope"),
        as_debezium_writes_it(record),
        catalog.latest("qms_quote_envelope").parsed,
    )
    assert decoded["after"]["premium"] == Decimal("9999999999.99")
    assert isinstance(decoded["after"]["premium"], Decimal)


@given(day=st.dates())
def test_debezium_dates_decode_to_day_numbers_that_as_date_turns_into_dates(day: date) -> None:
    # fastavro converts by the *writer's* logical type. Debezium's io.debezium.time.Date
    # has none, so our reader's logicalType "date" is not applied: a plain int comes back.
    reader = parse_schema({"type": "int", "logicalType": "date"})
    days = (day - EPOCH_DAY).days
    decoded = fastavro_round_trip(DEBEZIUM_DATE, days, reader)
    assert type(decoded) is int
    assert decoded == days
    assert as_date(decoded) == day
    # Written with our own schema, the same field decodes to a date.
    ours = fastavro_round_trip({"type": "int", "logicalType": "date"}, day, reader)
    assert type(ours) is date
    assert as_date(ours) == day


# --- data through our serdes --------------------------------------------------


def single_object(writer_raw: dict[str, Any], record: dict[str, Any]) -> bytes:
    """``record`` in Avro single-object encoding, fingerprinted as the spec says."""
    parsed = parse_schema(_copy(writer_raw))
    out = io.BytesIO()
    out.write(SINGLE_OBJECT_MARKER)
    out.write(fingerprint64(to_parsing_canonical_form(parsed)).to_bytes(8, "little"))
    schemaless_writer(out, parsed, record)
    return out.getvalue()


@pytest.mark.parametrize(("name", "build"), ENVELOPE_VARIANTS, ids=ENVELOPE_VARIANT_IDS)
def test_rows_written_with_debeziums_types_decode_with_the_embedded_serde(
    embedded: EmbeddedSerde, name: str, build: Any
) -> None:
    # Our envelope around Debezium's Value has our fingerprint (the connect.*
    # properties and logical types are not part of the canonical form), so the
    # embedded serde reads such bytes with our v1: dates come back as dates.
    record = build()
    data = single_object(with_debezium_value(latest_raw(name), name), read_from_debezium(record))
    decoded = embedded.decode(name, data, topic="debezium")
    assert decoded == record


def test_debeziums_own_envelope_needs_a_registry(embedded: EmbeddedSerde) -> None:
    # Debezium's envelope has fields ours lacks (ts_us, ts_ns), hence another
    # fingerprint; Debezium writes the Confluent wire format anyway.
    record = as_debezium_writes_it(examples.quote_created())
    data = single_object(debezium_envelope("qms_quote_envelope"), record)
    with pytest.raises(UnknownWriterSchema):
        embedded.decode("qms_quote_envelope", data, topic="debezium")


@pytest.mark.parametrize(
    ("name", "topic", "build"),
    [
        ("qms_quote_envelope", "qms.public.quotes", examples.quote_accepted),
        ("crm_customer_envelope", "crm.public.customers", examples.customer_without_contact),
        ("crm_customer_envelope", "crm.public.customers", examples.customer_created),
    ],
)
def test_debezium_through_a_registry_decodes_with_the_registry_serde(
    registry_url: str, catalog: SchemaCatalog, name: str, topic: str, build: Any
) -> None:
    # What a consumer of a real Debezium + Schema Registry deployment sees.
    client = SchemaRegistryClient.new_client({"url": registry_url})
    debezium = AvroSerializer(client, json.dumps(debezium_envelope(name)))
    record = build()
    data = debezium(as_debezium_writes_it(record), SerializationContext(topic, MessageField.VALUE))
    decoded = RegistrySerde(client, catalog).decode(name, data, topic=topic)
    assert decoded == read_from_debezium(record)
    if name == "qms_quote_envelope":
        assert type(decoded["after"]["valid_until"]) is int
        assert as_date(decoded["after"]["valid_until"]) == record["after"]["valid_until"]


# --- schemas.debezium -----------------------------------------------------------

ZONED_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")

#: Fixed offsets as Python allows them (under a day), in whole seconds.
fixed_offsets = st.integers(min_value=-86_399, max_value=86_399).map(
    lambda s: timezone(timedelta(seconds=s))
)
#: Aware datetimes whose UTC instant is a valid datetime too.
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(st.just(UTC), fixed_offsets, st.timezones()),
)


@given(dt=aware_datetimes)
@example(dt=datetime(2024, 7, 1, 11, 15, 3, 654321, tzinfo=timezone(timedelta(hours=2))))
@example(dt=datetime(1, 1, 2, 0, 0, 0, 0, tzinfo=UTC))
@example(dt=datetime(2026, 11, 22, 13, 5, 1, 0, tzinfo=UTC))
def test_zoned_timestamp_round_trips_in_utc_to_the_microsecond(dt: datetime) -> None:
    text = zoned_timestamp(dt)
    assert ZONED_SHAPE.fullmatch(text), text
    parsed = parse_zoned_timestamp(text)
    assert parsed.tzinfo is UTC
    assert parsed == dt.astimezone(UTC)
    assert parsed.microsecond == dt.microsecond
    assert zoned_timestamp(parsed) == text


def test_zoned_timestamp_writes_what_debezium_writes() -> None:
    cest = timezone(timedelta(hours=2))
    assert zoned_timestamp(datetime(2026, 11, 22, 13, 5, 1, 123456, tzinfo=UTC)) == (
        "2026-11-22T13:05:01.123456Z"
    )
    assert zoned_timestamp(datetime(2024, 7, 1, 1, 0, 0, tzinfo=cest)) == (
        "2024-06-30T23:00:00.000000Z"
    )
    assert zoned_timestamp(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    nanos=st.integers(min_value=0, max_value=999_999_999),
    digits=st.integers(min_value=0, max_value=9),
    suffix=st.sampled_from(["Z", "+00:00", "-00:00", "+00:00:00"]),
)
def test_parse_accepts_every_fraction_width_and_the_utc_offsets(
    moment: datetime, nanos: int, digits: int, suffix: str
) -> None:
    fraction = f"{nanos:09d}"[:digits]
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}{'.' if fraction else ''}{fraction}{suffix}"
    parsed = parse_zoned_timestamp(text)
    assert parsed.tzinfo is UTC
    # Python keeps microseconds: the digits past the sixth are truncated.
    assert parsed == moment.replace(microsecond=int(fraction.ljust(9, "0")) // 1000, tzinfo=UTC)


@given(
    dt=st.datetimes(
        timezones=fixed_offsets, min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_parse_normalises_any_offset_to_utc(dt: datetime) -> None:
    # isoformat writes "+05:30" ("+05:30:15" with seconds), and no fraction on whole seconds.
    parsed = parse_zoned_timestamp(dt.isoformat())
    assert parsed.tzinfo is UTC
    assert parsed == dt
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-22",
        "2026-11-22T13:05:01",  # no offset: which instant?
        "2026-11-22T13:05Z",  # no seconds
        "2026-11-22 13:05:01Z",
        "2026-11-22t13:05:01z",
        "2026-11-22T13:05:01.Z",
        "2026-11-22T13:05:01.1234567890Z",  # ten digits
        "2026-11-22T13:05:01+0100",
        "2026-11-22T13:05:01+01",
        "2026-11-22T13:05:01 Z",
        " 2026-11-22T13:05:01Z",
        "2026-11-22T13:05:01Z\n",
        "+12026-11-22T13:05:01Z",
        "-0001-11-22T13:05:01Z",
        "\uff12\uff10\uff12\uff16-11-22T13:05:01Z",  # fullwidth digits
        "1763816701123456",
        "infinity",
        "-infinity",
    ],
)
def test_parse_refuses_what_is_not_a_zoned_timestamp(text: str) -> None:
    with pytest.raises(DecodeError, match=r"ZonedTimestamp|ISO-8601"):
        parse_zoned_timestamp(text)


def test_parse_errors_do_not_repeat_the_value() -> None:
    # Error messages reach logs and dead-letter topics; values may be personal data.
    with pytest.raises(DecodeError) as info:
        parse_zoned_timestamp(examples.EXAMPLE_EMAIL)
    assert examples.EXAMPLE_EMAIL not in str(info.value)
    assert f"got {len(examples.EXAMPLE_EMAIL)} character(s)" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-22T13:05:01Z",
        "2026-02-29T13:05:01Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T23:59:60Z",  # Python has no leap seconds; Java does not write them
        "2026-11-22T13:05:01+24:00",
        "2026-11-22T13:05:01+01:60",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_parse_refuses_instants_out_of_range(text: str) -> None:
    with pytest.raises(DecodeError, match="no valid instant"):
        parse_zoned_timestamp(text)


@given(text=st.text(alphabet=string.digits + "-:.TZ+ z", max_size=40) | st.text(max_size=40))
def test_parse_raises_nothing_but_decode_errors(text: str) -> None:
    try:
        parsed = parse_zoned_timestamp(text)
    except DecodeError:
        return
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", [b"2026-11-22T13:05:01Z", 1_763_816_701, None])
def test_parse_refuses_non_strings(value: Any) -> None:
    with pytest.raises(DecodeError, match="ISO-8601 string"):
        parse_zoned_timestamp(value)


def test_zoned_timestamp_refuses_naive_and_non_datetimes() -> None:
    with pytest.raises(EncodeError, match="naive"):
        zoned_timestamp(datetime(2026, 11, 22, 13, 5, 1))
    with pytest.raises(EncodeError, match="not date"):
        zoned_timestamp(date(2026, 11, 22))  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="years 1-9999"):
        zoned_timestamp(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))


def test_as_date_takes_dates_and_day_numbers_only() -> None:
    assert as_date(0) == EPOCH_DAY
    assert as_date(-1) == date(1969, 12, 31)
    assert as_date(20_000) == date(2024, 10, 4)
    assert as_date(date(2024, 7, 31)) == date(2024, 7, 31)
    for wrong in (True, datetime(2024, 7, 31, tzinfo=UTC), "2024-07-31", 1.5):
        with pytest.raises(DecodeError, match="date or a day number"):
            as_date(wrong)  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="years 1-9999"):
        as_date(10**7)
