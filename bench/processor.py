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

This module runs the phases in that order and reports; the throughput phases
are :mod:`bench.processor_rates`, the seeded workers :mod:`bench.processor_seeded`,
and a run's names, topics and clean-up :mod:`bench.processor_run`.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench import workload as wl
from bench.processor_rates import baseline_rate, core_rates, forwarder_rate, processor_rate
from bench.processor_run import DELAY_MINUTES, Run, cleanup
from bench.processor_seeded import latency, memory
from bench.report import percentile
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics.catalog import stream_partitions
from schemas.serde import serde_from_settings
from streams.core.rules import Rules, load_rules


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


def run_streams_bench(settings: Settings, *, config_file: Path | None, events: int,
                      open_quotes: int, memory_quotes: int, latency_quotes: int,
                      heartbeat_ms: int, report: Reporter) -> StreamsBenchResult:  # fmt: skip
    partitions = stream_partitions(settings.topics.partitions)
    serde = serde_from_settings(settings.schema_registry)
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    home = Path(tempfile.mkdtemp(prefix="quoteflow-bench-streams-"))
    run = Run(settings, config_file, serde, report, home, uuid.uuid4().hex[:8], partitions,
               admin, [])  # fmt: skip
    (home / "rules.toml").write_text(wl.RULES_TOML.format(delay_minutes=DELAY_MINUTES))
    rules = load_rules(home / "rules.toml")
    try:
        result = _bench(run, rules, events=events, open_quotes=open_quotes,
                        memory_quotes=memory_quotes, latency_quotes=latency_quotes,
                        heartbeat_ms=heartbeat_ms)  # fmt: skip
    except BaseException:
        cleanup(run, keep_home=True)  # the workers' logs, named in the error
        raise
    cleanup(run, keep_home=False)
    return result


def _bench(run: Run, rules: Rules, *, events: int, open_quotes: int, memory_quotes: int,
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
        core, core_decoded = core_rates(run.serde, rules, customers, quotes)
        report(f"core: {core:,.0f} events/s; with Avro decoding {core_decoded:,.0f} events/s")

        warm = min(max(events // 10, 100), 2_000)
        ceiling = forwarder_rate(run, source, quotes, quote_keys, warm)
        report(f"faust forwarder: {ceiling:,.0f} events/s")

        rate, quotes_topic = processor_rate(run, source, customers, customer_keys, quotes,
                                            quote_keys, warm)  # fmt: skip
        report(f"processor: {rate:,.0f} events/s")

        baseline = baseline_rate(run, quotes_topic, len(quotes))
        report(f"confluent-kafka consume->produce: {baseline:,.0f} events/s")
    finally:
        source.close()

    fired, visible, rss_100k = latency(run, rules, open_quotes, latency_quotes, heartbeat_ms)
    rss = memory(run, rules, memory_quotes)
    return StreamsBenchResult(
        events=events, events_per_s=rate, faust_ceiling_per_s=ceiling, baseline_per_s=baseline,
        core_events_per_s=core, core_decode_events_per_s=core_decoded,
        detect_p50_ms=percentile(fired, 50), detect_p99_ms=percentile(fired, 99),
        visible_p99_ms=percentile(visible, 99), rss_mb_1m_open=rss,
        rss_mb_worker_100k_open=rss_100k, open_quotes=open_quotes,
        memory_quotes=memory_quotes, heartbeat_ms=heartbeat_ms,
        guarantee=run.settings.streams.processing_guarantee,
    )  # fmt: skip
