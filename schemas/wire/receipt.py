"""``esp_delivery_receipt`` (latest, v3) as a frozen value: what the sink did with a trigger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from schemas.wire.fields import (
    EpochMs,
    WireError,
    integer,
    millis,
    optional_integer,
    optional_text,
    text,
)

_SCHEMA = "esp_delivery_receipt"

#: The schema's enum. SENT: the ESP accepted it; DUPLICATE: already sent (or its quote
#: already offered), skipped; REJECTED: refused by the ESP; FAILED: gave up after retries;
#: UNKNOWN: held as ambiguous; EXPIRED: too old when it would have gone out, never sent.
DeliveryStatus = Literal["SENT", "DUPLICATE", "REJECTED", "FAILED", "UNKNOWN", "EXPIRED"]
_STATUSES: frozenset[str] = frozenset(get_args(DeliveryStatus))


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """One outcome of one trigger, as published on ``quoteflow.esp.deliveries``."""

    schema: ClassVar[str] = _SCHEMA

    trigger_id: str
    provider: str
    status: DeliveryStatus
    attempts: int
    first_attempt_at: EpochMs
    completed_at: EpochMs
    esp_message_id: str | None = None
    http_status: int | None = None
    #: Why it was not sent; never personal data.
    error: str | None = None
    request_id: str | None = None
    customer_id: int | None = None
    quote_id: int | None = None
    #: From the trigger's fired_at to this outcome; None for a duplicate.
    latency_ms: int | None = None

    def as_record(self) -> dict[str, Any]:
        """The record ``serde.encode(DeliveryReceipt.schema, ...)`` takes."""
        return {
            "trigger_id": self.trigger_id, "provider": self.provider, "status": self.status,
            "esp_message_id": self.esp_message_id, "http_status": self.http_status,
            "attempts": self.attempts, "first_attempt_at": self.first_attempt_at,
            "completed_at": self.completed_at, "error": self.error,
            "request_id": self.request_id, "customer_id": self.customer_id,
            "quote_id": self.quote_id, "latency_ms": self.latency_ms,
        }  # fmt: skip

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DeliveryReceipt:
        """The value of a decoded record; :class:`WireError` names what is wrong."""
        s = _SCHEMA
        status = text(record, "status", s)
        if status not in _STATUSES:
            raise WireError(f"{s}: field 'status' is not one of {sorted(_STATUSES)}")
        return cls(
            trigger_id=text(record, "trigger_id", s), provider=text(record, "provider", s),
            status=status,  # type: ignore[arg-type]  # checked against the enum above
            attempts=integer(record, "attempts", s),
            first_attempt_at=millis(record, "first_attempt_at", s),
            completed_at=millis(record, "completed_at", s),
            esp_message_id=optional_text(record, "esp_message_id", s),
            http_status=optional_integer(record, "http_status", s),
            error=optional_text(record, "error", s),
            request_id=optional_text(record, "request_id", s),
            customer_id=optional_integer(record, "customer_id", s),
            quote_id=optional_integer(record, "quote_id", s),
            latency_ms=optional_integer(record, "latency_ms", s),
        )  # fmt: skip
