"""The seeded-worker phases of ``quoteflow bench streams``: detection latency and memory.

A worker starts over a customer-state changelog seeded with open quotes (as
after a restart), with the source watermark published every ``heartbeat_ms``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from bench import workload as wl
from bench.processor_run import DELAY_MINUTES, Run
from devstack.children import GroupProgress, WorkerProcess
from devstack.errors import BenchError
from quoteflow.topics import TRIGGERS
from streams.core.rules import Rules
from streams.core.state_codec import encode_state

#: How far ahead of its write a latency quote's deadline lies.
LEAD_MS = 5_000


def _seed(run: Run, phase: str, rules: Rules, quotes: int, updated_ms: int) -> None:
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
def seeded_worker(run: Run, phase: str, rules: Rules, quotes: int,
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


def latency(run: Run, rules: Rules, open_quotes: int, count: int,
            heartbeat_ms: int) -> tuple[list[float], list[float], float]:  # fmt: skip
    """(fired - deadline, visible - deadline of each trigger, worker RSS) in ms and MiB."""
    phase = "latency"
    with seeded_worker(run, phase, rules, open_quotes, heartbeat_ms) as (worker, source):
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
    return fired, visible, rss_now


class _TriggerReader:
    """read_committed reader of the triggers topic, timing each trigger from its deadline."""

    def __init__(self, run: Run, topic: str) -> None:
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


def memory(run: Run, rules: Rules, quotes: int) -> float:
    """Peak resident MiB of a worker holding ``quotes`` open quotes."""
    phase = "memory"
    with seeded_worker(run, phase, rules, quotes, 1000) as (worker, _source):
        time.sleep(2)
        _, peak = worker.rss_mb()
    run.report(f"{phase}: worker peak RSS {peak:,.0f} MiB with {quotes:,} open quotes")
    return peak


def _ms(value: Any) -> float:
    """A timestamp-millis field as epoch ms (the serde may hand back a datetime)."""
    if isinstance(value, int | float):
        return float(value)
    return float(value.timestamp() * 1000)
