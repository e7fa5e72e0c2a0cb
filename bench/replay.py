"""``quoteflow bench replay``: the replay driver over a recorded history, against Kafka's own pace.

One run seeds a history on the real broker, in topics of its own prefix
(:mod:`bench.replay_history`: a million distinct quote changes by default,
their customers, and the CDC's watermark records every few thousand changes,
so quotes fall due during the replay), then measures over the *same* messages:

* ``baseline_per_s``: a raw confluent-kafka consume loop over every message of
  the quotes, customers and watermark topics, touching each value, nothing
  else (:func:`bench.replay_rates.raw_consume`); run before and after the
  replay, the faster run counts (the ratio is never flattered by a slow one);
* ``events_per_s``: ``quoteflow replay`` itself (:func:`streams.replay.plan.prepare`
  and :func:`streams.replay.driver.run`, as the command calls them) over the
  whole range, decoding, event-time ordering, the core and writing its triggers
  and decisions to the replay's own topics, acknowledged, all included;
* ``decode_per_s`` and ``core_per_s``: on a sample of the same history, in
  process: Avro decoding with the change parsing as the lanes do it, and the
  event-time core alone (:mod:`bench.replay_rates`), to say where the replay's
  time goes; ``full_decode_per_s``: the same sample through the serde's full
  decode and ``quote_changes``, what the lanes did before their projection.

Both rates count the change records (quotes and customers) over each phase's
seconds, so ``ratio`` is the baseline's time over the replay's. Everything the
run created (topics, and subjects when a registry is configured) is deleted at
the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench import workload as wl
from bench.replay_history import DELAY_MINUTES, History
from bench.replay_rates import core_rate, decode_rates, raw_consume
from bench.replay_seed import Topics, end_offsets, seed
from bench.report import rate_figure
from devstack.errors import BenchError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from schemas.serde import serde_from_settings
from schemas.subjects.admin import delete_subjects
from streams.core.rules import load_rules
from streams.replay.driver import Result, run
from streams.replay.plan import Options, prepare
from streams.replay.range import OPEN
from streams.replay.reader import Names

#: Quote changes per customer in the history (each customer's quotes supersede, convert, fall due).
QUOTES_PER_CUSTOMER = 10
#: The replay's name: its topics are <prefix>quoteflow.replay.bench.triggers/.decisions.
REPLAY_NAME = "bench"
#: Quote changes between two watermark records, at most (fewer in a small history, whose
#: commit times are further apart: a record still comes every 10 s of commit time or so).
WATERMARK_EVERY = 5_000


@dataclass(frozen=True)
class ReplayBenchResult:
    events: int  # change records replayed: quote changes and customers
    quote_events: int
    customers: int
    events_per_s: float
    baseline_per_s: float
    baseline_runs: tuple[float, ...]
    seconds: float
    lanes: int
    triggers: int
    decisions: int
    written: int
    watermark_records: int
    decode_per_s: float
    full_decode_per_s: float
    core_per_s: float
    sample: int
    seed_per_s: float
    prefix: str  # the run's topics' prefix (still there only with keep)

    @property
    def ratio(self) -> float:
        return self.events_per_s / self.baseline_per_s if self.baseline_per_s else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "events_per_s": rate_figure(self.events_per_s),
            "baseline_per_s": rate_figure(self.baseline_per_s),
            "ratio": round(self.ratio, 2),
            "events": self.events,
            "quote_events": self.quote_events,
            "customers": self.customers,
            "seconds": round(self.seconds, 1),
            "lanes": self.lanes,
            "triggers": self.triggers,
            "decisions": self.decisions,
            "written": self.written,
            "watermark_records": self.watermark_records,
            "decode_per_s": rate_figure(self.decode_per_s),
            "full_decode_per_s": rate_figure(self.full_decode_per_s),
            "core_per_s": rate_figure(self.core_per_s),
            "sample": self.sample,
            "baseline_runs_per_s": [rate_figure(r) for r in self.baseline_runs],
            "seed_per_s": rate_figure(self.seed_per_s),
        }


def run_replay_bench(settings: Settings, *, events: int, lanes: int, report: Reporter,
                     sample: int = 50_000, watermark_every: int | None = None,
                     seed_shares: int = 2, start_ms: int | None = None,
                     keep: bool = False) -> ReplayBenchResult:  # fmt: skip
    """The benchmark; ``keep`` leaves the run's topics and subjects (a test reads them)."""
    prefix = f"bench.replay.{uuid.uuid4().hex[:8]}."
    bench = settings.model_copy(
        update={"topics": settings.topics.model_copy(update={"prefix": prefix})})  # fmt: skip
    home = Path(tempfile.mkdtemp(prefix="quoteflow-bench-replay-"))
    try:
        return _bench(bench, home, events=events, lanes=lanes, report=report, sample=sample,
                      watermark_every=watermark_every, seed_shares=seed_shares,
                      start_ms=start_ms)  # fmt: skip
    finally:
        if not keep:
            cleanup(settings, prefix)
        shutil.rmtree(home, ignore_errors=True)


def _bench(settings: Settings, home: Path, *, events: int, lanes: int, report: Reporter,
           sample: int, watermark_every: int | None, seed_shares: int,
           start_ms: int | None) -> ReplayBenchResult:  # fmt: skip
    prefix = settings.topics.prefix
    names = Names.of(prefix)
    topics = Topics(names.quotes, names.customers, names.watermarks)
    admin = TopicAdmin(settings)
    specs = [s for s in admin.catalogue if s.name in (topics.quotes, topics.customers,
                                                       topics.watermarks)]  # fmt: skip
    admin.create(specs)
    partitions = {s.name: s.partitions for s in specs}
    rules_file = home / "rules.toml"
    rules_file.write_text(wl.RULES_TOML.format(delay_minutes=DELAY_MINUTES))
    rules = load_rules(rules_file)
    customers = max(events // QUOTES_PER_CUSTOMER, 1)
    if watermark_every is None:  # a record per 10 s of commit time at 1M events
        watermark_every = max(1, min(WATERMARK_EVERY, events // 200))
    history = History(events, customers, 0, partitions[topics.quotes],
                      partitions[topics.customers], watermark_every)  # fmt: skip
    span_ms = events * history.step_ms  # the history ends now, unless told where it starts
    start = int(time.time() * 1000) - span_ms if start_ms is None else start_ms
    history = dataclasses.replace(history, start_ms=start)

    report(f"seeding {events:,} quote changes, {customers:,} customers and watermark "
           f"records every {watermark_every:,} changes into {prefix}* "
           f"({seed_shares} processes)")  # fmt: skip
    started = time.perf_counter()
    written = seed(settings, history, topics, shares=seed_shares, progress=report)
    seed_per_s = written / (time.perf_counter() - started)
    report(f"seeded: {seed_per_s:,.0f} change records/s")

    ends = end_offsets(settings, [topics.quotes, topics.customers, topics.watermarks])
    watermark_records = sum(e for (t, _), e in ends.items() if t == topics.watermarks)
    baselines = [_baseline(settings, ends, written, report)]

    sampled = History(min(sample, events), max(min(sample, events) // QUOTES_PER_CUSTOMER, 1),
                      start, history.quote_partitions, history.customer_partitions,
                      watermark_every)  # fmt: skip
    serde = serde_from_settings(settings.schema_registry)
    try:
        decode = decode_rates(serde, sampled)
    finally:
        serde.close()
    core, _ = core_rate(sampled, rules)
    report(f"sample of {sampled.events:,}: decode and parse {decode.lanes_per_s:,.0f}/s "
           f"(full decode {decode.full_per_s:,.0f}/s), core alone {core:,.0f}/s")  # fmt: skip

    result = _replay(settings, rules_file, lanes, written, report)
    baselines.append(_baseline(settings, ends, written, report))
    rate = result.events / result.seconds
    tally = result.tallies[0].outcomes
    return ReplayBenchResult(
        events=result.events, quote_events=events, customers=customers, events_per_s=rate,
        baseline_per_s=max(baselines), baseline_runs=tuple(baselines), seconds=result.seconds,
        lanes=lanes, triggers=tally["TRIGGER"], decisions=sum(tally.values()) - tally["TRIGGER"],
        written=result.written, watermark_records=watermark_records,
        decode_per_s=decode.lanes_per_s, full_decode_per_s=decode.full_per_s, core_per_s=core,
        sample=sampled.events, seed_per_s=seed_per_s, prefix=prefix,
    )  # fmt: skip


def _baseline(settings: Settings, ends: dict[tuple[str, int], int], changes: int,
              report: Reporter) -> float:  # fmt: skip
    messages, seconds = raw_consume(settings, ends)
    rate = changes / seconds
    report(f"raw consume loop: {messages:,} messages in {seconds:,.1f}s, "
           f"{rate:,.0f} change records/s")  # fmt: skip
    return rate


def _replay(settings: Settings, rules_file: Path, lanes: int, changes: int,
            report: Reporter) -> Result:  # fmt: skip
    options = Options(start=OPEN, end=OPEN, name=REPLAY_NAME, rules_file=rules_file,
                      lanes=lanes)  # fmt: skip
    prepared = prepare(settings, options, report)
    report(f"replay: {changes:,} change records in {lanes} lane(s), writing to "
           f"{prepared.job.target.triggers}")  # fmt: skip
    last = [time.monotonic()]

    def progress(read: int) -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            report(f"  replay: {read:,} of {changes:,} change records read")

    result = run(prepared.job, threading.Event(), progress)
    if result.stopped or result.events != changes or result.undecodable:
        raise BenchError(f"the replay read {result.events:,} of {changes:,} change records "
                         f"({result.undecodable:,} undecodable): the range was not replayed")
    report(f"replay: {result.events / result.seconds:,.0f} change records/s, "
           f"{result.written:,} outputs written in {result.seconds:,.1f}s")  # fmt: skip
    return result


def cleanup(settings: Settings, prefix: str) -> None:
    """Delete the run's topics and subjects; best effort (never hides the run's own error)."""
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    with contextlib.suppress(Exception):
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names).values():
                with contextlib.suppress(Exception):
                    future.result()
        # The controller accepts a deletion before the brokers' metadata drops the topic:
        # wait, so whoever lists topics next (a test, the next run) does not see them.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                t.startswith(prefix) for t in admin.list_topics(timeout=10).topics):  # fmt: skip
            time.sleep(0.2)
    with contextlib.suppress(Exception):
        delete_subjects(settings, prefix)
