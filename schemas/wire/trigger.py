"""``abandonment_trigger`` (latest version, v3) as a frozen value: what the sink needs to e-mail.

Field names and defaults are the schema's, so an older trigger read with the
latest schema (``template_id`` and ``subject`` empty, no ``quiet_hours``)
becomes the same value as the serde's defaults make it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from schemas.wire.fields import (
    EpochMs,
    WireError,
    decimal,
    flag,
    integer,
    millis,
    nested,
    number,
    optional_text,
    text,
)

_SCHEMA = "abandonment_trigger"


@dataclass(frozen=True, slots=True)
class Offer:
    """The offer the rules selected for the quote."""

    code: str
    description: str
    #: Percent (10.0 = 10 %); None for an offer without a discount.
    discount_pct: float | None = None

    def as_record(self) -> dict[str, Any]:
        return {"code": self.code, "description": self.description,
                "discount_pct": self.discount_pct}  # fmt: skip

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Offer:
        where = f"{_SCHEMA}.offer"
        return cls(text(record, "code", where), text(record, "description", where),
                   number(record, "discount_pct", where))  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The rules' window, local clock times as written (``HH:MM``): the sink parses them
    when it judges the trigger, so an unreadable window is its decision, not a decode error."""

    start: str
    end: str
    #: The zone for a trigger whose timezone is not an IANA name; None: UTC.
    fallback_timezone: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end,
                "fallback_timezone": self.fallback_timezone}  # fmt: skip

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> QuietHours:
        where = f"{_SCHEMA}.quiet_hours"
        return cls(text(record, "start", where), text(record, "end", where),
                   optional_text(record, "fallback_timezone", where))  # fmt: skip


@dataclass(frozen=True, slots=True)
class AbandonmentTrigger:
    """One abandoned quote to e-mail, as it travels from the processor to the sink."""

    schema: ClassVar[str] = _SCHEMA

    trigger_id: str
    quote_id: int
    quote_ref: str
    customer_id: int
    email: str = field(repr=False)  # personal data
    first_name: str = field(repr=False)  # personal data
    timezone: str
    product_code: str
    channel: str
    premium: Decimal
    currency: str
    offer: Offer
    quote_created_at: EpochMs
    deadline_at: EpochMs
    #: Processing time it was emitted (event time in a replay).
    fired_at: EpochMs
    rule_version: str
    template_id: str = ""
    subject: str = ""
    source_watermark_at: EpochMs = 0
    #: Produced by a replay into a sandbox: a production sink drops it.
    replay: bool = False
    quiet_hours: QuietHours | None = None

    def as_record(self) -> dict[str, Any]:
        """The record ``serde.encode(AbandonmentTrigger.schema, ...)`` takes."""
        return {
            "trigger_id": self.trigger_id, "quote_id": self.quote_id,
            "quote_ref": self.quote_ref, "customer_id": self.customer_id,
            "email": self.email, "first_name": self.first_name, "timezone": self.timezone,
            "product_code": self.product_code, "channel": self.channel,
            "premium": self.premium, "currency": self.currency,
            "offer": self.offer.as_record(), "template_id": self.template_id,
            "subject": self.subject, "quote_created_at": self.quote_created_at,
            "deadline_at": self.deadline_at, "fired_at": self.fired_at,
            "source_watermark_at": self.source_watermark_at,
            "rule_version": self.rule_version, "replay": self.replay,
            "quiet_hours": None if self.quiet_hours is None else self.quiet_hours.as_record(),
        }  # fmt: skip

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AbandonmentTrigger:
        """The value of a decoded record (``serde.decode``); :class:`WireError` (a
        :class:`~schemas.errors.DecodeError`) names the first field missing or mistyped."""
        s = _SCHEMA
        offer = nested(record, "offer", s)
        if offer is None:
            raise WireError(f"{s}: required field 'offer' is missing")
        quiet = nested(record, "quiet_hours", s)
        return cls(
            trigger_id=text(record, "trigger_id", s), quote_id=integer(record, "quote_id", s),
            quote_ref=text(record, "quote_ref", s), customer_id=integer(record, "customer_id", s),
            email=text(record, "email", s), first_name=text(record, "first_name", s),
            timezone=text(record, "timezone", s), product_code=text(record, "product_code", s),
            channel=text(record, "channel", s), premium=decimal(record, "premium", s),
            currency=text(record, "currency", s), offer=Offer.from_record(offer),
            template_id=text(record, "template_id", s, ""),
            subject=text(record, "subject", s, ""),
            quote_created_at=millis(record, "quote_created_at", s),
            deadline_at=millis(record, "deadline_at", s), fired_at=millis(record, "fired_at", s),
            source_watermark_at=millis(record, "source_watermark_at", s, 0),
            rule_version=text(record, "rule_version", s), replay=flag(record, "replay", s, False),
            quiet_hours=None if quiet is None else QuietHours.from_record(quiet),
        )  # fmt: skip
