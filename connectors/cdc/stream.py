"""One source database's change stream: replication slot -> events -> Kafka -> confirmed LSN.

The loop reads pgoutput messages as the server pushes them and hands each to
the part that owns it: row changes become Debezium-layout events
(:mod:`connectors.cdc.changes`) produced to Kafka (:mod:`connectors.cdc.producing`,
whose acknowledgements decide what the slot is told: a kill -9 at any moment
loses nothing, the server resends every transaction after the last confirmed
one, with the same LSNs); snapshot watermarks and signals drive the
interleaved snapshot (:mod:`connectors.cdc.interleave`); heartbeats become
source watermarks (:mod:`connectors.cdc.watermark_writer`).

Backpressure: when ``cdc.max_in_flight`` events await acknowledgement, reading
pauses, which bounds both memory and the duplicates a crash can cause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from connectors.cdc import pgoutput as pg
from connectors.cdc.changes import Changes
from connectors.cdc.events import Capture, Position
from connectors.cdc.interleave import Interleave, snapshot_to_run
from connectors.cdc.offsets import end_offsets
from connectors.cdc.producing import Producing
from connectors.cdc.replication import ReplicationConnection
from connectors.cdc.requests import SIGNAL_PREFIX
from connectors.cdc.setup import Prepared, prepare
from connectors.cdc.snapshot import state_path
from connectors.cdc.sources import CdcSource, slot_name
from connectors.cdc.stats import Stats
from connectors.cdc.watermark_writer import WatermarkWriter
from connectors.cdc.watermarks import HEARTBEAT_PREFIX, WATERMARK_PREFIX
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist
from quoteflow.settings import Settings
from quoteflow.topics import WATERMARKS
from quoteflow.topics.catalog import CATALOGUE, TopicSpec
from schemas.serde import Serde

log = logging.getLogger("quoteflow.cdc")

_READ_TIMEOUT_S = 0.1
#: Messages read back to back before the loop's periodic work (status, heartbeats, chunks).
_BURST = 512


@dataclass
class _Run:
    """One run's parts, and where the stream stands between transactions."""

    conn: ReplicationConnection
    producing: Producing
    changes: Changes
    interleave: Interleave
    watermarks: WatermarkWriter | None
    begin: pg.Begin | None = None
    last_commit_lsn: int | None = None

    def position(self, lsn: int) -> Position:
        if self.begin is None:
            raise CdcError("a change outside a transaction in the stream")
        return Position(lsn, self.last_commit_lsn, self.begin.xid, self.begin.commit_us // 1000)


def capture_for(
    source: CdcSource,
    database: str,
    topic: str | None = None,
    catalogue: Sequence[TopicSpec] = CATALOGUE,
) -> Callable[[tuple[str, ...]], Capture]:
    """``source``'s Capture, built once its primary key is known.

    The topic, and so the schemas, come from the catalogue: ``source.topic``,
    or ``topic`` for a table shaped like a catalogue one (the benchmark's copy).
    Another ``catalogue`` captures a table no production topic describes (the
    column-type tests' table of every type).
    """
    name = topic or source.topic
    spec = next((s for s in catalogue if s.name == name), None)
    if spec is None or spec.key_schema is None:
        raise CdcError(f"topic {name} is not an Avro-keyed topic of the catalogue")
    key_schema = spec.key_schema

    def build(primary_key: tuple[str, ...]) -> Capture:
        return Capture(
            schema=source.schema,
            table=source.table,
            topic=spec.name,
            key_schema=key_schema,
            value_schema=spec.value_schema,
            primary_key=primary_key,
            server_name=source.server_name,
            database=database,
            compacted="compact" in spec.cleanup_policy,
        )

    return build


class ChangeStream:
    """Streams one CDC source until ``stop`` is set (or a fatal error)."""

    def __init__(
        self,
        settings: Settings,
        source: CdcSource,
        serde: Serde,
        *,
        topic: str | None = None,
        produce_to: str | None = None,
        watermarks_to: str | None = None,
        latencies_ms: list[float] | None = None,
        catalogue: Sequence[TopicSpec] = CATALOGUE,
    ) -> None:
        """``topic`` names the catalogue topic of a table shaped like one (default: the
        source's own); ``produce_to`` sends the events to another topic, encoded for
        the catalogue topic's subject (benchmarks); ``watermarks_to`` publishes the
        source watermarks to another topic (the catalogue's by default), which also
        keeps them on for a ``produce_to`` stream: a test of its own topics then reads
        only its own stream's watermarks; ``latencies_ms`` collects each
        event's commit-to-acknowledgement time; ``catalogue`` is where the topic's
        schemas are looked up."""
        self._topic = topic
        self._catalogue = catalogue
        self._settings = settings
        self._source = source
        self._serde = serde
        self._produce_to = produce_to
        self._watermarks_to = watermarks_to
        self._latencies = latencies_ms
        self._database = source.database(settings.postgres)
        self.slot = slot_name(settings.cdc.slot_prefix, source.server_name)
        self.stats = Stats()

    # -- set-up -----------------------------------------------------------------
    def prepare(self) -> Prepared:
        conninfo = self._settings.postgres.conninfo(self._database)
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                prepared = prepare(
                    conn,
                    self._source,
                    database=self._database,
                    slot=self.slot,
                    capture_for=capture_for(
                        self._source, self._database, self._topic, self._catalogue
                    ),
                )
        except psycopg.Error as exc:
            raise CdcError(f"database {self._database}: {error_gist(exc)}") from exc
        self._require_topic(self._produce_to or prepared.capture.topic)
        if self._heartbeats:
            self._require_topic(self._watermark_topic)
        return prepared

    @property
    def _heartbeats(self) -> bool:
        """Heartbeats and watermarks, unless off or writing elsewhere (a benchmark's scratch
        topic's offsets must never reach the real watermark topic)."""
        elsewhere = self._produce_to is not None and self._watermarks_to is None
        return self._settings.cdc.heartbeat_interval_s is not None and not elsewhere

    @property
    def _watermark_topic(self) -> str:
        return self._watermarks_to or WATERMARKS

    def _require_topic(self, topic: str) -> None:
        """Fail at start, in one line, rather than at the first change (auto-create is off)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self._settings.kafka.as_librdkafka_dict())
        try:
            metadata = admin.list_topics(topic, timeout=10).topics.get(topic)
        except KafkaException as exc:
            raise CdcError(f"cannot reach Kafka to check topic {topic}: {exc}") from exc
        if metadata is None or metadata.error is not None:
            raise CdcError(f"topic {topic} does not exist: run `quoteflow topics create`")

    # -- the loop ---------------------------------------------------------------
    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> Stats:
        prepared = self.prepare()
        capture = prepared.capture
        log.info(
            "cdc source ready",
            extra={
                "source": self._source.server_name, "slot": self.slot,
                "created_slot": prepared.created_slot,
                "resume_lsn": pg.format_lsn(prepared.confirmed_lsn), "topic": capture.topic,
            },
        )  # fmt: skip
        run = self._parts(prepared, capture)
        self.stats.confirmed_lsn = prepared.confirmed_lsn
        if not prepared.created_slot:
            # Resuming: the slot confirmed the end of the last transaction fully in Kafka, so
            # a redelivered transaction gets the sequence it had the first time.
            run.last_commit_lsn = prepared.confirmed_lsn
        try:
            if run.watermarks is not None:
                # Every watermark record lists every partition, from where the topic ends
                # now: absent would mean "unknown" to a consumer (connectors.cdc.offsets).
                kafka = self._settings.kafka.as_librdkafka_dict()
                run.producing.acked_offsets.update(end_offsets(kafka, run.producing.topic))
            run.conn.start(prepared.slot, prepared.publication)
            if ready is not None:
                ready.set()
            self._loop(stop, run)
        finally:
            run.producing.drain()
            try:
                self._confirm(run)
            except CdcError:
                log.warning("could not send the final status update", exc_info=True)
            run.conn.close()
            run.interleave.close()
            if run.watermarks is not None:
                run.watermarks.close()
        if run.producing.fatal is not None:
            raise CdcError(run.producing.fatal)
        return self.stats

    def _parts(self, prepared: Prepared, capture: Capture) -> _Run:
        """This run's parts, each owning its own state."""
        settings, stats = self._settings, self.stats
        conninfo = settings.postgres.conninfo(self._database)
        producing = Producing(
            settings, self._source, self._serde, capture, stats,
            confirmed_lsn=prepared.confirmed_lsn, produce_to=self._produce_to,
            latencies_ms=self._latencies,
        )  # fmt: skip
        conn = ReplicationConnection(conninfo)
        snapshot = snapshot_to_run(
            prepared, capture, self.state_file, never=settings.cdc.snapshot == "never"
        )
        interleave = Interleave(
            settings.cdc, conninfo, capture, snapshot, self.state_file, stats, slot=self.slot
        )
        interval = settings.cdc.heartbeat_interval_s
        watermarks = None
        if self._heartbeats and interval is not None:
            watermarks = WatermarkWriter(
                conninfo, self._source.server_name, self._serde, stats,
                interval_s=interval, topic=self._watermark_topic,
            )  # fmt: skip
        changes = Changes(capture, self._source.server_name, stats)
        return _Run(conn, producing, changes, interleave, watermarks)

    @property
    def state_file(self) -> Path:
        return state_path(self._settings.cdc, self.slot)

    def _loop(self, stop: threading.Event, run: _Run) -> None:
        cdc = self._settings.cdc
        conn, producing, interleave, watermarks = (
            run.conn, run.producing, run.interleave, run.watermarks
        )  # fmt: skip
        producer, progress = producing.producer, producing.progress
        last_status = time.monotonic()
        max_in_flight = cdc.max_in_flight
        stats = self.stats
        while not stop.is_set() and producing.fatal is None:
            if progress.pending >= max_in_flight:
                producer.poll(0.05)  # let acknowledgements catch up before reading more
            else:
                interleave.maybe_select_chunk(progress.pending)
                if watermarks is not None:
                    watermarks.maybe_heartbeat()
                data = conn.read(0.0)
                if data is None:
                    producer.poll(0)  # nothing to read: a good moment for acknowledgements
                    data = conn.read(interleave.read_timeout(_READ_TIMEOUT_S))
                # A burst: whatever the server has already sent, without the periodic work
                # above between messages (it costs more than a message when done per message).
                burst = 0
                while data is not None:
                    frame = pg.parse_copy_message(data)
                    if frame.end > stats.server_wal_end:
                        stats.server_wal_end = frame.end
                    if isinstance(frame, pg.Keepalive):
                        progress.server_at(frame.end)
                        if frame.reply_requested:
                            last_status = 0.0  # answer now, with no more than is confirmed
                    else:
                        self._handle(run, frame, pg.parse_message(frame.payload))
                    burst += 1
                    if burst % 64 == 0:
                        producer.poll(0)  # serve delivery callbacks; a call has a cost
                    if burst >= _BURST or progress.pending >= max_in_flight or producing.fatal:
                        break
                    data = conn.read(0.0)
            if watermarks is not None and watermarks.pending:
                watermarks.publish(producing)
            if time.monotonic() - last_status >= cdc.status_interval_s:
                self._confirm(run)
                last_status = time.monotonic()

    def _handle(self, run: _Run, frame: pg.XLogData, message: pg.Message) -> None:
        if isinstance(message, pg.Begin):
            run.producing.begin(message.commit_us)
            run.begin = message
        elif isinstance(message, pg.Commit):
            run.producing.commit(message.end_lsn)
            # Debezium's lastCommitLsn is where the COMMIT message starts in the stream:
            # the transaction's end LSN, not its commit record's (checked side by side).
            run.last_commit_lsn = message.end_lsn
            self.stats.transactions += 1
            self.stats.last_commit_ms = message.commit_us // 1000
            run.begin = None
        elif isinstance(message, pg.Relation):
            run.changes.relation(message)
        elif isinstance(message, pg.Insert | pg.Update | pg.Delete | pg.Truncate):
            events = run.changes.events(message, run.position(frame.start))
            self.stats.changes += 1
            run.interleave.changed(events)
            for event in events:
                run.producing.produce(event)
        elif isinstance(message, pg.LogicalMessage):
            if message.prefix == HEARTBEAT_PREFIX:
                if run.watermarks is not None:
                    run.watermarks.read(message, run.producing)
            elif message.prefix == WATERMARK_PREFIX:
                run.interleave.watermark(message, run.position, run.producing)
            elif message.prefix == SIGNAL_PREFIX:
                run.interleave.signal(message, run.producing.txn)

    def _confirm(self, run: _Run) -> None:
        """Send the confirmable position; save snapshot progress the slot now covers."""
        confirmed = run.producing.progress.confirmed
        run.conn.send(pg.standby_status(confirmed, time.time_ns() // 1000))
        self.stats.confirmed_lsn = confirmed
        run.interleave.confirmed(confirmed)
