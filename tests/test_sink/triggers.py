"""Decoded ``abandonment_trigger`` records, as the serde yields them: the sink tests' input.

Shaped like ``schemas/avro/abandonment_trigger/v3.avsc`` after fastavro's
logical types: ``premium`` a Decimal, timestamps timezone-aware UTC datetimes.
Each call makes a distinct trigger (its own ids and address) unless told
otherwise, so tests that count deliveries per trigger cannot collide. A trigger
fired a few seconds ago (the sink expires those older than ``sink.max_trigger_age``)
and without quiet hours (``quiet_hours=None``), unless told otherwise.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.wire import AbandonmentTrigger

_SEQ = itertools.count(1)
#: Trigger ids are unique across runs too: the ops ledger outlives a test session.
_RUN = uuid.uuid4().hex[:8]
#: So are quote ids: the ledger allows one offer per quote, ever (a rerun of the suite
#: must not find its quotes already offered).
_QUOTES = random.randrange(10**12, 9 * 10**15, 10**6)


def make_trigger(**overrides: Any) -> dict[str, Any]:
    """One trigger record; keyword arguments replace fields (``offer`` as a whole)."""
    n = next(_SEQ)
    quote_id = _QUOTES + n
    deadline = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    created = deadline - timedelta(hours=2)
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
        "quiet_hours": None,
    }
    record.update(overrides)
    return record


def wire(record: dict[str, Any]) -> AbandonmentTrigger:
    """The typed trigger the sink makes of ``record`` at its edge (what providers take)."""
    return AbandonmentTrigger.from_record(record)
