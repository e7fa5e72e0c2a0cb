"""The core's outputs as the records of ``quoteflow.abandonment.triggers`` and ``.decisions``.

Pure mappings onto the latest schema versions (``abandonment_trigger`` v3, through
its wire value :class:`schemas.wire.AbandonmentTrigger` that the sink decodes too;
``abandonment_decision`` v1), times as epoch milliseconds (the schemas'
``timestamp-millis``). ``fired_at_ms`` is the driver's processing time; every
other field comes from the core, so a replay writes the same records but for it
and the ``replay`` flag.
"""

from __future__ import annotations

from typing import Any

from schemas.wire import AbandonmentTrigger, Offer, QuietHours
from streams.core.model import Decision, Trigger


def wire_trigger(trigger: Trigger, *, fired_at_ms: int, replay: bool,
                 quiet_hours: tuple[str, str] | tuple[str, str, str] | None = None
                 ) -> AbandonmentTrigger:  # fmt: skip
    """The trigger as it travels to the sink; ``quiet_hours`` = the rules' window
    ``(start, end)`` and optionally their default time zone, so the sink can judge quiet
    hours again when the e-mail actually goes out (after an outage it may be hours later)."""
    quote, customer, offer = trigger.quote, trigger.customer, trigger.offer
    if customer.email is None:  # the core never fires without a valid address
        raise ValueError("a trigger without an e-mail address")
    return AbandonmentTrigger(
        trigger_id=trigger.trigger_id,
        quote_id=quote.quote_id,
        quote_ref=quote.quote_ref,
        customer_id=customer.customer_id,
        email=customer.email.strip(),
        first_name=customer.first_name,
        timezone=customer.timezone,
        product_code=quote.product_code,
        channel=quote.channel,
        premium=quote.premium,
        currency=quote.currency,
        offer=Offer(offer.code, offer.description, offer.discount_pct),
        template_id=offer.template_id,
        subject=offer.subject,
        quote_created_at=quote.created_ms,
        deadline_at=trigger.deadline_ms,
        fired_at=fired_at_ms,
        source_watermark_at=trigger.watermark_ms,
        rule_version=trigger.rule_version,
        replay=replay,
        quiet_hours=None if quiet_hours is None else QuietHours(
            quiet_hours[0], quiet_hours[1], quiet_hours[2] if len(quiet_hours) > 2 else None),
    )  # fmt: skip


def trigger_record(trigger: Trigger, *, fired_at_ms: int, replay: bool,
                   quiet_hours: tuple[str, str] | tuple[str, str, str] | None = None
                   ) -> dict[str, Any]:  # fmt: skip
    """The trigger record to encode (:func:`wire_trigger`, encoded once, here)."""
    return wire_trigger(trigger, fired_at_ms=fired_at_ms, replay=replay,
                        quiet_hours=quiet_hours).as_record()  # fmt: skip


def decision_record(decision: Decision, *, replay: bool) -> dict[str, Any]:
    return {
        "decision_id": decision.decision_id,
        "quote_id": decision.quote.quote_id,
        "quote_ref": decision.quote.quote_ref,
        "customer_id": decision.customer_id,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "decided_at": decision.decided_ms,
        "rule_version": decision.rule_version,
        "replay": replay,
    }
