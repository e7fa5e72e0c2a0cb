"""Reading one field of a decoded record: present, of its type, or a :class:`WireError`.

A decoded record always fits its schema; these checks are for the records that
did not come through the serde (hand-made ones, tests) and keep the error
message free of the record's values, which are personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from schemas.errors import DecodeError

#: A ``timestamp-millis`` as the wire records hold it: milliseconds since the epoch, UTC.
EpochMs = int

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MISSING: Any = object()


class WireError(DecodeError):
    """A record lacks a required field or holds a value of the wrong type: a poison message."""


def _get(record: Mapping[str, Any], name: str, schema: str, default: Any) -> Any:
    value = record.get(name, default)
    if value is _MISSING:
        raise WireError(f"{schema}: required field {name!r} is missing")
    return value


def _wrong(schema: str, name: str, expected: str, value: object) -> WireError:
    return WireError(f"{schema}: field {name!r} must be {expected}, not {type(value).__name__}")


def text(record: Mapping[str, Any], name: str, schema: str, default: Any = _MISSING) -> str:
    value = _get(record, name, schema, default)
    if not isinstance(value, str):
        raise _wrong(schema, name, "a string", value)
    return value


def optional_text(record: Mapping[str, Any], name: str, schema: str) -> str | None:
    value = record.get(name)
    return None if value is None else text(record, name, schema)


def integer(record: Mapping[str, Any], name: str, schema: str, default: Any = _MISSING) -> int:
    value = _get(record, name, schema, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(schema, name, "an integer", value)
    return value


def optional_integer(record: Mapping[str, Any], name: str, schema: str) -> int | None:
    value = record.get(name)
    return None if value is None else integer(record, name, schema)


def number(record: Mapping[str, Any], name: str, schema: str) -> float | None:
    """An optional double (an int is one too, as Avro's promotion reads it)."""
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(schema, name, "a number", value)
    return float(value)


def flag(record: Mapping[str, Any], name: str, schema: str, default: Any = _MISSING) -> bool:
    value = _get(record, name, schema, default)
    if not isinstance(value, bool):
        raise _wrong(schema, name, "a boolean", value)
    return value


def decimal(record: Mapping[str, Any], name: str, schema: str) -> Decimal:
    value = _get(record, name, schema, _MISSING)
    if not isinstance(value, Decimal):
        raise _wrong(schema, name, "a Decimal", value)
    return value


def millis(record: Mapping[str, Any], name: str, schema: str, default: Any = _MISSING) -> EpochMs:
    """A ``timestamp-millis``: fastavro decodes it as an aware datetime, a hand-made record
    may hold the epoch milliseconds themselves."""
    value = _get(record, name, schema, default)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _wrong(schema, name, "an aware datetime", value)
        return (value - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(schema, name, "a timestamp", value)
    return value


def nested(record: Mapping[str, Any], name: str, schema: str) -> Mapping[str, Any] | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _wrong(schema, name, "a record", value)
    return value


def as_datetime(ms: EpochMs) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, exactly (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)
