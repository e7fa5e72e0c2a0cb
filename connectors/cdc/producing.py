"""Producing a stream's change events to Kafka, and what their acknowledgements let it confirm.

Events go to an idempotent producer (``acks=all``). Delivery callbacks report
each acknowledgement to :class:`~connectors.cdc.progress.Progress`, which is
what the slot may be told, so a kill -9 at any moment loses nothing: the
server resends every transaction after the last confirmed one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from connectors.cdc.events import Capture, Event
from connectors.cdc.progress import Progress, Txn
from connectors.cdc.sources import CdcSource
from connectors.cdc.stats import Stats
from connectors.errors import CdcError
from quoteflow.settings import Settings
from schemas.errors import SerdeError
from schemas.serde import Serde

log = logging.getLogger("quoteflow.cdc")


class Producing:
    """One run's producer, the open transaction's records, and their acknowledgements.

    It owns the :class:`Progress` (the confirmable LSN), the offset after the last
    acknowledged event of each partition (the watermark records list them), and
    the first delivery Kafka refused for good (``fatal``: the stream then stops).
    """

    def __init__(
        self,
        settings: Settings,
        source: CdcSource,
        serde: Serde,
        capture: Capture,
        stats: Stats,
        *,
        confirmed_lsn: int,
        produce_to: str | None = None,
        latencies_ms: list[float] | None = None,
    ) -> None:
        """``produce_to`` sends every event to that topic instead of its own (benchmarks);
        ``latencies_ms`` collects each event's commit-to-acknowledgement time."""
        self._settings, self._source, self._serde = settings, source, serde
        self._capture, self._stats = capture, stats
        self._produce_to, self._latencies = produce_to, latencies_ms
        self.producer = self._producer()
        self.progress = Progress(confirmed_lsn)
        #: partition -> offset after the last acknowledged change event.
        self.acked_offsets: dict[int, int] = {}
        #: The first delivery Kafka refused: the stream stops on it.
        self.fatal: str | None = None
        #: The transaction being read, if any.
        self.txn: Txn | None = None
        #: The delivery callback of the open transaction's records (one per transaction).
        self._on_delivery: Callable[[KafkaError | None, Message], None] | None = None

    @property
    def topic(self) -> str:
        """Where the change events go."""
        return self._produce_to or self._capture.topic

    def _producer(self) -> Producer:
        conf: dict[str, Any] = {
            **self._settings.kafka.as_librdkafka_dict(),
            "client.id": f"quoteflow-cdc-{self._source.server_name}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self._settings.cdc.linger_ms,
            "compression.type": "lz4",
        }
        return Producer(conf)

    def begin(self, commit_us: int) -> Txn:
        """A source transaction starts: its records share one delivery callback."""
        self.txn = self.progress.begin()
        self._on_delivery = self._delivery_callback(self.txn, commit_us)
        return self.txn

    def commit(self, end_lsn: int) -> None:
        """The open transaction ends at ``end_lsn``: confirmable once all of it is acknowledged."""
        if self.txn is None:
            raise CdcError("commit without begin in the replication stream")
        self.progress.commit(self.txn, end_lsn)
        self.txn = self._on_delivery = None

    def produce(self, event: Event) -> None:
        """Encode ``event`` and hand it to the producer, within the open transaction."""
        capture, txn = self._capture, self.txn
        if txn is None or self._on_delivery is None:
            raise CdcError("an event outside a transaction in the stream")
        topic = event.topic
        try:
            key = (
                None
                if event.key is None
                else self._serde.encode(capture.key_schema, event.key, topic=topic, is_key=True)
            )
            value = (
                None
                if event.value is None
                else self._serde.encode(capture.value_schema, event.value, topic=topic)
            )
        except SerdeError as exc:
            raise CdcError(f"cannot encode a change of {topic}: {exc}") from exc

        self.progress.sent(txn)
        self._stats.events += 1
        producer = self.producer
        while True:
            try:
                producer.produce(
                    self._produce_to or topic, key=key, value=value, on_delivery=self._on_delivery
                )
                return
            except BufferError:
                producer.poll(0.1)  # librdkafka's queue is full: wait for acknowledgements

    def _delivery_callback(
        self, txn: Txn, commit_us: int
    ) -> Callable[[KafkaError | None, Message], None]:
        """The delivery callback for every record of one transaction (built once per
        transaction: a closure per record measurably cost more than producing it)."""
        progress, stats, acked_offsets = self.progress, self._stats, self.acked_offsets
        latencies = self._latencies

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                stats.acked += 1
                partition, offset = msg.partition(), msg.offset()
                if (
                    partition is not None
                    and offset is not None
                    and offset + 1 > acked_offsets.get(partition, 0)
                ):
                    acked_offsets[partition] = offset + 1
                progress.acked(txn)
                stats.confirmed_lsn = progress.confirmed
                if latencies is not None:
                    latencies.append(time.time_ns() / 1e6 - commit_us / 1e3)
            else:
                progress.failed(txn)
                self.fatal = f"Kafka refused a change event for {msg.topic()}: {err}"

        return delivered

    def drain(self) -> None:
        """Wait (bounded) for Kafka to acknowledge what was sent, so it can be confirmed."""
        remaining = self.producer.flush(self._settings.cdc.shutdown_timeout_s)
        if remaining:
            log.warning(
                "stopping with events unacknowledged; they will be sent again on restart",
                extra={"unacknowledged": remaining, "source": self._source.server_name},
            )
