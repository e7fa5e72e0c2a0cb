"""The benchmark's input: CDC change events as the connector writes them, and its watermarks.

A *fake* CDC source on purpose: the benchmark measures the processor, so its
input must arrive as fast as the processor can take it, on topics of the
benchmark's own (a prefix), encoded under the real topics' subjects (already
registered by ``quoteflow schemas register``) so nothing new is registered for
them. The event mix is what the funnel sees: mostly new quotes, some accepted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from quoteflow.settings import Settings
from quoteflow.topics import CUSTOMERS as CUSTOMERS  # the driver reads wl.CUSTOMERS etc.
from quoteflow.topics import QUOTES as QUOTES
from quoteflow.topics import WATERMARKS as WATERMARKS
from schemas import examples
from schemas.debezium import zoned_timestamp
from schemas.serde import Serde
from streams.core.changes import customer_change, quote_changes
from streams.core.detector import CustomerState, step
from streams.core.model import Change
from streams.core.rules import Rules

#: One in this many quote events accepts a quote created two events earlier.
ACCEPT_EVERY = 5
#: Seeded customers hold one open quote of each of these products; new ones are for another.
OPEN_PRODUCTS = ("MOTOR-COMP", "HOME-BUILDINGS", "HOME-CONTENTS", "TRAVEL")
OPEN_PER_CUSTOMER = len(OPEN_PRODUCTS)
NEW_PRODUCT = "PET"
#: The bench's rules: one delay, no quiet hours (a run at night would otherwise hold
#: every deadline until morning), no holdout, one offer.
RULES_TOML = """\
version = "bench-1"
[delay]
default_minutes = {delay_minutes}
[holdout]
percent = 0
[quiet_hours]
start = "00:00"
end = "00:00"
[[offers]]
code = "TEN"
description = "10% off your quote"
discount_pct = 10
template_id = "bench-ten"
subject = "Your quote is waiting"
"""


@dataclass(frozen=True)
class Workload:
    """Envelopes (as the connector's Avro records) of customers and quote changes."""

    customers: list[dict[str, Any]]
    quotes: list[dict[str, Any]]


def _iso(ms: int) -> str:
    return zoned_timestamp(datetime.fromtimestamp(ms / 1000, UTC))


def customer_envelope(customer_id: int, *, at_ms: int, lsn: int) -> dict[str, Any]:
    row = examples.customer_value(
        customer_id=customer_id, email=f"c{customer_id}@example.com", first_name="Ada",
        marketing_consent=True,
    )  # fmt: skip
    source = examples.source("customers", "crm", ts_ms=at_ms, lsn=lsn)
    return examples.envelope("c", None, row, source)


def quote_envelope(quote_id: int, customer_id: int, status: str, *, updated_ms: int,
                   lsn: int, op: str = "c") -> dict[str, Any]:  # fmt: skip
    row = examples.quote_value(
        quote_id=quote_id, quote_ref=f"Q-{quote_id}", customer_id=customer_id, status=status,
        premium=Decimal("456.00"), created_at=_iso(updated_ms - 5_000),
        updated_at=_iso(updated_ms),
    )  # fmt: skip
    before = row if op == "u" else None
    return examples.envelope(op, before, row, examples.source(ts_ms=updated_ms, lsn=lsn))


def workload(events: int, customers: int, *, start_ms: int, first_lsn: int = 1_000) -> Workload:
    """``events`` quote changes over ``customers`` customers, 1 ms of commit time apart.

    Four in five events create a QUOTED quote; the fifth accepts the quote created
    two events before it, so states both grow and shrink as in production.
    """
    lsn = first_lsn
    people = []
    for customer_id in range(1, customers + 1):
        lsn += 10
        people.append(customer_envelope(customer_id, at_ms=start_ms, lsn=lsn))
    quotes = []
    for k in range(events):
        lsn += 10
        at = start_ms + k
        if k % ACCEPT_EVERY == ACCEPT_EVERY - 1:
            quote_id, status, op = k - 2, "ACCEPTED", "u"
        else:
            quote_id, status, op = k, "QUOTED", "c"
        customer_id = quote_id % customers + 1
        quotes.append(quote_envelope(quote_id, customer_id, status, updated_ms=at, lsn=lsn, op=op))
    return Workload(people, quotes)


def customers_for(open_quotes: int) -> int:
    """How many customers hold ``open_quotes`` open quotes, ``OPEN_PER_CUSTOMER`` each."""
    return -(-open_quotes // OPEN_PER_CUSTOMER)


def open_states(quotes: int, rules: Rules, *, updated_ms: int) -> Iterator[CustomerState]:
    """Per-customer states holding ``quotes`` open quotes in all, built by the core itself.

    Each customer's quotes are for different products, so none supersedes another
    (and a new quote for ``NEW_PRODUCT`` supersedes none of them).
    """
    products = OPEN_PRODUCTS[:OPEN_PER_CUSTOMER]
    quote_id, lsn = 0, 1_000
    for customer_id in range(1, customers_for(quotes) + 1):
        lsn += 10
        people = customer_change(customer_envelope(customer_id, at_ms=updated_ms, lsn=lsn))
        assert people is not None
        state = step(CustomerState(customer_id), people, updated_ms, updated_ms, rules).state
        for product in products:
            if quote_id >= quotes:
                break
            lsn += 10
            envelope = quote_envelope(quote_id, customer_id, "QUOTED", updated_ms=updated_ms,
                                      lsn=lsn)  # fmt: skip
            envelope["after"]["product_code"] = product
            for change in quote_changes(envelope):
                state = step(state, change, updated_ms, updated_ms, rules).state
            quote_id += 1
        yield state


def decoded_changes(envelopes: Sequence[Mapping[str, Any]]) -> list[Change]:
    changes: list[Change] = []
    for envelope in envelopes:
        if envelope["source"]["table"] == "customers":
            change = customer_change(envelope)
            if change is not None:
                changes.append(change)
        else:
            changes.extend(quote_changes(envelope))
    return changes


class Source:
    """Writes envelopes and watermarks to the bench's topics, like ``quoteflow cdc``."""

    def __init__(self, settings: Settings, serde: Serde, prefix: str) -> None:
        self.settings, self.serde, self.prefix = settings, serde, prefix
        self.producer = Producer({
            **settings.kafka.as_librdkafka_dict(), "acks": "all", "linger.ms": 5,
            "enable.idempotence": True,
        })  # fmt: skip
        self._ends = Consumer({**settings.kafka.as_librdkafka_dict(),
                               "group.id": f"{prefix}ends"})  # fmt: skip

    def encode(self, envelopes: Sequence[Mapping[str, Any]], topic: str) -> list[bytes]:
        schema = "qms_quote_envelope" if topic == QUOTES else "crm_customer_envelope"
        return [self.serde.encode(schema, e, topic=topic) for e in envelopes]

    def produce_raw(self, topic: str, values: Sequence[bytes], keys: Sequence[int], *,
                    key_topic: str, wait: bool = True) -> None:  # fmt: skip
        """Every value to the topic named in full, keyed as the connector keys ``key_topic``."""
        schema = "qms_quote_key" if key_topic == QUOTES else "crm_customer_key"
        field = "quote_id" if key_topic == QUOTES else "customer_id"
        for value, key in zip(values, keys, strict=True):
            encoded = self.serde.encode(schema, {field: key}, topic=key_topic, is_key=True)
            while True:
                try:
                    self.producer.produce(topic, key=encoded, value=value)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        if wait:
            self.producer.flush(60)
        else:
            self.producer.poll(0)

    def end_offsets(self, topic: str) -> dict[int, int]:
        metadata = self._ends.list_topics(topic, timeout=10).topics[topic]
        return {p: self._ends.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in metadata.partitions}  # fmt: skip

    def watermark(self) -> None:
        """One watermark per source: now, with each change topic's end offsets."""
        now_ms = int(time.time() * 1000)
        topic = self.prefix + WATERMARKS
        for source, change_topic in (("qms", QUOTES), ("crm", CUSTOMERS)):
            ends = self.end_offsets(self.prefix + change_topic)
            record = examples.cdc_watermark(
                source=source, topic=self.prefix + change_topic, watermark_ms=now_ms,
                offsets=[{"partition": p, "offset": o} for p, o in sorted(ends.items())],
                emitted_ms=now_ms,
            )  # fmt: skip
            value = self.serde.encode("cdc_watermark", record, topic=WATERMARKS)
            self.producer.produce(topic, key=source.encode(), value=value)
        self.producer.flush(10)

    def close(self) -> None:
        self.producer.flush(10)
        self._ends.close()
