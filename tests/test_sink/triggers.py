"""Decoded ``abandonment_trigger`` records, as the serde yields them: the sink tests' input.

Shaped like ``schemas/avro/abandonment_trigger/v2.avsc`` after fastavro's
logical types: ``premium`` a Decimal, timestamps timezone-aware UTC datetimes.
Each call makes a distinct trigger (its own ids and address) unless told
otherwise, so tests that count deliveries per trigger cannot collide.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

_SEQ = itertools.count(1)
#: Trigger ids are unique across runs too: the ops ledger outlives a test session.
_RUN = uuid.uuid4().hex[:8]
BASE_TIME = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def make_trigger(**overrides: Any) -> dict[str, Any]:
    """One trigger record; keyword arguments replace fields (``offer`` as a whole)."""
    n = next(_SEQ)
    quote_id = 100_000 + n
    created = BASE_TIME + timedelta(minutes=n)
    deadline = created + timedelta(hours=2)
    record: dict[str, Any] = {
        "trigger_id": f"q{quote_id}-r2026.03-{_RUN}-{n:06d}",
        "quote_id": quote_id,
        "quote_ref": f"QF-{quote_id}",
        "customer_id": 5_000 + n,
        "email": f"alice.{n}@example.com",
        "first_name": "Alice",
        "timezone": "Europe/London",
        "product_code": "MOTOR",
        "channel": "web",
        "premium": Decimal("412.50"),
        "currency": "GBP",
        "offer": {
            "code": "SAVE10",
            "description": "10% off your first year of motor cover",
            "discount_pct": 10.0,
        },
        "template_id": "d-0123456789abcdef0123456789abcdef",
        "subject": "Your motor quote is waiting: 10% off",
        "quote_created_at": created,
        "deadline_at": deadline,
        "fired_at": deadline + timedelta(seconds=3),
        "source_watermark_at": deadline + timedelta(seconds=1),
        "rule_version": "2026.03",
        "replay": False,
    }
    record.update(overrides)
    return record
