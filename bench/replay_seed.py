"""Writing the replay benchmark's history to the broker, both cores at once.

A million distinct change events take a minute to build and Avro-encode in one
process, so each seeding process takes a share of the partitions (``p % shares
== share``) and writes that share of the customers and quote changes, in
commit order. Partitions are chosen explicitly (:class:`~bench.replay_history.History`),
so a fresh topic's offsets are known without asking the broker: each process
counts its partitions' offsets at every chunk's end and the parent writes the
watermark records from those counts once all changes are acknowledged. The
broker's end offsets are then checked against the counts: a watermark record
naming a wrong offset would make the replay wait or release too early.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from bench import workload as wl
from bench.replay_history import History, QuoteEnvelopes, customer_envelopes, watermark_records
from devstack.errors import BenchError
from quoteflow.settings import Settings
from schemas.serde import serde_from_settings


@dataclass(frozen=True)
class Topics:
    """The benchmark's change and watermark topics (prefixed: its own)."""

    quotes: str
    customers: str
    watermarks: str


@dataclass(frozen=True)
class Share:
    """One seeding process's work; picklable."""

    settings: Settings
    history: History
    topics: Topics
    share: int
    shares: int


@dataclass(frozen=True)
class Seeded:
    """What a share wrote: its customer partitions' ends and, per chunk, its quote partitions'."""

    customer_ends: dict[int, int]
    quote_ends: list[dict[int, int]]


def producer(settings: Settings) -> Producer:
    """As the CDC connector produces (acks=all, idempotent, lz4), batching a little more."""
    return Producer({
        **settings.kafka.as_librdkafka_dict(), "acks": "all", "enable.idempotence": True,
        "compression.type": "lz4", "linger.ms": 20, "batch.size": 1_000_000,
    })  # fmt: skip


class _Out:
    """A producer that waits for room, and remembers the first delivery failure."""

    def __init__(self, settings: Settings) -> None:
        self.producer = producer(settings)
        self.failure: str | None = None

    def _delivered(self, error: KafkaError | None, _message: object) -> None:
        if error is not None and self.failure is None:
            self.failure = str(error)

    def send(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, partition=partition,
                                      on_delivery=self._delivered)  # fmt: skip
                return
            except BufferError:
                self.producer.poll(0.05)

    def flush(self, what: str) -> None:
        left = self.producer.flush(120)
        if self.failure is not None or left:
            raise BenchError(f"seeding {what} failed: {self.failure or f'{left} unacknowledged'}")


def seed_share(job: Share) -> Seeded:
    """Write the customers and quote changes of this share's partitions, in commit order."""
    history, topics, mine = job.history, job.topics, job.share
    serde = serde_from_settings(job.settings.schema_registry)
    out = _Out(job.settings)
    try:
        customer_ends: dict[int, int] = {}
        for customer_id, envelope in customer_envelopes(history):
            p = history.customer_partition(customer_id)
            if p % job.shares != mine:
                continue
            key = serde.encode("crm_customer_key", {"customer_id": customer_id},
                               topic=wl.CUSTOMERS, is_key=True)  # fmt: skip
            value = serde.encode("crm_customer_envelope", envelope, topic=wl.CUSTOMERS)
            out.send(topics.customers, p, key, value)
            customer_ends[p] = customer_ends.get(p, 0) + 1
        envelopes = QuoteEnvelopes(history)
        counts = {p: 0 for p in range(history.quote_partitions) if p % job.shares == mine}
        quote_ends: list[dict[int, int]] = []
        for chunk in history.chunks():
            for k in chunk:
                quote_id = history.quote(k)[0]
                p = history.quote_partition(quote_id)
                if p % job.shares != mine:
                    continue
                key = serde.encode("qms_quote_key", {"quote_id": quote_id}, topic=wl.QUOTES,
                                   is_key=True)  # fmt: skip
                value = serde.encode("qms_quote_envelope", envelopes(k), topic=wl.QUOTES)
                out.send(topics.quotes, p, key, value)
                counts[p] += 1
            quote_ends.append(dict(counts))
            out.producer.poll(0)
        out.flush("the change topics")
        return Seeded(customer_ends, quote_ends)
    finally:
        serde.close()


def _share_main(job: Share) -> Seeded:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C
    return seed_share(job)


def seed(settings: Settings, history: History, topics: Topics, *, shares: int,
         progress: Callable[[str], None]) -> int:  # fmt: skip
    """Write the whole history; returns the change records written."""
    jobs = [Share(settings, history, topics, share, shares) for share in range(shares)]
    if shares == 1:
        seeded = [seed_share(jobs[0])]
    else:
        context = multiprocessing.get_context("spawn")  # librdkafka's threads do not survive fork
        pool = context.Pool(shares)
        try:
            seeded = pool.map(_share_main, jobs)
            pool.close()
        finally:
            # After a failure or Ctrl-C the seeders stop now, before the run's topics are
            # deleted (a producer still writing would bring a deleted topic back).
            pool.terminate()
            pool.join()
    customer_ends = {p: 0 for p in range(history.customer_partitions)}
    quote_ends = [dict.fromkeys(range(history.quote_partitions), 0) for _ in history.chunks()]
    for share in seeded:
        customer_ends.update(share.customer_ends)
        for mine, theirs in zip(quote_ends, share.quote_ends, strict=True):
            mine.update(theirs)
    progress(f"{history.customers + history.events:,} change records written; "
             "now the watermark records")  # fmt: skip
    _write_watermarks(settings, history, topics, customer_ends, quote_ends)
    _check_ends(settings, topics, customer_ends, quote_ends[-1] if quote_ends else {})
    return history.customers + history.events


def _write_watermarks(settings: Settings, history: History, topics: Topics,
                      customer_ends: dict[int, int],
                      quote_ends: Sequence[dict[int, int]]) -> None:  # fmt: skip
    serde = serde_from_settings(settings.schema_registry)
    out = _Out(settings)
    try:
        for source, record in watermark_records(history, customer_ends, quote_ends,
                                                quotes_topic=topics.quotes,
                                                customers_topic=topics.customers):  # fmt: skip
            value = serde.encode("cdc_watermark", record, topic=wl.WATERMARKS)
            out.send(topics.watermarks, 0, source.encode(), value)
        out.flush("the watermark records")
    finally:
        serde.close()


def _check_ends(settings: Settings, topics: Topics, customer_ends: dict[int, int],
                quote_ends: dict[int, int]) -> None:  # fmt: skip
    """The broker's end offsets are the counts the watermark records name."""
    reader = Consumer({**settings.kafka.as_librdkafka_dict(), "group.id": "quoteflow-bench-ends"})
    try:
        for topic, ends in ((topics.customers, customer_ends), (topics.quotes, quote_ends)):
            for partition, count in ends.items():
                high = reader.get_watermark_offsets(TopicPartition(topic, partition), 10)[1]
                if high != count:
                    raise BenchError(f"{topic}[{partition}] ends at {high}, not at the {count} "
                                     "records written: the watermark records would be wrong")
    finally:
        reader.close()


def messages(ends: dict[tuple[str, int], int]) -> int:
    """Records in the partitions ``ends`` lists (all from offset 0: fresh topics)."""
    return sum(ends.values())


def end_offsets(settings: Settings, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """Every partition's end offset of ``topics``, as the broker says now."""
    reader = Consumer({**settings.kafka.as_librdkafka_dict(), "group.id": "quoteflow-bench-ends"})
    try:
        found: dict[tuple[str, int], int] = {}
        metadata: Any = reader.list_topics(timeout=10)
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                found[(topic, partition)] = reader.get_watermark_offsets(
                    TopicPartition(topic, partition), 10)[1]  # fmt: skip
        return found
    finally:
        reader.close()
