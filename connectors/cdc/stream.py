"""One source database's change stream: replication slot -> events -> Kafka -> confirmed LSN.

The loop reads pgoutput messages as the server pushes them, turns each change
into Debezium-layout events (:mod:`connectors.cdc.events`), encodes them with
the configured serde and hands them to an idempotent producer (``acks=all``).
Delivery callbacks report each acknowledgement to :class:`~connectors.cdc.progress.Progress`,
and the slot is told only what it allows — so a kill -9 at any moment loses
nothing: the server resends every transaction after the last confirmed one,
with the same LSNs, and consumers can drop what they already have.

Backpressure: when ``cdc.max_in_flight`` events await acknowledgement, reading
pauses, which bounds both memory and the duplicates a crash can cause.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Message, Producer

from connectors.cdc import pgoutput as pg
from connectors.cdc.events import (
    Capture,
    Event,
    Position,
    RowDecoder,
    RowError,
    delete_events,
    insert_events,
    read_events,
    source_block,
    truncate_events,
    update_events,
    without_reserved_keys,
)
from connectors.cdc.heartbeat import sees_all_sessions, write_heartbeat
from connectors.cdc.offsets import end_offsets
from connectors.cdc.progress import Progress, Txn
from connectors.cdc.replication import ReplicationConnection
from connectors.cdc.setup import Prepared, prepare
from connectors.cdc.snapshot import Snapshotter, load_state, new_state, save_state
from connectors.cdc.sources import CdcSource
from connectors.cdc.watermarks import (
    HEARTBEAT_PREFIX,
    SIGNAL_PREFIX,
    WATERMARK_PREFIX,
    WATERMARK_TOPIC,
    Chunk,
    SnapshotState,
    parse_heartbeat,
    parse_signal,
    parse_watermark,
    snapshot_marker,
    source_watermark,
)
from connectors.errors import CdcError
from quoteflow import __version__
from quoteflow.pgerrors import error_gist
from quoteflow.settings import Settings
from quoteflow.topics.catalog import CATALOGUE, TopicSpec
from schemas.errors import SerdeError
from schemas.serde import Serde

log = logging.getLogger("quoteflow.cdc")

_READ_TIMEOUT_S = 0.1
#: Messages read back to back before the loop's periodic work (status, heartbeats, chunks).
_BURST = 512


@dataclass
class Stats:
    """What one stream has done, for logs and tests."""

    transactions: int = 0
    changes: int = 0
    events: int = 0
    acked: int = 0
    skipped_truncates: int = 0
    #: Changes of a row under the truncates' reserved key, held back (connectors.cdc.events).
    reserved_key_rows: int = 0
    snapshot_rows: int = 0
    snapshot_done: bool = False
    watermarks: int = 0
    watermark_ms: int = 0  # the last published source watermark (server clock)
    server_wal_end: int = 0  # the server's WAL end, from its messages: lag_bytes is against it
    confirmed_lsn: int = 0
    last_commit_ms: int = 0

    @property
    def lag_bytes(self) -> int:
        return max(0, self.server_wal_end - self.confirmed_lsn)


@dataclass
class _Run:
    """One run's moving parts and the state of the transaction being read."""

    conn: ReplicationConnection
    producer: Producer
    progress: Progress
    capture: Capture
    snapshot: SnapshotState | None
    decoders: dict[int, RowDecoder | None] = field(default_factory=dict)
    txn: Txn | None = None
    begin: pg.Begin | None = None
    last_commit_lsn: int | None = None
    snapshotter: Snapshotter | None = None
    snapshot_decoder: RowDecoder | None = None
    chunk: Chunk | None = None
    #: (transaction, snapshot state after it): saved once the slot confirms past it.
    checkpoints: list[tuple[Txn, SnapshotState]] = field(default_factory=list)
    #: (heartbeat as an empty transaction, its server clock ms, its LSN), oldest first.
    heartbeats: list[tuple[Txn, int, int]] = field(default_factory=list)
    #: partition -> offset after the last acknowledged change event.
    acked_offsets: dict[int, int] = field(default_factory=dict)
    heartbeat_conn: psycopg.Connection[Any] | None = None
    next_heartbeat: float = 0.0
    #: The delivery callback of the open transaction's records (one per transaction).
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None

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
        self.slot = f"{settings.cdc.slot_prefix}_{source.server_name}"
        self.stats = Stats()
        self._fatal: str | None = None

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
        return self._watermarks_to or WATERMARK_TOPIC

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
        producer = self._producer()
        conn = ReplicationConnection(self._settings.postgres.conninfo(self._database))
        progress = Progress(prepared.confirmed_lsn)
        self.stats.confirmed_lsn = prepared.confirmed_lsn
        state = _Run(conn, producer, progress, capture, self._snapshot_state(prepared, capture))
        if not prepared.created_slot:
            # Resuming: the slot confirmed the end of the last transaction fully in Kafka, so
            # a redelivered transaction gets the sequence it had the first time.
            state.last_commit_lsn = prepared.confirmed_lsn
        try:
            if self._heartbeats:
                # Every watermark record lists every partition, from where the topic ends
                # now: absent would mean "unknown" to a consumer (connectors.cdc.offsets).
                kafka = self._settings.kafka.as_librdkafka_dict()
                state.acked_offsets.update(end_offsets(kafka, self._produce_to or capture.topic))
            conn.start(prepared.slot, prepared.publication)
            if ready is not None:
                ready.set()
            self._loop(stop, state)
        finally:
            self._drain(producer, progress)
            try:
                self._confirm(state)
            except CdcError:
                log.warning("could not send the final status update", exc_info=True)
            conn.close()
            if state.snapshotter is not None:
                state.snapshotter.close()
            if state.heartbeat_conn is not None:
                state.heartbeat_conn.close()
        if self._fatal is not None:
            raise CdcError(self._fatal)
        return self.stats

    @property
    def state_file(self) -> Path:
        state_dir = self._settings.cdc.state_dir
        assert state_dir is not None  # filled in by Settings
        return state_dir / f"{self.slot}.snapshot.json"

    def _snapshot_state(self, prepared: Prepared, capture: Capture) -> SnapshotState | None:
        """A snapshot to run or resume: the initial one of a new slot, or one in progress."""
        if prepared.created_slot:
            if self._settings.cdc.snapshot == "never":
                self.state_file.unlink(missing_ok=True)  # a lost slot's state is meaningless
                return None
            initial = new_state(capture.qualified_name, "initial")
            save_state(self.state_file, initial)  # a crash before the first chunk still resumes
            return initial
        saved = load_state(self.state_file)
        return saved if saved is not None and not saved.done else None

    def _loop(self, stop: threading.Event, run: _Run) -> None:
        cdc = self._settings.cdc
        conn, producer, progress = run.conn, run.producer, run.progress
        last_status = time.monotonic()
        max_in_flight = cdc.max_in_flight
        stats = self.stats
        while not stop.is_set() and self._fatal is None:
            if progress.pending >= max_in_flight:
                producer.poll(0.05)  # let acknowledgements catch up before reading more
            else:
                self._maybe_select_chunk(run)
                self._maybe_heartbeat(run)
                data = conn.read(0.0)
                if data is None:
                    producer.poll(0)  # nothing to read: a good moment for acknowledgements
                    data = conn.read(self._read_timeout(run))
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
                    if burst >= _BURST or progress.pending >= max_in_flight or self._fatal:
                        break
                    data = conn.read(0.0)
            if run.heartbeats:
                self._publish_watermarks(run)
            if time.monotonic() - last_status >= cdc.status_interval_s:
                self._confirm(run)
                last_status = time.monotonic()

    def _read_timeout(self, run: _Run) -> float:
        """How long to wait for the server: not past the moment the next chunk is due."""
        if run.snapshot is None or run.snapshot.done or run.chunk is not None:
            return _READ_TIMEOUT_S
        due = run.snapshotter.next_at if run.snapshotter is not None else 0.0
        return min(_READ_TIMEOUT_S, max(0.0, due - time.monotonic()))

    def _handle(self, run: _Run, frame: pg.XLogData, message: pg.Message) -> None:
        if isinstance(message, pg.Begin):
            run.txn, run.begin = run.progress.begin(), message
            run.on_delivery = self._on_delivery(run, run.txn, message.commit_us)
        elif isinstance(message, pg.Commit):
            if run.txn is None:
                raise CdcError("commit without begin in the replication stream")
            run.progress.commit(run.txn, message.end_lsn)
            # Debezium's lastCommitLsn is where the COMMIT message starts in the stream:
            # the transaction's end LSN, not its commit record's (checked side by side).
            run.last_commit_lsn = message.end_lsn
            self.stats.transactions += 1
            self.stats.last_commit_ms = message.commit_us // 1000
            run.txn = run.begin = run.on_delivery = None
        elif isinstance(message, pg.Relation):
            run.decoders[message.oid] = self._decoder(message, run.capture)
        elif isinstance(message, pg.Insert | pg.Update | pg.Delete | pg.Truncate):
            events = self._events(message, run.decoders, run.capture, run.position(frame.start))
            self.stats.changes += 1
            if run.chunk is not None:
                run.chunk.changed(tuple(e.key.values()) for e in events if e.key is not None)
            for event in events:
                self._produce(run, event)
        elif isinstance(message, pg.LogicalMessage):
            if message.prefix == HEARTBEAT_PREFIX:
                self._heartbeat_read(run, message)
            elif message.prefix == WATERMARK_PREFIX:
                self._watermark(run, message)
            elif message.prefix == SIGNAL_PREFIX:
                self._signal(run, message)

    # -- heartbeats and the source watermark -----------------------------------------
    def _maybe_heartbeat(self, run: _Run) -> None:
        """Write a heartbeat into the source's WAL when one is due (one tiny WAL record); its
        time is bounded by commits stamped but not yet logged (connectors.cdc.heartbeat)."""
        interval = self._settings.cdc.heartbeat_interval_s
        if not self._heartbeats or interval is None or time.monotonic() < run.next_heartbeat:
            return
        run.next_heartbeat = time.monotonic() + interval
        try:
            if run.heartbeat_conn is None or run.heartbeat_conn.closed:
                run.heartbeat_conn = psycopg.connect(
                    self._settings.postgres.conninfo(self._database), autocommit=True
                )
                if not sees_all_sessions(run.heartbeat_conn):
                    log.warning(
                        "the role cannot see other roles' transactions (pg_stat_activity): a"
                        " commit by another role can be missed by the watermark;"
                        " GRANT pg_read_all_stats to the connector's role",
                        extra={"source": self._source.server_name},
                    )
            write_heartbeat(run.heartbeat_conn)
        except psycopg.Error as exc:
            # The stream goes on; only the watermark stalls (and says so in its lag).
            log.warning("heartbeat failed", extra={"error": error_gist(exc)})
            if run.heartbeat_conn is not None:
                run.heartbeat_conn.close()
            run.heartbeat_conn = None

    def _heartbeat_read(self, run: _Run, message: pg.LogicalMessage) -> None:
        """Everything committed before the heartbeat has been read: once it is all in Kafka,
        the watermark can be published (it rides in Progress as an empty transaction)."""
        server_ms = parse_heartbeat(message.content)
        if server_ms is None or run.txn is not None or not self._heartbeats:
            return
        txn = run.progress.begin()
        run.progress.commit(txn, message.lsn)
        run.heartbeats.append((txn, server_ms, message.lsn))

    def _publish_watermarks(self, run: _Run) -> None:
        latest: tuple[int, int] | None = None
        while run.heartbeats:
            txn, server_ms, lsn = run.heartbeats[0]
            if txn.end_lsn is None or run.progress.confirmed < txn.end_lsn:
                break
            run.heartbeats.pop(0)
            latest = (server_ms, lsn)
        if latest is None:
            return  # only the newest watermark that is ready matters
        record = source_watermark(
            self._source.server_name, self._produce_to or run.capture.topic, latest[0], latest[1],
            run.acked_offsets, time.time_ns() // 1_000_000,
        )  # fmt: skip
        try:
            value = self._serde.encode("cdc_watermark", record, topic=WATERMARK_TOPIC)
        except SerdeError as exc:
            raise CdcError(f"cannot encode a watermark: {exc}") from exc
        run.producer.produce(
            self._watermark_topic, key=self._source.server_name.encode(), value=value
        )
        self.stats.watermarks += 1
        self.stats.watermark_ms = latest[0]

    # -- snapshot -----------------------------------------------------------------
    def _maybe_select_chunk(self, run: _Run) -> None:
        """Select the next chunk when a snapshot runs, none is out, and pacing allows."""
        state = run.snapshot
        if state is None or run.chunk is not None or state.done:
            return
        if run.snapshotter is None:
            cdc = self._settings.cdc
            run.snapshotter = Snapshotter(
                self._settings.postgres.conninfo(self._database), run.capture,
                chunk_rows=cdc.snapshot_chunk_rows, rows_per_s=cdc.snapshot_rows_per_s,
            )  # fmt: skip
            run.snapshot_decoder = RowDecoder(run.snapshotter.relation(), run.capture)
            log.info(
                "snapshot running",
                extra={"table": state.table, "kind": state.kind, "snapshot": state.snapshot_id,
                       "resume_after": state.last_key},
            )  # fmt: skip
        if time.monotonic() < run.snapshotter.next_at:
            return
        if run.progress.pending >= self._settings.cdc.max_in_flight // 2:
            return
        assert run.snapshot_decoder is not None
        run.chunk = run.snapshotter.select_chunk(state, state.chunks + 1, run.snapshot_decoder)

    def _watermark(self, run: _Run, message: pg.LogicalMessage) -> None:
        parsed = parse_watermark(message.content)
        chunk, state = run.chunk, run.snapshot
        if parsed is None or chunk is None or state is None or parsed[0] != chunk.chunk_id:
            return  # another process's, or a chunk a crash left behind: its rows were not kept
        if parsed[1] == "low":
            chunk.window_open = True
            return
        decoder = run.snapshot_decoder
        assert decoder is not None
        rows = list(chunk.rows.values())
        now_ms = time.time_ns() // 1_000_000
        position = run.position(message.lsn)
        for index, row in enumerate(rows):
            marker = snapshot_marker(
                state.kind,
                first=state.rows == 0 and index == 0,
                last=chunk.final and index == len(rows) - 1,
            )
            block = source_block(run.capture, position, version=__version__, snapshot=marker)
            for event in read_events(decoder, row, block, now_ms):
                self._produce(run, event)
        self.stats.snapshot_rows += len(rows)
        after = dataclasses.replace(
            state, last_key=chunk.last_key, chunks=state.chunks + 1,
            rows=state.rows + len(rows), done=chunk.final,
        )  # fmt: skip
        assert run.txn is not None  # a watermark is a transactional message
        run.checkpoints.append((run.txn, after))
        run.snapshot, run.chunk = after, None
        if after.done:
            self.stats.snapshot_done = True
            log.info("snapshot complete", extra={"table": after.table, "rows": after.rows})

    def _signal(self, run: _Run, message: pg.LogicalMessage) -> None:
        table = parse_signal(message.content)
        if table != run.capture.qualified_name:
            return
        if run.snapshot is not None and not run.snapshot.done:
            log.warning("snapshot requested while one runs; ignored", extra={"table": table})
            return
        run.snapshot = new_state(table, "incremental")
        run.chunk = None
        self.stats.snapshot_done = False
        # Saved once the slot confirmed past the signal, like a chunk: a crash before
        # that replays the signal itself.
        assert run.txn is not None
        run.checkpoints.append((run.txn, run.snapshot))

    def _decoder(self, relation: pg.Relation, capture: Capture) -> RowDecoder | None:
        if relation.qualified_name != capture.qualified_name:
            log.warning(
                "publication carries a table this source does not capture; ignored",
                extra={"table": relation.qualified_name, "source": self._source.server_name},
            )
            return None
        try:
            return RowDecoder(relation, capture)
        except RowError as exc:
            raise CdcError(str(exc)) from exc

    def _events(
        self,
        message: pg.Insert | pg.Update | pg.Delete | pg.Truncate,
        decoders: dict[int, RowDecoder | None],
        capture: Capture,
        position: Position,
    ) -> list[Event]:
        now_ms = time.time_ns() // 1_000_000
        source = source_block(capture, position, version=__version__)
        if isinstance(message, pg.Truncate):
            truncated = next((d for oid in message.relation_oids if (d := decoders.get(oid))),
                             None)  # fmt: skip
            if truncated is None:
                return []
            events = truncate_events(truncated, source, now_ms)
            if not events:
                self.stats.skipped_truncates += 1
                log.warning(
                    "TRUNCATE not published: the compacted topic refuses records without a"
                    " key, and its key has no reserved value",
                    extra={"table": capture.qualified_name, "topic": capture.topic},
                )
            return events
        decoder = decoders.get(message.relation_oid)
        if decoder is None:
            return []
        try:
            if isinstance(message, pg.Insert):
                events = insert_events(decoder, decoder.row(message.new), source, now_ms)
            elif isinstance(message, pg.Update):
                full_old = message.old_kind == "O" and message.old is not None
                before = decoder.row(message.old) if full_old and message.old else None
                after = decoder.row(message.new, fill_from=before)
                events = update_events(decoder, before, after, source, now_ms)
            else:
                events = delete_events(decoder, decoder.row(message.old), source, now_ms)
        except RowError as exc:
            raise CdcError(f"{exc} (at LSN {pg.format_lsn(position.lsn)})") from exc
        kept = without_reserved_keys(decoder, events)
        if len(kept) != len(events):
            # Held back, not stopped on: the slot must move on, and the customer's quotes
            # then wait for a row and are decided UNMATCHED, which says so.
            self.stats.reserved_key_rows += 1
            log.warning(
                "a row under the truncates' reserved key was not published",
                extra={"table": capture.qualified_name, "lsn": pg.format_lsn(position.lsn)},
            )
        return kept

    def _produce(self, run: _Run, event: Event) -> None:
        capture, progress, producer = run.capture, run.progress, run.producer
        txn = run.txn
        if txn is None or run.on_delivery is None:
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

        progress.sent(txn)
        self.stats.events += 1
        while True:
            try:
                producer.produce(
                    self._produce_to or topic, key=key, value=value, on_delivery=run.on_delivery
                )
                return
            except BufferError:
                producer.poll(0.1)  # librdkafka's queue is full: wait for acknowledgements

    def _on_delivery(
        self, run: _Run, txn: Txn, commit_us: int
    ) -> Callable[[KafkaError | None, Message], None]:
        """The delivery callback for every record of one transaction (built once per
        transaction: a closure per record measurably cost more than producing it)."""
        progress, stats, acked_offsets = run.progress, self.stats, run.acked_offsets
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
                self._fatal = f"Kafka refused a change event for {msg.topic()}: {err}"

        return delivered

    def _confirm(self, run: _Run) -> None:
        """Send the confirmable position; save snapshot progress the slot now covers."""
        progress = run.progress
        run.conn.send(pg.standby_status(progress.confirmed, time.time_ns() // 1000))
        self.stats.confirmed_lsn = progress.confirmed
        while run.checkpoints:
            txn, state = run.checkpoints[0]
            if txn.end_lsn is None or progress.confirmed < txn.end_lsn:
                break
            save_state(self.state_file, state)
            run.checkpoints.pop(0)

    def _drain(self, producer: Producer, progress: Progress) -> None:
        """Wait (bounded) for Kafka to acknowledge what was sent, so it can be confirmed."""
        remaining = producer.flush(self._settings.cdc.shutdown_timeout_s)
        if remaining:
            log.warning(
                "stopping with events unacknowledged; they will be sent again on restart",
                extra={"unacknowledged": remaining, "source": self._source.server_name},
            )
