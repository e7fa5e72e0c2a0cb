"""Column values from pgoutput's text form to what the Avro change-event schemas hold.

pgoutput sends each value through the type's output function, in the
walsender session's settings; the replication connection pins ``DateStyle=ISO``
and ``TimeZone=UTC`` (:data:`SESSION_OPTIONS`) so the text is always parseable
the same way. The Python values chosen are those Debezium's PostgreSQL
connector writes with its defaults (``decimal.handling.mode=precise``,
``time.precision.mode=adaptive``), so our events and Debezium's decode alike:

======================  ===========================================================
PostgreSQL              value
======================  ===========================================================
smallint, int, bigint   int
boolean                 bool
real, double            float
numeric                 Decimal (Avro decimal); NaN and infinities are refused
text, varchar, char     str (char keeps its padding, as PostgreSQL outputs it)
date                    datetime.date (Avro date: days since 1970-01-01)
timestamptz             ZonedTimestamp string, UTC, 6 digits, ``Z``
timestamp               int microseconds since 1970 (Debezium's MicroTimestamp)
time                    int microseconds since midnight (MicroTime)
uuid, json, jsonb       str (Debezium's Uuid and Json are strings)
bytea                   bytes
enum, any other type    str, the type's text output (Debezium's Enum is a string)
one-dimensional arrays  list of the element type's values
======================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.debezium import zoned_timestamp
from schemas.errors import EncodeError

#: Options for the replication connection: every value's text in one known form.
SESSION_OPTIONS = (
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3"
)

Converter = Callable[[str], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnrepresentableValue(ValueError):
    """A value the change-event schema cannot hold (NaN, infinity, ...)."""


def _bool(text: str) -> bool:
    # pgoutput sends the output function's "t"/"f"; the snapshot's ``column::text`` cast
    # spells a boolean "true"/"false" (the one type whose text cast is not its output).
    return text in ("t", "true")


def _numeric(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise UnrepresentableValue(f"numeric {text!r} is not a number") from exc
    if not value.is_finite():
        raise UnrepresentableValue(f"numeric {text} has no Avro decimal form")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:  # 'infinity', BC dates
        raise UnrepresentableValue(f"date {text!r} has no Avro date form") from exc


def _timestamptz(text: str) -> str:
    # The session runs with TimeZone=UTC, so the server prints "YYYY-MM-DD HH:MM:SS[.f]+00":
    # rewritten as a string, it is exactly what zoned_timestamp makes of it, without
    # two datetime round trips per value (the general path below stays for anything else).
    if len(text) >= 22 and text.endswith("+00") and text[10] == " " and text[4] == "-":
        clock = text[11:-3]
        if len(clock) == 8:
            return f"{text[:10]}T{clock}.000000Z"
        if len(clock) > 9 and clock[8] == "." and len(clock) <= 15:
            return f"{text[:10]}T{clock[:9]}{clock[9:].ljust(6, '0')}Z"
    try:
        return zoned_timestamp(datetime.fromisoformat(text))
    except (ValueError, EncodeError) as exc:  # 'infinity', BC, or out of years 1-9999 in UTC
        raise UnrepresentableValue(f"timestamptz {text!r} has no ZonedTimestamp form") from exc


def _timestamp(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as exc:
        raise UnrepresentableValue(f"timestamp {text!r} has no MicroTimestamp form") from exc
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time(text: str) -> int:
    parsed = time.fromisoformat(text if text != "24:00:00" else "00:00:00")
    micros = ((parsed.hour * 60 + parsed.minute) * 60 + parsed.second) * 1_000_000
    return micros + parsed.microsecond + (86_400_000_000 if text == "24:00:00" else 0)


def _bytea(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise UnrepresentableValue("bytea not in hex output format (bytea_output = 'hex')")
    return bytes.fromhex(text[2:])


def _text(text: str) -> str:
    return text


#: Element converters by type OID (pg_type.oid of the built-in types).
SCALARS: dict[int, Converter] = {
    16: _bool,
    17: _bytea,
    20: int, 21: int, 23: int, 26: int,  # int8, int2, int4, oid
    700: float, 701: float,
    1700: _numeric,
    25: _text, 1042: _text, 1043: _text, 19: _text,  # text, bpchar, varchar, name
    1082: _date,
    1083: _time,
    1114: _timestamp,
    1184: _timestamptz,
    2950: _text,  # uuid
    114: _text, 3802: _text,  # json, jsonb
}  # fmt: skip

#: Array type OID -> element type OID.
ARRAYS: dict[int, int] = {
    1000: 16, 1005: 21, 1007: 23, 1016: 20, 1021: 700, 1022: 701, 1231: 1700,
    1009: 25, 1014: 1042, 1015: 1043, 1182: 1082, 1115: 1114, 1185: 1184, 2951: 2950,
    199: 114, 3807: 3802,
}  # fmt: skip


def converter(type_oid: int) -> Converter:
    """How to turn one column's text into its event value (text for unknown types)."""
    scalar = SCALARS.get(type_oid)
    if scalar is not None:
        return scalar
    element = ARRAYS.get(type_oid)
    if element is not None:
        convert = SCALARS[element]
        return lambda text: [None if item is None else convert(item) for item in parse_array(text)]
    return _text  # enums, domains over text, citext, ...


def parse_array(text: str) -> list[str | None]:
    """A one-dimensional array literal (``{a,"b c",NULL}``) into its elements' texts."""
    if text.startswith("[") or not (text.startswith("{") and text.endswith("}")):
        raise UnrepresentableValue(f"array literal {text[:40]!r} is not a one-dimensional array")
    body = text[1:-1]
    items: list[str | None] = []
    if not body:
        return items
    i, n = 0, len(body)
    while i <= n:
        if i < n and body[i] == "{":
            raise UnrepresentableValue("multi-dimensional arrays are not supported")
        if i < n and body[i] == '"':
            i += 1
            chars = []
            while i < n and body[i] != '"':
                if body[i] == "\\":
                    i += 1
                    if i >= n:
                        raise UnrepresentableValue("array literal ends inside an escape")
                chars.append(body[i])
                i += 1
            if i >= n:
                raise UnrepresentableValue("array literal has an unclosed quote")
            items.append("".join(chars))
            i += 1  # closing quote
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            raw = body[i:end]
            items.append(None if raw == "NULL" else raw)
            i = end
        i += 1  # the comma
    return items
