"""Examples of the ESP delivery receipts topic: a send, and one that gave up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.examples.common import Record, merge


def delivery_receipt(**overrides: Any) -> Record:
    """A successful send."""
    return merge(
        {
            "trigger_id": "1000042:rules-2024.07.1",
            "provider": "sendgrid",
            "status": "SENT",
            "esp_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "http_status": 202,
            "attempts": 1,
            "first_attempt_at": datetime(2024, 7, 1, 10, 15, 5, 0, tzinfo=UTC),
            "completed_at": datetime(2024, 7, 1, 10, 15, 5, 380000, tzinfo=UTC),
            "error": None,
            "request_id": "0b6a1f7e-3c1d-4d7e-9a55-2f1b8c9d0e11",
            "customer_id": 77,
            "quote_id": 1000042,
            "latency_ms": 1380,
        },
        overrides,
    )


def failed_receipt() -> Record:
    """A send that gave up: no ESP message id, an error text."""
    return delivery_receipt(
        status="FAILED",
        esp_message_id=None,
        http_status=None,
        attempts=5,
        completed_at=datetime(2024, 7, 1, 10, 20, 5, 0, tzinfo=UTC),
        error="ConnectTimeout after 5 attempts",
        latency_ms=301_000,
    )
