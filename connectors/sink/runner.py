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
import dataclasses
import heapq
import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from requests.adapters import HTTPAdapter

from connectors.errors import SinkConfigError, SinkError
from connectors.sink.breaker import CircuitBreaker
from connectors.sink.config import build_provider
from connectors.sink.delivery import Job, Result, Sender
from connectors.sink.lanes import Lanes
from connectors.sink.ledger import Claim, Entry, Final, Ledger
from connectors.sink.offsets import PartitionOffsets
from connectors.sink.ratelimit import RateLimiter
from connectors.sink.receipts import dead_letter_of, receipt_of, receipt_of_entry
from connectors.sink.timing import Expired, Hold, Send, Verdict, decide, window_of
from quoteflow.deadletter import dead_letter
from quoteflow.liveness import Heartbeat
from quoteflow.reporting import Reporter, silent
from quoteflow.settings import Settings
from schemas.errors import SerdeError
from schemas.serde import Serde, serde_from_settings
from schemas.wire import AbandonmentTrigger, DeliveryReceipt

log = logging.getLogger(__name__)

TRIGGERS = "quoteflow.abandonment.triggers"
DELIVERIES = "quoteflow.esp.deliveries"
DEAD_LETTER = "quoteflow.dead-letter"
REPORT_EVERY_S = 10.0
_BATCH = 500
#: A dispatcher turn claims (and records) in batches: one statement per few sends, not
#: per send, unless this long has passed (a trickle of triggers is not held back longer).
_BATCH_WAIT_S = 0.005
#: Triggers held for quiet hours do not count towards ``sink.max_in_flight`` (they would
#: stop the reading of other customers' triggers all night), up to this many times it.
_HELD_PER_IN_FLIGHT = 10


@dataclass(frozen=True)
class SinkTopics:
    triggers: str
    deliveries: str
    dead_letter: str

    @classmethod
    def with_prefix(cls, prefix: str) -> SinkTopics:
        return cls(prefix + TRIGGERS, prefix + DELIVERIES, prefix + DEAD_LETTER)


@dataclass
class SinkStats:
    read: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    ambiguous: int = 0
    expired: int = 0
    #: Times a trigger was held for quiet hours (each is sent or expires later).
    held: int = 0
    replays_dropped: int = 0
    #: Outcomes found after their claim had been taken over by another sink (kept, logged).
    late_outcomes: int = 0
    undecodable: int = 0
    interrupted: int = 0
    commits: int = 0

    def describe(self) -> str:
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name)}"
                         for f in fields(self))  # fmt: skip


def http_session(concurrency: int, endpoint: str) -> requests.Session:
    """One session for every sender: one connection pool, as many connections as senders.

    The environment is read once, here: with ``trust_env`` requests would look up
    proxy variables (iterating the whole environment) and ``~/.netrc`` on every
    request, a fifth of the sender threads' CPU in a profile. Proxies for
    ``endpoint`` are resolved now instead; credentials are explicit headers, and the
    CA bundle is ``sink.ca_bundle``.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(endpoint))
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=concurrency, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "quoteflow-esp-sink"
    return session


class Sink:
    """The dispatcher. :meth:`run` until ``stop`` is set; not thread-safe otherwise."""

    def __init__(self, settings: Settings, *, report: Reporter = silent,
                 stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.settings, self.cfg, self.report = settings, settings.sink, report
        self.stop = stop or threading.Event()
        self.clock = clock
        self.provider = build_provider(self.cfg)
        self.topics = SinkTopics.with_prefix(self.cfg.topic_prefix)
        self.stats = SinkStats()
        #: This process, as the owner of its claims in the ledger.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: The ledger's ownership epoch of each assigned partition (bumped at assignment).
        self.epochs: dict[tuple[str, int], int] = {}
        #: The claim of each trigger on its way (its epoch fences the outcome's write).
        self.claims: dict[str, Claim] = {}
        # Probes back off only where one costs something: a provider that deduplicates
        # retries a probe's 5xx harmlessly, so it probes at the base cooldown throughout.
        self.breaker = CircuitBreaker(
            self.cfg.breaker_failures, self.cfg.breaker_cooldown_s,
            max_cooldown_s=(self.cfg.breaker_cooldown_s if self.provider.dedupes
                            else self.cfg.breaker_cooldown_max_s))  # fmt: skip
        self.limiter = RateLimiter(self.cfg.rate_limit_per_s)
        self.interrupt = threading.Event()
        self.resend_unknown = self.provider.dedupes or self.cfg.ambiguous == "resend"
        # The dispatcher's bookkeeping (its thread only).
        self.lanes: Lanes[Job] = Lanes()
        self.active: dict[str, list[Job]] = {}  # trigger id -> the same trigger read again
        self.tracks: dict[tuple[str, int], PartitionOffsets] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.running = 0
        self.results: queue.SimpleQueue[Result | BaseException] = queue.SimpleQueue()
        self.finals: list[Final] = []
        self.releases: list[tuple[str, int]] = []  # (trigger id, epoch) of own claims
        self.outbox: list[tuple[str, bytes | None, str, dict[str, Any]]] = []
        #: Trigger ids whose outcome receipt is in the outbox (marked in the ledger once
        #: the transaction carrying it has committed).
        self.receipts_owed: list[str] = []
        #: Triggers held for quiet hours: (judge again at, order, job); each keeps its lane.
        self.held: list[tuple[int, int, Job]] = []
        self._held_order = itertools.count()
        self.paused = False
        #: The first configuration failure (one line): the sink stops and raises it.
        self.refused: str | None = None
        self._batch = max(1, self.cfg.concurrency // 8)
        self._last_dispatch = self._last_record = 0.0

    # --- set-up ----------------------------------------------------------------
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
            self.serde: Serde = serde_from_settings(self.settings.schema_registry)
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

    # --- the loop --------------------------------------------------------------
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

    def _read(self) -> None:
        self._pause_if_needed()
        busy = self.paused or (self.lanes.ready_count > 0
                               and self.running >= self.cfg.concurrency)  # fmt: skip
        if busy:  # the senders (or the ESP) are the bottleneck: wait for an outcome
            self._wait_result(0.05)
        room = max(1, min(_BATCH, self.cfg.max_in_flight - self._in_flight()))
        # With every partition paused this serves callbacks and keeps the group membership.
        messages = self.consumer.consume(room, timeout=0)
        if not messages and not busy:
            first = self.consumer.poll(0.005 if self.running else 0.1)
            messages = [first] if first is not None else []
        for message in messages:
            self._accept(message)

    def _pause_if_needed(self) -> None:
        want = not self.breaker.closed or self._in_flight() >= self.cfg.max_in_flight or (
            len(self.held) >= _HELD_PER_IN_FLIGHT * self.cfg.max_in_flight)
        if want != self.paused:
            assignment = self.consumer.assignment()
            if want:
                self.consumer.pause(assignment)
            else:
                self.consumer.resume(assignment)
            self.paused = want
            if want and self.breaker.state in ("open", "half_open"):
                log.warning("circuit open: reading paused until %s answers", self.provider.name)

    def _in_flight(self) -> int:
        """Triggers held in memory that are not waiting for quiet hours to end: held ones
        must not stop the sink reading other customers' triggers (up to a bound)."""
        return len(self.lanes) - len(self.held)

    def _accept(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise SinkError(f"Kafka: {error.str()}")
            log.warning("Kafka: %s", error.str())
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        self.tracks.setdefault((topic, partition), PartitionOffsets()).read(offset)
        self.stats.read += 1
        key, value = message.key(), message.value()
        try:
            if value is None:
                raise SerdeError("a trigger without a value (tombstone)")
            # Decoded once, here: from now on the trigger is a typed value. A record the
            # schema reads but the value refuses (a WireError) is dead-lettered alike.
            trigger = AbandonmentTrigger.from_record(
                self.serde.decode(AbandonmentTrigger.schema, value, topic=topic))
        except SerdeError as exc:
            self.stats.undecodable += 1
            record = dead_letter(topic, partition, offset, key, value, stage="esp-sink",
                                 error_type=type(exc).__name__, error_message=str(exc),
                                 attempts=1, now_ms=self._now_ms())  # fmt: skip
            self.outbox.append((self.topics.dead_letter, key, "dead_letter", record))
            self.tracks[(topic, partition)].done(offset)
            return
        if trigger.replay and not self.cfg.accept_replays:
            self.stats.replays_dropped += 1
            self.tracks[(topic, partition)].done(offset)
            return
        job = Job(trigger, topic, partition, offset, key, value,
                  dedupe_id=self.provider.dedupe_id(trigger), read_at=self.clock())  # fmt: skip
        followers = self.active.get(job.trigger_id)
        if followers is not None:  # the same trigger again while the first is on its way
            followers.append(job)
            return
        self.active[job.trigger_id] = []
        self.lanes.add(job.customer_id, job)

    def _dispatch(self) -> None:
        if self.stop.is_set():
            return
        if self.breaker.closed:
            wanted = min(self.cfg.concurrency - self.running, self.lanes.ready_count)
        elif self.running == 0 and self.breaker.probe_due():
            # Open, and no sender has a trigger to probe with (each one that failed ended,
            # e.g. as ambiguous): one trigger becomes the probe. Claimed only now, when
            # it goes out at once, not for the length of a cooldown.
            wanted = min(1, self.lanes.ready_count)
        else:
            return
        now = time.monotonic()
        if wanted < min(self._batch, self.lanes.ready_count) and (
            now - self._last_dispatch < _BATCH_WAIT_S
        ):
            return  # a few more senders will be free in a moment: claim them together
        self._last_dispatch = now
        if wanted <= 0:
            return
        # Judged before the rate limiter: a held or expired trigger sends nothing, so it
        # takes no token (a night of held triggers would otherwise starve the others).
        now_ms = self._now_ms()
        verdicts: dict[str, Verdict] = {}
        expired: list[Job] = []
        sendable: list[tuple[Hashable, Job]] = []
        for key, job in self.lanes.take_ready(wanted):
            verdict = self._judge(job, now_ms)
            verdicts[job.trigger_id] = verdict
            if isinstance(verdict, Hold):
                self._hold(job, verdict.until_ms)
            elif isinstance(verdict, Expired):
                expired.append(job)
            else:
                sendable.append((key, job))
        granted = self.limiter.try_take(len(sendable)) if sendable else 0
        if granted < len(sendable):
            self.lanes.put_back(sendable[granted:])
        jobs = expired + [job for _, job in sendable[:granted]]
        if not jobs:
            return
        claims = [self._claim_of(j) for j in jobs]
        self.claims.update((c.trigger_id, c) for c in claims)
        found = self.ledger.claim(claims, self.finals)
        fenced = set(self.ledger.fenced)  # the next ledger call (a take-over) resets it
        self.finals = []
        self._note_late()
        for job in jobs:
            if job.trigger_id in fenced:
                self._fenced(job)
            else:
                self._place(job, found.get(job.trigger_id), verdicts[job.trigger_id])

    def _fenced(self, job: Job) -> None:
        """Its partition has a newer owner (this sink lost it and Kafka has not said so
        yet): not claimed, not sent, its offset not done; the new owner reads it again."""
        log.info("trigger %s not claimed: %s[%d] has a newer owner", job.trigger_id, job.topic,
                 job.partition)  # fmt: skip
        self.claims.pop(job.trigger_id, None)
        self.lanes.done(job.customer_id)
        self.active.pop(job.trigger_id, None)

    def _claim_of(self, job: Job) -> Claim:
        return Claim(job.trigger_id, self.provider.name, job.customer_id, job.request_id,
                     job.dedupe_id, job.topic, job.partition, job.offset, job.trigger.quote_id,
                     self.epochs.get((job.topic, job.partition), 0))  # fmt: skip

    def _place(self, job: Job, entry: Entry | None, verdict: Verdict) -> None:
        """What to do with a trigger after its claim: ``entry`` is None when it was claimed
        now, else the row that was there (or the duplicate row just recorded for it)."""
        if entry is not None and entry.state == "pending":
            # Another sink's claim (stopped, or one that lost the partition) or an older
            # epoch's: made ours first, so only we record its outcome from now on.
            taken = self.ledger.take_over(self.claims[job.trigger_id], entry)
            if taken is None:
                self._fenced(job)
                return
            entry = taken
            if entry.state == "pending" and entry.request_id == job.request_id:
                entry = None  # the row had vanished: claimed afresh, an ordinary send
        if entry is None and isinstance(verdict, Expired):
            now_ms = self._now_ms()
            self._on_result(Result(
                job, "expired", 0, None, None,
                f"older than sink.max_trigger_age ({verdict.age_ms / 3_600_000:.1f} h >"
                f" {self.cfg.max_trigger_age / 3600:.1f} h) when it would have gone out;"
                " not sent", None, now_ms), submitted=False)  # fmt: skip
        elif entry is None:
            self._submit(job)
        elif entry.state == "pending":  # taken over: the earlier attempt's outcome is unknown
            if self.resend_unknown:
                job.request_id, job.resend = entry.request_id, True
                self.claims[job.trigger_id] = dataclasses.replace(
                    self.claims[job.trigger_id], request_id=entry.request_id)
                self._submit(job)
            else:
                self._on_result(Result(
                    job, "ambiguous", entry.attempts, None, None,
                    f"outcome unknown: a sink stopped after claiming it (request"
                    f" {entry.request_id}) and before recording the ESP's answer",
                    None, self._now_ms()), submitted=False)  # fmt: skip
        else:
            self.claims.pop(job.trigger_id, None)
            owed = entry.redelivered_at(job.topic, job.partition, job.offset)
            receipt = receipt_of_entry(entry, job, duplicate=not owed, now_ms=self._now_ms())
            if owed:
                self.receipts_owed.append(job.trigger_id)
            if entry.state == "duplicate" or not owed:
                self.stats.duplicates += 1
            if entry.state == "duplicate" and owed:
                log.info("trigger %s not sent: %s", job.trigger_id, entry.error)
            self._finish(job, receipt)

    def _note_late(self) -> None:
        """Outcomes whose claim another sink had taken over: kept on the row, said here."""
        late = self.ledger.take_late()
        for trigger_id in late.kept + late.restored:
            self.stats.late_outcomes += 1
            log.warning("trigger %s: its claim was taken over by another sink before this"
                        " outcome was recorded; kept as the row's late outcome (restored:"
                        " %s)", trigger_id, trigger_id in late.restored)  # fmt: skip
        for trigger_id in late.dropped:
            self.stats.late_outcomes += 1
            log.warning("trigger %s: outcome of a claim taken over, and its row is gone"
                        " (a person's decision meanwhile); nothing was sent twice by this"
                        " sink, the outcome is only logged", trigger_id)  # fmt: skip

    def _judge(self, job: Job, now_ms: int) -> Verdict:
        """Send, hold or expire, at the wall time the trigger would go out.

        A replay (accepted only by a sink whose provider is a sandbox) is not judged: its
        ``fired_at`` is event time, so last week's replay would all expire or wait, and
        the point of replaying into a sandbox is to see what would have gone out.
        """
        if job.trigger.replay:
            return Send()
        try:
            window, fallback = window_of(job.trigger.quiet_hours)
        except ValueError as exc:
            log.warning("trigger %s: unreadable quiet hours (%s): judged without them",
                        job.trigger_id, exc)  # fmt: skip
            window, fallback = None, None
        return decide(now_ms, fired_at_ms=job.trigger.fired_at, timezone=job.trigger.timezone,
                      window=window, max_age_ms=int(self.cfg.max_trigger_age * 1000),
                      default_timezone=fallback or "UTC")  # fmt: skip

    def _hold(self, job: Job, until_ms: int) -> None:
        """Not now (quiet hours): keep it, lane and offset included, until ``until_ms``."""
        self.stats.held += 1
        heapq.heappush(self.held, (until_ms, next(self._held_order), job))
        log.info("trigger %s held for quiet hours until %s", job.trigger_id,
                 datetime.fromtimestamp(until_ms / 1000, UTC).isoformat())  # fmt: skip

    def _release_held(self) -> None:
        """Held triggers whose time has come go back to the front of the ready queue (their
        lanes are still theirs), to be judged again and claimed."""
        if not self.held:
            return
        now_ms = self._now_ms()
        due: list[tuple[Hashable, Job]] = []
        while self.held and self.held[0][0] <= now_ms:
            job = heapq.heappop(self.held)[2]
            due.append((job.customer_id, job))
        if due:
            self.lanes.put_back(due)

    def _start_senders(self) -> None:
        """``concurrency`` threads taking jobs from one queue: no future per send, as an
        executor would make (the dispatcher reads outcomes from its own queue)."""
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.senders = [threading.Thread(target=self._sender_loop, name=f"esp-send-{i}",
                                         daemon=True) for i in range(self.cfg.concurrency)]
        for thread in self.senders:
            thread.start()

    def _stop_senders(self) -> None:
        for _ in self.senders:
            self.jobs.put(None)
        for thread in self.senders:
            thread.join()

    def _submit(self, job: Job) -> None:
        self.running += 1
        self.jobs.put(job)

    def _sender_loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.results.put(self.sender.deliver(job))
            except Exception as exc:  # noqa: BLE001 - a bug: stop the sink, do not lose track
                self.results.put(exc)

    def _wait_result(self, timeout: float) -> None:
        try:
            item = self.results.get(timeout=timeout)
        except queue.Empty:
            return
        self._handle(item)

    def _collect(self) -> None:
        while True:
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return
            self._handle(item)

    def _handle(self, item: Result | BaseException) -> None:
        if isinstance(item, BaseException):
            raise SinkError(f"a sender failed: {item!r}") from item
        self._on_result(item, submitted=True)

    def _on_result(self, result: Result, *, submitted: bool) -> None:
        job = result.job
        if submitted:
            self.running -= 1
        claim = self.claims.pop(job.trigger_id, None)
        if result.status == "interrupted":
            # Not done: the record is read again (by us or the partition's next owner).
            self.stats.interrupted += 1
            if not result.maybe_sent and claim is not None:
                self.releases.append((job.trigger_id, claim.epoch))
            if result.refused is not None:
                self._refused(result.refused, result.http_status)
            self.lanes.done(job.customer_id)
            self.active.pop(job.trigger_id, None)
            return
        self.finals.append(Final(
            job.trigger_id, result.status, result.attempts, result.http_status,
            result.message_id, result.error, _dt(result.first_attempt_ms),
            _dt(result.completed_ms), claim,
        ))  # fmt: skip
        setattr(self.stats, result.status, getattr(self.stats, result.status) + 1)
        if result.status in ("rejected", "failed"):
            record = dead_letter_of(job, error_type=f"Esp{result.status.title()}",
                                    error=result.error or result.status,
                                    attempts=result.attempts, now_ms=self._now_ms())  # fmt: skip
            self.outbox.append((self.topics.dead_letter, job.key, "dead_letter", record))
            log.warning("trigger %s %s by %s after %d attempt(s): %s", job.trigger_id,
                        result.status, self.provider.name, result.attempts, result.error)
        elif result.status == "ambiguous":
            log.warning("trigger %s held as ambiguous (%s): resolve with `quoteflow sink"
                        " resolve`", job.trigger_id, result.error)  # fmt: skip
        self.receipts_owed.append(job.trigger_id)
        self._finish(job, receipt_of(result, self.provider.name))

    def _refused(self, what: str, http_status: int | None) -> None:
        """A configuration failure: say so once, in one line, and stop. The triggers in
        flight end as on a clean stop (their claims released unless a request may have
        reached the ESP), none is recorded, none dead-lettered, and no offset is committed
        past one that was not sent: fixed and restarted, the sink sends them all."""
        if self.refused is not None:
            return
        self.refused = (f"the {self.provider.name} ESP refused the sink's configuration:"
                        f" {what}; stopped sending ({_fix(http_status)}), unsent triggers"
                        " stay in Kafka and are sent once it is fixed")  # fmt: skip
        log.error("%s", self.refused)
        self.stop.set()

    def _finish(self, job: Job, receipt: DeliveryReceipt) -> None:
        """The trigger has its outcome: receipt out, offset done, next of its customer ready."""
        self.outbox.append((self.topics.deliveries, job.key, receipt.schema, receipt.as_record()))
        self.tracks[(job.topic, job.partition)].done(job.offset)
        self.lanes.done(job.customer_id)
        for follower in self.active.pop(job.trigger_id, []):
            self.stats.duplicates += 1
            again = dataclasses.replace(
                receipt, status="DUPLICATE", attempts=0, latency_ms=None,
                error=f"the same trigger was read twice (offset {job.offset})")
            self.outbox.append((self.topics.deliveries, follower.key, again.schema,
                                again.as_record()))  # fmt: skip
            self.tracks[(follower.topic, follower.partition)].done(follower.offset)

    # --- recording and committing ---------------------------------------------
    def _record(self) -> None:
        """Outcomes into the ledger as soon as they are known, not at the next commit: a
        crash can then leave at most the requests in flight (and the answers of one loop
        turn) without an outcome."""
        now = time.monotonic()
        if self.finals and (len(self.finals) >= self._batch
                            or now - self._last_record >= 2 * _BATCH_WAIT_S):  # fmt: skip
            self._last_record = now
            self.ledger.record(self.finals)
            self.finals = []
            self._note_late()

    def _flush(self) -> None:
        commits = []
        for (topic, partition), track in self.tracks.items():
            position = track.committable()
            if position is not None and position > self.committed.get((topic, partition), -1):
                commits.append(TopicPartition(topic, partition, position))
        if not (self.finals or self.releases or self.outbox or commits or self.receipts_owed):
            return
        # The ledger first: once an offset is committed the record is never read again.
        self.ledger.record(self.finals)
        self.finals = []
        self._note_late()
        self.ledger.release(self.releases)
        encoded = [(topic, key, self.serde.encode(schema, record, topic=topic))
                   for topic, key, schema, record in self.outbox]  # fmt: skip
        try:
            self.producer.begin_transaction()
            for topic, key, value in encoded:
                self.producer.produce(topic, key=key, value=value)
            if commits:
                self.producer.send_offsets_to_transaction(
                    commits, self.consumer.consumer_group_metadata(), 30)
            self.producer.commit_transaction(30)
        except KafkaException as exc:
            raise SinkError(f"could not commit receipts and offsets: {exc.args[0]}") from exc
        for tp in commits:
            self.committed[(tp.topic, tp.partition)] = tp.offset
        self.ledger.receipted(self.receipts_owed)
        self.releases, self.outbox, self.receipts_owed = [], [], []
        self.stats.commits += 1

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

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def _fix(http_status: int | None) -> str:
    """What to check for a configuration failure with this status (None: no answer)."""
    if http_status in (401, 403):
        return "check the credential, sink.secret or sink.secret_file, and its permissions"
    if http_status == 407:
        return "check the HTTP proxy's credentials"
    if http_status == 413:
        return "check the request size limit of any proxy in front of the ESP"
    return "check sink.base_url and the provider settings"


def _dt(ms: int | None) -> Any:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


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


__all__ = ["KafkaError", "Sink", "SinkStats", "SinkTopics", "run_sink"]
