"""``connectors.cdc.events``: decoded changes to Debezium-layout Kafka records.

The relation is the real ``public.quotes`` table (columns and type OIDs of
``devstack/stack/sql/qms.sql``, REPLICA IDENTITY FULL) and the captures are
the ones :func:`connectors.cdc.stream.capture_for` builds from the catalogue,
so what is checked here is what the connector produces. Covered:

* :class:`RowDecoder`: rows from tuples, unchanged TOAST values filled from
  the old row (refused without one), wrong column counts, values that cannot
  be converted (the error names table and column, never the value, because
  error messages end up in logs), primary key columns missing from the relation;
* :func:`source_block` against the ``source`` record of the envelope schemas,
  and :meth:`Position.sequence` (Debezium's JSON array of decimal strings);
* the event rules: insert, update, update of the primary key (delete,
  tombstone, create), update without an old row, delete plus tombstone, and
  truncate (keyless on a plain topic, under the reserved key on a compacted
  one, where a real row under that key is held back).

Every event is encoded with the real embedded serde and decoded again, so a
record the schema does not accept fails here rather than in the stream.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import schemas
from connectors.cdc.events import (
    RESERVED_KEY_VALUE,
    Capture,
    Event,
    Position,
    Row,
    RowDecoder,
    RowError,
    delete_events,
    insert_events,
    source_block,
    truncate_events,
    update_events,
    without_reserved_keys,
)
from connectors.cdc.pgoutput import UNCHANGED_TOAST, Column, Relation, Value
from connectors.cdc.sources import CDC_SOURCES
from connectors.cdc.stream import capture_for
from schemas.embedded import EmbeddedSerde

pytestmark = pytest.mark.unit

SOURCES = {s.server_name: s for s in CDC_SOURCES}
#: What the stream builds once it knows the primary key: a delete-policy topic ...
QUOTES: Capture = capture_for(SOURCES["qms"], "qms")(("quote_id",))
#: ... and a compacted one.
CUSTOMERS: Capture = capture_for(SOURCES["crm"], "crm")(("customer_id",))

#: numeric(12,2) and char(3) as pg_attribute.atttypmod holds them (VARHDRSZ = 4 added).
NUMERIC_12_2 = (12 << 16 | 2) + 4
CHAR_3 = 3 + 4

#: ``public.quotes`` as pgoutput's Relation message describes it: REPLICA IDENTITY FULL
#: marks every column as part of the identity.
QUOTES_RELATION = Relation(
    oid=16_385,
    namespace="public",
    name="quotes",
    replica_identity="f",
    columns=(
        Column("quote_id", 20, -1, True),
        Column("quote_ref", 25, -1, True),
        Column("customer_id", 20, -1, True),
        Column("product_code", 25, -1, True),
        Column("channel", 25, -1, True),
        Column("premium", 1700, NUMERIC_12_2, True),
        Column("currency", 1042, CHAR_3, True),
        Column("status", 25, -1, True),
        Column("valid_until", 1082, -1, True),
        Column("created_at", 1184, -1, True),
        Column("updated_at", 1184, -1, True),
    ),
)

QUOTED: tuple[Value, ...] = (
    "42", "Q-2026-000123", "7", "MOTOR-COMP", "WEB", "1234.50", "GBP", "QUOTED",
    "2026-12-31", "2026-11-22 13:05:01.123456+00", "2026-11-22 13:05:01.123456+00",
)  # fmt: skip
QUOTED_ROW: Row = {
    "quote_id": 42,
    "quote_ref": "Q-2026-000123",
    "customer_id": 7,
    "product_code": "MOTOR-COMP",
    "channel": "WEB",
    "premium": Decimal("1234.50"),
    "currency": "GBP",
    "status": "QUOTED",
    "valid_until": date(2026, 12, 31),
    "created_at": "2026-11-22T13:05:01.123456Z",
    "updated_at": "2026-11-22T13:05:01.123456Z",
}
ACCEPTED_ROW: Row = {
    **QUOTED_ROW,
    "status": "ACCEPTED",
    "updated_at": "2026-11-23T08:00:00.000000Z",
}

POSITION = Position(
    lsn=0x16B3748, last_commit_lsn=0x16B3700, tx_id=771, commit_ms=1_795_352_701_123
)
NOW_MS = 1_795_352_702_000
VERSION = "0.1.0"

SERDE = EmbeddedSerde()


@pytest.fixture
def decoder() -> RowDecoder:
    return decoder_of_quotes()


def decoder_of_quotes() -> RowDecoder:
    return RowDecoder(QUOTES_RELATION, QUOTES)


def source() -> Row:
    return source_block(QUOTES, POSITION, version=VERSION)


def envelope(op: str, before: Row | None, after: Row | None) -> Row:
    return {
        "before": before,
        "after": after,
        "source": source(),
        "op": op,
        "ts_ms": NOW_MS,
        "transaction": None,
    }


def round_trip(capture: Capture, event: Event) -> tuple[Row | None, Row | None]:
    """The event's key and value, encoded with the capture's schemas and decoded again."""
    key = value = None
    if event.key is not None:
        raw = SERDE.encode(capture.key_schema, event.key, topic=event.topic, is_key=True)
        key = SERDE.decode(capture.key_schema, raw, topic=event.topic, is_key=True)
    if event.value is not None:
        raw = SERDE.encode(capture.value_schema, event.value, topic=event.topic)
        value = SERDE.decode(capture.value_schema, raw, topic=event.topic)
    return key, value


def assert_encodes(capture: Capture, events: list[Event]) -> None:
    for event in events:
        assert round_trip(capture, event) == (event.key, event.value)


# -- the captures ---------------------------------------------------------------------


def test_the_captures_are_the_catalogue_s() -> None:
    assert QUOTES.topic == "qms.public.quotes"
    assert (QUOTES.key_schema, QUOTES.value_schema) == ("qms_quote_key", "qms_quote_envelope")
    assert QUOTES.qualified_name == QUOTES_RELATION.qualified_name == "public.quotes"
    assert not QUOTES.compacted
    assert CUSTOMERS.compacted


# -- RowDecoder -----------------------------------------------------------------------


def test_a_tuple_becomes_a_row_of_event_values(decoder: RowDecoder) -> None:
    assert decoder.row(QUOTED) == QUOTED_ROW


def test_null_values_stay_none(decoder: RowDecoder) -> None:
    row = decoder.row((*QUOTED[:3], None, *QUOTED[4:]))
    assert row["product_code"] is None


def test_the_key_is_the_primary_key_columns(decoder: RowDecoder) -> None:
    assert decoder.key(QUOTED_ROW) == {"quote_id": 42}


def test_unchanged_toast_values_come_from_the_old_row(decoder: RowDecoder) -> None:
    old = decoder.row(QUOTED)
    new = decoder.row(
        (*QUOTED[:3], UNCHANGED_TOAST, *QUOTED[4:7], "ACCEPTED", *QUOTED[8:]), fill_from=old
    )
    assert new == {**QUOTED_ROW, "status": "ACCEPTED"}


def test_unchanged_toast_without_an_old_row_is_refused(decoder: RowDecoder) -> None:
    values = (*QUOTED[:3], UNCHANGED_TOAST, *QUOTED[4:])
    with pytest.raises(RowError, match=r"public\.quotes.*product_code.*REPLICA IDENTITY FULL"):
        decoder.row(values)


def test_unchanged_toast_missing_from_the_old_row_is_refused(decoder: RowDecoder) -> None:
    old = {k: v for k, v in QUOTED_ROW.items() if k != "product_code"}
    with pytest.raises(RowError, match="product_code"):
        decoder.row((*QUOTED[:3], UNCHANGED_TOAST, *QUOTED[4:]), fill_from=old)


@pytest.mark.parametrize("count", [0, 10, 12])
def test_a_tuple_of_the_wrong_length_is_refused(decoder: RowDecoder, count: int) -> None:
    values = (QUOTED * 2)[:count]
    with pytest.raises(RowError, match=rf"public\.quotes: {count} values for 11 columns"):
        decoder.row(values)


#: (column, a text its converter refuses). The texts are distinctive so that their absence
#: from an error message means something.
BAD_VALUES = [
    pytest.param("premium", "NaN", id="numeric-nan"),
    pytest.param("quote_id", "4Z-SECRET", id="bigint-garbage"),
    pytest.param("valid_until", "infinity", id="date-infinity"),
    pytest.param("created_at", "-infinity", id="timestamptz-infinity"),
]


def _with(column: str, text: str) -> tuple[Value, ...]:
    names = [c.name for c in QUOTES_RELATION.columns]
    values = list(QUOTED)
    values[names.index(column)] = text
    return tuple(values)


@pytest.mark.parametrize(("column", "text"), BAD_VALUES)
def test_a_bad_value_is_refused_naming_table_and_column(
    decoder: RowDecoder, column: str, text: str
) -> None:
    with pytest.raises(RowError) as caught:
        decoder.row(_with(column, text))
    message = str(caught.value)
    assert "public.quotes" in message
    assert f"column {column}" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(("column", "text"), BAD_VALUES)
def test_a_bad_value_is_not_repeated_in_the_error(
    decoder: RowDecoder, column: str, text: str
) -> None:
    with pytest.raises(RowError) as caught:
        decoder.row(_with(column, text))
    assert text not in str(caught.value)


def test_a_primary_key_column_missing_from_the_relation_is_refused() -> None:
    relation = Relation(
        QUOTES_RELATION.oid,
        "public",
        "quotes",
        "d",
        tuple(c for c in QUOTES_RELATION.columns if c.name != "quote_id"),
    )
    with pytest.raises(RowError, match=r"public\.quotes: primary key column quote_id"):
        RowDecoder(relation, QUOTES)


def test_every_missing_primary_key_column_is_named() -> None:
    capture = capture_for(SOURCES["qms"], "qms")(("quote_id", "tenant", "region"))
    with pytest.raises(RowError, match="tenant, region"):
        RowDecoder(QUOTES_RELATION, capture)


# -- source and position --------------------------------------------------------------


def _source_fields(schema_name: str) -> list[str]:
    path = Path(schemas.__file__).parent / "avro" / schema_name / "v1.avsc"
    envelope = json.loads(path.read_text(encoding="utf-8"))
    (field,) = [f for f in envelope["fields"] if f["name"] == "source"]
    return [f["name"] for f in field["type"]["fields"]]


@pytest.mark.parametrize("schema_name", ["qms_quote_envelope", "crm_customer_envelope"])
def test_source_block_has_every_field_of_the_source_record(schema_name: str) -> None:
    assert set(source()) == set(_source_fields(schema_name))


def test_source_block_values() -> None:
    assert source() == {
        "version": VERSION,
        "connector": "postgresql",
        "name": "qms",
        "ts_ms": POSITION.commit_ms,
        "snapshot": "false",
        "db": "qms",
        "sequence": '["23803648","23803720"]',
        "schema": "public",
        "table": "quotes",
        "txId": 771,
        "lsn": 0x16B3748,
        "xmin": None,
    }


def test_source_block_for_a_snapshot_read() -> None:
    assert source_block(QUOTES, POSITION, version=VERSION, snapshot="last")["snapshot"] == "last"


def test_sequence_is_a_json_array_of_two_decimal_strings() -> None:
    assert POSITION.sequence() == '["23803648","23803720"]'  # 0x16B3700, 0x16B3748


def test_sequence_keeps_lsns_beyond_double_precision_exact() -> None:
    big = (0xFFFF_FFFF << 32) | 1  # > 2**53: a JSON number would lose its last digits
    sequence = Position(lsn=big, last_commit_lsn=big - 1, tx_id=1, commit_ms=0).sequence()
    assert json.loads(sequence) == [str(big - 1), str(big)]
    assert " " not in sequence


# -- the event rules ------------------------------------------------------------------


def test_insert_is_one_create(decoder: RowDecoder) -> None:
    events = insert_events(decoder, QUOTED_ROW, source(), NOW_MS)
    assert events == [
        Event("qms.public.quotes", {"quote_id": 42}, envelope("c", None, QUOTED_ROW), "c")
    ]
    assert_encodes(QUOTES, events)


def test_update_is_one_update_with_before_and_after(decoder: RowDecoder) -> None:
    events = update_events(decoder, QUOTED_ROW, ACCEPTED_ROW, source(), NOW_MS)
    assert events == [
        Event(QUOTES.topic, {"quote_id": 42}, envelope("u", QUOTED_ROW, ACCEPTED_ROW), "u")
    ]
    assert_encodes(QUOTES, events)


def test_update_of_the_primary_key_ends_the_old_key_and_creates_the_new(
    decoder: RowDecoder,
) -> None:
    moved = {**ACCEPTED_ROW, "quote_id": 43}
    events = update_events(decoder, QUOTED_ROW, moved, source(), NOW_MS)
    assert events == [
        Event(QUOTES.topic, {"quote_id": 42}, envelope("d", QUOTED_ROW, None), "d"),
        Event(QUOTES.topic, {"quote_id": 42}, None, None),
        Event(QUOTES.topic, {"quote_id": 43}, envelope("c", None, moved), "c"),
    ]
    assert_encodes(QUOTES, events)


def test_update_without_an_old_row_has_no_before(decoder: RowDecoder) -> None:
    events = update_events(decoder, None, ACCEPTED_ROW, source(), NOW_MS)
    assert events == [Event(QUOTES.topic, {"quote_id": 42}, envelope("u", None, ACCEPTED_ROW), "u")]
    assert_encodes(QUOTES, events)


def test_delete_is_a_delete_then_a_tombstone(decoder: RowDecoder) -> None:
    events = delete_events(decoder, QUOTED_ROW, source(), NOW_MS)
    assert events == [
        Event(QUOTES.topic, {"quote_id": 42}, envelope("d", QUOTED_ROW, None), "d"),
        Event(QUOTES.topic, {"quote_id": 42}, None, None),
    ]
    assert_encodes(QUOTES, events)


def test_truncate_is_one_keyless_event_on_a_plain_topic(decoder: RowDecoder) -> None:
    events = truncate_events(decoder, source(), NOW_MS)
    assert events == [Event(QUOTES.topic, None, envelope("t", None, None), "t")]
    assert_encodes(QUOTES, events)


def _customers_decoder(key_type_oid: int = 20) -> RowDecoder:
    relation = Relation(16_390, "public", "customers", "f",
                        (Column("customer_id", key_type_oid, -1, True),))  # fmt: skip
    return RowDecoder(relation, CUSTOMERS)


def test_truncate_on_a_compacted_topic_goes_under_the_reserved_key() -> None:
    """The compacted topic refuses keyless records: the key no real customer has."""
    decoder = _customers_decoder()
    src = source_block(CUSTOMERS, POSITION, version=VERSION)
    events = truncate_events(decoder, src, NOW_MS)
    value = {"before": None, "after": None, "source": src, "op": "t", "ts_ms": NOW_MS,
             "transaction": None}  # fmt: skip
    assert events == [Event(CUSTOMERS.topic, {"customer_id": RESERVED_KEY_VALUE}, value, "t")]
    assert RESERVED_KEY_VALUE == -1
    assert_encodes(CUSTOMERS, events)


def test_truncate_on_a_compacted_topic_without_an_integer_key_is_dropped() -> None:
    decoder = _customers_decoder(key_type_oid=25)  # text: no reserved value
    assert truncate_events(decoder, source_block(CUSTOMERS, POSITION, version=VERSION), 0) == []


def test_a_real_row_under_the_reserved_key_is_held_back() -> None:
    """Published, it would replace the truncate in the compacted topic (and be taken for one)."""
    decoder = _customers_decoder()
    src = source_block(CUSTOMERS, POSITION, version=VERSION)
    reserved = delete_events(decoder, {"customer_id": -1}, src, NOW_MS)
    normal = delete_events(decoder, {"customer_id": 7}, src, NOW_MS)
    assert without_reserved_keys(decoder, reserved + normal) == normal
    assert without_reserved_keys(decoder_of_quotes(), reserved) == reserved  # plain topic


def test_an_update_with_unchanged_toast_encodes_end_to_end(decoder: RowDecoder) -> None:
    """The stream's path for an 'O' update: the old row decodes first and fills the new."""
    before = decoder.row(QUOTED)
    new: tuple[Value, ...] = (
        *QUOTED[:3], UNCHANGED_TOAST, *QUOTED[4:7], "ACCEPTED", *QUOTED[8:10],
        "2026-11-23 08:00:00+00",
    )  # fmt: skip
    after = decoder.row(new, fill_from=before)
    assert after == ACCEPTED_ROW
    events = update_events(decoder, before, after, source(), NOW_MS)
    key, value = round_trip(QUOTES, events[0])
    assert key == {"quote_id": 42}
    assert value is not None
    decoded: dict[str, Any] = value
    assert decoded["before"]["status"] == "QUOTED"
    assert decoded["after"]["status"] == "ACCEPTED"
    assert decoded["after"]["premium"] == Decimal("1234.50")
    assert decoded["source"]["lsn"] == POSITION.lsn


def test_sequence_before_any_commit_has_a_null_last_commit_lsn() -> None:
    """As Debezium writes the first change a new slot streams."""
    sequence = Position(lsn=42, last_commit_lsn=None, tx_id=1, commit_ms=0).sequence()
    assert json.loads(sequence) == [None, "42"]
