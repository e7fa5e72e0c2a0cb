"""The throughput phases of ``quoteflow bench streams``: the core, faust, the processor, Kafka.

Each rate is over the same quote change events (the same encoded bytes) written
to each phase's own input topic; :mod:`bench.processor` runs them in turn.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, Producer

from bench import workload as wl
from bench.core import run_core
from bench.processor_run import Run, produce
from devstack.children import GroupProgress, WorkerProcess
from devstack.errors import BenchError
from schemas.serde import Serde
from streams.core.rules import Rules


# -- the pure core --------------------------------------------------------------------------
def core_rates(serde: Serde, rules: Rules, customers: Sequence[bytes],
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
def forwarder_rate(run: Run, source: wl.Source, quotes: Sequence[bytes],
                   keys: Sequence[int], warm: int) -> float:  # fmt: skip
    inbound, outbound = run.prefix("forward") + "in", run.prefix("forward") + "out"
    run.create_topics([inbound, outbound])
    app_id = run.app_id("forward")
    run.report(f"faust forwarder: warming up on {warm:,} records")
    worker = WorkerProcess(["-m", "bench.forwarder", app_id, inbound, outbound],
                           run.worker_env("forward"), run.home / "forwarder.log")  # fmt: skip
    progress = GroupProgress(run.settings, app_id)
    try:
        produce(source, inbound, quotes[:warm], keys[:warm])
        progress.wait_until(inbound, source.end_offsets(inbound), timeout_s=180, worker=worker,
                            what="faust forwarder warm-up")  # fmt: skip
        run.report(f"faust forwarder: {len(quotes) - warm:,} records")
        t0 = time.perf_counter()
        produce(source, inbound, quotes[warm:], keys[warm:])
        t1 = progress.wait_until(inbound, source.end_offsets(inbound), timeout_s=1800,
                                 worker=worker, what="faust forwarder")  # fmt: skip
        return (len(quotes) - warm) / (t1 - t0)
    finally:
        progress.close()
        worker.stop()


def processor_rate(run: Run, source: wl.Source, customers: Sequence[bytes],
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
        produce(source, customers_topic, customers, customer_keys)
        produce(source, quotes_topic, quotes[:warm], quote_keys[:warm])
        for topic in (customers_topic, quotes_topic):
            routing.wait_until(topic, source.end_offsets(topic), timeout_s=300, worker=worker,
                               what="processor warm-up")  # fmt: skip
        progress.wait_until(by_customer, source.end_offsets(by_customer), timeout_s=300,
                            worker=worker, what="processor warm-up")  # fmt: skip
        run.report(f"processor: {len(quotes) - warm:,} quote events")
        t0 = time.perf_counter()
        produce(source, quotes_topic, quotes[warm:], quote_keys[warm:])
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


# -- Kafka alone -------------------------------------------------------------------------------
def baseline_rate(run: Run, topic: str, count: int) -> float:
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
