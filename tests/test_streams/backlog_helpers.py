"""Producing a large CDC backlog quickly, as ``quoteflow cdc`` would have written it while
the processor was down: change events with commit times spread over the outage, and one
watermark record per source per second of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from schemas import examples
from schemas.debezium import zoned_timestamp
from tests.helpers import end_offsets
from tests.test_streams.test_processor import World

QUOTES = "qms.public.quotes"
CUSTOMERS = "crm.public.customers"
WATERMARKS = "quoteflow.cdc.watermarks"


@dataclass
class Backlog:
    """How many records a backlog wrote."""

    changes: int = 0
    watermarks: int = 0


def _produce(world: World, topic: str, key: bytes, value: bytes, partition: int) -> None:
    while True:
        try:
            world.producer.produce(world.topic(topic), key=key, value=value, partition=partition)
            return
        except BufferError:
            world.producer.poll(0.05)


def produce_backlog(world: World, *, start_s: float, seconds: int, customers: range,
                    quotes_per_s: int, partitions: int, delay_s: int) -> Backlog:  # fmt: skip
    """``seconds`` of CDC output from ``start_s``: new quotes for the customers (all with
    consent) in the first ``seconds - delay_s`` seconds, one in five accepted before its
    deadline, and one watermark per source per second, so by the end of the backlog every
    deadline is behind the watermark. What must be offered is left to the core (replay)."""
    backlog = Backlog()
    ends = {t: end_offsets(world.settings, world.topic(t)) for t in (QUOTES, CUSTOMERS)}
    serde, lsn = world.serde, world.lsn
    people = list(customers)
    for customer_id in people:
        lsn += 10
        row = examples.customer_value(customer_id=customer_id, email=f"c{customer_id}@example.com",
                                      first_name="Ada", marketing_consent=True)  # fmt: skip
        src = examples.source("customers", "crm", ts_ms=int(start_s * 1000), lsn=lsn)
        topic = world.topic(CUSTOMERS)
        partition = customer_id % partitions
        _produce(world, CUSTOMERS,
                 serde.encode("crm_customer_key", {"customer_id": customer_id}, topic=topic,
                              is_key=True),
                 serde.encode("crm_customer_envelope", examples.envelope("c", None, row, src),
                              topic=topic), partition)  # fmt: skip
        ends[CUSTOMERS][partition] += 1
        backlog.changes += 1
    quote_id = 1_000_000
    accepted_later: list[tuple[float, int, int]] = []
    for second in range(seconds):
        now_s = start_s + second
        for k in range(quotes_per_s if second < seconds - delay_s else 0):
            quote_id += 1
            customer_id = people[(second * quotes_per_s + k) % len(people)]
            updated = now_s + k / quotes_per_s
            lsn += 10
            _send_quote(world, quote_id, customer_id, "QUOTED", updated, lsn, "c", ends,
                        partitions)  # fmt: skip
            backlog.changes += 1
            if quote_id % 5 == 0:
                accepted_later.append((updated + delay_s / 2, quote_id, customer_id))
        for at, qid, cid in [a for a in accepted_later if a[0] <= now_s + 1]:
            lsn += 10
            _send_quote(world, qid, cid, "ACCEPTED", at, lsn, "u", ends, partitions,
                        created=at - delay_s / 2)  # fmt: skip
            backlog.changes += 1
            accepted_later.remove((at, qid, cid))
        backlog.watermarks += _watermarks(world, int((now_s + 1) * 1000), ends)
    world.lsn = lsn
    world.producer.flush(60)
    return backlog


def _send_quote(world: World, quote_id: int, customer_id: int, status: str, updated: float,
                lsn: int, op: str, ends: dict[str, dict[int, int]], partitions: int, *,
                created: float | None = None) -> None:  # fmt: skip
    created_s = created if created is not None else updated - 5
    row = examples.quote_value(
        quote_id=quote_id, quote_ref=f"Q-{quote_id}", customer_id=customer_id, status=status,
        premium=Decimal("456.00"),
        created_at=zoned_timestamp(datetime.fromtimestamp(created_s, UTC)),
        updated_at=zoned_timestamp(datetime.fromtimestamp(updated, UTC)),
    )  # fmt: skip
    src = examples.source(ts_ms=int(updated * 1000), lsn=lsn)
    topic = world.topic(QUOTES)
    partition = quote_id % partitions
    _produce(world, QUOTES,
             world.serde.encode("qms_quote_key", {"quote_id": quote_id}, topic=topic,
                                is_key=True),
             world.serde.encode("qms_quote_envelope", examples.envelope(op, None, row, src),
                                topic=topic), partition)  # fmt: skip
    ends[QUOTES][partition] += 1


def publish_watermark_at(world: World, watermark_ms: int) -> None:
    """One watermark per source at ``watermark_ms``, vouching for the change topics' ends."""
    ends = {t: end_offsets(world.settings, world.topic(t)) for t in (QUOTES, CUSTOMERS)}
    _watermarks(world, watermark_ms, ends)
    world.producer.flush(10)


def _watermarks(world: World, watermark_ms: int,
                ends: dict[str, dict[int, int]]) -> int:  # fmt: skip
    topic = world.topic(WATERMARKS)
    for source, change_topic in (("qms", QUOTES), ("crm", CUSTOMERS)):
        record = examples.cdc_watermark(
            source=source, topic=world.topic(change_topic), watermark_ms=watermark_ms,
            offsets=[{"partition": p, "offset": o} for p, o in sorted(ends[change_topic].items())],
            emitted_ms=watermark_ms,
        )  # fmt: skip
        value = world.serde.encode("cdc_watermark", record, topic=topic)
        _produce(world, WATERMARKS, source.encode(), value, 0)
    return 2
