"""PostgreSQL's streaming-replication framing and the ``pgoutput`` logical decoding messages.

Pure parsing, no I/O, so the protocol is unit-tested byte for byte and can be
measured on its own. Two layers:

* the replication sub-protocol carried in COPY BOTH: ``w`` XLogData (a WAL
  range and one pgoutput message), ``k`` primary keepalive, and the ``r``
  standby status update we send back to confirm what was flushed;
* the pgoutput protocol, version 1 (PostgreSQL 10+): Begin, Commit, Origin,
  Relation, Type, Insert, Update, Delete, Truncate and logical decoding
  Message. Column values arrive as text (the server's output functions), which
  :mod:`connectors.cdc.values` converts.

Reference: PostgreSQL's "Logical Streaming Replication Protocol" and "Logical
Replication Message Formats" chapters. Timestamps on the wire are
microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

#: 2000-01-01 00:00:00 UTC in Unix microseconds: PostgreSQL's epoch.
PG_EPOCH_US = 946_684_800_000_000

_I8 = struct.Struct("!b")
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I64 = struct.Struct("!q")
_XLOG = struct.Struct("!qqq")  # start LSN, end LSN, send time
_KEEPALIVE = struct.Struct("!qqb")  # end LSN, send time, reply requested
_STATUS = struct.Struct("!cqqqqb")
_BEGIN = struct.Struct("!qqi")  # final LSN, commit time, xid
_COMMIT = struct.Struct("!bqqq")  # flags, commit LSN, end LSN, commit time


class ProtocolError(ValueError):
    """Bytes that are not what the replication or pgoutput protocol says."""


# -- replication framing ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XLogData:
    """``w``: WAL from ``start`` (the message's own LSN) with one pgoutput message."""

    start: int
    end: int  # the server's WAL end when it sent this
    sent_us: int  # Unix microseconds
    payload: memoryview


@dataclass(frozen=True, slots=True)
class Keepalive:
    """``k``: the server has sent everything up to ``end``; may ask for a status reply."""

    end: int
    sent_us: int  # Unix microseconds
    reply_requested: bool


def parse_copy_message(data: memoryview | bytes) -> XLogData | Keepalive:
    """One CopyData message of a START_REPLICATION stream."""
    view = memoryview(data)
    if not view:
        raise ProtocolError("empty replication message")
    kind = view[0]
    if kind == ord("w"):
        if len(view) < 1 + _XLOG.size:
            raise ProtocolError(f"XLogData of {len(view)} bytes is truncated")
        start, end, sent = _XLOG.unpack_from(view, 1)
        return XLogData(start, end, unix_us(sent), view[1 + _XLOG.size :])
    if kind == ord("k"):
        if len(view) != 1 + _KEEPALIVE.size:
            raise ProtocolError(f"keepalive of {len(view)} bytes, not {1 + _KEEPALIVE.size}")
        end, sent, reply = _KEEPALIVE.unpack_from(view, 1)
        return Keepalive(end, unix_us(sent), bool(reply))
    raise ProtocolError(f"unknown replication message {chr(kind)!r}")


def standby_status(lsn: int, now_us: int, *, reply_requested: bool = False) -> bytes:
    """``r``: written, flushed and applied up to ``lsn``.

    For a logical slot the flush position is what moves ``confirmed_flush_lsn``:
    the server may then recycle WAL before it, and a restart resumes after it.
    """
    return _STATUS.pack(b"r", lsn, lsn, lsn, now_us - PG_EPOCH_US, 1 if reply_requested else 0)


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text form of an LSN, e.g. ``0/16B3748``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """The inverse of :func:`format_lsn`."""
    high, sep, low = text.partition("/")
    try:
        if not sep:
            raise ValueError(text)
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ProtocolError(f"not an LSN: {text!r}") from None


def unix_us(pg_us: int) -> int:
    """A PostgreSQL timestamp on the wire, as Unix microseconds."""
    return pg_us + PG_EPOCH_US


# -- pgoutput messages -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int  # the LSN of the transaction's commit record
    commit_us: int  # Unix microseconds
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    commit_lsn: int
    end_lsn: int  # the LSN after the commit record: what to confirm once all is in Kafka
    commit_us: int


@dataclass(frozen=True, slots=True)
class Origin:
    lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    in_key: bool  # part of the replica identity (every column under REPLICA IDENTITY FULL)


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[Column, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


class _Unchanged:
    """A TOASTed value the update did not touch: the server did not send it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


#: Marks a column value pgoutput left out because it is TOASTed and unchanged.
UNCHANGED_TOAST = _Unchanged()

#: One column's value as sent: text, NULL, or not sent (unchanged TOAST).
Value = str | None | _Unchanged


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Update:
    relation_oid: int
    #: The old row: whole (``O``, REPLICA IDENTITY FULL), key columns only (``K``),
    #: or None when the replica identity did not change and is not FULL.
    old: tuple[Value, ...] | None
    old_kind: Literal["O", "K"] | None
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old: tuple[Value, ...]
    old_kind: Literal["O", "K"]


@dataclass(frozen=True, slots=True)
class Truncate:
    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    """``pg_logical_emit_message`` output (with the ``messages`` option)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
    | LogicalMessage
)  # fmt: skip


class _Reader:
    """A cursor over one message's bytes; every read checks the length."""

    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: struct.Struct) -> int:
        if self.pos + fmt.size > len(self.data):
            raise ProtocolError(f"message truncated at byte {self.pos}")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return int(value)

    def i8(self) -> int:
        return self._take(_I8)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def u32(self) -> int:
        return self._take(_U32)

    def i64(self) -> int:
        return self._take(_I64)

    def byte(self) -> str:
        if self.pos >= len(self.data):
            raise ProtocolError(f"message truncated at byte {self.pos}")
        value = chr(self.data[self.pos])
        self.pos += 1
        return value

    def string(self) -> str:
        """A NUL-terminated string."""
        end = bytes(self.data[self.pos :]).find(b"\0")
        if end < 0:
            raise ProtocolError(f"unterminated string at byte {self.pos}")
        try:
            value = bytes(self.data[self.pos : self.pos + end]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"a name that is not UTF-8 at byte {self.pos}") from exc
        self.pos += end + 1
        return value

    def raw(self, length: int) -> bytes:
        if length < 0 or self.pos + length > len(self.data):
            raise ProtocolError(f"value of {length} bytes overruns the message at {self.pos}")
        value = bytes(self.data[self.pos : self.pos + length])
        self.pos += length
        return value

    def tuple_data(self) -> tuple[Value, ...]:
        """TupleData: the hot path (one call per row), so one tight loop over bytes."""
        data, pos = self.data, self.pos
        try:
            (count,) = _I16.unpack_from(data, pos)
            pos += 2
            values: list[Value] = []
            append = values.append
            for _ in range(count):
                kind = data[pos]
                pos += 1
                if kind == 116:  # 't': text
                    (length,) = _I32.unpack_from(data, pos)
                    pos += 4
                    end = pos + length
                    if length < 0 or end > len(data):
                        raise ProtocolError(f"value of {length} bytes overruns the message")
                    append(bytes(data[pos:end]).decode("utf-8"))
                    pos = end
                elif kind == 110:  # 'n': NULL
                    append(None)
                elif kind == 117:  # 'u': unchanged TOAST
                    append(UNCHANGED_TOAST)
                elif kind == 98:  # 'b'
                    raise ProtocolError(
                        "binary tuple data: the stream was started with binary 'true'"
                    )
                else:
                    raise ProtocolError(f"unknown tuple value kind {chr(kind)!r}")
        except (struct.error, IndexError) as exc:
            raise ProtocolError(f"tuple data truncated at byte {pos}") from exc
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"a text value is not UTF-8 at byte {pos}") from exc
        self.pos = pos
        return tuple(values)

    def done(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.pos} unexpected trailing bytes")


def parse_message(payload: memoryview | bytes) -> Message:
    """One pgoutput (protocol version 1) message."""
    reader = _Reader(memoryview(payload))
    kind = reader.byte()
    message: Message
    if kind == "B":
        final_lsn, commit, xid = reader.i64(), reader.i64(), reader.u32()
        message = Begin(final_lsn, unix_us(commit), xid)
    elif kind == "C":
        reader.i8()  # flags, unused
        commit_lsn, end_lsn, commit = reader.i64(), reader.i64(), reader.i64()
        message = Commit(commit_lsn, end_lsn, unix_us(commit))
    elif kind == "I":
        oid = reader.u32()
        if reader.byte() != "N":
            raise ProtocolError("insert without a new tuple")
        message = Insert(oid, reader.tuple_data())
    elif kind == "U":
        message = _update(reader)
    elif kind == "D":
        oid = reader.u32()
        old_kind = reader.byte()
        if old_kind not in ("O", "K"):
            raise ProtocolError(f"delete with old tuple kind {old_kind!r}")
        message = Delete(oid, reader.tuple_data(), old_kind)  # type: ignore[arg-type]
    elif kind == "R":
        message = _relation(reader)
    elif kind == "T":
        count = reader.i32()
        options = reader.i8()
        oids = tuple(reader.u32() for _ in range(count))
        message = Truncate(oids, bool(options & 1), bool(options & 2))
    elif kind == "Y":
        message = TypeInfo(reader.u32(), reader.string(), reader.string())
    elif kind == "O":
        message = Origin(reader.i64(), reader.string())
    elif kind == "M":
        flags = reader.i8()
        lsn = reader.i64()
        prefix = reader.string()
        message = LogicalMessage(bool(flags & 1), lsn, prefix, reader.raw(reader.i32()))
    else:
        raise ProtocolError(f"unknown pgoutput message {kind!r}")
    reader.done()
    return message


def _update(reader: _Reader) -> Update:
    oid = reader.u32()
    marker = reader.byte()
    old: tuple[Value, ...] | None = None
    old_kind: Literal["O", "K"] | None = None
    if marker in ("O", "K"):
        old_kind = "O" if marker == "O" else "K"
        old = reader.tuple_data()
        marker = reader.byte()
    if marker != "N":
        raise ProtocolError(f"update without a new tuple (found {marker!r})")
    return Update(oid, old, old_kind, reader.tuple_data())


def _relation(reader: _Reader) -> Relation:
    oid = reader.u32()
    namespace = reader.string()
    name = reader.string()
    identity = reader.byte()
    count = reader.i16()
    columns = []
    for _ in range(count):
        flags = reader.i8()
        columns.append(Column(reader.string(), reader.u32(), reader.i32(), bool(flags & 1)))
    return Relation(oid, namespace, name, identity, tuple(columns))
