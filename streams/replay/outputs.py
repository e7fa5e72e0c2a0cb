"""Where a replay's decisions go: counted always, written to topics unless it is a dry run.

The records are the live processor's (:mod:`streams.core.records`) with
``replay`` set and ``fired_at`` the event time the trigger fired for (live it
is the wall clock): a replay's output is then a function of the range and the
rules alone, the same bytes whenever it runs. Ids are deterministic too, which
makes resuming exact: the ids already in the output topics are skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from quoteflow.logs import mask_email
from quoteflow.settings import Settings
from schemas.errors import SerdeError
from schemas.serde import Serde
from streams.core.model import Output, Trigger
from streams.core.records import decision_record, trigger_record
from streams.core.rules import Rules
from streams.errors import ReplayError

#: How many triggers a dry run shows.
SAMPLE = 10
#: Records produced between two serves of the delivery reports (a full queue serves
#: them at once; flush serves the rest).
POLL_EVERY = 1_000


@dataclass(frozen=True)
class Target:
    """The topics a replay writes (both None: a dry run writes nothing)."""

    triggers: str | None = None
    decisions: str | None = None

    @property
    def dry_run(self) -> bool:
        return self.triggers is None


@dataclass(frozen=True, slots=True)
class TriggerSample:
    """A trigger as a dry run shows it: enough to recognise it, no address in clear."""

    quote_ref: str
    customer_id: int
    email: str
    offer: str
    deadline_ms: int
    fire_ms: int


@dataclass
class Tally:
    """Outputs by outcome (``TRIGGER`` and the decision outcomes), and a sample."""

    outcomes: Counter[str] = field(default_factory=Counter)
    sample: list[TriggerSample] = field(default_factory=list)

    def add(self, output: Output) -> None:
        if isinstance(output, Trigger):
            self.outcomes["TRIGGER"] += 1
            if len(self.sample) < SAMPLE:
                self.sample.append(TriggerSample(
                    output.quote.quote_ref, output.customer.customer_id,
                    mask_email(output.customer.email or ""), output.offer.code,
                    output.deadline_ms, output.fire_ms))  # fmt: skip
        else:
            self.outcomes[output.outcome.value] += 1

    def merge(self, other: Tally) -> None:
        self.outcomes.update(other.outcomes)
        room = SAMPLE - len(self.sample)
        self.sample.extend(other.sample[:max(room, 0)])


def output_id(output: Output) -> str:
    return output.trigger_id if isinstance(output, Trigger) else output.decision_id


class Writer:
    """Encodes and produces outputs to a :class:`Target`, skipping ids already written."""

    def __init__(self, settings: Settings, serde: Serde, target: Target, rules: Rules, *,
                 skip: frozenset[str] = frozenset()) -> None:  # fmt: skip
        assert target.triggers is not None and target.decisions is not None
        self.serde, self.target, self.skip = serde, target, skip
        quiet = rules.quiet_hours
        self.quiet = (quiet.start, quiet.end, quiet.default_timezone)
        self.written = self.skipped = 0
        self._failure: str | None = None
        self.producer = Producer({
            **settings.kafka.as_librdkafka_dict(), "acks": "all", "enable.idempotence": True,
            "linger.ms": 20, "compression.type": "lz4",
            # Reports for failures only: a Python callback per acknowledged record was
            # a measurable part of a lane's time, and only a failure needs one.
            "delivery.report.only.error": True,
        })  # fmt: skip

    def write(self, output: Output) -> None:
        if self.skip and output_id(output) in self.skip:
            self.skipped += 1
            return
        if isinstance(output, Trigger):
            topic = self.target.triggers or ""
            record = trigger_record(output, fired_at_ms=output.fire_ms, replay=True,
                                    quiet_hours=self.quiet)  # fmt: skip
            value = self.serde.encode("abandonment_trigger", record, topic=topic)
            key = str(output.customer.customer_id).encode()
        else:
            topic = self.target.decisions or ""
            value = self.serde.encode("abandonment_decision", decision_record(output, replay=True),
                                      topic=topic)  # fmt: skip
            key = str(output.customer_id or output.quote.customer_id).encode()
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.written += 1
        if self.written % POLL_EVERY == 0:  # delivery reports: per batch, not per record
            self.producer.poll(0)

    def _delivered(self, error: KafkaError | None, _message: object) -> None:
        if error is not None and self._failure is None:
            self._failure = str(error)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Every output written so far is on the broker, or this raises."""
        left = self.producer.flush(timeout_s)
        if self._failure is not None:
            raise ReplayError(f"writing the replay's output failed: {self._failure}")
        if left:
            raise ReplayError(f"{left} output record(s) not acknowledged in {timeout_s:.0f}s")


def written_ids(settings: Settings, serde: Serde, target: Target,
                on_progress: Callable[[int], None] | None = None) -> frozenset[str]:  # fmt: skip
    """Every trigger and decision id already in the target topics (a resume skips them)."""
    ids: set[str] = set()
    for topic, schema, field_name in ((target.triggers, "abandonment_trigger", "trigger_id"),
                                      (target.decisions, "abandonment_decision", "decision_id")):
        if topic is None:
            continue
        for value in _values(settings, topic):
            try:
                ids.add(str(serde.decode(schema, value, topic=topic)[field_name]))
            except SerdeError as exc:
                raise ReplayError(f"{topic} holds a record that is not a replay output: {exc}"
                                  ) from None  # fmt: skip
            if on_progress is not None and len(ids) % 10_000 == 0:
                on_progress(len(ids))
    return frozenset(ids)


def _values(settings: Settings, topic: str) -> Iterable[bytes]:
    """Every value of every partition of ``topic``, up to its end now."""
    from streams.replay.reader import consumer

    reader: Consumer = consumer(settings, **{"enable.partition.eof": True})
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), 10)
                for p in partitions}  # fmt: skip
        todo = {p for p, (low, high) in ends.items() if high > low}
        reader.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        while todo:
            for message in reader.consume(5_000, 1.0):
                partition = message.partition() or 0
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise ReplayError(f"reading {topic}[{partition}] failed: {error}")
                if error is None and message.value():
                    yield message.value() or b""
                if (message.offset() or 0) + (0 if error is not None else 1) >= ends[partition][1]:
                    todo.discard(partition)
    except KafkaException as exc:
        raise ReplayError(f"reading {topic} failed: {exc.args[0]}") from None
    finally:
        reader.close()

