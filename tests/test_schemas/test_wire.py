"""The wire records: any valid trigger or receipt survives encode -> Avro bytes -> decode."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import examples
from schemas.embedded import EmbeddedSerde
from schemas.errors import DecodeError, SerdeError
from schemas.wire import AbandonmentTrigger, DeliveryReceipt, Offer, QuietHours, WireError

pytestmark = pytest.mark.unit

TRIGGERS = "quoteflow.abandonment.triggers"
RECEIPTS = "quoteflow.esp.deliveries"
_ROUND_TRIP = settings(max_examples=200, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

longs = st.integers(-(2**63), 2**63 - 1)
ints = st.integers(-(2**31), 2**31 - 1)
#: timestamp-millis as fastavro can read them back (a datetime: years 1900 to 2200 here).
instants = st.integers(-2_208_988_800_000, 7_258_118_400_000)
#: decimal(12, 2): money with two places.
money = st.integers(-(10**12) + 1, 10**12 - 1).map(lambda n: Decimal(n).scaleb(-2))
maybe_text = st.none() | st.text()

offers = st.builds(Offer, st.text(), st.text(), st.none() | st.floats(allow_nan=False))
quiet = st.builds(QuietHours, st.text(), st.text(), maybe_text)
triggers = st.builds(
    AbandonmentTrigger, trigger_id=st.text(), quote_id=longs, quote_ref=st.text(),
    customer_id=longs, email=st.text(), first_name=st.text(), timezone=st.text(),
    product_code=st.text(), channel=st.text(), premium=money, currency=st.text(),
    offer=offers, quote_created_at=instants, deadline_at=instants, fired_at=instants,
    rule_version=st.text(), template_id=st.text(), subject=st.text(),
    source_watermark_at=instants, replay=st.booleans(), quiet_hours=st.none() | quiet,
)  # fmt: skip
receipts = st.builds(
    DeliveryReceipt, trigger_id=st.text(), provider=st.text(),
    status=st.sampled_from(["SENT", "DUPLICATE", "REJECTED", "FAILED", "UNKNOWN", "EXPIRED"]),
    attempts=ints, first_attempt_at=instants, completed_at=instants, esp_message_id=maybe_text,
    http_status=st.none() | ints, error=maybe_text, request_id=maybe_text,
    customer_id=st.none() | longs, quote_id=st.none() | longs, latency_ms=st.none() | longs,
)  # fmt: skip


@pytest.fixture(scope="module")
def serde() -> EmbeddedSerde:
    return EmbeddedSerde()


@_ROUND_TRIP
@given(trigger=triggers)
def test_any_trigger_survives_the_wire(serde: EmbeddedSerde, trigger: AbandonmentTrigger) -> None:
    data = serde.encode(AbandonmentTrigger.schema, trigger.as_record(), topic=TRIGGERS)
    back = AbandonmentTrigger.from_record(
        serde.decode(AbandonmentTrigger.schema, data, topic=TRIGGERS))
    assert back == trigger


@_ROUND_TRIP
@given(receipt=receipts)
def test_any_receipt_survives_the_wire(serde: EmbeddedSerde, receipt: DeliveryReceipt) -> None:
    data = serde.encode(DeliveryReceipt.schema, receipt.as_record(), topic=RECEIPTS)
    back = DeliveryReceipt.from_record(serde.decode(DeliveryReceipt.schema, data, topic=RECEIPTS))
    assert back == receipt


def test_the_example_trigger_decodes_to_its_value(serde: EmbeddedSerde) -> None:
    record = examples.abandonment_trigger()
    data = serde.encode(AbandonmentTrigger.schema, record, topic=TRIGGERS)
    trigger = AbandonmentTrigger.from_record(
        serde.decode(AbandonmentTrigger.schema, data, topic=TRIGGERS))
    assert trigger.quote_id == record["quote_id"] and trigger.premium == record["premium"]
    assert serde.encode(AbandonmentTrigger.schema, trigger.as_record(), topic=TRIGGERS) == data


def _trigger_record() -> dict[str, Any]:
    return {
        "trigger_id": "q1-r1", "quote_id": 1, "quote_ref": "QF-1", "customer_id": 7,
        "email": "ada@example.com", "first_name": "Ada", "timezone": "Europe/London",
        "product_code": "MOTOR", "channel": "web", "premium": Decimal("412.50"),
        "currency": "GBP", "offer": {"code": "TEN", "description": "10% off"},
        "quote_created_at": datetime(2026, 3, 1, tzinfo=UTC), "deadline_at": 1_772_400_000_000,
        "fired_at": 1_772_400_000_005, "rule_version": "r1",
    }  # fmt: skip


def test_the_schemas_defaults_fill_what_an_older_trigger_lacks() -> None:
    trigger = AbandonmentTrigger.from_record(_trigger_record())
    assert (trigger.template_id, trigger.subject, trigger.source_watermark_at) == ("", "", 0)
    assert trigger.replay is False and trigger.quiet_hours is None
    assert trigger.offer == Offer("TEN", "10% off", None)
    assert trigger.quote_created_at == 1_772_323_200_000  # an aware datetime, as milliseconds


@pytest.mark.parametrize(("change", "message"), [
    ({"quote_id": None}, "field 'quote_id' must be an integer, not NoneType"),
    ({"customer_id": "7"}, "field 'customer_id' must be an integer, not str"),
    ({"replay": 1}, "field 'replay' must be a boolean"),
    ({"premium": 412.5}, "field 'premium' must be a Decimal"),
    ({"fired_at": datetime(2026, 3, 1)}, "field 'fired_at' must be an aware datetime"),
    ({"offer": {"code": "TEN"}}, "abandonment_trigger.offer: required field 'description'"),
    ({"quiet_hours": {"start": "21:00"}}, "quiet_hours: required field 'end' is missing"),
])  # fmt: skip
def test_a_bad_trigger_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(WireError, match=message) as info:
        AbandonmentTrigger.from_record({**_trigger_record(), **change})
    assert "ada@example.com" not in str(info.value)


@pytest.mark.parametrize("field", ["trigger_id", "email", "offer", "fired_at", "rule_version"])
def test_a_trigger_without_a_required_field_is_a_decode_error(field: str) -> None:
    record = _trigger_record()
    del record[field]
    with pytest.raises(WireError, match=f"required field {field!r} is missing"):
        AbandonmentTrigger.from_record(record)


def test_a_wire_error_is_a_poison_message_the_sink_dead_letters() -> None:
    """The sink dead-letters every SerdeError of a trigger it reads: a WireError is one."""
    assert issubclass(WireError, DecodeError) and issubclass(WireError, SerdeError)


def test_a_receipt_status_outside_the_enum_is_refused() -> None:
    receipt = DeliveryReceipt("t", "sendgrid", "SENT", 1, 0, 0)
    with pytest.raises(WireError, match="field 'status' is not one of"):
        DeliveryReceipt.from_record({**receipt.as_record(), "status": "LOST"})
    assert DeliveryReceipt.from_record(receipt.as_record()) == receipt
    assert replace(receipt, status="DUPLICATE").as_record()["status"] == "DUPLICATE"


def test_personal_data_stays_out_of_the_repr() -> None:
    trigger = AbandonmentTrigger.from_record(_trigger_record())
    assert "ada@example.com" not in repr(trigger) and "Ada" not in repr(trigger)
