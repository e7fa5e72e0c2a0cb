"""The repartitioning stage: CDC change records to the by-customer topic, in Kafka transactions.

faust has no joins, so quotes and customers meet by being moved to one topic
partitioned by customer id. That move used to be two faust agents, and every
quote change then crossed faust's per-event machinery twice (measured: a faust
agent that only forwards does ~2,500 records/s here, a confluent-kafka loop
~20,000). The move holds no state and needs no table, so it runs here, in a
thread of the worker, as a plain consume -> produce loop over batches
(confluent-kafka, ``read_committed``):

* **Exactly once.** Each batch's forwarded changes, dead letters, markers and
  input offsets commit in one transaction (the offsets through
  ``send_offsets_to_transaction`` with the consumer's group metadata, so a
  zombie of a rebalanced-away member is fenced, KIP-447). On an abortable error
  the transaction is aborted and the batch is read again from the committed
  offsets.
* **Watermark markers** (:mod:`streams.core.watermarks`) go out in the same
  transaction, after the changes they vouch for: visible to the deciders
  exactly when those changes are, never before, and without waiting for a
  later commit to overtake a heartbeat.
* A TRUNCATE (op ``t``: keyless on the quotes topic, under the reserved key on
  the compacted customers topic) names no customer: it goes to *every*
  by-customer partition, keyless like the markers, in the batch's transaction,
  so every deciding task applies it in its place among the changes.
* Workers sharing an ``app_id`` share the change topics' partitions through the
  router's own consumer group (``<app_id>-router``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from quoteflow.deadletter import dead_letter
from quoteflow.settings import Settings
from schemas.errors import SerdeError
from schemas.serde import Serde
from streams.core.changes import ChangeError, customer_change, quote_changes
from streams.core.items import Markers, encode_item
from streams.core.model import Change, TableTruncated
from streams.core.watermarks import Marker, SourceWatermark, newest_ready_markers

log = logging.getLogger("quoteflow.streams.router")

#: Watermark records kept per source to choose markers from.
HISTORY = 64
BATCH = 1_000


@dataclass(frozen=True)
class Topics:
    """The full names the router reads and writes, and the CDC source of each change topic."""

    sources: Mapping[str, str]  # change topic -> source name ("qms", "crm")
    quotes: str
    watermarks: str
    by_customer: str
    dead_letter: str


def dead_letter_record(topic: str, partition: int, offset: int, key: bytes | None,
                       value: bytes | None, *, stage: str, exc: Exception,
                       now_ms: int) -> dict[str, Any]:  # fmt: skip
    """The dead-letter record of an input record that could not be processed, and why."""
    return dead_letter(topic, partition, offset, key, value, stage=f"streams.{stage}",
                       error_type=type(exc).__name__, error_message=str(exc), attempts=1,
                       now_ms=now_ms)  # fmt: skip


def vouched_markers(positions: Mapping[tuple[str, int], int], sources: Mapping[str, str],
                    recent: Mapping[str, Sequence[SourceWatermark]],
                    sent: Mapping[tuple[str, int], int]) -> list[Marker]:  # fmt: skip
    """The markers a router's positions vouch for: the router's decision, kept pure.

    ``positions``: (change topic, partition) -> the offset the router will have
    committed (every record before it forwarded), for the partitions it is assigned
    only; ``sources``: change topic -> source; ``recent``: each source's latest
    watermark records, oldest first; ``sent``: (source, partition) -> the newest
    watermark already sent. A partition a record does not list holds, and markers only
    move forward (:func:`streams.core.watermarks.newest_ready_markers`).
    """
    markers: list[Marker] = []
    for (topic, partition), position in positions.items():
        source = sources[topic]
        if not recent[source]:
            continue
        done = {partition: sent.get((source, partition), 0)}
        markers.extend(newest_ready_markers(recent[source], {partition: position}, done))
    return markers


class Router:
    """One worker's router; :meth:`run` in a thread until ``stop`` is set."""

    def __init__(self, settings: Settings, serde: Serde, topics: Topics, *, app_id: str,
                 partitions: int, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.settings, self.serde, self.topics = settings, serde, topics
        self.partitions, self.clock = partitions, clock
        self.exactly_once = settings.streams.processing_guarantee == "exactly_once"
        kafka = settings.kafka.as_librdkafka_dict()
        session_ms = int(settings.streams.session_timeout_s * 1000)
        self.consumer = Consumer({
            **kafka, "group.id": f"{app_id}-router", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": max(min(3000, session_ms // 3), 100),
        })  # fmt: skip
        producer: dict[str, Any] = {**kafka, "linger.ms": 5, "acks": "all",
                                    "enable.idempotence": True}  # fmt: skip
        if self.exactly_once:
            # One id per process: zombies are fenced through the consumer group's
            # generation (KIP-447), and a dead worker's open transaction is aborted by
            # the broker after this timeout. Until then it holds every by-customer
            # partition's last stable offset, so the deciders wait: keep it short
            # (a batch takes well under a second).
            producer["transactional.id"] = f"{app_id}-router-{uuid.uuid4().hex[:12]}"
            producer["transaction.timeout.ms"] = 10_000
        self.producer = Producer(producer)
        self.watermark_reader = Consumer({**kafka, "group.id": f"{app_id}-router-watermarks",
                                          "enable.auto.commit": False})  # fmt: skip
        self.recent: dict[str, deque[SourceWatermark]] = {
            s: deque(maxlen=HISTORY) for s in topics.sources.values()}  # fmt: skip
        self.sent: dict[tuple[str, int], int] = {}
        self.base: dict[tuple[str, int], int] = {}  # committed offset at assignment
        self.failure: BaseException | None = None
        #: time.monotonic() of the loop's last turn: the worker's liveness checks it.
        self.turned_at = time.monotonic()

    # -- the loop ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Route until ``stop``; a fatal error is kept in :attr:`failure` for the worker."""
        try:
            if self.exactly_once:
                self.producer.init_transactions(30)
            self.consumer.subscribe(list(self.topics.sources), on_assign=self._assigned,
                                    on_revoke=self._revoked)  # fmt: skip
            self.watermark_reader.assign([TopicPartition(self.topics.watermarks, 0,
                                                         OFFSET_BEGINNING)])  # fmt: skip
            while not stop.is_set():
                self.turned_at = time.monotonic()
                messages = self.consumer.consume(BATCH, 0.1)
                self._read_watermarks()
                self._route(messages)
        except Exception as exc:  # noqa: BLE001 - kept for the worker, which crashes with it
            log.error("the router failed", extra={"error": str(exc)[:300]})
            self.failure = exc
        finally:
            self.close()

    def _route(self, messages: Sequence[Message]) -> None:
        out: list[tuple[str, int | None, bytes | None, bytes]] = []
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("router read error", extra={"error": str(error)})
                continue
            out.extend(self._forward(message))
            offsets[(message.topic() or "", message.partition() or 0)] = (message.offset() or 0) + 1
        markers = self._ready_markers(offsets)
        if markers:
            value = encode_item(Markers(tuple(markers)))
            out.extend((self.topics.by_customer, p, None, value) for p in range(self.partitions))
        if not out and not offsets:
            return
        try:
            self._commit(out, offsets)
        except KafkaException as exc:
            error = exc.args[0]
            if not (self.exactly_once and error.txn_requires_abort()):
                raise
            log.warning("router transaction aborted; reading the batch again",
                        extra={"error": str(error)})  # fmt: skip
            self.producer.abort_transaction(30)
            self._rewind()
            return
        for marker in markers:
            self.sent[(marker.source, marker.partition)] = marker.watermark_ms

    def _commit(self, out: Sequence[tuple[str, int | None, bytes | None, bytes]],
                offsets: Mapping[tuple[str, int], int]) -> None:  # fmt: skip
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if self.exactly_once:
            self.producer.begin_transaction()
        for topic, partition, key, value in out:
            self._produce(topic, partition, key, value)
        if self.exactly_once:
            if tps:
                self.producer.send_offsets_to_transaction(
                    tps, self.consumer.consumer_group_metadata(), 30)
            self.producer.commit_transaction(30)
        else:
            self.producer.flush(30)
            if tps:
                self.consumer.commit(offsets=tps, asynchronous=False)

    def _produce(self, topic: str, partition: int | None, key: bytes | None,
                 value: bytes) -> None:  # fmt: skip
        while True:
            try:
                if partition is None:
                    self.producer.produce(topic, key=key, value=value)
                else:
                    self.producer.produce(topic, key=key, value=value, partition=partition)
                return
            except BufferError:
                self.producer.poll(0.05)

    def _forward(self, message: Message) -> list[tuple[str, int | None, bytes | None, bytes]]:
        """The by-customer records of one change record, or its dead letter.

        Only a null value is a tombstone (Debezium's after a delete): an empty one
        is a record that cannot be decoded, and is dead-lettered like any other,
        never dropped without a trace.
        """
        topic, value = message.topic() or "", message.value()
        try:
            changes: Sequence[Change]
            if topic == self.topics.quotes:
                decoded = None if value is None else self.serde.decode(
                    "qms_quote_envelope", value, topic=topic)  # fmt: skip
                changes = quote_changes(decoded)
            else:
                decoded = None if value is None else self.serde.decode(
                    "crm_customer_envelope", value, topic=topic)  # fmt: skip
                change = customer_change(decoded)
                changes = [] if change is None else [change]
        except (SerdeError, ChangeError) as exc:
            stage = "route-quotes" if topic == self.topics.quotes else "route-customers"
            return [self._dead_letter(message, stage, exc)]
        out: list[tuple[str, int | None, bytes | None, bytes]] = []
        for c in changes:
            if isinstance(c, TableTruncated):
                log.warning("a source table was truncated: forwarded to every partition",
                            extra={"table": c.table, "lsn": c.position.lsn})  # fmt: skip
                value = encode_item(c)
                out.extend((self.topics.by_customer, p, None, value)
                           for p in range(self.partitions))  # fmt: skip
            else:
                out.append((self.topics.by_customer, c.customer_id % self.partitions,
                            str(c.customer_id).encode(), encode_item(c)))  # fmt: skip
        return out

    def _dead_letter(self, message: Message, stage: str,
                     exc: Exception) -> tuple[str, int | None, bytes | None, bytes]:  # fmt: skip
        log.warning(
            "record sent to the dead-letter topic",
            extra={"topic": message.topic(), "partition": message.partition(),
                   "offset": message.offset(), "error": str(exc)[:200]},
        )  # fmt: skip
        record = dead_letter_record(
            message.topic() or "", message.partition() or 0, message.offset() or 0,
            message.key(), message.value(), stage=stage, exc=exc,
            now_ms=int(self.clock() * 1000),
        )  # fmt: skip
        value = self.serde.encode("dead_letter", record, topic=self.topics.dead_letter)
        return (self.topics.dead_letter, None, None, value)

    # -- watermarks --------------------------------------------------------------------
    def _read_watermarks(self) -> None:
        for _ in range(1000):
            message = self.watermark_reader.poll(0)
            if message is None:
                return
            if message.error() is not None or not message.value():
                continue
            try:
                record = self.serde.decode("cdc_watermark", message.value() or b"",
                                           topic=self.topics.watermarks)  # fmt: skip
            except SerdeError as exc:
                log.warning("undecodable watermark record", extra={"error": str(exc)[:200]})
                continue
            source = str(record["source"])
            if source in self.recent:
                offsets = {int(o["partition"]): int(o["offset"]) for o in record["offsets"]}
                self.recent[source].append(
                    SourceWatermark(source, int(record["watermark_ms"]), offsets))

    def _ready_markers(self, consumed: Mapping[tuple[str, int], int]) -> list[Marker]:
        """Markers the partitions this router reads can vouch for once this batch commits."""
        for key, position in consumed.items():
            if key in self.base:  # else revoked meanwhile
                self.base[key] = position
        return vouched_markers(self.base, self.topics.sources, self.recent, self.sent)

    # -- rebalancing -------------------------------------------------------------------
    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            self.base[(tp.topic, tp.partition)] = max(tp.offset, 0)
            # Markers already sent for it were another member's: only forward from here.
            self.sent.pop((self.topics.sources[tp.topic], tp.partition), None)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.base.pop((tp.topic, tp.partition), None)

    def _rewind(self) -> None:
        """After an aborted transaction: read again from the committed offsets."""
        assignment = self.consumer.assignment()
        for tp in self.consumer.committed(assignment, timeout=30):
            self.consumer.seek(TopicPartition(tp.topic, tp.partition,
                                              tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            self.base[(tp.topic, tp.partition)] = max(tp.offset, 0)

    def close(self) -> None:
        for closing in (self.consumer.close, self.watermark_reader.close):
            with contextlib.suppress(KafkaException, RuntimeError):  # already closed
                closing()
        self.producer.flush(10)
