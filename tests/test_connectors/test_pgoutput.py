"""``connectors.cdc.pgoutput``, byte for byte against PostgreSQL's documented formats.

Every message here is built by hand with :mod:`struct` from the "Logical
Streaming Replication Protocol" and "Logical Replication Message Formats"
chapters of PostgreSQL's manual (network byte order, NUL-terminated strings,
timestamps in microseconds since 2000-01-01 UTC), never with the module's own
packing, so a misread field shows up as a wrong dataclass field. Covered:

* the replication framing: ``w`` XLogData, ``k`` keepalive, the ``r`` standby
  status update we send (its exact layout), LSN text and the PostgreSQL epoch;
* every pgoutput v1 message kind (B, C, O, R, Y, I, U with an ``O``, a ``K``
  or no old tuple, D, T, M) and the tuple value kinds (text, NULL, unchanged
  TOAST; binary refused);
* malformed input: truncation, trailing bytes and unknown kinds raise
  :class:`ProtocolError`, and property tests check that nothing but
  ``ProtocolError`` escapes the parsers, because the stream loop treats any
  other exception as a crash rather than as a corrupt stream.
"""

from __future__ import annotations

import contextlib
import struct
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.cdc.pgoutput import (
    PG_EPOCH_US,
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    Keepalive,
    LogicalMessage,
    Message,
    Origin,
    ProtocolError,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    Value,
    XLogData,
    format_lsn,
    parse_copy_message,
    parse_lsn,
    parse_message,
    standby_status,
    unix_us,
)

pytestmark = pytest.mark.unit

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: A commit time, on the wire (since 2000) and as the parser reports it (since 1970).
COMMITTED = datetime(2024, 7, 1, 9, 15, 3, 123456, tzinfo=UTC)
COMMITTED_PG_US = (COMMITTED - _PG_EPOCH) // _US
COMMITTED_UNIX_US = (COMMITTED - _UNIX_EPOCH) // _US

QUOTES_OID = 16_385

OldKind = Literal["O", "K"]
_OLD_KINDS: tuple[OldKind, ...] = ("O", "K")


# -- builders: PostgreSQL's documented layouts ---------------------------------------------


def cstring(text: str) -> bytes:
    """String: NUL-terminated."""
    return text.encode() + b"\0"


def tuple_data(values: tuple[Value, ...]) -> bytes:
    """TupleData: Int16 column count, then per column 'n', 'u' or 't' + Int32 length + bytes."""
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED_TOAST:
            out += b"u"
        else:
            assert isinstance(value, str)
            encoded = value.encode()
            out += b"t" + struct.pack("!i", len(encoded)) + encoded
    return out


def begin_msg(final_lsn: int, commit_pg_us: int, xid: int) -> bytes:
    """Begin: Int64 final LSN, Int64 commit timestamp, Int32 xid."""
    return b"B" + struct.pack("!qqI", final_lsn, commit_pg_us, xid)


def commit_msg(commit_lsn: int, end_lsn: int, commit_pg_us: int, flags: int = 0) -> bytes:
    """Commit: Int8 flags (unused), Int64 commit LSN, Int64 end LSN, Int64 commit timestamp."""
    return b"C" + struct.pack("!bqqq", flags, commit_lsn, end_lsn, commit_pg_us)


def origin_msg(lsn: int, name: str) -> bytes:
    """Origin: Int64 LSN of the commit on the origin server, String name."""
    return b"O" + struct.pack("!q", lsn) + cstring(name)


def relation_msg(
    oid: int, namespace: str, name: str, identity: str, columns: list[tuple[int, str, int, int]]
) -> bytes:
    """Relation: Int32 OID, String namespace, String name, Int8 replica identity, Int16 count,
    then per column Int8 flags (1 = part of the key), String name, Int32 type OID, Int32 typmod."""
    out = b"R" + struct.pack("!I", oid) + cstring(namespace) + cstring(name)
    out += identity.encode() + struct.pack("!h", len(columns))
    for flags, column, type_oid, typmod in columns:
        out += struct.pack("!b", flags) + cstring(column) + struct.pack("!Ii", type_oid, typmod)
    return out


def type_msg(oid: int, namespace: str, name: str) -> bytes:
    """Type: Int32 OID, String namespace, String name."""
    return b"Y" + struct.pack("!I", oid) + cstring(namespace) + cstring(name)


def insert_msg(oid: int, new: tuple[Value, ...]) -> bytes:
    """Insert: Int32 relation OID, Byte1 'N', TupleData."""
    return b"I" + struct.pack("!I", oid) + b"N" + tuple_data(new)


def update_msg(
    oid: int, new: tuple[Value, ...], old: tuple[Value, ...] | None = None, old_kind: OldKind = "O"
) -> bytes:
    """Update: Int32 relation OID, optionally Byte1 'K'/'O' + TupleData, Byte1 'N', TupleData."""
    out = b"U" + struct.pack("!I", oid)
    if old is not None:
        out += old_kind.encode() + tuple_data(old)
    return out + b"N" + tuple_data(new)


def delete_msg(oid: int, old: tuple[Value, ...], old_kind: OldKind = "O") -> bytes:
    """Delete: Int32 relation OID, Byte1 'K' or 'O', TupleData."""
    return b"D" + struct.pack("!I", oid) + old_kind.encode() + tuple_data(old)


def truncate_msg(oids: list[int], options: int) -> bytes:
    """Truncate: Int32 relation count, Int8 options (1 CASCADE, 2 RESTART IDENTITY), Int32 OIDs."""
    return b"T" + struct.pack("!ib", len(oids), options) + struct.pack(f"!{len(oids)}I", *oids)


def logical_msg(flags: int, lsn: int, prefix: str, content: bytes) -> bytes:
    """Message: Int8 flags (1 = transactional), Int64 LSN, String prefix, Int32 length, bytes."""
    return (
        b"M" + struct.pack("!bq", flags, lsn) + cstring(prefix)
        + struct.pack("!i", len(content)) + content
    )  # fmt: skip


def xlogdata(start: int, end: int, sent_pg_us: int, payload: bytes) -> bytes:
    """XLogData: Byte1 'w', Int64 start, Int64 current WAL end, Int64 send time, payload."""
    return b"w" + struct.pack("!qqq", start, end, sent_pg_us) + payload


def keepalive(end: int, sent_pg_us: int, reply: int) -> bytes:
    """Primary keepalive: Byte1 'k', Int64 WAL end, Int64 send time, Byte1 reply requested."""
    return b"k" + struct.pack("!qqB", end, sent_pg_us, reply)


QUOTE_ROW: tuple[Value, ...] = (
    "42", "Q-2026-000123", "7", "MOTOR-COMP", "WEB", "1234.50", "GBP", "QUOTED",
    "2026-12-31", "2026-11-22 13:05:01.123456+00", "2026-11-22 13:05:01.123456+00",
)  # fmt: skip


# -- LSNs and the epoch ----------------------------------------------------------------


def test_pg_epoch_is_2000_01_01_in_unix_microseconds() -> None:
    assert PG_EPOCH_US == (_PG_EPOCH - _UNIX_EPOCH) // _US
    assert unix_us(0) == PG_EPOCH_US
    assert unix_us(COMMITTED_PG_US) == COMMITTED_UNIX_US


@pytest.mark.parametrize(
    ("lsn", "text"),
    [
        (0, "0/0"),
        (0x16B3748, "0/16B3748"),
        ((0x16 << 32) | 0xB374D848, "16/B374D848"),
        ((1 << 32) | 0xA, "1/A"),
        ((1 << 64) - 1, "FFFFFFFF/FFFFFFFF"),
    ],
)
def test_lsn_text_is_postgresql_s_hex_pair(lsn: int, text: str) -> None:
    assert format_lsn(lsn) == text
    assert parse_lsn(text) == lsn


def test_parse_lsn_accepts_lower_case_hex() -> None:
    assert parse_lsn("16/b374d848") == (0x16 << 32) | 0xB374D848


def test_parse_lsn_refuses_text_without_a_slash() -> None:
    with pytest.raises(ProtocolError, match="not an LSN"):
        parse_lsn("16B3748")


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_lsn_text_round_trips(lsn: int) -> None:
    assert parse_lsn(format_lsn(lsn)) == lsn


# -- replication framing --------------------------------------------------------------


def test_xlogdata_carries_its_wal_range_and_the_payload_untouched() -> None:
    payload = insert_msg(QUOTES_OID, QUOTE_ROW)
    frame = parse_copy_message(xlogdata(0x16B3748, 0x16B3800, COMMITTED_PG_US, payload))
    assert isinstance(frame, XLogData)
    assert (frame.start, frame.end) == (0x16B3748, 0x16B3800)
    assert frame.sent_us == COMMITTED_UNIX_US  # the server's clock, as Unix time like commits
    assert bytes(frame.payload) == payload
    assert parse_message(frame.payload) == Insert(QUOTES_OID, QUOTE_ROW)


def test_xlogdata_accepts_a_memoryview() -> None:
    frame = parse_copy_message(memoryview(xlogdata(1, 2, 3, b"")))
    assert frame == XLogData(1, 2, unix_us(3), memoryview(b""))


@pytest.mark.parametrize(("reply", "expected"), [(0, False), (1, True)])
def test_keepalive_carries_the_wal_end_and_the_reply_request(reply: int, expected: bool) -> None:
    frame = parse_copy_message(keepalive(0x16B3800, COMMITTED_PG_US, reply))
    assert frame == Keepalive(0x16B3800, COMMITTED_UNIX_US, expected)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"w" + b"\0" * 23, id="xlogdata-header-short"),
        pytest.param(b"k" + b"\0" * 16, id="keepalive-short"),
        pytest.param(b"w", id="xlogdata-kind-only"),
        pytest.param(b"r" + b"\0" * 33, id="standby-status-is-ours-not-the-server-s"),
        pytest.param(b"d", id="unknown-kind"),
    ],
)
def test_malformed_replication_messages_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_copy_message(data)


def test_keepalive_with_trailing_bytes_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_copy_message(keepalive(1, 2, 0) + b"\0")


def test_standby_status_layout() -> None:
    now = datetime(2024, 7, 1, tzinfo=UTC)
    now_unix_us = (now - _UNIX_EPOCH) // _US
    data = standby_status((0x16 << 32) | 0xB374D848, now_unix_us, reply_requested=True)
    # Byte1 'r'; Int64 written, flushed, applied; Int64 clock since 2000-01-01; Byte1 reply.
    assert len(data) == 1 + 8 * 4 + 1
    kind, written, flushed, applied, clock, reply = struct.unpack("!cqqqqb", data)
    assert kind == b"r"
    assert written == flushed == applied == (0x16 << 32) | 0xB374D848
    # 2000-01-01 to 2024-07-01: 24 * 365 days + 6 leap days (2000 .. 2020) + 182 days.
    assert clock == (24 * 365 + 6 + 182) * 86_400 * 1_000_000
    assert reply == 1


def test_standby_status_asks_for_no_reply_by_default() -> None:
    data = standby_status(0, PG_EPOCH_US)
    assert struct.unpack("!cqqqqb", data)[4:] == (0, 0)


# -- pgoutput messages ----------------------------------------------------------------


def test_begin() -> None:
    message = parse_message(begin_msg(0x16B3800, COMMITTED_PG_US, 0xFFFF_FFF0))
    assert message == Begin(final_lsn=0x16B3800, commit_us=COMMITTED_UNIX_US, xid=0xFFFF_FFF0)


def test_commit_ignores_its_flags() -> None:
    message = parse_message(commit_msg(0x16B3800, 0x16B3830, COMMITTED_PG_US, flags=0))
    assert message == Commit(commit_lsn=0x16B3800, end_lsn=0x16B3830, commit_us=COMMITTED_UNIX_US)


def test_origin() -> None:
    assert parse_message(origin_msg(0x16B3700, "pg_17001")) == Origin(0x16B3700, "pg_17001")


def test_relation_with_its_columns_and_key_flags() -> None:
    data = relation_msg(
        QUOTES_OID,
        "public",
        "quotes",
        "d",
        [(1, "quote_id", 20, -1), (0, "premium", 1700, (12 << 16 | 2) + 4), (0, "note", 25, -1)],
    )
    message = parse_message(data)
    assert message == Relation(
        QUOTES_OID,
        "public",
        "quotes",
        "d",
        (
            Column("quote_id", 20, -1, in_key=True),
            Column("premium", 1700, 786_438, in_key=False),
            Column("note", 25, -1, in_key=False),
        ),
    )
    assert isinstance(message, Relation)
    assert message.qualified_name == "public.quotes"


def test_relation_with_non_ascii_names() -> None:
    message = parse_message(relation_msg(1, "société", "devis_été", "f", [(1, "prénom", 25, -1)]))
    assert message == Relation(1, "société", "devis_été", "f", (Column("prénom", 25, -1, True),))


def test_type() -> None:
    assert parse_message(type_msg(16_400, "public", "quote_status")) == TypeInfo(
        16_400, "public", "quote_status"
    )


def test_insert_with_text_and_null_values() -> None:
    row: tuple[Value, ...] = ("42", None, "", "naïve ☃")
    assert parse_message(insert_msg(QUOTES_OID, row)) == Insert(QUOTES_OID, row)


def test_update_with_the_whole_old_row() -> None:
    old = QUOTE_ROW
    new = (*QUOTE_ROW[:7], "ACCEPTED", *QUOTE_ROW[8:])
    message = parse_message(update_msg(QUOTES_OID, new, old, "O"))
    assert message == Update(QUOTES_OID, old=old, old_kind="O", new=new)


def test_update_with_the_old_key_only() -> None:
    old_key: tuple[Value, ...] = ("42", None, None)
    new: tuple[Value, ...] = ("43", "Q-1", "7")
    message = parse_message(update_msg(QUOTES_OID, new, old_key, "K"))
    assert message == Update(QUOTES_OID, old=old_key, old_kind="K", new=new)


def test_update_without_an_old_tuple() -> None:
    new: tuple[Value, ...] = ("42", "Q-1", "7")
    assert parse_message(update_msg(QUOTES_OID, new)) == Update(QUOTES_OID, None, None, new)


def test_unchanged_toast_values_are_the_sentinel() -> None:
    new: tuple[Value, ...] = ("42", UNCHANGED_TOAST, None)
    message = parse_message(update_msg(QUOTES_OID, new))
    assert isinstance(message, Update)
    assert message.new[1] is UNCHANGED_TOAST
    assert message.new[2] is None
    assert repr(UNCHANGED_TOAST) == "UNCHANGED_TOAST"


@pytest.mark.parametrize("kind", ["O", "K"])
def test_delete(kind: OldKind) -> None:
    old: tuple[Value, ...] = ("42", "Q-1")
    assert parse_message(delete_msg(QUOTES_OID, old, kind)) == Delete(QUOTES_OID, old, kind)


@pytest.mark.parametrize(
    ("options", "cascade", "restart_identity"),
    [(0, False, False), (1, True, False), (2, False, True), (3, True, True)],
)
def test_truncate_options(options: int, cascade: bool, restart_identity: bool) -> None:
    message = parse_message(truncate_msg([QUOTES_OID, 16_390], options))
    assert message == Truncate((QUOTES_OID, 16_390), cascade, restart_identity)


@pytest.mark.parametrize(("flags", "transactional"), [(0, False), (1, True)])
def test_logical_message_keeps_binary_content(flags: int, transactional: bool) -> None:
    content = b"\x00\xff binary \x00"
    message = parse_message(logical_msg(flags, 0x16B3748, "quoteflow.heartbeat", content))
    assert message == LogicalMessage(transactional, 0x16B3748, "quoteflow.heartbeat", content)


def test_logical_message_with_empty_content() -> None:
    assert parse_message(logical_msg(1, 5, "", b"")) == LogicalMessage(True, 5, "", b"")


# -- malformed pgoutput ---------------------------------------------------------------

VALID_MESSAGES = [
    pytest.param(begin_msg(1, COMMITTED_PG_US, 7), id="begin"),
    pytest.param(commit_msg(1, 2, COMMITTED_PG_US), id="commit"),
    pytest.param(origin_msg(1, "origin"), id="origin"),
    pytest.param(relation_msg(1, "public", "q", "f", [(1, "quote_id", 20, -1)]), id="relation"),
    pytest.param(type_msg(1, "public", "mood"), id="type"),
    pytest.param(insert_msg(1, ("1", None, UNCHANGED_TOAST)), id="insert"),
    pytest.param(update_msg(1, ("1",), ("0",), "O"), id="update"),
    pytest.param(delete_msg(1, ("1",), "K"), id="delete"),
    pytest.param(truncate_msg([1, 2], 0), id="truncate"),
    pytest.param(logical_msg(1, 1, "p", b"content"), id="message"),
]


@pytest.mark.parametrize("data", VALID_MESSAGES)
def test_every_truncation_of_a_message_raises_protocol_error(data: bytes) -> None:
    parse_message(data)  # whole: fine
    for length in range(len(data)):
        with pytest.raises(ProtocolError):
            parse_message(data[:length])


@pytest.mark.parametrize("data", VALID_MESSAGES)
def test_trailing_bytes_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="trailing"):
        parse_message(data + b"\0")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "truncated", id="empty"),
        pytest.param(b"Z", "unknown pgoutput message", id="unknown-kind"),
        pytest.param(b"S" + struct.pack("!ib", 1, 1), "unknown pgoutput", id="stream-start"),
        pytest.param(
            b"I" + struct.pack("!I", 1) + b"b" + struct.pack("!h", 0),
            "insert without a new tuple",
            id="insert-without-N",
        ),
        pytest.param(
            b"U" + struct.pack("!I", 1) + b"X" + struct.pack("!h", 0),
            "update without a new tuple",
            id="update-with-unknown-marker",
        ),
        pytest.param(
            b"U" + struct.pack("!I", 1) + b"O" + tuple_data(("1",)) + b"O" + tuple_data(("2",)),
            "update without a new tuple",
            id="update-with-two-old-tuples",
        ),
        pytest.param(
            b"D" + struct.pack("!I", 1) + b"N" + tuple_data(("1",)),
            "delete with old tuple kind",
            id="delete-with-new-tuple",
        ),
        pytest.param(
            b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"b" + struct.pack("!i", 0),
            "binary tuple data",
            id="binary-value",
        ),
        pytest.param(
            b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"x",
            "unknown tuple value kind",
            id="unknown-value-kind",
        ),
        pytest.param(
            b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"t" + b"\xff" * 4,
            "overruns",
            id="negative-value-length",
        ),
        pytest.param(
            b"I"
            + struct.pack("!I", 1)
            + b"N"
            + struct.pack("!h", 1)
            + b"t"
            + struct.pack("!i", 9)
            + b"short",
            "overruns",
            id="value-longer-than-the-message",
        ),
        pytest.param(
            b"M" + struct.pack("!bq", 0, 1) + b"p\0" + struct.pack("!i", -1),
            "overruns",
            id="message-negative-length",
        ),
        pytest.param(b"Y" + struct.pack("!I", 1) + b"public", "unterminated", id="unterminated"),
    ],
)
def test_malformed_messages_raise_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_message(data)


def test_a_name_that_is_not_utf8_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_message(b"Y" + struct.pack("!I", 1) + b"\xff\0name\0")


def test_a_value_that_is_not_utf8_raises_protocol_error() -> None:
    data = b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1)
    with pytest.raises(ProtocolError):
        parse_message(data + b"t" + struct.pack("!i", 1) + b"\xff")
    with pytest.raises(ProtocolError):  # a UTF-8 sequence cut short
        parse_message(data + b"t" + struct.pack("!i", 1) + "é".encode()[:1])


# -- properties ------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
_U32 = st.integers(min_value=0, max_value=(1 << 32) - 1)
_I64 = st.integers(min_value=0, max_value=(1 << 63) - 1)
_VALUES = st.lists(st.one_of(st.none(), st.just(UNCHANGED_TOAST), _TEXT), max_size=6).map(tuple)


@st.composite
def wire_messages(draw: st.DrawFn) -> tuple[bytes, Message]:
    """A valid pgoutput message of any kind, and what it must parse to."""
    kind = draw(st.sampled_from("BCORYIUDTM"))
    oid = draw(_U32)
    if kind == "B":
        lsn, at, xid = draw(_I64), draw(_I64), draw(_U32)
        return begin_msg(lsn, at, xid), Begin(lsn, unix_us(at), xid)
    if kind == "C":
        lsn, end, at = draw(_I64), draw(_I64), draw(_I64)
        return commit_msg(lsn, end, at), Commit(lsn, end, unix_us(at))
    if kind == "O":
        lsn, name = draw(_I64), draw(_TEXT)
        return origin_msg(lsn, name), Origin(lsn, name)
    if kind == "R":
        namespace, name, identity = draw(_TEXT), draw(_TEXT), draw(st.sampled_from("dnfi"))
        columns = draw(
            st.lists(
                st.tuples(st.integers(0, 1), _TEXT, _U32, st.integers(-(1 << 31), (1 << 31) - 1)),
                max_size=5,
            )
        )
        expected = tuple(Column(c[1], c[2], c[3], bool(c[0])) for c in columns)
        return (
            relation_msg(oid, namespace, name, identity, columns),
            Relation(oid, namespace, name, identity, expected),
        )
    if kind == "Y":
        namespace, name = draw(_TEXT), draw(_TEXT)
        return type_msg(oid, namespace, name), TypeInfo(oid, namespace, name)
    if kind == "I":
        new = draw(_VALUES)
        return insert_msg(oid, new), Insert(oid, new)
    if kind == "U":
        new, old = draw(_VALUES), draw(st.none() | _VALUES)
        old_kind = draw(st.sampled_from(_OLD_KINDS))
        return (
            update_msg(oid, new, old, old_kind),
            Update(oid, old, None if old is None else old_kind, new),
        )
    if kind == "D":
        old, old_kind = draw(_VALUES), draw(st.sampled_from(_OLD_KINDS))
        return delete_msg(oid, old, old_kind), Delete(oid, old, old_kind)
    if kind == "T":
        oids, options = draw(st.lists(_U32, max_size=4)), draw(st.integers(0, 3))
        expected_truncate = Truncate(tuple(oids), bool(options & 1), bool(options & 2))
        return truncate_msg(oids, options), expected_truncate
    flags, lsn, prefix = draw(st.integers(0, 1)), draw(_I64), draw(_TEXT)
    content = draw(st.binary(max_size=16))
    expected_message = LogicalMessage(bool(flags), lsn, prefix, content)
    return logical_msg(flags, lsn, prefix, content), expected_message


@_FUZZ
@given(wire_messages())
def test_any_valid_message_parses_to_its_fields(sample: tuple[bytes, Message]) -> None:
    data, expected = sample
    assert parse_message(data) == expected


@_FUZZ
@given(wire_messages(), st.data())
def test_any_truncated_or_extended_message_raises_protocol_error(
    sample: tuple[bytes, Message], data: st.DataObject
) -> None:
    wire, _ = sample
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(ProtocolError):
        parse_message(wire[:cut])
    with pytest.raises(ProtocolError):
        parse_message(wire + data.draw(st.binary(min_size=1, max_size=8)))


def _corrupted(sample: tuple[bytes, Message], flips: list[tuple[int, int]]) -> bytes:
    corrupted = bytearray(sample[0])
    for index, mask in flips:
        if index < len(corrupted):
            corrupted[index] ^= mask
    return bytes(corrupted)


#: Anything a broken or hostile stream could send: a known kind byte and random bytes after
#: it, or a valid message with a few bytes flipped.
_GARBAGE = st.one_of(
    st.tuples(st.sampled_from(b"BCORYIUDTMZ"), st.binary(max_size=64)).map(
        lambda kb: bytes([kb[0]]) + kb[1]
    ),
    st.builds(
        _corrupted,
        wire_messages(),
        st.lists(st.tuples(st.integers(0, 80), st.integers(1, 255)), min_size=1, max_size=3),
    ),
)

#: A relation whose namespace is one byte of a two-byte UTF-8 sequence.
_NOT_UTF8 = b"R" + struct.pack("!I", 1) + b"\xc3\0quotes\0f" + struct.pack("!h", 0)


@_FUZZ
@given(_GARBAGE)
@example(_NOT_UTF8)
def test_garbage_raises_nothing_but_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_message(data)


@_FUZZ
@given(st.sampled_from(b"wkr"), st.binary(max_size=40))
def test_random_replication_messages_raise_nothing_but_protocol_error(
    kind: int, body: bytes
) -> None:
    try:
        frame = parse_copy_message(bytes([kind]) + body)
    except ProtocolError:
        return
    assert isinstance(frame, XLogData | Keepalive)
