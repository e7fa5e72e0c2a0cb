"""Examples of the abandonment decisions topic: a suppression, an unmatched quote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.examples.common import Record, merge


def abandonment_decision(**overrides: Any) -> Record:
    """A suppression decision."""
    return merge(
        {
            "decision_id": "1000043:rules-2024.07.1",
            "quote_id": 1_000_043,
            "quote_ref": "Q-2024-000043",
            "customer_id": 77_002,
            "outcome": "SUPPRESSED",
            "reason": "no marketing consent",
            "decided_at": datetime(2024, 7, 1, 10, 30, 0, 250000, tzinfo=UTC),
            "rule_version": "rules-2024.07.1",
            "replay": False,
        },
        overrides,
    )


def unmatched_decision() -> Record:
    """A decision for a quote whose customer is unknown (null customer id)."""
    return abandonment_decision(customer_id=None, outcome="UNMATCHED", reason="customer unknown")
