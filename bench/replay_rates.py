"""The replay benchmark's reference rates: a raw consume loop, and the core on a sample.

The raw loop is the ceiling Kafka and confluent-kafka set on this machine:
every message of the change and watermark topics consumed in batches, each
value touched, nothing else. The core's rates are measured on a sample of the
same history, in process, without Kafka: the Avro decoding with the change
parsing (as the lanes do it, and the full decode they did before), then the
event-time core alone over the decoded changes. Together they say where a
replay's time goes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from bench import workload as wl
from bench.replay_history import History, QuoteEnvelopes, reference_items
from devstack.errors import BenchError
from quoteflow.settings import Settings
from schemas.serde import Serde
from streams.core.changes import quote_changes
from streams.core.event_time import EventTimeRun
from streams.core.model import Change
from streams.core.rules import Rules
from streams.replay.collector import batch_collection
from streams.replay.decoding import ChangeDecoder
from streams.replay.reader import FETCH_CONFIG

#: Messages per consume call (the replay reader's batch).
BATCH = 10_000


def raw_consume(settings: Settings, ends: Mapping[tuple[str, int], int], *,
                timeout_s: float = 600.0) -> tuple[int, float]:  # fmt: skip
    """(messages, seconds) to consume every message below ``ends``, touching each value.

    The clock runs from creating the consumer, as the replay's does, to the last message.
    """
    started = time.perf_counter()
    consumer = Consumer({
        **settings.kafka.as_librdkafka_dict(),
        "group.id": f"quoteflow-bench-raw-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "isolation.level": "read_committed",
        **FETCH_CONFIG,  # as the replay's reader fetches
    })  # fmt: skip
    try:
        todo = sum(ends.values())
        consumer.assign([TopicPartition(t, p, 0) for (t, p), end in ends.items() if end > 0])
        read = touched = 0
        deadline = time.monotonic() + timeout_s
        while read < todo:
            for message in consumer.consume(BATCH, 0.5):
                if message.error() is not None:
                    raise BenchError(f"the raw consume loop failed: {message.error()}")
                touched += len(message.value() or b"")
                read += 1
            if time.monotonic() > deadline:
                raise BenchError(f"the raw consume loop read {read:,} of {todo:,} messages "
                                 f"in {timeout_s:.0f}s")  # fmt: skip
        return read, time.perf_counter() - started
    finally:
        consumer.close()


@dataclass(frozen=True)
class DecodeRates:
    """Quote change records per second, decoded and parsed, both ways over the same values."""

    #: What a replay lane does now (:class:`streams.replay.decoding.ChangeDecoder`).
    lanes_per_s: float
    #: What it did before: the serde's full decode, then ``quote_changes``.
    full_per_s: float


def decode_rates(serde: Serde, history: History, *, passes: int = 3) -> DecodeRates:
    """Both decodings of the sample's quote change records, the fastest of ``passes``
    interleaved passes each (a busy machine slows both alike), after checking that they
    give the same changes."""
    envelopes = QuoteEnvelopes(history)
    values = [serde.encode("qms_quote_envelope", envelopes(k), topic=wl.QUOTES)
              for k in range(history.events)]  # fmt: skip
    decoder = ChangeDecoder(serde)

    def lanes(value: bytes) -> Sequence[Change]:
        return decoder.quote(value, topic=wl.QUOTES)

    def full(value: bytes) -> Sequence[Change]:
        return quote_changes(serde.decode("qms_quote_envelope", value, topic=wl.QUOTES))

    for value in values[:1000]:  # the writer schema learned, and the two agree
        if list(lanes(value)) != list(full(value)):
            raise BenchError("the lanes' decoding and the full decode disagree on the sample")
    best = {lanes: float("inf"), full: float("inf")}
    with batch_collection():  # as the lanes run it
        for _ in range(passes):
            for read in (lanes, full):
                started = time.perf_counter()
                for value in values:
                    read(value)
                best[read] = min(best[read], time.perf_counter() - started)
    return DecodeRates(len(values) / best[lanes], len(values) / best[full])


def core_rate(history: History, rules: Rules) -> tuple[float, int]:
    """(change records per second, outputs) of the event-time core alone over the sample."""
    items: list[Change | int] = list(reference_items(history))
    changes = sum(1 for item in items if not isinstance(item, int))
    run = EventTimeRun(rules)
    outputs = 0
    with batch_collection():  # as the lanes run it
        started = time.perf_counter()
        for item in items:
            outputs += len(run.advance(item) if isinstance(item, int) else run.apply(item))
        seconds = time.perf_counter() - started
    return changes / seconds, outputs
