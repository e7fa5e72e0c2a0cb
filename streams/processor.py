"""The live driver: the detection core inside a faust app (``quoteflow process``).

Topology (every topic name takes ``topics.prefix``):

* The router (:mod:`streams.router`, a confluent-kafka thread of the worker)
  reads the CDC change topics, decodes them (undecodable records go to the
  dead-letter topic, with the reason) and forwards each change to
  ``<app_id>-by-customer``, partitioned by customer id: faust has no joins, so
  quotes and customers meet by being co-partitioned. With the changes, in the
  same transaction, it sends the watermark *markers* its positions vouch for
  (:mod:`streams.core.watermarks`).
* A faust timer sends a *tick* with the wall clock to the by-customer
  partitions this worker decides.
* ``decide`` (the faust agent) reads the by-customer topic: changes, markers and
  ticks go through :func:`streams.core.detector.step` on the customer's state,
  kept in a RocksDB table with a changelog; triggers and decisions go to their
  topics.

Exactly once: with ``processing_guarantee = "exactly_once"`` every send made
while an event is processed joins that event's partition's transaction
(:mod:`streams.transactions`), so outputs, state and input offsets commit
together; the router's forwards commit with its input offsets. Ticks are sent
outside transactions: harmless to repeat, and they carry no data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faust

from quoteflow.liveness import Heartbeat
from quoteflow.settings import Settings
from quoteflow.topics import (
    CHANGE_TOPICS,
    CUSTOMERS,
    DEAD_LETTER,
    DECISIONS,
    QUOTES,
    TRIGGERS,
    WATERMARKS,
)
from quoteflow.topics.catalog import stream_partitions
from schemas.serde import Serde, serde_from_settings
from streams.app import create_app, raw_topic
from streams.core.detector import CustomerState, Step, next_due, step
from streams.core.due import DueIndex
from streams.core.items import Item, Markers, Tick, decode_item, encode_item
from streams.core.model import Change, Decision, Output, TableTruncated, Trigger
from streams.core.records import decision_record, trigger_record
from streams.core.rules import Rules
from streams.core.state_codec import (
    StateFormatError,
    decode_state,
    decode_truncations,
    encode_state,
    encode_truncations,
)
from streams.core.watermarks import Marker, Watermarks
from streams.faust_patches import apply_patches
from streams.layout import check_watermark_topic, expected_watermarks, partition_counts
from streams.router import Router, Topics, dead_letter_record

log = logging.getLogger("quoteflow.streams")

#: How long the worker's consumer lets the broker hold a fetch with nothing new (faust: 1.5 s).
FETCH_MAX_WAIT_MS = 100
#: A router loop turn longer than this (one batch routed in one transaction) means it is
#: stuck: the worker stops proving liveness (``health.file``).
ROUTER_STALL_S = 30.0
#: Due customers decided per event (a tick or a marker); the rest at the next one.
MAX_DUE_PER_EVENT = 256
#: The change topic of each CDC source, as the watermark records name sources.
SOURCES = CHANGE_TOPICS


@dataclass
class _Partitions:
    """What this worker knows of the by-customer partitions it decides (in memory)."""

    due: dict[int, DueIndex] = field(default_factory=dict)  # partition -> its customers' due
    indexed: set[int] = field(default_factory=set)
    held_since: dict[int, float] = field(default_factory=dict)
    #: Each partition's markers as the table holds them: read once, then kept in step.
    marks: dict[int, Watermarks] = field(default_factory=dict)


class Processor:
    """The faust app and its parts; build with :func:`build_processor`."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        serde: Serde,
        *,
        app_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.rules, self.serde, self.clock = settings, rules, serde, clock
        self.heartbeat = Heartbeat(settings.health.file)
        prefix = settings.topics.prefix
        self.names = {n: prefix + n for n in (QUOTES, CUSTOMERS, TRIGGERS, DECISIONS,
                                              WATERMARKS, DEAD_LETTER)}  # fmt: skip
        self.partitions = stream_partitions(settings.topics.partitions)
        self.app = create_app(
            settings, app_id=app_id,
            topic_partitions=self.partitions,
            broker_commit_interval=settings.streams.commit_interval_s,
            broker_session_timeout=settings.streams.session_timeout_s,
            broker_heartbeat_interval=min(3.0, settings.streams.session_timeout_s / 3),
            producer_linger=0.05, producer_max_batch_size=512 * 1024,
            stream_buffer_maxsize=4096,
            consumer_auto_offset_reset="earliest",
        )  # fmt: skip
        app = self.app
        self.by_customer = raw_topic(
            app, f"{app.conf.id}-by-customer", partitions=self.partitions, internal=True
        )
        self.triggers = raw_topic(app, self.names[TRIGGERS])
        self.decisions = raw_topic(app, self.names[DECISIONS])
        self.dead_letter = raw_topic(app, self.names[DEAD_LETTER])
        # Small RocksDB buffers: the defaults are 64 MiB x 3 memtables per partition.
        rocksdb = {"write_buffer_size": 4 * 1024 * 1024, "max_write_buffer_number": 2,
                   "block_cache_size": 16 * 1024 * 1024}  # fmt: skip
        self.states = app.Table(
            "customer-state", partitions=self.partitions, key_type=bytes, value_type=bytes,
            options=rocksdb,
        )  # fmt: skip
        self.marks = app.Table(
            "watermark-markers", partitions=self.partitions, key_type=bytes, value_type=bytes,
            options=rocksdb,
        )  # fmt: skip
        by_customer = self.by_customer.get_topic_name()
        apply_patches(app, fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                      changelog_sources={t.changelog_topic.get_topic_name(): by_customer
                                         for t in (self.states, self.marks)})  # fmt: skip
        #: The markers each partition waits for, from the change topics' partition counts
        #: on the broker (:meth:`start_router`); until then none: nothing is decided due.
        self.expected = Watermarks(frozenset())
        self.router: Router | None = None
        self._router_thread: threading.Thread | None = None
        self.local = _Partitions()
        self._wire()

    def internal_topics(self) -> dict[str, dict[str, str]]:
        """The app's own topics (name -> config): the repartition topic and the changelogs."""
        topics = {self.by_customer.get_topic_name(): {"cleanup.policy": "delete"}}
        for table in (self.states, self.marks):
            topics[table.changelog_topic.get_topic_name()] = {"cleanup.policy": "compact"}
        return topics

    def changelogs(self) -> dict[str, str]:
        """Each table's name (its local files' stem) -> its changelog topic."""
        return {table.name: table.changelog_topic.get_topic_name()
                for table in (self.states, self.marks)}  # fmt: skip

    # -- wiring ---------------------------------------------------------------------
    def _wire(self) -> None:
        app = self.app
        app.agent(self.by_customer, name="decide")(self._decide)
        app.timer(self.settings.streams.tick_interval_s, name="clock")(self._tick)

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def forget(_app: faust.App, revoked: Any = None, **_kwargs: Any) -> None:
            self.local = _Partitions()  # due indexes are rebuilt from the table after it

    async def _dead_letter(self, event: faust.EventT[bytes], stage: str, exc: Exception) -> None:
        message = event.message
        record = dead_letter_record(
            message.topic, message.partition, message.offset, message.key, message.value,
            stage=stage, exc=exc, now_ms=int(self.clock() * 1000),
        )  # fmt: skip
        log.warning(
            "record sent to the dead-letter topic",
            extra={"topic": message.topic, "partition": message.partition,
                   "offset": message.offset, "error": str(exc)[:200]},
        )  # fmt: skip
        value = self.serde.encode("dead_letter", record, topic=self.names[DEAD_LETTER])
        await self.dead_letter.send(key=None, value=value)

    # -- deciding -------------------------------------------------------------------
    async def _decide(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            try:
                item = decode_item(event.value)
            except StateFormatError as exc:
                await self._dead_letter(event, "decide", exc)
                continue
            self._ensure_indexed(partition)
            await self._handle(partition, item)

    async def _handle(self, partition: int, item: Item) -> None:
        now_ms = int(self.clock() * 1000)
        if isinstance(item, Marker | Markers):
            markers = item.markers if isinstance(item, Markers) else (item,)
            marks = self._marks(partition).with_markers(markers)
            self.marks[str(partition).encode()] = _encode_seen(marks)
            self.local.marks[partition] = marks
            await self._step_due(partition, now_ms, marks.watermark_ms)
        elif isinstance(item, Tick):
            await self._step_due(partition, now_ms, self._marks(partition).watermark_ms)
        elif isinstance(item, TableTruncated):
            await self._truncate(partition, item, now_ms)
        else:
            watermark = self._marks(partition).watermark_ms
            await self._apply(partition, item.customer_id, item, now_ms, watermark)

    async def _step_due(self, partition: int, now_ms: int, watermark_ms: int) -> None:
        """Decide the partition's due customers, a bounded number per event.

        After an outage a watermark jump makes the whole backlog due at once; deciding
        it inside one event kept one transaction open for all of it, and a transaction
        open past ``transaction.timeout.ms`` is fenced. The rest wait for the next tick
        or marker (earliest due first, so held ones never starve decidable ones).
        """
        index = self.local.due.get(partition)
        ready = index.ready(now_ms, MAX_DUE_PER_EVENT) if index is not None else []
        held = False
        for customer_id in ready:
            result = await self._apply(partition, customer_id, None, now_ms, watermark_ms)
            held = held or result.held_ms is not None
        self._watch_stall(partition, held, watermark_ms)

    async def _apply(self, partition: int, customer_id: int, change: Change | None,
                     now_ms: int, watermark_ms: int) -> Step:  # fmt: skip
        key = str(customer_id).encode()
        raw = self.states.get(key)
        state = decode_state(raw) if raw else self._fresh(partition, customer_id)
        result = step(state, change, now_ms, watermark_ms, self.rules)
        if result.state.empty:
            if raw:
                del self.states[key]
        elif result.state != state:
            self.states[key] = encode_state(result.state)
        self.local.due.setdefault(partition, DueIndex()).set(customer_id, next_due(result.state))
        for output in result.outputs:
            await self._emit(output, now_ms)
        return result

    async def _emit(self, output: Output, now_ms: int) -> None:
        if isinstance(output, Trigger):
            # The rules' quiet window travels with the trigger: the sink checks it again
            # just before sending (a trigger may wait in the sink past the decision).
            quiet = self.rules.quiet_hours
            record = trigger_record(output, fired_at_ms=now_ms, replay=False,
                                    quiet_hours=(quiet.start, quiet.end,
                                                 quiet.default_timezone))  # fmt: skip
            value = self.serde.encode("abandonment_trigger", record, topic=self.names[TRIGGERS])
            key = str(output.customer.customer_id).encode()
            await self.triggers.send(key=key, value=value)
        elif isinstance(output, Decision):
            record = decision_record(output, replay=False)
            value = self.serde.encode("abandonment_decision", record,
                                      topic=self.names[DECISIONS])  # fmt: skip
            key = str(output.customer_id or output.quote.customer_id).encode()
            await self.decisions.send(key=key, value=value)

    async def _truncate(self, partition: int, item: TableTruncated, now_ms: int) -> None:
        """A source table was truncated: every customer of this partition the table holds
        steps with it, and the partition remembers it for the customers it holds no
        state for (:meth:`_fresh`). An operator's TRUNCATE is rare: a scan of the
        partition's customers (as after an assignment) costs nothing that matters."""
        key = _truncations_key(partition)
        self.marks[key] = encode_truncations(decode_truncations(self.marks.get(key)).after(item))
        watermark = self._marks(partition).watermark_ms
        customers = [int(k) for k, raw in self.states.items()
                     if raw and int(k) % self.partitions == partition]  # fmt: skip
        for customer_id in customers:
            await self._apply(partition, customer_id, item, now_ms, watermark)
        log.warning("a source table was truncated: its rows before it are forgotten",
                    extra={"table": item.table, "partition": partition,
                           "customers": len(customers)})  # fmt: skip

    def _fresh(self, partition: int, customer_id: int) -> CustomerState:
        """A customer the partition holds no state for: it knows the truncates so far, so an
        older change of theirs read after one brings nothing back. (Kept in the markers'
        table, under a key of its own: one small value per partition, no new changelog.)"""
        return decode_truncations(self.marks.get(_truncations_key(partition))).fresh(customer_id)

    def _marks(self, partition: int) -> Watermarks:
        """The partition's markers: from the table after an assignment, then from memory
        (every change event needs the watermark; a table read and parse each was waste)."""
        marks = self.local.marks.get(partition)
        if marks is None:
            marks = _decode_seen(self.expected, self.marks.get(str(partition).encode()))
            self.local.marks[partition] = marks
        return marks

    def _ensure_indexed(self, partition: int) -> None:
        """After an assignment: every due time of the partition's customers, from the table."""
        if partition in self.local.indexed:
            return
        index = DueIndex()
        for key, raw in self.states.items():
            customer_id = int(key)
            if customer_id % self.partitions != partition or not raw:
                continue
            index.set(customer_id, next_due(decode_state(raw)))
        self.local.due[partition] = index
        self.local.indexed.add(partition)

    def _watch_stall(self, partition: int, held: bool, watermark_ms: int) -> None:
        if not held:
            self.local.held_since.pop(partition, None)
            return
        since = self.local.held_since.setdefault(partition, self.clock())
        if self.clock() - since >= self.settings.streams.watermark_stall_s:
            log.warning(
                "due quotes held: the source watermark is not past their deadline",
                extra={"partition": partition, "watermark_ms": watermark_ms,
                       "held_s": round(self.clock() - since, 1),
                       "lagging": [f"{s}:{p}" for s, p in self._marks(partition).lagging()]},
            )  # fmt: skip
            self.local.held_since[partition] = self.clock()  # once per stall period

    # -- the clock and the router --------------------------------------------------------
    async def _tick(self, *_app: Any) -> None:
        if self.router is not None and self.router.failure is not None:
            await self.app.crash(self.router.failure)
            return
        if self.router is None or time.monotonic() - self.router.turned_at < ROUTER_STALL_S:
            # The event loop runs timers and the router thread turns: alive.
            self.heartbeat.beat()
        now_ms = int(self.clock() * 1000)
        for tp in self.app.consumer.assignment():
            if tp.topic == self.by_customer.get_topic_name():
                await self.app.producer.send(
                    topic=tp.topic, key=None, value=encode_item(Tick(now_ms)),
                    partition=tp.partition, timestamp=None, headers=None,
                )  # fmt: skip

    def start_router(self) -> threading.Event:
        """Route the change topics in a thread of this process; set the event to stop it.

        Raises :class:`streams.errors.TopicLayoutError` (one line) when the topics on the
        broker cannot be read safely (:mod:`streams.layout`).
        """
        names = self.names
        topics = Topics(
            sources={names[topic]: source for source, topic in SOURCES.items()},
            quotes=names[QUOTES], watermarks=names[WATERMARKS],
            by_customer=self.by_customer.get_topic_name(), dead_letter=names[DEAD_LETTER],
        )  # fmt: skip
        counts = partition_counts(self.settings, [*topics.sources, topics.watermarks])
        check_watermark_topic(counts, topics.watermarks)  # the router reads partition 0
        self.expected = expected_watermarks(counts, topics.sources)
        self.local.marks.clear()  # any read before this was made with no expected markers
        self.router = Router(self.settings, self.serde, topics, app_id=self.app.conf.id,
                             partitions=self.partitions, clock=self.clock)  # fmt: skip
        stop = threading.Event()
        self._router_thread = threading.Thread(target=self.router.run, args=(stop,),
                                               name="router", daemon=True)  # fmt: skip
        self._router_thread.start()
        return stop

    def stop_router(self) -> None:
        """Wait for the router's last batch (set the event from :meth:`start_router` first)."""
        if self._router_thread is not None:
            self._router_thread.join(30)


def _truncations_key(partition: int) -> bytes:
    return f"truncated:{partition}".encode()


def _encode_seen(marks: Watermarks) -> bytes:
    return ";".join(f"{s},{p},{w}" for (s, p), w in sorted(marks.seen.items())).encode()


def _decode_seen(expected: Watermarks, raw: bytes | None) -> Watermarks:
    if not raw:
        return expected
    seen = {}
    for entry in raw.decode().split(";"):
        source, partition, watermark = entry.split(",")
        seen[(source, int(partition))] = int(watermark)
    return Watermarks(expected.expected, seen)


def build_processor(
    settings: Settings, rules: Rules, *, app_id: str | None = None, serde: Serde | None = None
) -> Processor:
    return Processor(settings, rules, serde or serde_from_settings(settings.schema_registry),
                     app_id=app_id)  # fmt: skip
