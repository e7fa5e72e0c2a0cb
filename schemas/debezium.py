"""Debezium's value representations in our change events, and helpers for them.

Our CDC envelopes (``qms_quote_envelope``, ``crm_customer_envelope``) type
their row columns the way Debezium's PostgreSQL connector does with its
*default* settings, so that data written by a real Debezium connector resolves
against them:

* ``timestamptz`` is ``io.debezium.time.ZonedTimestamp`` (``time.precision.mode``
  ``adaptive``): an Avro **string**, ISO-8601 with an offset. Debezium renders
  the instant in UTC, so the offset is ``Z``: ``"2026-11-22T13:05:01.123456Z"``.
  Depending on its version, Debezium writes the fraction padded to the column's
  precision (six digits for ``timestamptz``) or with trailing zeros dropped
  (0-9 digits, none at all on a whole second). :func:`zoned_timestamp` writes
  what our CDC connector sends (always six digits and ``Z``);
  :func:`parse_zoned_timestamp` reads every one of those forms.
* ``date`` is ``io.debezium.time.Date``: an Avro ``int`` of days since
  1970-01-01 *without* Avro's ``date`` logical type. Our schema declares the
  logical type, but fastavro converts by the *writer's* logical types, so the
  same field decodes to :class:`datetime.date` when we wrote it and to a plain
  ``int`` when Debezium did (through a registry). :func:`as_date` takes either.
* ``numeric(p, s)`` is ``org.apache.kafka.connect.data.Decimal``
  (``decimal.handling.mode`` ``precise``): bytes with Avro's ``decimal``
  logical type, decoded to :class:`decimal.Decimal` either way.

Errors are :class:`~schemas.errors.EncodeError` (formatting) and
:class:`~schemas.errors.DecodeError` (parsing; a consumer treats it like any
undecodable message). Like every error of this package, they never repeat the
value they were given. Importing this module does no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from schemas.errors import DecodeError, EncodeError

#: ``connect.name`` of Debezium's string timestamps with an offset.
ZONED_TIMESTAMP = "io.debezium.time.ZonedTimestamp"
#: ``connect.name`` of Debezium's dates (days since the epoch, a plain int).
DATE = "io.debezium.time.Date"
#: ``connect.name`` of Kafka Connect's decimals, as Debezium writes ``numeric``.
DECIMAL = "org.apache.kafka.connect.data.Decimal"

_EPOCH_DAY = date(1970, 1, 1)
_EXAMPLE = "2026-11-22T13:05:01.123456Z"
# ASCII digits only: str.isdigit and \d also accept other scripts' digits.
_ZONED = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<utc>Z)|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2})(?::(?P<os>[0-9]{2}))?)"
)


def zoned_timestamp(dt: datetime) -> str:
    """``dt`` as Debezium's ZonedTimestamp: UTC, six fractional digits, ``Z``.

    ``dt`` must be timezone-aware (any zone or offset); the instant is kept,
    e.g. ``2024-07-01 11:15:03.654321+02:00`` gives
    ``"2024-07-01T09:15:03.654321Z"``. Naive datetimes are refused rather
    than guessed at.
    """
    if not isinstance(dt, datetime):
        raise EncodeError(
            f"a ZonedTimestamp is made from a timezone-aware datetime, not {type(dt).__name__}"
        )
    if dt.utcoffset() is None:
        raise EncodeError(
            "a ZonedTimestamp needs a timezone-aware datetime; got a naive one "
            "(attach its zone, e.g. dt.replace(tzinfo=UTC) if it is UTC)"
        )
    try:
        utc = dt.astimezone(UTC)
    except OverflowError:
        raise EncodeError(
            "the datetime is outside the years 1-9999 once converted to UTC"
        ) from None
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_zoned_timestamp(text: str) -> datetime:
    """The instant a Debezium ZonedTimestamp string names, as an aware UTC datetime.

    Accepts ``YYYY-MM-DDTHH:MM:SS``, an optional fraction of 1-9 digits, and
    an offset: ``Z``, ``+00:00`` or any other ``±HH:MM[:SS]`` (converted to
    UTC). Python keeps microseconds, so digits past the sixth are dropped
    (truncated, never rounded up into the next microsecond). The result's
    ``tzinfo`` is :data:`datetime.UTC`.
    """
    if not isinstance(text, str):
        raise DecodeError(f"a ZonedTimestamp is an ISO-8601 string, not {type(text).__name__}")
    match = _ZONED.fullmatch(text)
    if match is None:
        raise DecodeError(_not_zoned(text))
    fraction = match["fraction"] or ""
    try:
        if match["utc"]:
            tz = UTC
        else:
            hours, minutes, seconds = int(match["oh"]), int(match["om"]), int(match["os"] or 0)
            if minutes > 59 or seconds > 59:
                raise ValueError("offset minutes or seconds out of range")
            offset = timedelta(hours=hours, minutes=minutes, seconds=seconds)
            # timezone() itself refuses offsets of 24 hours or more.
            tz = timezone(-offset if match["sign"] == "-" else offset)
        local = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise DecodeError(
            "a ZonedTimestamp has the right shape but names no valid instant in the years "
            "1-9999 (a field or the offset is out of range)"
        ) from None


def as_date(value: date | int) -> date:
    """A date field of a change event as :class:`datetime.date`, whoever wrote it.

    Our events decode to a ``date`` already; Debezium's ``io.debezium.time.Date``
    decodes to an ``int`` of days since 1970-01-01 (see the module doc).
    """
    if isinstance(value, datetime | bool):
        raise DecodeError(f"a date field holds a date or a day number, not {type(value).__name__}")
    if isinstance(value, date):
        return value
    if isinstance(value, int):
        try:
            return _EPOCH_DAY + timedelta(days=value)
        except OverflowError:
            raise DecodeError("a day number outside the years 1-9999 cannot be a date") from None
    raise DecodeError(f"a date field holds a date or a day number, not {type(value).__name__}")


def _not_zoned(text: str) -> str:
    if text in ("infinity", "-infinity"):
        return (
            f"PostgreSQL's {text!r} is not an instant a datetime can hold; "
            f"expected an ISO-8601 timestamp such as {_EXAMPLE}"
        )
    # The text itself stays out of the message (error messages must not carry
    # record values); its length and an example of the right shape help enough.
    return (
        f"not a Debezium ZonedTimestamp: expected ISO-8601 with an offset such as {_EXAMPLE} "
        f"(YYYY-MM-DDTHH:MM:SS, 0-9 fractional digits, Z or ±HH:MM), got {len(text)} character(s)"
    )
