"""``quoteflow bench streams``: the processor against faust's ceiling, Kafka's, and its own core.

Every rate is measured in one run over the *same* quote change events (the same
encoded bytes, written to each phase's own input topic):

* ``core_events_per_s``: the pure core in process, no Kafka and no faust:
  decoded envelopes -> changes -> :func:`~streams.core.detector.step` on
  in-memory states (``core_decode_events_per_s`` adds the Avro decoding);
* ``baseline_per_s``: a plain confluent-kafka consume -> produce loop over the
  records, transactional when the processor is (offsets in the transaction);
* ``faust_ceiling_per_s``: a faust agent that only forwards each record, built
  like the processor's app (:mod:`bench.forwarder`);
* ``events_per_s``: one ``quoteflow process`` worker: decode, repartition by
  customer, tables, the core, with the configured processing guarantee.

The two faust workers are warmed up first (group joined, customers read, a
first slice of the quotes processed); the clock runs from the moment the rest
is written until the worker's group has committed all of it, which under
exactly-once is when the outputs are committed too.

Then two workers start over seeded state (the customer-state changelog written
with states the core built, as after a restart): with ``open_quotes`` open
quotes, new quotes arrive at a steady rate and each one's trigger is timed from
its deadline (``detect_p50_ms``/``detect_p99_ms``: the trigger's ``fired_at``
minus its ``deadline_at``; ``visible_p99_ms``: until a read_committed consumer
had it); with ``memory_quotes`` open quotes, the worker's peak resident memory
(``rss_mb_1m_open``). The source watermark is published every
``heartbeat_ms``, as ``quoteflow cdc`` does with ``cdc.heartbeat_interval_s``.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench import workload as wl
from bench.core import run_core
from devstack.children import GroupProgress, WorkerProcess, child_env
from devstack.errors import BenchError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics.catalog import stream_partitions
from schemas.serde import Serde, serde_from_settings
from schemas.subjects.admin import delete_subjects
from streams.core.rules import Rules, load_rules
from streams.core.state_codec import encode_state

TRIGGERS = "quoteflow.abandonment.triggers"
DECISIONS = "quoteflow.abandonment.decisions"
DEAD_LETTER = "quoteflow.dead-letter"
DELAY_MINUTES = 1
#: How far ahead of its write a latency quote's deadline lies.
LEAD_MS = 5_000


@dataclass(frozen=True)
class StreamsBenchResult:
    events: int
    events_per_s: float
    faust_ceiling_per_s: float
    baseline_per_s: float
    core_events_per_s: float
    core_decode_events_per_s: float
    detect_p50_ms: float
    detect_p99_ms: float
    visible_p99_ms: float
    rss_mb_1m_open: float
    rss_mb_worker_100k_open: float
    open_quotes: int
    memory_quotes: int
    heartbeat_ms: int
    guarantee: str

    def as_json(self) -> dict[str, Any]:
        return {
            "events_per_s": round(self.events_per_s),
            "faust_ceiling_per_s": round(self.faust_ceiling_per_s),
            "baseline_per_s": round(self.baseline_per_s),
            "core_events_per_s": round(self.core_events_per_s),
            "detect_p50_ms": round(self.detect_p50_ms, 1),
            "detect_p99_ms": round(self.detect_p99_ms, 1),
            "rss_mb_1m_open": round(self.rss_mb_1m_open),
            "core_decode_events_per_s": round(self.core_decode_events_per_s),
            "visible_p99_ms": round(self.visible_p99_ms, 1),
            "rss_mb_100k_open": round(self.rss_mb_worker_100k_open),
            "events": self.events,
            "open_quotes": self.open_quotes,
            "memory_quotes": self.memory_quotes,
            "heartbeat_ms": self.heartbeat_ms,
            "guarantee": self.guarantee,
        }


@dataclass
class _Run:
    """One benchmark run's names, clients and scratch directory."""

    settings: Settings
    config_file: Path | None
    serde: Serde
    report: Reporter
    home: Path
    run_id: str
    partitions: int
    admin: AdminClient
    created: list[str]

    def prefix(self, phase: str) -> str:
        return f"bench.streams.{self.run_id}.{phase}."

    def app_id(self, phase: str) -> str:
        return f"bench-streams-{self.run_id}-{phase}"

    def create_topics(self, names: Sequence[str], *, compact: Sequence[str] = ()) -> None:
        new = [NewTopic(n, 1 if n.endswith((wl.WATERMARKS, DEAD_LETTER)) else self.partitions,
                        1, config={"cleanup.policy": "compact"} if n in compact else {})
               for n in names]  # fmt: skip
        for name, future in self.admin.create_topics(new).items():
            try:
                future.result()
            except KafkaException as exc:
                raise BenchError(f"cannot create topic {name}: {exc}") from None
            self.created.append(name)

    def phase_topics(self, phase: str) -> None:
        prefix = self.prefix(phase)
        self.create_topics([prefix + t for t in (wl.QUOTES, wl.CUSTOMERS, TRIGGERS, DECISIONS,
                                                 wl.WATERMARKS, DEAD_LETTER)])  # fmt: skip

    def worker_env(self, phase: str) -> dict[str, str]:
        return child_env(
            self.config_file,
            QUOTEFLOW_STREAMS__TOPIC_PREFIX=self.prefix(phase),
            QUOTEFLOW_STREAMS__APP_ID=self.app_id(phase),
            QUOTEFLOW_STREAMS__DATA_DIR=str(self.home / phase),
            QUOTEFLOW_STREAMS__RULES_FILE=str(self.home / "rules.toml"),
            QUOTEFLOW_TOPICS__PARTITIONS=str(self.partitions),
            # The outputs' subjects are the prefixed topics' own: registered for the run.
            QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER="true",
            QUOTEFLOW_LOG__LEVEL="WARNING",
        )  # fmt: skip


def run_streams_bench(settings: Settings, *, config_file: Path | None, events: int,
                      open_quotes: int, memory_quotes: int, latency_quotes: int,
                      heartbeat_ms: int, report: Reporter) -> StreamsBenchResult:  # fmt: skip
    partitions = stream_partitions(settings.topics.partitions)
    serde = serde_from_settings(settings.schema_registry)
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    home = Path(tempfile.mkdtemp(prefix="quoteflow-bench-streams-"))
    run = _Run(settings, config_file, serde, report, home, uuid.uuid4().hex[:8], partitions,
               admin, [])  # fmt: skip
    (home / "rules.toml").write_text(wl.RULES_TOML.format(delay_minutes=DELAY_MINUTES))
    rules = load_rules(home / "rules.toml")
    try:
        result = _bench(run, rules, events=events, open_quotes=open_quotes,
                        memory_quotes=memory_quotes, latency_quotes=latency_quotes,
                        heartbeat_ms=heartbeat_ms)  # fmt: skip
    except BaseException:
        _cleanup(run, keep_home=True)  # the workers' logs, named in the error
        raise
    _cleanup(run, keep_home=False)
    return result


def _bench(run: _Run, rules: Rules, *, events: int, open_quotes: int, memory_quotes: int,
           latency_quotes: int, heartbeat_ms: int) -> StreamsBenchResult:  # fmt: skip
    report = run.report
    start_ms = int(time.time() * 1000)
    work = wl.workload(events, max(events // 4, 1), start_ms=start_ms)
    source = wl.Source(run.settings, run.serde, run.prefix("throughput"))
    try:
        customers = source.encode(work.customers, wl.CUSTOMERS)
        quotes = source.encode(work.quotes, wl.QUOTES)
        quote_keys = [int(e["after"]["quote_id"]) for e in work.quotes]
        customer_keys = [int(e["after"]["customer_id"]) for e in work.customers]

        report(f"core: {len(customers) + events:,} change events through the pure core")
        core, core_decoded = _core_rates(run.serde, rules, customers, quotes)
        report(f"core: {core:,.0f} events/s; with Avro decoding {core_decoded:,.0f} events/s")

        warm = min(max(events // 10, 100), 2_000)
        ceiling = _forwarder_rate(run, source, quotes, quote_keys, warm)
        report(f"faust forwarder: {ceiling:,.0f} events/s")

        rate, quotes_topic = _processor_rate(run, source, customers, customer_keys, quotes,
                                             quote_keys, warm)  # fmt: skip
        report(f"processor: {rate:,.0f} events/s")

        baseline = _baseline_rate(run, quotes_topic, len(quotes))
        report(f"confluent-kafka consume->produce: {baseline:,.0f} events/s")
    finally:
        source.close()

    p50, p99, visible, rss_100k = _latency(run, rules, open_quotes, latency_quotes, heartbeat_ms)
    rss = _memory(run, rules, memory_quotes)
    return StreamsBenchResult(
        events=events, events_per_s=rate, faust_ceiling_per_s=ceiling, baseline_per_s=baseline,
        core_events_per_s=core, core_decode_events_per_s=core_decoded, detect_p50_ms=p50,
        detect_p99_ms=p99, visible_p99_ms=visible, rss_mb_1m_open=rss,
        rss_mb_worker_100k_open=rss_100k, open_quotes=open_quotes,
        memory_quotes=memory_quotes, heartbeat_ms=heartbeat_ms,
        guarantee=run.settings.streams.processing_guarantee,
    )  # fmt: skip


# -- the pure core --------------------------------------------------------------------------
def _core_rates(serde: Serde, rules: Rules, customers: Sequence[bytes],
                quotes: Sequence[bytes]) -> tuple[float, float]:  # fmt: skip
    """(core alone, core with Avro decoding) in change events per second; best of three.

    The events are the customers and then the quote changes, all in memory before
    the clock starts. They are frozen out of the garbage collector's sight
    (``gc.freeze``) first: a driver streams its input and drops each record after
    use, while here 100,000s of decoded records live through the whole run and
    every collection would walk them again.
    """
    def decode() -> list[dict[str, Any]]:
        return [*(serde.decode("crm_customer_envelope", v, topic=wl.CUSTOMERS) for v in customers),
                *(serde.decode("qms_quote_envelope", v, topic=wl.QUOTES) for v in quotes)]

    events = len(customers) + len(quotes)
    best_core = best_total = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        envelopes = decode()
        t1 = time.perf_counter()
        gc.collect()
        gc.freeze()
        try:
            t2 = time.perf_counter()
            run = run_core(envelopes, rules)
            t3 = time.perf_counter()
        finally:
            gc.unfreeze()
        if run.events != events:
            raise BenchError(f"the core read {run.events} of {events} events")
        best_core, best_total = min(best_core, t3 - t2), min(best_total, (t1 - t0) + (t3 - t2))
    return events / best_core, events / best_total


# -- faust: forwarder and processor ------------------------------------------------------------
def _forwarder_rate(run: _Run, source: wl.Source, quotes: Sequence[bytes],
                    keys: Sequence[int], warm: int) -> float:  # fmt: skip
    inbound, outbound = run.prefix("forward") + "in", run.prefix("forward") + "out"
    run.create_topics([inbound, outbound])
    app_id = run.app_id("forward")
    run.report(f"faust forwarder: warming up on {warm:,} records")
    worker = WorkerProcess(["-m", "bench.forwarder", app_id, inbound, outbound],
                           run.worker_env("forward"), run.home / "forwarder.log")  # fmt: skip
    progress = GroupProgress(run.settings, app_id)
    try:
        _produce(source, inbound, quotes[:warm], keys[:warm])
        progress.wait_until(inbound, source.end_offsets(inbound), timeout_s=180, worker=worker,
                            what="faust forwarder warm-up")  # fmt: skip
        run.report(f"faust forwarder: {len(quotes) - warm:,} records")
        t0 = time.perf_counter()
        _produce(source, inbound, quotes[warm:], keys[warm:])
        t1 = progress.wait_until(inbound, source.end_offsets(inbound), timeout_s=1800,
                                 worker=worker, what="faust forwarder")  # fmt: skip
        return (len(quotes) - warm) / (t1 - t0)
    finally:
        progress.close()
        worker.stop()


def _processor_rate(run: _Run, source: wl.Source, customers: Sequence[bytes],
                    customer_keys: Sequence[int], quotes: Sequence[bytes],
                    quote_keys: Sequence[int], warm: int) -> tuple[float, str]:  # fmt: skip
    phase = "throughput"
    run.phase_topics(phase)
    prefix, app_id = run.prefix(phase), run.app_id(phase)
    quotes_topic, customers_topic = prefix + wl.QUOTES, prefix + wl.CUSTOMERS
    by_customer = f"{app_id}-by-customer"
    run.report(f"processor: warming up on {len(customers):,} customers and {warm:,} quote events")
    worker = WorkerProcess(["-m", "quoteflow", "process"], run.worker_env(phase),
                           run.home / "processor.log")  # fmt: skip
    progress = GroupProgress(run.settings, app_id)  # the deciding faust agent's group
    routing = GroupProgress(run.settings, f"{app_id}-router")  # the router's (streams.router)
    try:
        _produce(source, customers_topic, customers, customer_keys)
        _produce(source, quotes_topic, quotes[:warm], quote_keys[:warm])
        for topic in (customers_topic, quotes_topic):
            routing.wait_until(topic, source.end_offsets(topic), timeout_s=300, worker=worker,
                               what="processor warm-up")  # fmt: skip
        progress.wait_until(by_customer, source.end_offsets(by_customer), timeout_s=300,
                            worker=worker, what="processor warm-up")  # fmt: skip
        run.report(f"processor: {len(quotes) - warm:,} quote events")
        t0 = time.perf_counter()
        _produce(source, quotes_topic, quotes[warm:], quote_keys[warm:])
        routed = routing.wait_until(quotes_topic, source.end_offsets(quotes_topic),
                                    timeout_s=3600, worker=worker, what="processor (routing)")
        run.report(f"processor: routed in {routed - t0:.1f} s")
        # Everything routed is below this end; ticks written after it do not count.
        t1 = progress.wait_until(by_customer, source.end_offsets(by_customer), timeout_s=3600,
                                 worker=worker, what="processor (deciding)")  # fmt: skip
        return (len(quotes) - warm) / (t1 - t0), quotes_topic
    finally:
        routing.close()
        progress.close()
        worker.stop()


def _produce(source: wl.Source, topic: str, values: Sequence[bytes], keys: Sequence[int]) -> None:
    key_topic = wl.CUSTOMERS if topic.endswith(wl.CUSTOMERS) else wl.QUOTES
    source.produce_raw(topic, values, keys, key_topic=key_topic)


# -- Kafka alone -------------------------------------------------------------------------------
def _baseline_rate(run: _Run, topic: str, count: int) -> float:
    """confluent-kafka consume -> produce of ``count`` records, as the processor's guarantee."""
    out = run.prefix("baseline") + "out"
    run.create_topics([out])
    kafka = run.settings.kafka.as_librdkafka_dict()
    eos = run.settings.streams.processing_guarantee == "exactly_once"
    group = run.app_id("baseline")
    consumer = Consumer({
        **kafka, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed",
    })  # fmt: skip
    producer = Producer({**kafka, "linger.ms": 5, "acks": "all", "enable.idempotence": True,
                         **({"transactional.id": group} if eos else {})})  # fmt: skip
    try:
        if eos:
            producer.init_transactions(30)
        consumer.subscribe([topic])
        seen, t0 = 0, 0.0
        deadline = time.monotonic() + 300
        while seen < count:
            if time.monotonic() > deadline:
                raise BenchError(f"baseline: read {seen} of {count} records in 300 s")
            if eos:
                producer.begin_transaction()
            messages = consumer.consume(1000, 1.0)
            if messages and not t0:
                t0 = time.perf_counter()
            for message in messages:
                if message.error() is not None:
                    continue
                producer.produce(out, key=message.key(), value=message.value())
                seen += 1
            if eos:
                producer.send_offsets_to_transaction(
                    consumer.position(consumer.assignment()), consumer.consumer_group_metadata())
                producer.commit_transaction()
            else:
                producer.flush()
                if messages:
                    consumer.commit(asynchronous=False)
        return count / (time.perf_counter() - t0)
    finally:
        consumer.close()


# -- seeded workers: latency and memory -----------------------------------------------------
def _seed(run: _Run, phase: str, rules: Rules, quotes: int, updated_ms: int) -> None:
    """The customer-state changelog of a new app, holding ``quotes`` open quotes."""
    changelog = f"{run.app_id(phase)}-customer-state-changelog"
    run.create_topics([changelog], compact=[changelog])
    producer = Producer({**run.settings.kafka.as_librdkafka_dict(), "linger.ms": 20,
                         "acks": "all", "enable.idempotence": True})  # fmt: skip
    states = wl.open_states(quotes, rules, updated_ms=updated_ms)
    for written, state in enumerate(states, start=1):
        value = encode_state(state)
        while True:
            try:
                producer.produce(changelog, key=str(state.customer_id).encode(), value=value,
                                 partition=state.customer_id % run.partitions)  # fmt: skip
                break
            except BufferError:
                producer.poll(0.05)
        if written % 50_000 == 0:
            seeded = written * wl.OPEN_PER_CUSTOMER
            run.report(f"{phase}: {seeded:,} of {quotes:,} open quotes seeded")
    producer.flush(120)


@contextlib.contextmanager
def _seeded_worker(run: _Run, phase: str, rules: Rules, quotes: int,
                   heartbeat_ms: int) -> Iterator[tuple[WorkerProcess, wl.Source]]:  # fmt: skip
    """A processor worker over ``quotes`` seeded open quotes, ready, with watermarks flowing."""
    run.phase_topics(phase)
    # Deadlines an hour ahead: none of the seeded quotes fires during the run.
    updated = int(time.time() * 1000) + 3_600_000
    run.report(f"{phase}: seeding {quotes:,} open quotes")
    _seed(run, phase, rules, quotes, updated)
    source = wl.Source(run.settings, run.serde, run.prefix(phase))
    stop = threading.Event()
    beats = threading.Thread(target=_heartbeats, args=(source, stop, heartbeat_ms / 1000),
                             daemon=True)  # fmt: skip
    beats.start()
    run.report(f"{phase}: starting a worker (it restores the state from the changelog)")
    worker = WorkerProcess(["-m", "quoteflow", "process"], run.worker_env(phase),
                           run.home / f"{phase}.log")  # fmt: skip
    progress = GroupProgress(run.settings, run.app_id(phase))
    try:
        t0 = time.perf_counter()
        by_customer = f"{run.app_id(phase)}-by-customer"
        _wait_ready(progress, by_customer, run.partitions, worker)
        run.report(f"{phase}: worker ready after {time.perf_counter() - t0:.1f} s")
        yield worker, source
    finally:
        stop.set()
        beats.join(5)
        progress.close()
        worker.stop()
        source.close()


def _wait_ready(progress: GroupProgress, by_customer: str, partitions: int,
                worker: WorkerProcess) -> None:  # fmt: skip
    """Ready once every by-customer partition has a committed tick: restored and indexed."""
    deadline = time.monotonic() + 1800
    while True:
        with contextlib.suppress(KafkaException):
            done = progress.committed(by_customer, partitions)
            if len(done) == partitions and all(o > 0 for o in done.values()):
                return
        worker.check()
        if time.monotonic() > deadline:
            raise BenchError(f"the seeded worker was not ready in 30 minutes ({worker.log})")
        time.sleep(0.2)


def _heartbeats(source: wl.Source, stop: threading.Event, interval_s: float) -> None:
    while not stop.is_set():
        source.watermark()
        stop.wait(interval_s)


def _latency(run: _Run, rules: Rules, open_quotes: int, count: int,
             heartbeat_ms: int) -> tuple[float, float, float, float]:  # fmt: skip
    """(p50, p99 of fired - deadline, p99 of visible - deadline, worker RSS) in ms and MiB."""
    phase = "latency"
    with _seeded_worker(run, phase, rules, open_quotes, heartbeat_ms) as (worker, source):
        topic = run.prefix(phase) + wl.QUOTES
        rate = 100.0
        run.report(f"{phase}: {count:,} new quotes at {rate:.0f}/s, each due {LEAD_MS} ms later")
        delay_ms = DELAY_MINUTES * 60_000
        first_id = 10 * open_quotes + 1
        customers = wl.customers_for(open_quotes)
        count = min(count, customers)  # one new quote per customer: none supersedes another
        reader = _TriggerReader(run, run.prefix(phase) + TRIGGERS)
        try:
            t0 = time.perf_counter()
            for k in range(count):
                pause = t0 + k / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                now = int(time.time() * 1000)
                envelope = wl.quote_envelope(first_id + k, k % customers + 1, "QUOTED",
                                             updated_ms=now + LEAD_MS - delay_ms,
                                             lsn=10_000_000 + k)  # fmt: skip
                envelope["after"]["product_code"] = wl.NEW_PRODUCT
                envelope["source"]["ts_ms"] = now
                value = source.encode([envelope], wl.QUOTES)
                source.produce_raw(topic, value, [first_id + k], key_topic=wl.QUOTES, wait=False)
                reader.poll()
            source.producer.flush(10)
            fired, visible = reader.read(count, timeout_s=120, worker=worker)
        finally:
            reader.close()
        rss_now, _ = worker.rss_mb()
    return _pct(fired, 50), _pct(fired, 99), _pct(visible, 99), rss_now


class _TriggerReader:
    """read_committed reader of the triggers topic, timing each trigger from its deadline."""

    def __init__(self, run: _Run, topic: str) -> None:
        self.run, self.topic = run, topic
        self.consumer = Consumer({
            **run.settings.kafka.as_librdkafka_dict(), "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "enable.auto.commit": False,
        })  # fmt: skip
        self.consumer.subscribe([topic])
        self.fired: dict[str, float] = {}
        self.visible: dict[str, float] = {}

    def poll(self) -> None:
        for message in self.consumer.consume(500, 0):
            self._take(message)

    def _take(self, message: Any) -> None:
        if message.error() is not None or not message.value():
            if message.error() and message.error().code() != KafkaError._PARTITION_EOF:
                raise BenchError(f"reading triggers: {message.error()}")
            return
        now = time.time() * 1000
        record = self.run.serde.decode("abandonment_trigger", message.value(), topic=self.topic)
        deadline = _ms(record["deadline_at"])
        self.fired[record["trigger_id"]] = _ms(record["fired_at"]) - deadline
        self.visible[record["trigger_id"]] = now - deadline

    def read(self, count: int, *, timeout_s: float,
             worker: WorkerProcess) -> tuple[list[float], list[float]]:  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while len(self.fired) < count:
            if time.monotonic() > deadline:
                raise BenchError(f"latency: {len(self.fired)} of {count} triggers in "
                                 f"{timeout_s:.0f} s ({worker.log})")  # fmt: skip
            worker.check()
            for message in self.consumer.consume(500, 0.2):
                self._take(message)
        return list(self.fired.values()), list(self.visible.values())

    def close(self) -> None:
        self.consumer.close()


def _memory(run: _Run, rules: Rules, quotes: int) -> float:
    """Peak resident MiB of a worker holding ``quotes`` open quotes."""
    phase = "memory"
    with _seeded_worker(run, phase, rules, quotes, 1000) as (worker, _source):
        time.sleep(2)
        _, peak = worker.rss_mb()
    run.report(f"{phase}: worker peak RSS {peak:,.0f} MiB with {quotes:,} open quotes")
    return peak


def _ms(value: Any) -> float:
    """A timestamp-millis field as epoch ms (the serde may hand back a datetime)."""
    if isinstance(value, int | float):
        return float(value)
    return float(value.timestamp() * 1000)


def _pct(values: Sequence[float], pct: int) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _cleanup(run: _Run, *, keep_home: bool) -> None:
    """Delete the run's topics and the subjects its workers registered; best effort."""
    names = list(run.created)
    with contextlib.suppress(Exception):
        topics = run.admin.list_topics(timeout=10).topics
        names += [t for t in topics if t.startswith(f"bench-streams-{run.run_id}")]
        for future in run.admin.delete_topics(sorted(set(names))).values():
            with contextlib.suppress(Exception):
                future.result()
    with contextlib.suppress(Exception):
        delete_subjects(run.settings, f"bench.streams.{run.run_id}.")
    run.serde.close()
    if not keep_home:
        shutil.rmtree(run.home, ignore_errors=True)

