"""``quoteflow sink``: read triggers, deliver each once, record it, then commit.

One dispatcher thread owns the Kafka consumer, the ledger connection and the
transactional producer; a pool of sender threads shares one HTTP session. The
order of things for every trigger, which is what makes delivery effect-once:

1. read (``read_committed``) and queue it in its customer's lane;
2. claim it in the ledger (pending, with its request id) right before it is
   handed to a sender — a trigger already in the ledger is not sent again;
3. send it (retries, back-off, rate limit, circuit breaker: :mod:`.delivery`);
4. record the outcome in the ledger, then publish its receipt (and dead letter)
   and commit its offset in one Kafka transaction.

Just before 2, :func:`.timing.decide` judges the trigger at the wall time it would
go out: inside the quiet hours it carries (in the customer's zone) it is *held* —
it keeps its lane (that customer's later triggers wait behind it), other
customers' triggers flow on, its offset stays uncommitted (a restart reads it
again), and it is judged again when the window ends; older than
``sink.max_trigger_age`` it is claimed and recorded *expired* (receipt EXPIRED),
never sent.

Effect-once is keyed by the quote: a trigger whose quote already has an offer in
the ledger (another rules version's trigger, another processor app's) is recorded
as a duplicate of it and never sent (receipt DUPLICATE naming the offer's trigger).

A crash between 2 and 4 leaves a pending claim: the redelivered record finds
it, takes the claim over (claims carry this sink's owner id and the partition's
ownership epoch, bumped in the ledger at every assignment; only the holder
releases or records a claim) and resends it when the provider deduplicates (or
``sink.ambiguous`` says resend), else holds it as ambiguous. An outcome that
arrives after its claim was taken over (a sink that lost its partitions while a
request hung) is kept on the row as its late outcome and logged, never dropped.
A crash between 4 and its commit reads the record again and publishes the same
receipt from the ledger (the aborted transaction's receipt is never visible to
``read_committed`` readers).

A configuration failure at the ESP (a refused key, a wrong endpoint: see
:mod:`.outcome`) is not any one trigger's outcome. The first one stops the sink:
one error line (provider, endpoint, status), the senders' breaker halted so no
request leaves again, the refused trigger's claim released like an interrupted
one's, the others in flight ended as on a clean stop, offsets committed only up
to the first unsent trigger, and :class:`SinkConfigError` raised (exit code 2).
No ledger row, receipt or dead letter says rejected: a restart with the setting
fixed sends every trigger once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from connectors.errors import SinkConfigError, SinkError
from connectors.sink.breaker import CircuitBreaker
from connectors.sink.config import build_provider
from connectors.sink.delivery import Sender
from connectors.sink.dispatch import Dispatching
from connectors.sink.lanes import Lanes
from connectors.sink.ledger import Ledger
from connectors.sink.ratelimit import RateLimiter
from connectors.sink.senders import http_session
from connectors.sink.state import SinkStats, SinkTopics
from quoteflow.liveness import Heartbeat
from quoteflow.reporting import Reporter, silent
from quoteflow.settings import Settings
from schemas.serde import serde_from_settings

log = logging.getLogger(__name__)

REPORT_EVERY_S = 10.0


class Sink(Dispatching):
    """The dispatcher. :meth:`run` until ``stop`` is set; not thread-safe otherwise.

    Its rooms, each building on the one before: :mod:`.recording`, :mod:`.senders`,
    :mod:`.claims`, :mod:`.dispatch`; here the wiring, the loop and the rebalances.
    """

    def __init__(self, settings: Settings, *, report: Reporter = silent,
                 stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.settings, self.cfg, self.report = settings, settings.sink, report
        self.stop = stop or threading.Event()
        self.clock = clock
        self.provider = build_provider(self.cfg)
        self.topics = SinkTopics.with_prefix(settings.topics.prefix)
        self.stats = SinkStats()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.epochs = {}
        self.claims = {}
        # Probes back off only where one costs something: a provider that deduplicates
        # retries a probe's 5xx harmlessly, so it probes at the base cooldown throughout.
        self.breaker = CircuitBreaker(
            self.cfg.breaker_failures, self.cfg.breaker_cooldown_s,
            max_cooldown_s=(self.cfg.breaker_cooldown_s if self.provider.dedupes
                            else self.cfg.breaker_cooldown_max_s))  # fmt: skip
        self.limiter = RateLimiter(self.cfg.rate_limit_per_s)
        self.interrupt = threading.Event()
        self.resend_unknown = self.provider.dedupes or self.cfg.ambiguous == "resend"
        # The dispatcher's bookkeeping (its thread only: see SinkState).
        self.lanes = Lanes()
        self.active = {}
        self.tracks = {}
        self.committed = {}
        self.running = 0
        self.results = queue.SimpleQueue()
        self.finals = []
        self.releases = []
        self.outbox = []
        self.receipts_owed = []
        self.held = []
        self._held_order = itertools.count()
        self.paused = False
        self.refused = None
        self._batch = max(1, self.cfg.concurrency // 8)
        self._last_dispatch = self._last_record = 0.0

    def _kafka(self) -> tuple[Consumer, Producer]:
        kafka = self.settings.kafka.as_librdkafka_dict()
        consumer = Consumer({
            **kafka, "group.id": self.cfg.group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "enable.partition.eof": False,
            # A fetch parked in the broker waits this long for data: librdkafka's 500 ms
            # default showed as a p99 of ~500 ms at a steady 100 triggers/s.
            "fetch.wait.max.ms": 50,
            "session.timeout.ms": int(self.cfg.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(min(3.0, self.cfg.session_timeout_s / 3) * 1000),
        })  # fmt: skip
        producer = Producer({
            **kafka, "transactional.id": f"{self.cfg.group_id}-{uuid.uuid4().hex[:12]}",
            "transaction.timeout.ms": 30_000, "linger.ms": 5, "acks": "all",
            "enable.idempotence": True,
        })  # fmt: skip
        try:
            producer.init_transactions(30)
        except KafkaException as exc:
            consumer.close()
            raise SinkError(f"Kafka transactions are not available: {exc}") from exc
        return consumer, producer

    def run(self) -> SinkStats:
        with contextlib.ExitStack() as resources:
            self.ledger = resources.enter_context(Ledger(
                self.settings.postgres.ops_conninfo(), owner=self.owner, group=self.cfg.group_id))
            if self.ledger.applied:
                self.report(f"ops database: applied {', '.join(self.ledger.applied)}")
            self.serde = serde_from_settings(self.settings.schema_registry)
            resources.callback(self.serde.close)
            session = http_session(self.cfg.concurrency, self.provider.endpoint)
            resources.callback(session.close)
            self.sender = Sender(self.provider, session, self.cfg, self.breaker, self.limiter,
                                 self.interrupt, self.clock)  # fmt: skip
            self._start_senders()
            # Last in, first out: senders are woken and joined before the session closes.
            resources.callback(self._stop_senders)
            resources.callback(self.interrupt.set)
            self.consumer, self.producer = self._kafka()
            resources.callback(self.consumer.close)
            self._loop()
        return self.stats

    def _loop(self) -> None:
        self.consumer.subscribe([self.topics.triggers], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)  # fmt: skip
        self.report(f"delivering {self.topics.triggers} to {self.provider.name} at"
                    f" {self.provider.endpoint} (group {self.cfg.group_id},"
                    f" {self.cfg.concurrency} senders); stop with Ctrl-C or SIGTERM")  # fmt: skip
        last_flush = last_report = time.monotonic()
        alive = Heartbeat(self.settings.health.file)
        while not self.stop.is_set():
            alive.beat()  # the dispatcher turns: reading, sending and committing go on
            self._read()
            self._collect()
            self._release_held()
            self._dispatch()  # claims the next triggers and records outcomes in one go
            self._record()  # outcomes still waiting when nothing was dispatched
            now = time.monotonic()
            if now - last_flush >= self.cfg.commit_interval_s:
                self._flush()
                last_flush = now
            if now - last_report >= REPORT_EVERY_S:
                self.report(f"{self.stats.describe()}; in flight {len(self.lanes)}"
                            f" ({len(self.held)} held for quiet hours),"
                            f" circuit {self.breaker.state}")  # fmt: skip
                last_report = now
        self._drain()
        self.report(f"stopped: {self.stats.describe()}")
        if self.refused is not None:
            raise SinkConfigError(self.refused)

    def _drain(self, *, commit: bool = True) -> None:
        """Stop sending (waits end, requests on the wire finish), record, commit, forget.

        What was not finished is read again from the last committed offset, by this
        sink or by the partition's next owner. Partitions already *lost* (the group
        moved on) cannot take a commit: the outcomes still reach the ledger, and the
        next owner, reading those records again, publishes the receipts they are owed.
        """
        self.interrupt.set()
        while self.running:
            self._wait_result(0.1)
        if commit:
            self._flush()
        else:
            self.ledger.record(self.finals)
            self._note_late()
            # Only our own claims of this epoch: one the next owner took over is not touched.
            self.ledger.release(self.releases)
            self.finals, self.releases, self.outbox, self.receipts_owed = [], [], [], []
        # Held triggers are forgotten with the rest: their offsets were not committed.
        self.lanes, self.active, self.tracks, self.committed = Lanes(), {}, {}, {}
        self.claims = {}
        self.held = []
        self.interrupt.clear()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.paused = False
        # A new ownership epoch for each: claims made under an earlier one are fenced off.
        self.epochs.update(self.ledger.assign([(p.topic, p.partition) for p in partitions]))
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drain()

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost (the group moved on without this sink): %s",
                    ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))
        self._drain(commit=False)


def run_sink(settings: Settings, report: Reporter, stop: threading.Event | None = None
             ) -> SinkStats:  # fmt: skip
    """``quoteflow sink``: until SIGTERM/SIGINT (from the main thread) or ``stop``."""
    from quoteflow.signals import on_signals

    stop = stop or threading.Event()
    sink = Sink(settings, report=report, stop=stop)
    restore = on_signals(stop) if threading.current_thread() is threading.main_thread() else None
    try:
        return sink.run()
    finally:
        if restore is not None:
            restore()


__all__ = ["KafkaError", "Sink", "SinkStats", "SinkTopics", "http_session", "run_sink"]
