"""The core's outputs encode with the output topics' schemas and read back the same."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.embedded import EmbeddedSerde
from schemas.wire import AbandonmentTrigger, QuietHours
from streams.core.model import Decision, Outcome, Trigger
from streams.core.records import decision_record, trigger_record, wire_trigger

from .core_helpers import MINUTE, T0, Clock, customer, quote, rules
from .test_detector import run

pytestmark = pytest.mark.unit


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_a_trigger_round_trips_through_its_schema() -> None:
    c = Clock()
    outputs = run([c.customer(customer()), c.quote(quote()), T0 + 31 * MINUTE])
    (trigger,) = outputs
    assert isinstance(trigger, Trigger)
    record = trigger_record(trigger, fired_at_ms=T0 + 31 * MINUTE + 5, replay=False)
    serde = EmbeddedSerde()
    topic = "quoteflow.abandonment.triggers"
    data = serde.encode("abandonment_trigger", record, topic=topic)
    back = serde.decode("abandonment_trigger", data, topic=topic)
    assert back["trigger_id"] == trigger.trigger_id and back["email"] == "ada@example.com"
    assert back["template_id"] == "t-10" and back["subject"] == "Your quote"
    assert back["offer"] == {"code": "TEN", "description": "10% off", "discount_pct": 10.0}
    assert back["deadline_at"] == _at(T0 + 30 * MINUTE)
    assert back["source_watermark_at"] == _at(T0 + 31 * MINUTE)
    assert back["fired_at"] == _at(T0 + 31 * MINUTE + 5)
    assert back["premium"] == trigger.quote.premium and back["replay"] is False


def test_the_wire_trigger_the_processor_writes_is_the_one_the_sink_reads() -> None:
    c = Clock()
    (trigger,) = run([c.customer(customer()), c.quote(quote()), T0 + 31 * MINUTE])
    assert isinstance(trigger, Trigger)
    sent = wire_trigger(trigger, fired_at_ms=T0 + 31 * MINUTE + 5, replay=False,
                        quiet_hours=("21:00", "08:00", "Europe/Paris"))  # fmt: skip
    assert sent.quiet_hours == QuietHours("21:00", "08:00", "Europe/Paris")
    serde, topic = EmbeddedSerde(), "quoteflow.abandonment.triggers"
    data = serde.encode(AbandonmentTrigger.schema, sent.as_record(), topic=topic)
    assert AbandonmentTrigger.from_record(serde.decode(sent.schema, data, topic=topic)) == sent


def test_a_decision_round_trips_through_its_schema() -> None:
    c = Clock()
    outputs = run([c.customer(customer(marketing_consent=False)), c.quote(quote()),
                   T0 + 31 * MINUTE], rules())  # fmt: skip
    (decision,) = outputs
    assert isinstance(decision, Decision) and decision.outcome is Outcome.SUPPRESSED
    serde = EmbeddedSerde()
    topic = "quoteflow.abandonment.decisions"
    record = decision_record(decision, replay=True)
    data = serde.encode("abandonment_decision", record, topic=topic)
    back = serde.decode("abandonment_decision", data, topic=topic)
    assert back["outcome"] == "SUPPRESSED" and back["reason"] == "no marketing consent"
    # Decided when the watermark passed the deadline (the run's clock): T0 + 31 minutes.
    assert back["decided_at"] == _at(T0 + 31 * MINUTE) and back["replay"] is True
    assert back["customer_id"] == 7
