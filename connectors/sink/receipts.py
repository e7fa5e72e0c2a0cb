"""Delivery receipts (``quoteflow.esp.deliveries``) and dead letters of the sink, as records.

Pure mappings. A receipt says what the sink did with one trigger: SENT, DUPLICATE
(already delivered, or its quote already offered by another trigger, named in the
error: skipped), REJECTED (the ESP refused this message: 400/422), FAILED (gave up
after retries), UNKNOWN (held as ambiguous for a person to resolve) or EXPIRED
(older than ``sink.max_trigger_age`` when it would have gone out: never sent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.sink.delivery import Job, Result
from connectors.sink.ledger import Entry
from quoteflow.deadletter import dead_letter
from schemas.wire import DeliveryReceipt, DeliveryStatus

STAGE = "esp-sink"
_STATUS: dict[str, DeliveryStatus] = {
    "sent": "SENT", "rejected": "REJECTED", "failed": "FAILED", "ambiguous": "UNKNOWN",
    "expired": "EXPIRED", "duplicate": "DUPLICATE"}  # fmt: skip


def _ms(value: datetime | None, default: int) -> int:
    return int(value.timestamp() * 1000) if value is not None else default


def _latency(job: Job, completed_ms: int | None) -> int | None:
    """The customer's wait: from the trigger's fired_at to the outcome."""
    return None if completed_ms is None else max(0, completed_ms - job.trigger.fired_at)


def receipt_of(result: Result, provider: str) -> DeliveryReceipt:
    completed, job = result.completed_ms, result.job
    return DeliveryReceipt(
        trigger_id=job.trigger_id, provider=provider, status=_STATUS[result.status],
        esp_message_id=result.message_id, http_status=result.http_status,
        attempts=result.attempts, first_attempt_at=result.first_attempt_ms or completed,
        completed_at=completed, error=result.error, request_id=str(job.request_id),
        customer_id=job.customer_id, quote_id=job.trigger.quote_id,
        latency_ms=_latency(job, completed),
    )  # fmt: skip


def receipt_of_entry(entry: Entry, job: Job, *, duplicate: bool, now_ms: int
                     ) -> DeliveryReceipt:  # fmt: skip
    """The receipt of a trigger found in the ledger: the original one again when its receipt
    is still owed (see :meth:`Entry.redelivered_at`), else DUPLICATE (a replay or a
    repeated trigger)."""
    about: dict[str, Any] = {"request_id": str(entry.request_id),
                             "customer_id": job.customer_id, "quote_id": job.trigger.quote_id}
    if duplicate:
        return DeliveryReceipt(
            trigger_id=entry.trigger_id, provider=entry.provider, status="DUPLICATE",
            esp_message_id=entry.esp_message_id, http_status=None, attempts=0,
            first_attempt_at=now_ms, completed_at=now_ms,
            error=entry.error if entry.state == "duplicate" and entry.error
                  else f"already {entry.state} (request {entry.request_id})",
            latency_ms=None, **about,
        )  # fmt: skip
    completed = _ms(entry.completed_at, now_ms)
    return DeliveryReceipt(
        trigger_id=entry.trigger_id, provider=entry.provider,
        status=_STATUS.get(entry.state, "UNKNOWN"), esp_message_id=entry.esp_message_id,
        http_status=entry.http_status, attempts=entry.attempts,
        first_attempt_at=_ms(entry.first_attempt_at, completed), completed_at=completed,
        error=entry.error,
        # A duplicate of its quote's offer sent nothing: no customer wait to report.
        latency_ms=_latency(job, None if entry.state == "duplicate" else completed), **about,
    )  # fmt: skip


def dead_letter_of(job: Job, *, error_type: str, error: str, attempts: int,
                   now_ms: int) -> dict[str, Any]:  # fmt: skip
    return dead_letter(job.topic, job.partition, job.offset, job.key, job.value, stage=STAGE,
                       error_type=error_type, error_message=error, attempts=attempts,
                       now_ms=now_ms)  # fmt: skip
