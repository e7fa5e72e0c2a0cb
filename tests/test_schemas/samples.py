"""Realistic sample records for every schema in the catalogue.

Builders return complete records (every field present, defaults spelt out), so
a round trip must give back exactly what went in. Keyword overrides replace
top-level fields, e.g. ``quote_value(status="ACCEPTED")``. Reused by other
test packages that need valid change events, triggers or dead letters.

Timestamps are timezone-aware; timestamp-millis fields use whole milliseconds
(Avro keeps no more). Some use a non-UTC offset on purpose: Avro stores the
instant, and decoding gives it back in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

Record = dict[str, Any]

#: An address that must never appear in an error message.
SECRET_EMAIL = "jane.doe+quotes@example.com"

CEST = timezone(timedelta(hours=2))


def _merge(record: Record, overrides: dict[str, Any]) -> Record:
    unknown = set(overrides) - set(record)
    if unknown:
        raise KeyError(f"no such field(s) in the sample: {sorted(unknown)}")
    return {**record, **overrides}


# --- QMS quotes -------------------------------------------------------------


def quote_key(quote_id: int = 1_000_042) -> Record:
    """Key of a qms.public.quotes change event."""
    return {"quote_id": quote_id}


def quote_value(**overrides: Any) -> Record:
    """One row of the QMS quotes table."""
    return _merge(
        {
            "quote_id": 1_000_042,
            "quote_ref": "Q-2024-000042",
            "customer_id": 77_001,
            "product_code": "MOTOR-COMP",
            "channel": "web",
            "premium": Decimal("612.37"),
            "currency": "GBP",
            "status": "QUOTED",
            "valid_until": date(2024, 7, 31),
            "created_at": datetime(2024, 7, 1, 9, 15, 3, 123456, tzinfo=UTC),
            "updated_at": datetime(2024, 7, 1, 11, 15, 3, 654321, tzinfo=CEST),
        },
        overrides,
    )


def source(table: str = "quotes", db: str = "qms", **overrides: Any) -> Record:
    """Debezium-style source block of a streamed (not snapshot) change."""
    return _merge(
        {
            "version": "0.1.0",
            "connector": "postgresql",
            "name": db,
            "ts_ms": 1_719_825_303_123,
            "snapshot": "false",
            "db": db,
            "sequence": '["24023800","24023928"]',
            "schema": "public",
            "table": table,
            "txId": 5678,
            "lsn": 24_023_928,
            "xmin": None,
        },
        overrides,
    )


def envelope(
    op: str,
    before: Record | None,
    after: Record | None,
    src: Record,
    transaction: Record | None = None,
) -> Record:
    """A Debezium envelope around ``before``/``after``."""
    return {
        "before": before,
        "after": after,
        "source": src,
        "op": op,
        "ts_ms": src["ts_ms"] + 412,
        "transaction": transaction,
    }


def quote_created() -> Record:
    """Insert of a new quote (op c)."""
    return envelope("c", None, quote_value(), source())


def quote_accepted() -> Record:
    """Update QUOTED -> ACCEPTED, with transaction metadata (op u)."""
    before = quote_value()
    after = quote_value(status="ACCEPTED", updated_at=datetime(2024, 7, 1, 9, 40, 0, 1, tzinfo=UTC))
    transaction = {"id": "5679:24024100", "total_order": 2, "data_collection_order": 1}
    return envelope("u", before, after, source(txId=5679, lsn=24_024_100), transaction)


def quote_deleted() -> Record:
    """Delete (op d): only ``before``."""
    return envelope("d", quote_value(), None, source(txId=5680, lsn=24_024_300))


def quote_snapshot_read() -> Record:
    """Snapshot read (op r): no transaction id or LSN."""
    value = quote_value(quote_id=999, quote_ref="Q-2023-000999", premium=Decimal("0.00"))
    return envelope("r", None, value, source(snapshot="true", txId=None, lsn=None, sequence=None))


def quotes_truncated() -> Record:
    """Truncate (op t): neither before nor after."""
    return envelope("t", None, None, source(txId=5700, lsn=24_030_000))


# --- CRM customers ----------------------------------------------------------


def customer_key(customer_id: int = 77_001) -> Record:
    """Key of a crm.public.customers change event."""
    return {"customer_id": customer_id}


def customer_value(**overrides: Any) -> Record:
    """One row of the CRM customers table."""
    return _merge(
        {
            "customer_id": 77_001,
            "first_name": "Jane",
            "last_name": "Doe",
            "email": SECRET_EMAIL,
            "phone": "+44 20 7946 0958",
            "marketing_consent": True,
            "consent_updated_at": datetime(2023, 11, 2, 8, 0, 0, 5, tzinfo=UTC),
            "timezone": "Europe/London",
            "segment": "young-drivers",
            "created_at": datetime(2021, 3, 14, 15, 9, 26, 535897, tzinfo=UTC),
            "updated_at": datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        },
        overrides,
    )


def customer_created() -> Record:
    """Insert of a customer with every optional column filled."""
    return envelope("c", None, customer_value(), source("customers", "crm"))


def customer_without_contact() -> Record:
    """Update of a customer with no e-mail, phone, segment or consent date (nulls)."""
    after = customer_value(
        email=None, phone=None, segment=None, consent_updated_at=None, marketing_consent=False
    )
    return envelope("u", customer_value(), after, source("customers", "crm"))


# --- quoteflow topics -------------------------------------------------------


def offer(**overrides: Any) -> Record:
    """An offer with a discount."""
    return _merge(
        {"code": "SAVE10", "description": "10 % off your first year", "discount_pct": 10.0},
        overrides,
    )


def abandonment_trigger(**overrides: Any) -> Record:
    """A trigger for quote 1000042."""
    return _merge(
        {
            "trigger_id": "1000042:rules-2024.07.1",
            "quote_id": 1_000_042,
            "quote_ref": "Q-2024-000042",
            "customer_id": 77_001,
            "email": SECRET_EMAIL,
            "first_name": "Jane",
            "timezone": "Europe/London",
            "product_code": "MOTOR-COMP",
            "channel": "web",
            "premium": Decimal("612.37"),
            "currency": "GBP",
            "offer": offer(),
            "quote_created_at": datetime(2024, 7, 1, 9, 15, 3, 123000, tzinfo=UTC),
            "deadline_at": datetime(2024, 7, 1, 11, 15, 3, 123000, tzinfo=CEST),
            "fired_at": datetime(2024, 7, 1, 9, 15, 4, 7000, tzinfo=UTC),
            "rule_version": "rules-2024.07.1",
            "replay": False,
        },
        overrides,
    )


def replayed_trigger_without_discount() -> Record:
    """A sandbox replay trigger whose offer has no discount (null in a union)."""
    return abandonment_trigger(
        offer=offer(code="CALLBACK", description="Talk to us", discount_pct=None),
        premium=Decimal("1234567890.99"),
        replay=True,
    )


def abandonment_decision(**overrides: Any) -> Record:
    """A suppression decision."""
    return _merge(
        {
            "decision_id": "1000043:rules-2024.07.1",
            "quote_id": 1_000_043,
            "quote_ref": "Q-2024-000043",
            "customer_id": 77_002,
            "outcome": "SUPPRESSED",
            "reason": "no marketing consent",
            "decided_at": datetime(2024, 7, 1, 10, 0, 0, 250000, tzinfo=UTC),
            "rule_version": "rules-2024.07.1",
            "replay": False,
        },
        overrides,
    )


def unmatched_decision() -> Record:
    """A decision for a quote whose customer is unknown (null customer id)."""
    return abandonment_decision(customer_id=None, outcome="UNMATCHED", reason="customer unknown")


def delivery_receipt(**overrides: Any) -> Record:
    """A successful send."""
    return _merge(
        {
            "trigger_id": "1000042:rules-2024.07.1",
            "provider": "sendgrid",
            "status": "SENT",
            "esp_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "http_status": 202,
            "attempts": 1,
            "first_attempt_at": datetime(2024, 7, 1, 9, 15, 5, 0, tzinfo=UTC),
            "completed_at": datetime(2024, 7, 1, 9, 15, 5, 380000, tzinfo=UTC),
            "error": None,
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
        completed_at=datetime(2024, 7, 1, 9, 20, 5, 0, tzinfo=UTC),
        error="ConnectTimeout after 5 attempts",
    )


def dead_letter(**overrides: Any) -> Record:
    """A change event the processor could not decode."""
    return _merge(
        {
            "source_topic": "qms.public.quotes",
            "source_partition": 3,
            "source_offset": 1_234_567_890_123,
            "key": b"\xc3\x01\x00\xff",
            "value": bytes(range(256)),
            "headers": [
                {"key": "traceparent", "value": b"00-4bf92f3577b34da6-00f067aa0ba902b7-01"},
                {"key": "retry", "value": None},
                {"key": "retry", "value": b""},
            ],
            "stage": "processor",
            "error_type": "DecodeError",
            "error_message": "value of topic 'qms.public.quotes': empty message",
            "attempts": 1,
            "failed_at": datetime(2024, 7, 1, 9, 15, 5, 1000, tzinfo=UTC),
        },
        overrides,
    )


def tombstone_dead_letter() -> Record:
    """A dead letter for a message without key, value or headers."""
    return dead_letter(key=None, value=None, headers=[])


#: Sample builders per schema name: every schema has at least one, most several.
SAMPLES: dict[str, tuple[Callable[[], Record], ...]] = {
    "qms_quote_key": (quote_key,),
    "qms_quote_envelope": (
        quote_created,
        quote_accepted,
        quote_deleted,
        quote_snapshot_read,
        quotes_truncated,
    ),
    "crm_customer_key": (customer_key,),
    "crm_customer_envelope": (customer_created, customer_without_contact),
    "abandonment_trigger": (abandonment_trigger, replayed_trigger_without_discount),
    "abandonment_decision": (abandonment_decision, unmatched_decision),
    "esp_delivery_receipt": (delivery_receipt, failed_receipt),
    "dead_letter": (dead_letter, tombstone_dead_letter),
}


def all_samples() -> list[tuple[str, str, Record]]:
    """(schema name, sample name, record) for every sample."""
    return [
        (schema_name, build.__name__, build())
        for schema_name, builders in SAMPLES.items()
        for build in builders
    ]
