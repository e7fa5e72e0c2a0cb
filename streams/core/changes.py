"""From decoded change events (Debezium's envelope, ours or Debezium's) to core changes.

Tombstones carry nothing the core needs (the ``d`` before them already said
it) and give no change. ``c``/``r``/``u`` give the new row, ``d`` its absence.
A quote that moved to another customer is two changes: it leaves the old
customer and joins the new one, since each customer's state is its own.
A ``t`` (truncate) names no row: it is reported, not guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from schemas.debezium import parse_zoned_timestamp
from schemas.errors import DecodeError
from streams.core.model import Customer, CustomerChange, Position, Quote, QuoteChange


class ChangeError(ValueError):
    """A change event the core cannot use (says which field, never a value)."""


def _ms(text: str, field: str) -> int:
    try:
        return int(parse_zoned_timestamp(text).timestamp() * 1000)
    except (DecodeError, TypeError, AttributeError) as exc:
        raise ChangeError(f"{field} is not a timestamp") from exc


def _position(value: Mapping[str, Any]) -> Position:
    source = value.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("ts_ms"), int):
        raise ChangeError("the change event has no source.ts_ms")
    lsn = source.get("lsn")
    return Position(lsn if isinstance(lsn, int) else 0, source["ts_ms"])


def _op(value: Mapping[str, Any]) -> str:
    op = value.get("op")
    if op not in ("c", "r", "u", "d", "t"):
        raise ChangeError("the change event's op is not one of c, r, u, d, t")
    return str(op)


def _row(value: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    row = value.get(field)
    if not isinstance(row, Mapping):
        raise ChangeError(f"a change event of op {value.get('op')} without {field}")
    return row


def quote(row: Mapping[str, Any]) -> Quote:
    try:
        premium = row["premium"]
        if not isinstance(premium, Decimal):
            raise ChangeError("premium is not a decimal")
        return Quote(
            quote_id=int(row["quote_id"]),
            quote_ref=str(row["quote_ref"]),
            customer_id=int(row["customer_id"]),
            product_code=str(row["product_code"]),
            channel=str(row["channel"]),
            premium=premium,
            currency=str(row["currency"]).strip(),
            status=str(row["status"]),
            created_ms=_ms(row["created_at"], "created_at"),
            updated_ms=_ms(row["updated_at"], "updated_at"),
        )
    except KeyError as exc:
        raise ChangeError(f"the quote row has no {exc.args[0]}") from None


def customer(row: Mapping[str, Any]) -> Customer:
    try:
        consent = row["marketing_consent"]
        if not isinstance(consent, bool):
            raise ChangeError("marketing_consent is not a boolean")
        return Customer(
            customer_id=int(row["customer_id"]),
            first_name=str(row["first_name"]),
            email=None if row["email"] is None else str(row["email"]),
            marketing_consent=consent,
            timezone=str(row["timezone"]),
            segment=None if row.get("segment") is None else str(row["segment"]),
        )
    except KeyError as exc:
        raise ChangeError(f"the customer row has no {exc.args[0]}") from None


def quote_changes(value: Mapping[str, Any] | None) -> list[QuoteChange]:
    """The core changes of one ``qms.public.quotes`` record (value None: a tombstone)."""
    if value is None:
        return []
    op, position = _op(value), _position(value)
    if op == "t":
        raise ChangeError("a TRUNCATE of the quotes table: every open quote is unknown now")
    if op == "d":
        old = quote(_row(value, "before"))
        return [QuoteChange(old.customer_id, old.quote_id, None, position)]
    new = quote(_row(value, "after"))
    before = value.get("before")
    changes = []
    if isinstance(before, Mapping):
        old_customer = before.get("customer_id")
        if isinstance(old_customer, int) and old_customer != new.customer_id:
            changes.append(QuoteChange(old_customer, new.quote_id, None, position))
    changes.append(QuoteChange(new.customer_id, new.quote_id, new, position))
    return changes


def customer_change(value: Mapping[str, Any] | None) -> CustomerChange | None:
    """The core change of one ``crm.public.customers`` record (None for a tombstone)."""
    if value is None:
        return None
    op, position = _op(value), _position(value)
    if op == "t":
        raise ChangeError("a TRUNCATE of the customers table cannot be applied per customer")
    if op == "d":
        old = customer(_row(value, "before"))
        return CustomerChange(old.customer_id, None, position)
    new = customer(_row(value, "after"))
    return CustomerChange(new.customer_id, new, position)
