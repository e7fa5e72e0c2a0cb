"""Realistic example records for every schema in the shipped catalogue.

For documentation, tests and ``quoteflow smoke`` (which sends one example of
every schema through the broker):

* :func:`example` (``example("abandonment_trigger")``) builds *the* example
  record of a schema; :data:`EXAMPLES` maps every schema name to its builder.
* :data:`VARIANTS` adds the other shapes worth trying (a delete, a snapshot
  read, nulls in optional fields, a sandbox replay, ...), the first of each
  being the one :data:`EXAMPLES` holds; :func:`all_examples` lists them all.
* The builders below take keyword overrides that replace top-level fields,
  e.g. ``quote_value(status="ACCEPTED")``; unknown field names raise
  :class:`KeyError`.

Every record is complete for the *latest* version of its schema: every field
present, defaults spelt out, so an encode/decode round trip gives back exactly
what went in (a unit test holds every example to that). Timestamps of our
own records (triggers, decisions, receipts, dead letters) are timezone-aware
datetimes in whole milliseconds (timestamp-millis keeps no more); some use a
non-UTC offset on purpose: Avro stores the instant, and decoding gives it back
in UTC, which compares equal. The timestamptz columns of the CDC rows are
Debezium ZonedTimestamp *strings* (``"2024-07-01T09:15:03.123456Z"``), built
from aware datetimes with :func:`schemas.debezium.zoned_timestamp` just as the
CDC connector builds them. Money is :class:`~decimal.Decimal` with the schema's
scale. Each call builds a fresh record, so callers may mutate what they get.

The people in the examples are fictitious; e-mail addresses use the reserved
``example.com`` domain. Importing this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from schemas.debezium import zoned_timestamp
from schemas.errors import SchemaNotFound

#: A record as the serde takes and returns it: field name to Python value.
Record = dict[str, Any]

#: The customer's e-mail address in the examples. Tests use it to check that
#: error messages never echo personal data.
EXAMPLE_EMAIL = "jane.doe+quotes@example.com"

_CEST = timezone(timedelta(hours=2))


def _merge(record: Record, overrides: dict[str, Any]) -> Record:
    unknown = set(overrides) - set(record)
    if unknown:
        raise KeyError(f"no such field(s) in the example: {sorted(unknown)}")
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
            "channel": "WEB",
            "premium": Decimal("612.37"),
            "currency": "GBP",
            "status": "QUOTED",
            "valid_until": date(2024, 7, 31),
            "created_at": zoned_timestamp(datetime(2024, 7, 1, 9, 15, 3, 123456, tzinfo=UTC)),
            # A CEST wall-clock time on purpose: it becomes "2024-07-01T09:15:03.654321Z".
            "updated_at": zoned_timestamp(datetime(2024, 7, 1, 11, 15, 3, 654321, tzinfo=_CEST)),
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
    after = quote_value(
        status="ACCEPTED",
        updated_at=zoned_timestamp(datetime(2024, 7, 1, 9, 40, 0, 1, tzinfo=UTC)),
    )
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
            "email": EXAMPLE_EMAIL,
            "phone": "+44 20 7946 0958",
            "marketing_consent": True,
            "consent_updated_at": zoned_timestamp(datetime(2023, 11, 2, 8, 0, 0, 5, tzinfo=UTC)),
            "timezone": "Europe/London",
            "segment": "young-drivers",
            "created_at": zoned_timestamp(datetime(2021, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)),
            "updated_at": zoned_timestamp(datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)),
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


def customer_snapshot_last() -> Record:
    """The last row of an initial snapshot (op r, snapshot "last")."""
    return envelope(
        "r",
        None,
        customer_value(customer_id=77_999, first_name="Ola", last_name="Nordmann", email=None),
        source("customers", "crm", snapshot="last", txId=None, lsn=None, sequence=None),
    )


# --- quoteflow topics -------------------------------------------------------


def offer(**overrides: Any) -> Record:
    """An offer with a discount."""
    return _merge(
        {"code": "SAVE10", "description": "10 % off your first year", "discount_pct": 10.0},
        overrides,
    )


def abandonment_trigger(**overrides: Any) -> Record:
    """The trigger for quote 1000042, an hour after it was made."""
    return _merge(
        {
            "trigger_id": "1000042:rules-2024.07.1",
            "quote_id": 1_000_042,
            "quote_ref": "Q-2024-000042",
            "customer_id": 77_001,
            "email": EXAMPLE_EMAIL,
            "first_name": "Jane",
            "timezone": "Europe/London",
            "product_code": "MOTOR-COMP",
            "channel": "WEB",
            "premium": Decimal("612.37"),
            "currency": "GBP",
            "offer": offer(),
            "template_id": "d-motor-10",
            "subject": "Still thinking about your car insurance?",
            "quote_created_at": datetime(2024, 7, 1, 9, 15, 3, 123000, tzinfo=UTC),
            "deadline_at": datetime(2024, 7, 1, 12, 15, 3, 123000, tzinfo=_CEST),
            "fired_at": datetime(2024, 7, 1, 10, 15, 4, 7000, tzinfo=UTC),
            "source_watermark_at": datetime(2024, 7, 1, 10, 15, 3, 900000, tzinfo=UTC),
            "rule_version": "rules-2024.07.1",
            "replay": False,
            "quiet_hours": {"start": "21:00", "end": "08:00",
                            "fallback_timezone": "Europe/London"},
        },
        overrides,
    )


def replayed_trigger_without_discount() -> Record:
    """A sandbox replay trigger whose offer has no discount (null in a union)."""
    return abandonment_trigger(
        offer=offer(code="CALLBACK", description="Talk to us", discount_pct=None),
        premium=Decimal("1234567890.99"),
        replay=True,
        quiet_hours=None,
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
            "decided_at": datetime(2024, 7, 1, 10, 30, 0, 250000, tzinfo=UTC),
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
            "error_message": (
                "value of topic 'qms.public.quotes': not Avro single-object encoding: "
                "starts with 0001, expected c301"
            ),
            "attempts": 1,
            "failed_at": datetime(2024, 7, 1, 9, 15, 5, 1000, tzinfo=UTC),
        },
        overrides,
    )


def tombstone_dead_letter() -> Record:
    """A dead letter for a message without key, value or headers."""
    return dead_letter(key=None, value=None, headers=[])


def cdc_watermark(**overrides: Any) -> Record:
    """The QMS change topic is complete up to a heartbeat at 09:15:04 UTC."""
    return _merge(
        {
            "source": "qms",
            "topic": "qms.public.quotes",
            "watermark_ms": 1_719_825_304_000,
            "lsn": 24_024_512,
            "offsets": [{"partition": 0, "offset": 1_042}, {"partition": 3, "offset": 77}],
            "emitted_ms": 1_719_825_304_180,
        },
        overrides,
    )


def idle_source_watermark() -> Record:
    """A source with no change yet: complete up to the heartbeat with nothing to read."""
    return cdc_watermark(source="crm", topic="crm.public.customers", offsets=[])


#: Every example per schema name, the canonical one first.
VARIANTS: Mapping[str, tuple[Callable[[], Record], ...]] = MappingProxyType(
    {
        "abandonment_decision": (abandonment_decision, unmatched_decision),
        "abandonment_trigger": (abandonment_trigger, replayed_trigger_without_discount),
        "crm_customer_envelope": (
            customer_created,
            customer_without_contact,
            customer_snapshot_last,
        ),
        "crm_customer_key": (customer_key,),
        "cdc_watermark": (cdc_watermark, idle_source_watermark),
        "dead_letter": (dead_letter, tombstone_dead_letter),
        "esp_delivery_receipt": (delivery_receipt, failed_receipt),
        "qms_quote_envelope": (
            quote_created,
            quote_accepted,
            quote_deleted,
            quote_snapshot_read,
            quotes_truncated,
        ),
        "qms_quote_key": (quote_key,),
    }
)

#: The example builder of every schema name.
EXAMPLES: Mapping[str, Callable[[], Record]] = MappingProxyType(
    {name: builders[0] for name, builders in VARIANTS.items()}
)


def example(name: str) -> Record:
    """A fresh example record of schema ``name``, valid for its latest version."""
    try:
        build = EXAMPLES[name]
    except KeyError:
        raise SchemaNotFound(
            f"no example for schema {name!r}; examples exist for: {', '.join(sorted(EXAMPLES))}"
        ) from None
    return build()


def all_examples() -> list[tuple[str, str, Record]]:
    """``(schema name, builder name, record)`` for every variant of every schema."""
    return [
        (schema_name, build.__name__, build())
        for schema_name, builders in VARIANTS.items()
        for build in builders
    ]
