"""Decoded change events (ours and Debezium's) into the core's changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from streams.core.changes import ChangeError, customer_change, quote_changes
from streams.core.model import Position

pytestmark = pytest.mark.unit

ROW = {
    "quote_id": 5, "quote_ref": "Q-5", "customer_id": 7, "product_code": "MOTOR-COMP",
    "channel": "WEB", "premium": Decimal("456.00"), "currency": "GBP", "status": "QUOTED",
    "valid_until": date(2026, 12, 31), "created_at": "2026-11-23T10:00:00.000000Z",
    "updated_at": "2026-11-23T10:05:00.5Z",
}  # fmt: skip
SOURCE = {"ts_ms": 1_795_428_300_600, "lsn": 4242}
CUSTOMER = {
    "customer_id": 7, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
    "phone": None, "marketing_consent": True, "consent_updated_at": None,
    "timezone": "Europe/London", "segment": None,
    "created_at": "2026-11-23T10:00:00.000000Z", "updated_at": "2026-11-23T10:00:00.000000Z",
}  # fmt: skip


def envelope(op: str, before: Any = None, after: Any = None) -> dict[str, Any]:
    return {"op": op, "before": before, "after": after, "source": SOURCE}


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_a_row_becomes_the_quote(op: str) -> None:
    (change,) = quote_changes(envelope(op, ROW if op == "u" else None, ROW))
    assert change.customer_id == 7 and change.quote_id == 5
    assert change.position == Position(4242, 1_795_428_300_600)
    assert change.quote is not None
    assert change.quote.updated_ms == 1_795_428_300_500
    assert change.quote.premium == Decimal("456.00")


def test_a_delete_is_the_quote_leaving_and_a_tombstone_is_nothing() -> None:
    (change,) = quote_changes(envelope("d", ROW, None))
    assert change.quote is None and change.customer_id == 7
    assert quote_changes(None) == []


def test_a_quote_moved_to_another_customer_leaves_the_first() -> None:
    moved = {**ROW, "customer_id": 8}
    leave, join = quote_changes(envelope("u", ROW, moved))
    assert (leave.customer_id, leave.quote) == (7, None)
    assert join.customer_id == 8 and join.quote is not None


def test_debeziums_date_as_days_and_trimmed_fractions_are_read() -> None:
    debezium = {**ROW, "valid_until": 20818, "updated_at": "2026-11-23T10:05:00Z"}
    (change,) = quote_changes(envelope("c", None, debezium))
    assert change.quote is not None and change.quote.updated_ms == 1_795_428_300_000


def test_a_snapshot_row_without_an_lsn_is_unordered() -> None:
    value = {**envelope("r", None, ROW), "source": {"ts_ms": 5}}
    (change,) = quote_changes(value)
    assert change.position == Position(0, 5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"op": "x", "source": SOURCE}, "op is not one of"),
        ({"op": "c", "after": ROW}, "no source.ts_ms"),
        (envelope("c", None, None), "without after"),
        (envelope("c", None, {**ROW, "premium": 4.5}), "premium is not a decimal"),
        (envelope("c", None, {k: v for k, v in ROW.items() if k != "status"}), "has no status"),
        (envelope("c", None, {**ROW, "created_at": "yesterday"}), "created_at is not a timestamp"),
    ],
)
def test_unusable_events_say_why(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ChangeError, match=message):
        quote_changes(value)


def test_customers() -> None:
    change = customer_change(envelope("c", None, CUSTOMER))
    assert change is not None and change.customer is not None
    assert change.customer.email == "ada@example.com" and change.customer.marketing_consent
    gone = customer_change(envelope("d", CUSTOMER, None))
    assert gone is not None and gone.customer is None and gone.customer_id == 7
    assert customer_change(None) is None
    with pytest.raises(ChangeError, match="marketing_consent is not a boolean"):
        customer_change(envelope("c", None, {**CUSTOMER, "marketing_consent": "yes"}))
