"""From decoded change events (Debezium's envelope, ours or Debezium's) to core changes.

Tombstones carry nothing the core needs (the ``d`` before them already said
it) and give no change. ``c``/``r``/``u`` give the new row, ``d`` its absence.
A quote that moved to another customer is two changes: it leaves the old
customer and joins the new one, since each customer's state is its own.
A ``t`` (truncate) names no row: it is a :class:`TableTruncated` of the topic's
table, which the drivers apply to every customer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.debezium import parse_zoned_timestamp
from schemas.errors import DecodeError
from streams.core.model import (
    Customer,
    CustomerChange,
    Position,
    Quote,
    QuoteChange,
    TableTruncated,
)

_OPS = ("c", "r", "u", "d", "t")
_fromisoformat = datetime.fromisoformat
#: What our CDC connector writes (``schemas.debezium.zoned_timestamp``): UTC, six digits.
_canonical = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", re.ASCII).fullmatch


#: The columns :func:`quote` reads, and :func:`customer`.
QUOTE_COLUMNS = ("quote_id", "quote_ref", "customer_id", "product_code", "channel", "premium",
                 "currency", "status", "created_at", "updated_at")  # fmt: skip
CUSTOMER_COLUMNS = ("customer_id", "first_name", "email", "marketing_consent", "timezone",
                    "segment")  # fmt: skip
#: Every field of a change event this module reads: a decoder may build these alone
#: (``schemas.projector``); a property test checks the changes are the same.
_ENVELOPE = ("op", "source.ts_ms", "source.lsn", "source.sequence")
QUOTE_ENVELOPE_PATHS = (*_ENVELOPE, *(f"{row}.{c}" for row in ("before", "after")
                                      for c in QUOTE_COLUMNS))  # fmt: skip
CUSTOMER_ENVELOPE_PATHS = (*_ENVELOPE, *(f"{row}.{c}" for row in ("before", "after")
                                         for c in CUSTOMER_COLUMNS))  # fmt: skip


class ChangeError(ValueError):
    """A change event the core cannot use (says which field, never a value)."""


#: Epoch seconds of the whole seconds (``YYYY-MM-DDTHH:MM:SS``) of texts already read.
_SECONDS: dict[str, int] = {}
#: Bounded: history advances in time, so a replay meets each second in a short run.
_SECONDS_MAX = 4096
#: A canonical text's fraction in two lookups that also check its shape: ``.123`` and
#: ``456Z`` (ASCII digits only: ``int()`` would take other scripts' digits).
_MILLIS = {f".{n:03d}": n * 1000 for n in range(1000)}
_MICROS = {f"{n:03d}Z": n for n in range(1000)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEAD_LEN = 19  # the whole seconds: len("2026-11-23T10:00:00")


def _ms(text: str, field: str) -> int:
    """Epoch milliseconds of a ZonedTimestamp (the instant, truncated like the float it was).

    Exactly :func:`_ms_reference`'s value, for every string, in two thirds of its time:
    it was two timestamps per quote change, an eighth of a replay lane's time. A
    canonical text (``2026-11-23T10:00:00.123456Z``, what our connector writes) is its
    whole seconds, parsed and checked once per second of history (:data:`_SECONDS`),
    and its fraction, read by lookups (:data:`_MILLIS`, :data:`_MICROS`). The value is
    the reference's float arithmetic on the same integers: an aware
    ``datetime.timestamp()`` is its timedelta's ``total_seconds()``, the integer
    microseconds since the epoch divided by 10**6 (a correctly rounded true division),
    then ``* 1000`` and ``int()``. Every other string takes the reference, so both
    accept, refuse and read alike (a property test compares them).
    """
    if type(text) is str:
        # Literal slices, not named constants: this runs twice per change.
        milli = _MILLIS.get(text[19:23])
        micro = _MICROS.get(text[23:])
        if milli is not None and micro is not None:
            seconds = _SECONDS.get(text[:19])
            if seconds is None:
                seconds = _learn_second(text)
            if seconds is not None:
                return int((seconds * 1_000_000 + milli + micro) / 1_000_000 * 1000)
    return _ms_reference(text, field)


def _learn_second(text: str) -> int | None:
    """The epoch seconds of a canonical text's whole seconds, cached; None: not canonical.

    Cached only when the reference parses the text to exactly the fields its head
    spells, so that every fraction after the same head reads alike.
    """
    if _canonical(text) is None:
        return None
    try:
        instant = _fromisoformat(text)
    except ValueError:
        return None  # e.g. a month 13: the reference says why
    head = text[:_HEAD_LEN]
    if instant.utcoffset() or instant.replace(tzinfo=None).isoformat("T", "seconds") != head:
        return None
    delta = instant - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    if len(_SECONDS) >= _SECONDS_MAX:
        _SECONDS.clear()
    _SECONDS[head] = seconds
    return seconds


def _ms_reference(text: str, field: str) -> int:
    """The general reading of a ZonedTimestamp, and :func:`_ms`'s definition.

    Our connector always writes the canonical shape (``2026-11-23T10:00:00.000000Z``):
    checked digit by digit, ``datetime.fromisoformat`` (C) reads it about 5 times faster
    than the general parser. (``fromisoformat`` alone is laxer than the general parser:
    it takes e.g. a NUL for a digit.) Every other shape, and every string the fast path
    refuses, takes the general parser, so both accept, refuse and read alike.
    """
    if type(text) is str and _canonical(text) is not None:
        try:
            return int(_fromisoformat(text).timestamp() * 1000)
        except ValueError:
            pass  # e.g. a month 13: the general parser says why
    try:
        return int(parse_zoned_timestamp(text).timestamp() * 1000)
    except (DecodeError, TypeError, AttributeError) as exc:
        raise ChangeError(f"{field} is not a timestamp") from exc


def _position(value: Mapping[str, Any], op: str) -> Position:
    """The change's commit position (see :class:`~streams.core.model.Position`).

    A snapshot row (``r``) ranks *before* every change of the transactions committed
    after the commit its sequence names: its own LSN is where the snapshot read it
    (our chunk's high watermark, Debezium's consistent point), not a commit, and a
    change written before that LSN but committed later is newer than the row.
    """
    source = value.get("source")
    # A decoded record is a dict: ``type() is dict`` first spares the ABC check.
    if type(source) is not dict and not isinstance(source, Mapping):
        raise ChangeError("the change event has no source.ts_ms")
    ts_ms = source.get("ts_ms")
    if not isinstance(ts_ms, int):
        raise ChangeError("the change event has no source.ts_ms")
    lsn = source.get("lsn")
    lsn = lsn if isinstance(lsn, int) else 0
    sequence = source.get("sequence")
    commit_lsn = _last_commit_lsn(sequence) if sequence else 0
    if not commit_lsn and sequence:
        # A null last commit: the first transaction (or snapshot chunk) of a new slot. Its
        # own LSN stands in for it — past every commit of an older slot of this database
        # (a lost slot re-created), where 0 would rank its changes below all of them.
        commit_lsn = lsn
    if op == "r" and commit_lsn:
        return Position(0, ts_ms, commit_lsn)
    return Position(lsn, ts_ms, commit_lsn)


def _last_commit_lsn(sequence: object) -> int:
    """The first element of Debezium's ``source.sequence`` (a JSON array of decimal strings
    or null); 0 for null. Read without a JSON parser: it is on every change event.

    What our connector writes (``["123","456"]``) is sliced straight out: exactly what
    :func:`_last_commit_lsn_reference` reads from it, in half its time.
    """
    if type(sequence) is str and sequence[:2] == '["':
        end = sequence.find('",', 2)
        if end > 2:  # at least one digit
            head = sequence[2:end]
            if head.isdigit() and head.isascii():
                return int(head)
    return _last_commit_lsn_reference(sequence)


def _last_commit_lsn_reference(sequence: object) -> int:
    """The general reading of ``source.sequence`` (:func:`_last_commit_lsn`'s definition)."""
    if type(sequence) is not str:
        raise ChangeError("source.sequence is not a string")
    head = sequence[1:].split(",", 1)[0].strip().strip('"')
    if head == "null":
        return 0
    if not sequence.startswith("[") or not head.isdigit():
        raise ChangeError("source.sequence is not [lastCommitLsn, lsn]")
    return int(head)


def _op(value: Mapping[str, Any]) -> str:
    op = value.get("op")
    if op not in _OPS:
        raise ChangeError("the change event's op is not one of c, r, u, d, t")
    return str(op)


def _row(value: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    row = value.get(field)
    if type(row) is not dict and not isinstance(row, Mapping):
        raise ChangeError(f"a change event of op {value.get('op')} without {field}")
    return row


def quote(row: Mapping[str, Any]) -> Quote:
    """The quote of a row; fields are read (and refused) in the order of :class:`Quote`."""
    try:
        premium = row["premium"]
        if not isinstance(premium, Decimal):
            raise ChangeError("premium is not a decimal")
        quote_id = int(row["quote_id"])
        quote_ref = str(row["quote_ref"])
        customer_id = int(row["customer_id"])
        product_code = str(row["product_code"])
        channel = str(row["channel"])
        currency = str(row["currency"]).strip()
        status = str(row["status"])
        created_at = row["created_at"]
        created_ms = _ms(created_at, "created_at")
        updated_at = row["updated_at"]
    except KeyError as exc:
        raise ChangeError(f"the quote row has no {exc.args[0]}") from None
    # A new row's two timestamps are usually the same text: read it once.
    if type(updated_at) is str and updated_at == created_at:
        updated_ms = created_ms
    else:
        updated_ms = _ms(updated_at, "updated_at")
    return Quote(quote_id, quote_ref, customer_id, product_code, channel, premium, currency,
                 status, created_ms, updated_ms)  # fmt: skip


def customer(row: Mapping[str, Any]) -> Customer:
    try:
        consent = row["marketing_consent"]
        if not isinstance(consent, bool):
            raise ChangeError("marketing_consent is not a boolean")
        return Customer(
            int(row["customer_id"]),
            str(row["first_name"]),
            None if row["email"] is None else str(row["email"]),
            consent,
            str(row["timezone"]),
            None if row.get("segment") is None else str(row["segment"]),
        )
    except KeyError as exc:
        raise ChangeError(f"the customer row has no {exc.args[0]}") from None


def quote_changes(value: Mapping[str, Any] | None) -> list[QuoteChange | TableTruncated]:
    """The core changes of one ``qms.public.quotes`` record (value None: a tombstone)."""
    if value is None:
        return []
    op = _op(value)
    position = _position(value, op)
    if op == "t":
        return [TableTruncated("quotes", position)]
    if op == "d":
        old = quote(_row(value, "before"))
        return [QuoteChange(old.customer_id, old.quote_id, None, position)]
    new = quote(_row(value, "after"))
    joined = QuoteChange(new.customer_id, new.quote_id, new, position)
    before = value.get("before")
    if before is not None and (type(before) is dict or isinstance(before, Mapping)):
        old_customer = before.get("customer_id")
        if isinstance(old_customer, int) and old_customer != new.customer_id:
            return [QuoteChange(old_customer, new.quote_id, None, position), joined]
    return [joined]


def customer_change(value: Mapping[str, Any] | None) -> CustomerChange | TableTruncated | None:
    """The core change of one ``crm.public.customers`` record (None for a tombstone)."""
    if value is None:
        return None
    op = _op(value)
    position = _position(value, op)
    if op == "t":  # published under a reserved key (connectors.cdc.events): not a customer
        return TableTruncated("customers", position)
    if op == "d":
        old = customer(_row(value, "before"))
        return CustomerChange(old.customer_id, None, position)
    new = customer(_row(value, "after"))
    return CustomerChange(new.customer_id, new, position)
