"""``quoteflow watermarks``: publish the source watermark for change topics Debezium writes.

The thin I/O around :mod:`connectors.debezium.watermarks` (where the reasoning
is): one consumer reads Debezium's ``<source>.message`` topics (our heartbeat
messages, decoded with the writer's schema from the registry) and Kafka
Connect's offsets topic (from its beginning: it is compacted, the newest value
per connector wins); whenever a heartbeat is proven acknowledged, the change
topic's end offsets are read *after* that proof and a ``cdc_watermark`` record
goes to ``quoteflow.cdc.watermarks``, in the format ``quoteflow cdc`` writes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connectors.cdc.offsets import end_offsets
from connectors.cdc.sources import CDC_SOURCES
from connectors.cdc.watermarks import source_watermark
from connectors.debezium.watermarks import SourceProgress, committed_lsn, heartbeat_of, offset_key
from connectors.errors import CdcError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics import WATERMARKS, prefixed
from schemas.serde import registry_client, serde_from_settings

log = logging.getLogger("quoteflow.watermarks")

#: How often progress is reported.
REPORT_EVERY_S = 10.0


@dataclass(frozen=True)
class SourceTopics:
    """Where one source's records are: Debezium's change and message topics, its connector."""

    source: str
    change_topic: str
    message_topic: str
    connector: str


def source_topics(settings: Settings) -> list[SourceTopics]:
    prefix = settings.topics.prefix
    by_name = {s.server_name: s for s in CDC_SOURCES}
    return [
        SourceTopics(
            source, prefixed(prefix, by_name[source].topic), f"{prefix}{source}.message",
            settings.watermarks.connectors[source],
        )
        for source in settings.watermarks.sources
    ]


class WatermarkPublisher:
    """Reads heartbeats and Connect's offsets, publishes proven watermarks."""

    def __init__(self, settings: Settings) -> None:
        if settings.schema_registry.url is None:
            raise CdcError(
                "quoteflow watermarks reads Debezium's records through the schema registry:"
                " set schema_registry.url"
            )
        self._settings = settings
        self._kafka = settings.kafka.as_librdkafka_dict()
        self.sources = source_topics(settings)
        self._by_message_topic = {s.message_topic: s for s in self.sources}
        self._by_connector = {s.connector: s for s in self.sources}
        self._offsets_topic = settings.watermarks.connect_offsets_topic
        self._watermark_topic = prefixed(settings.topics.prefix, WATERMARKS)
        self.progress = {s.source: SourceProgress() for s in self.sources}
        self.published = dict.fromkeys(self.progress, 0)
        self.last_moved = dict.fromkeys(self.progress, time.monotonic())
        self.heartbeats_seen = dict.fromkeys(self.progress, 0)
        self._serde = serde_from_settings(settings.schema_registry)
        self._message_reader = AvroDeserializer(registry_client(
            settings.schema_registry.url, basic_auth=settings.schema_registry.basic_auth(),
            timeout_s=settings.schema_registry.request_timeout_s,
        ))  # fmt: skip
        self._consumer = Consumer({
            **self._kafka, "group.id": f"quoteflow-watermarks-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "enable.partition.eof": False,
        })  # fmt: skip
        self._producer = Producer({**self._kafka, "acks": "all", "enable.idempotence": True})

    def start(self) -> None:
        """Check every topic exists, then read heartbeats from now on and offsets from the
        start (one line naming a missing topic and what to do)."""
        wanted = [self._offsets_topic, self._watermark_topic]
        for s in self.sources:
            wanted += [s.change_topic, s.message_topic]
        metadata = self._consumer.list_topics(timeout=10).topics
        missing = [t for t in wanted if t not in metadata or metadata[t].error is not None]
        if missing:
            raise CdcError(
                f"topic(s) {', '.join(missing)} do not exist: `quoteflow topics create` makes"
                " the change and watermark topics; Debezium's <source>.message topics and"
                " Connect's offset.storage.topic (watermarks.connect_offsets_topic) must exist"
                " too (docs/cdc.md, 'Debezium instead, or beside')"
            )
        assignment = []
        for s in self.sources:
            for p, end in end_offsets(self._kafka, s.message_topic).items():
                assignment.append(TopicPartition(s.message_topic, p, end))
        for p in sorted(metadata[self._offsets_topic].partitions):
            assignment.append(TopicPartition(self._offsets_topic, p, 0))
        self._consumer.assign(assignment)

    # -- reading -------------------------------------------------------------------------
    def poll(self, timeout_s: float) -> None:
        """Take in what arrived: heartbeats and committed offsets."""
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self._consumer.consume(500, max(0.0, deadline - time.monotonic()))
            for message in messages:
                self._take(message)
            if not messages or time.monotonic() >= deadline:
                return

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise CdcError(f"cannot read {message.topic()}: {error.str()}")
            return
        topic = message.topic() or ""
        if topic == self._offsets_topic:
            key = offset_key(message.key())
            if key is None or key[0] not in self._by_connector:
                return
            source = self._by_connector[key[0]].source
            if key[1].get("server") != source:
                return
            self.progress[source] = self.progress[source].with_committed(
                committed_lsn(message.value())
            )
            return
        source = self._by_message_topic[topic].source
        try:
            value = self._message_reader(
                message.value(), SerializationContext(topic, MessageField.VALUE)
            )
        except Exception as exc:  # noqa: BLE001 - a poison record is logged, never fatal
            where = {"topic": topic, "offset": message.offset(), "error": str(exc)[:200]}
            log.warning("undecodable Debezium message record", extra=where)
            return
        heartbeat = heartbeat_of(value if isinstance(value, Mapping) else None)
        if heartbeat is not None:
            self.heartbeats_seen[source] += 1
            self.progress[source] = self.progress[source].with_heartbeat(heartbeat)

    # -- publishing ----------------------------------------------------------------------
    def publish_proven(self) -> int:
        """One watermark record per source whose newest proven heartbeat moves it."""
        sent = 0
        for s in self.sources:
            heartbeat = self.progress[s.source].proven()
            if heartbeat is None:
                continue
            # Read after the proof was seen: every acknowledged change is below these.
            acked = end_offsets(self._kafka, s.change_topic)
            record = source_watermark(
                s.source, s.change_topic, heartbeat.watermark_ms, heartbeat.lsn, acked,
                int(time.time() * 1000),
            )  # fmt: skip
            value = self._serde.encode("cdc_watermark", record, topic=self._watermark_topic)
            self._producer.produce(self._watermark_topic, key=s.source.encode(), value=value)
            self.progress[s.source] = self.progress[s.source].published(heartbeat)
            self.published[s.source] = heartbeat.watermark_ms
            self.last_moved[s.source] = time.monotonic()
            sent += 1
        if sent:
            remaining = self._producer.flush(10)
            if remaining:
                raise CdcError(f"Kafka did not acknowledge {remaining} watermark record(s) in 10s")
        return sent

    def stalled(self) -> list[str]:
        """One reason per source whose watermark has not moved for ``watermarks.stall_s``."""
        reasons = []
        now = time.monotonic()
        for s in self.sources:
            if now - self.last_moved[s.source] < self._settings.watermarks.stall_s:
                continue
            progress = self.progress[s.source]
            if not self.heartbeats_seen[s.source]:
                why = (f"no heartbeat on {s.message_topic}: is connector {s.connector} running"
                       " with heartbeat.action.query and message.prefix.include.list?")  # fmt: skip
            elif progress.committed is None:
                why = (f"no committed offset of connector {s.connector} on {self._offsets_topic}"
                       " (is it the worker's offset.storage.topic?)")  # fmt: skip
            else:
                why = (f"Connect's committed offset of {s.connector} is behind the heartbeats"
                       " (offset.flush.interval.ms? a failed task?)")  # fmt: skip
            still = now - self.last_moved[s.source]
            reasons.append(f"{s.source}: watermark stalled {still:.0f}s: {why}")
        return reasons

    def close(self) -> None:
        self._consumer.close()
        self._producer.flush(5)
        self._serde.close()


def run_watermarks(
    settings: Settings, report: Reporter, stop: threading.Event | None = None
) -> dict[str, int]:
    """Publish watermarks until ``stop`` (SIGTERM/SIGINT when run from the main thread)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    publisher = WatermarkPublisher(settings)
    try:
        publisher.start()
        names = ", ".join(f"{s.source} ({s.connector})" for s in publisher.sources)
        report(f"watermarks for {names}, proof from {settings.watermarks.connect_offsets_topic}")
        last_report = time.monotonic()
        while not stop.is_set():
            publisher.poll(settings.watermarks.interval_s)
            publisher.publish_proven()
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                for line in publisher.stalled():
                    log.warning(line)
                for source, at in publisher.published.items():
                    lag = f"lag {time.time() - at / 1000:.1f}s" if at else "none yet"
                    seen = publisher.heartbeats_seen[source]
                    fields = {"source": source, "watermark_ms": at, "heartbeats": seen}
                    log.info("watermark", extra=fields)
                    report(f"{source}: watermark {lag}, {seen} heartbeats read")
    except KafkaException as exc:
        raise CdcError(f"Kafka: {exc}") from exc
    finally:
        publisher.close()
    return dict(publisher.published)
