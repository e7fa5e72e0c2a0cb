"""Realistic example records for every schema in the shipped catalogue.

For documentation, tests and ``quoteflow smoke`` (which sends one example of
every schema through the broker):

* :func:`example` (``example("abandonment_trigger")``) builds *the* example
  record of a schema; :data:`EXAMPLES` maps every schema name to its builder.
* :data:`VARIANTS` adds the other shapes worth trying (a delete, a snapshot
  read, nulls in optional fields, a sandbox replay, ...), the first of each
  being the one :data:`EXAMPLES` holds; :func:`all_examples` lists them all.
* The builders (one module per topic: :mod:`.quotes`, :mod:`.customers`,
  :mod:`.triggers`, :mod:`.decisions`, :mod:`.receipts`, :mod:`.dead_letters`,
  :mod:`.watermarks`; the Debezium frame in :mod:`.envelope`) take keyword
  overrides that replace top-level fields, e.g. ``quote_value(status="ACCEPTED")``;
  unknown field names raise :class:`KeyError`.

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
``example.com`` domain. Importing this package does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from schemas.errors import SchemaNotFound
from schemas.examples.common import EXAMPLE_EMAIL, Record
from schemas.examples.customers import (
    customer_created,
    customer_key,
    customer_snapshot_last,
    customer_value,
    customer_without_contact,
)
from schemas.examples.dead_letters import dead_letter, tombstone_dead_letter
from schemas.examples.decisions import abandonment_decision, unmatched_decision
from schemas.examples.envelope import envelope, source
from schemas.examples.quotes import (
    quote_accepted,
    quote_created,
    quote_deleted,
    quote_key,
    quote_snapshot_read,
    quote_value,
    quotes_truncated,
)
from schemas.examples.receipts import delivery_receipt, failed_receipt
from schemas.examples.triggers import (
    abandonment_trigger,
    offer,
    replayed_trigger_without_discount,
)
from schemas.examples.watermarks import cdc_watermark, idle_source_watermark

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


__all__ = [
    "EXAMPLES",
    "EXAMPLE_EMAIL",
    "VARIANTS",
    "Record",
    "abandonment_decision",
    "abandonment_trigger",
    "all_examples",
    "cdc_watermark",
    "customer_created",
    "customer_key",
    "customer_snapshot_last",
    "customer_value",
    "customer_without_contact",
    "dead_letter",
    "delivery_receipt",
    "envelope",
    "example",
    "failed_receipt",
    "idle_source_watermark",
    "offer",
    "quote_accepted",
    "quote_created",
    "quote_deleted",
    "quote_key",
    "quote_snapshot_read",
    "quote_value",
    "quotes_truncated",
    "replayed_trigger_without_discount",
    "source",
    "tombstone_dead_letter",
    "unmatched_decision",
]
