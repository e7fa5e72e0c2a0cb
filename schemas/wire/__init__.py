"""The records that travel between components, as typed values: one class per wire schema.

The processor builds an :class:`AbandonmentTrigger` and encodes it once
(:meth:`~AbandonmentTrigger.as_record`); the sink decodes it once at its edge
(:meth:`~AbandonmentTrigger.from_record`) and hands the typed value on, down to
the ESP adapters. They live here, below both, so the sink never imports the
processor to know what a trigger is. Times are epoch milliseconds, as in the
schemas' ``timestamp-millis``.
"""

from schemas.wire.fields import EpochMs, WireError
from schemas.wire.receipt import DeliveryReceipt, DeliveryStatus
from schemas.wire.trigger import AbandonmentTrigger, Offer, QuietHours

__all__ = [
    "AbandonmentTrigger",
    "DeliveryReceipt",
    "DeliveryStatus",
    "EpochMs",
    "Offer",
    "QuietHours",
    "WireError",
]
