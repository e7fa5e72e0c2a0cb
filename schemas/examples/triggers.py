"""Examples of the abandonment triggers topic: an offer, a trigger, a sandbox replay."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.examples.common import CEST, EXAMPLE_EMAIL, Record, merge


def offer(**overrides: Any) -> Record:
    """An offer with a discount."""
    return merge(
        {"code": "SAVE10", "description": "10 % off your first year", "discount_pct": 10.0},
        overrides,
    )


def abandonment_trigger(**overrides: Any) -> Record:
    """The trigger for quote 1000042, an hour after it was made."""
    return merge(
        {
            "trigger_id": "1000042:rules-2024.07.1",
            "quote_id": 1_000_042,
            "quote_ref": "Q-2024-000042",
            "customer_id": 77_001,
            "email": EXAMPLE_EMAIL,
            "first_name": "Jane",
            "timezone": "Europe/London",
            "product_code": "MOTOR-COMP",
            "channel": "WEB",
            "premium": Decimal("612.37"),
            "currency": "GBP",
            "offer": offer(),
            "template_id": "d-motor-10",
            "subject": "Still thinking about your car insurance?",
            "quote_created_at": datetime(2024, 7, 1, 9, 15, 3, 123000, tzinfo=UTC),
            "deadline_at": datetime(2024, 7, 1, 12, 15, 3, 123000, tzinfo=CEST),
            "fired_at": datetime(2024, 7, 1, 10, 15, 4, 7000, tzinfo=UTC),
            "source_watermark_at": datetime(2024, 7, 1, 10, 15, 3, 900000, tzinfo=UTC),
            "rule_version": "rules-2024.07.1",
            "replay": False,
            "quiet_hours": {"start": "21:00", "end": "08:00",
                            "fallback_timezone": "Europe/London"},
        },
        overrides,
    )


def replayed_trigger_without_discount() -> Record:
    """A sandbox replay trigger whose offer has no discount (null in a union)."""
    return abandonment_trigger(
        offer=offer(code="CALLBACK", description="Talk to us", discount_pct=None),
        premium=Decimal("1234567890.99"),
        replay=True,
        quiet_hours=None,
    )
