"""The replay's Kafka edge: pin the range to offsets, then read it in confluent-kafka batches.

Everything is pinned before the first record is read: each change-topic
partition's ``[start, end)`` and the watermark topic's, from the broker's
offsets for the times given or its ends now. A replay of "up to now" therefore
ends, on a pipeline that keeps writing, and its resume command can name the
same range in offsets. The reader assigns partitions (no group membership: a
live component's group is never joined, nor its offsets committed), reads
``read_committed``, and pauses a partition whose unreleased changes pile up
unless the next watermark record waits for it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from quoteflow.settings import Settings
from quoteflow.topics.catalog import CHANGE_TOPICS, CUSTOMERS, QUOTES, WATERMARKS, prefixed
from schemas.errors import SerdeError
from schemas.peeker import CUSTOMER_PATHS, Peeker
from schemas.serde import Serde
from streams.core.changes import ChangeError
from streams.core.model import Change, TableTruncated
from streams.core.watermarks import SourceWatermark
from streams.errors import ReplayError
from streams.replay.decoding import ChangeDecoder
from streams.replay.range import Bound
from streams.replay.sequencer import Released, Sequencer, Span

BATCH = 10_000
#: How a replay's consumer fetches (the benchmark's raw loop fetches alike). Big fetches:
#: the broker and librdkafka's threads share the lanes' two cores, and fewer, larger
#: fetch requests left the lanes 6 % more of them (44k -> 47k events/s on the benchmark).
FETCH_CONFIG: dict[str, int] = {
    "fetch.wait.max.ms": 50,
    "fetch.min.bytes": 4_194_304,
    "max.partition.fetch.bytes": 8_388_608,
    "queued.max.messages.kbytes": 65_536,
}
#: Released items between two looks at the stop (a lane's is a cross-process event).
STOP_EVERY = 1_000
#: Unreleased records buffered per partition before it is paused (memory stays bounded).
HIGH_WATER = 200_000


@dataclass(frozen=True)
class Names:
    """The topics a replay reads, as this deployment spells them."""

    quotes: str
    customers: str
    watermarks: str
    sources: Mapping[str, str]  # change topic -> CDC source

    @classmethod
    def of(cls, prefix: str) -> Names:
        sources = {prefixed(prefix, topic): source for source, topic in CHANGE_TOPICS.items()}
        return cls(prefixed(prefix, QUOTES), prefixed(prefix, CUSTOMERS),
                   prefixed(prefix, WATERMARKS), sources)  # fmt: skip


@dataclass(frozen=True)
class PinnedRange:
    """A range in offsets: what a lane reads, and what the resume command names."""

    spans: Mapping[tuple[str, int], Span]
    watermarks: Span  # of the watermark topic's one partition
    stop_after_ms: int | None  # --to as a time
    tail: bool  # release the changes after the last watermark record (--to not a time)
    start: Bound
    end: Bound

    @property
    def events(self) -> int:
        """Change records in the range (compacted gaps make it an upper bound)."""
        return sum(span.end - span.start for span in self.spans.values())

    def quote_ends(self, quotes: str) -> Bound:
        """``--to`` pinned to the quotes topic's offsets (a time ``--to`` is kept as is)."""
        if self.end.at_ms is not None:
            return self.end
        return Bound(offsets={p: span.end for (t, p), span in self.spans.items() if t == quotes})


def consumer(settings: Settings, **extra: Any) -> Consumer:
    """A reader that joins no group and commits nothing (the id only names it)."""
    return Consumer({
        **settings.kafka.as_librdkafka_dict(),
        "group.id": f"quoteflow-replay-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
        "isolation.level": "read_committed", **extra,
    })  # fmt: skip


def pin_range(settings: Settings, names: Names, start: Bound, end: Bound) -> PinnedRange:
    """Turn ``--from``/``--to`` into offsets on the broker as it is now."""
    reader = consumer(settings)
    try:
        metadata = reader.list_topics(timeout=10)
        missing = [t for t in (names.quotes, names.customers, names.watermarks)
                   if t not in metadata.topics or metadata.topics[t].error is not None]  # fmt: skip
        if missing:
            raise ReplayError(f"topic(s) {', '.join(missing)} not on the broker: nothing "
                              "to replay (is topics.prefix right? `quoteflow topics list`)")
        # The watermark topic's end first: its records vouch only for changes already in
        # the change topics, so every record pinned has its changes inside the range.
        wm_low, wm_high = reader.get_watermark_offsets(TopicPartition(names.watermarks, 0), 10)
        wm_start = wm_low
        if start.at_ms is not None:
            wm_start = _offset_for_time(reader, names.watermarks, 0, start.at_ms, wm_high)
        spans: dict[tuple[str, int], Span] = {}
        for topic in (names.quotes, names.customers):
            for partition in sorted(metadata.topics[topic].partitions):
                low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), 10)
                spans[(topic, partition)] = _span(topic == names.quotes, partition, low, high,
                                                  start, end, reader, topic)  # fmt: skip
        _check_partitions(names.quotes, spans, start, end)
    except KafkaException as exc:
        raise ReplayError(f"the broker could not be asked for the range: {exc.args[0]}") from None
    finally:
        reader.close()
    return PinnedRange(spans, Span(wm_start, wm_high), end.at_ms, end.at_ms is None, start, end)


def _span(is_quotes: bool, partition: int, low: int, high: int, start: Bound, end: Bound,
          reader: Consumer, topic: str) -> Span:  # fmt: skip
    """The customers topic is read from its beginning whatever ``--from`` says: it is the
    join's other side, compacted to every customer's row, and a quote replayed from the
    middle of the history still needs its customer."""
    first = low
    if is_quotes and start.offsets is not None:
        first = min(max(start.offsets.get(partition, low), low), high)
    elif is_quotes and start.at_ms is not None:
        first = _offset_for_time(reader, topic, partition, start.at_ms, high)
    last = high
    if is_quotes and end.offsets is not None and partition in end.offsets:
        last = min(max(end.offsets[partition], first), high)
    return Span(first, last)


def _offset_for_time(reader: Consumer, topic: str, partition: int, at_ms: int, high: int) -> int:
    found = reader.offsets_for_times([TopicPartition(topic, partition, at_ms)], timeout=10)
    offset = found[0].offset
    return high if offset < 0 else offset  # nothing at or after the time: empty


def _check_partitions(quotes: str, spans: Mapping[tuple[str, int], Span], start: Bound,
                      end: Bound) -> None:  # fmt: skip
    have = {p for t, p in spans if t == quotes}
    for option, bound in (("--from", start), ("--to", end)):
        unknown = sorted(set(bound.offsets or ()) - have)
        if unknown:
            raise ReplayError(f"{option}: {quotes} has no partition {unknown[0]} "
                              f"(it has {len(have)})")  # fmt: skip


class RangeReader:
    """Reads a pinned range into a :class:`Sequencer` and yields what it releases.

    ``keep`` (customer id -> bool) lets a lane step only its share of the customers;
    a change it does not keep is still counted as read (the watermark needs that),
    and not decoded when a peek at its rows' customer ids says it is another lane's.
    ``counts_shared``: whether this reader counts the undecodable records that every
    lane decodes (watermark records, changes whose customer a peek cannot tell); one
    lane does, so the lanes' counts add up to the range's.
    """

    def __init__(self, settings: Settings, serde: Serde, names: Names, pinned: PinnedRange, *,
                 keep: Callable[[int], bool] | None = None,
                 counts_shared: bool = True) -> None:  # fmt: skip
        self.serde, self.names, self.pinned, self.keep = serde, names, pinned, keep
        self.counts_shared = counts_shared
        self.sequencer = Sequencer(names.sources, pinned.spans,
                                   stop_after_ms=pinned.stop_after_ms, tail=pinned.tail)
        self.consumer = consumer(settings, **{"enable.partition.eof": True, **FETCH_CONFIG})
        self.events = 0  # change records read
        #: Decodes only what the core reads of the changes this lane owns (same changes).
        self._decoder = ChangeDecoder(serde)
        self.undecodable = 0
        #: A lane's cheap look at whose a change is, before decoding it (see _owned).
        self._peek = None if keep is None else {
            names.quotes: Peeker(serde, "qms_quote_envelope", CUSTOMER_PATHS),
            names.customers: Peeker(serde, "crm_customer_envelope", CUSTOMER_PATHS)}  # fmt: skip
        self._open: dict[tuple[str, int], int] = {}  # partition -> its end, until reached
        self._paused: set[tuple[str, int]] = set()

    def read(self, stop: threading.Event) -> Iterator[Released]:
        """Everything the range releases, in event-time order, until done or ``stop``."""
        assignment = []
        for (topic, partition), span in self.pinned.spans.items():
            if span.end > span.start:
                assignment.append(TopicPartition(topic, partition, span.start))
                self._open[(topic, partition)] = span.end
        wm = self.pinned.watermarks
        if wm.end > wm.start:
            assignment.append(TopicPartition(self.names.watermarks, 0, wm.start))
            self._open[(self.names.watermarks, 0)] = wm.end
        try:
            if assignment:
                self.consumer.assign(assignment)
            while self._open and not stop.is_set() and not self._done():
                self._take_all(self.consumer.consume(BATCH, 0.1))
                yield from _until(stop, self.sequencer.release())
                self._flow()
            if not stop.is_set():
                yield from _until(stop, self.sequencer.finish())
        finally:
            self.close()

    def _done(self) -> bool:
        """Without a tail, reading on is useless once the range ended at a record or every
        watermark record is read and released (with one, every partition is read to its
        end: the tail is the changes after the last record)."""
        if self.pinned.tail:
            return False
        watermarks_read = (self.names.watermarks, 0) not in self._open
        return self.sequencer.ended or (watermarks_read and self.sequencer.pending_records == 0)

    def _take_all(self, messages: list[Message]) -> None:
        """A fetched batch, each message as :meth:`_take` takes it; the common one (a change
        record inside its span, not its last) without a call and lookups of its own: a
        lane reads every record of the range, and this loop is per record."""
        watermarks, spans = self.names.watermarks, self._open
        changes, buffer = self._changes, self.sequencer.changes
        events = 0
        try:
            for message in messages:
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                end = spans.get((topic, partition))  # type: ignore[arg-type]
                if (end is None or offset is None or offset + 1 >= end or topic == watermarks
                        or message.error() is not None):  # fmt: skip
                    self._take(message)
                    continue
                events += 1
                buffer(topic, partition, offset, changes(topic, message))  # type: ignore[arg-type]
        finally:
            self.events += events

    def _take(self, message: Message) -> None:
        topic, partition = message.topic() or "", message.partition() or 0
        key = (topic, partition)
        end = self._open.get(key)
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                offset = message.offset() or 0
                if topic != self.names.watermarks:
                    self.sequencer.reached(topic, partition, min(offset, end or offset))
                if end is not None and offset >= end:
                    self._close(key)
                return
            raise ReplayError(f"reading {topic}[{partition}] failed: {error}")
        offset = message.offset() or 0
        if end is None or offset >= end:  # past the pinned end: this partition is done
            if end is not None:
                if topic != self.names.watermarks:
                    self.sequencer.reached(topic, partition, end)
                self._close(key)
            return
        if topic == self.names.watermarks:
            self._watermark(message)
        else:
            self.events += 1
            self.sequencer.changes(topic, partition, offset, self._changes(topic, message))
        if offset + 1 >= end:
            if topic != self.names.watermarks:
                self.sequencer.reached(topic, partition, end)
            self._close(key)

    def _changes(self, topic: str, message: Message) -> Sequence[Change]:
        value = message.value()
        if value is None:  # a tombstone: nothing to apply
            return ()
        owned = None if self._peek is None else self._owned(topic, value)
        if owned is False:
            return ()
        try:
            if topic == self.names.quotes:
                found = self._decoder.quote(value, topic=topic)
            else:
                found = self._decoder.customer(value, topic=topic)
        except (SerdeError, ChangeError):
            # The live router dead-letters these; a replay counts them and goes on (the
            # dead-letter topic already has them from the live run).
            if owned or self.counts_shared:
                self.undecodable += 1
            return ()
        keep = self.keep
        if keep is None or (owned and len(found) == 1):  # one change, of the customer owned
            return found
        # A quote that moved: the customers owned. A truncate names none: every lane's.
        return [c for c in found if isinstance(c, TableTruncated) or keep(c.customer_id)]

    def _owned(self, topic: str, value: bytes) -> bool | None:
        """Whether a change concerns this lane's customers, from the customer ids of its rows
        alone (a microsecond or two, where decoding takes twenty): a quote that moved
        between customers concerns both lanes. None: every lane's (a TRUNCATE has no rows;
        a record the peek cannot read is decoded everywhere, which says what is wrong)."""
        assert self._peek is not None and self.keep is not None
        try:
            after, before = self._peek[topic].values(value, topic=topic)
        except SerdeError:
            return None
        return owned(after, before, self.keep)

    def _watermark(self, message: Message) -> None:
        value = message.value()
        if not value:
            return
        try:
            record = self.serde.decode("cdc_watermark", value, topic=self.names.watermarks)
        except SerdeError:
            if self.counts_shared:  # every lane reads every watermark record
                self.undecodable += 1
            return
        offsets = {int(o["partition"]): int(o["offset"]) for o in record["offsets"]}
        self.sequencer.watermark(
            SourceWatermark(str(record["source"]), int(record["watermark_ms"]), offsets))

    def _close(self, key: tuple[str, int]) -> None:
        if self._open.pop(key, None) is not None:
            self.consumer.incremental_unassign([TopicPartition(*key)])
            self._paused.discard(key)

    def _flow(self) -> None:
        """Pause what piles up unless the next record waits for it; resume the rest."""
        needed = set(self.sequencer.waiting_for())
        for key in list(self._open):
            if key[0] == self.names.watermarks:
                piled = self.sequencer.pending_records > HIGH_WATER
            else:
                piled = self.sequencer.buffered(key) > HIGH_WATER
            if piled and key not in needed and key not in self._paused:
                self.consumer.pause([TopicPartition(*key)])
                self._paused.add(key)
            elif key in self._paused and (not piled or key in needed):
                self.consumer.resume([TopicPartition(*key)])
                self._paused.discard(key)

    def close(self) -> None:
        with contextlib.suppress(KafkaException, RuntimeError):  # already closed
            self.consumer.close()


def _until(stop: threading.Event, items: Iterator[Released]) -> Iterator[Released]:
    """``items`` until ``stop`` is set, looked at every :data:`STOP_EVERY` items: one watermark
    record can release most of what big fetches brought, seconds of stepping, and a Ctrl-C
    must not wait for it (a resume is exact wherever the run stopped: output ids are)."""
    for count, item in enumerate(items, 1):
        yield item
        if count % STOP_EVERY == 0 and stop.is_set():
            return


def owned(after: object, before: object, keep: Callable[[int], bool]) -> bool | None:
    """Whether a change whose rows name these customer ids is a lane's (``keep``): a quote
    that moved between customers is both lanes'; None: every lane's (no customer named)."""
    if after is None and before is None:
        return None
    return ((isinstance(after, int) and keep(after))
            or (isinstance(before, int) and keep(before)))  # fmt: skip


def wait_visible(settings: Settings, topics: list[str], timeout_s: float = 10.0) -> None:
    """Until the broker's metadata lists ``topics`` (a topic just created may lag)."""
    reader = consumer(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            known = reader.list_topics(timeout=5).topics
            if all(t in known for t in topics):
                return
            time.sleep(0.2)
    finally:
        reader.close()
