"""Builders for the detection core's tests: quotes, customers, changes and a rules file."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from streams.core.model import Customer, CustomerChange, Position, Quote, QuoteChange
from streams.core.rules import Rules

MINUTE = 60_000
#: 2026-11-23 10:00:00 UTC: a Monday morning in London (no quiet hours).
T0 = 1_795_428_000_000


def rules(**changes: Any) -> Rules:
    """Simple rules: 30 minutes, no holdout, no quiet hours, one offer for everything."""
    raw: dict[str, Any] = {
        "version": "test-1",
        "holdout": {"percent": 0},
        "quiet_hours": {"start": "00:00", "end": "00:00"},
        "offers": [
            {"code": "TEN", "description": "10% off", "discount_pct": 10,
             "template_id": "t-10", "subject": "Your quote"},
        ],
    }  # fmt: skip
    raw.update(changes)
    return Rules.model_validate(raw)


def quote(quote_id: int = 1, *, customer_id: int = 7, status: str = "QUOTED",
          at: int = T0, product: str = "MOTOR-COMP", created: int | None = None,
          premium: str = "456.00") -> Quote:  # fmt: skip
    return Quote(
        quote_id=quote_id, quote_ref=f"Q-{quote_id}", customer_id=customer_id,
        product_code=product, channel="WEB", premium=Decimal(premium), currency="GBP",
        status=status, created_ms=created if created is not None else at, updated_ms=at,
    )  # fmt: skip


def customer(customer_id: int = 7, **changes: Any) -> Customer:
    base = Customer(
        customer_id=customer_id, first_name="Ada", email="ada@example.com",
        marketing_consent=True, timezone="Europe/London", segment=None,
    )  # fmt: skip
    return replace(base, **changes)


class Clock:
    """Hands out increasing LSNs, so every change has its own position."""

    def __init__(self) -> None:
        self.lsn = 1_000

    def quote(self, q: Quote | None, *, quote_id: int | None = None, customer_id: int | None = None,
              at: int | None = None) -> QuoteChange:  # fmt: skip
        self.lsn += 10
        qid = q.quote_id if q is not None else quote_id
        cid = q.customer_id if q is not None else customer_id
        assert qid is not None and cid is not None
        commit = at if at is not None else (q.updated_ms if q is not None else T0)
        return QuoteChange(cid, qid, q, Position(self.lsn, commit))

    def customer(self, c: Customer | None, *, at: int = T0, customer_id: int = 7) -> CustomerChange:
        self.lsn += 10
        return CustomerChange(c.customer_id if c else customer_id, c, Position(self.lsn, at))
