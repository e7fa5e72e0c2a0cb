"""Event-time order for a replay: changes released behind the watermark records that vouch for them.

A CDC watermark record says every change committed before ``watermark_ms`` is
below the listed offset of each change-topic partition. Live, the router turns
each record into markers once its read positions pass those offsets, and a
deciding task's watermark is the minimum over every (source, partition). A
replay reads every partition at once, in whatever interleaving the broker
serves, so it buffers changes per partition and releases them only behind the
record that vouches for them: record by record, in the watermark topic's own
order, the vouched changes of that record's source first, merged across its
partitions by commit position, then the new watermark. The same range read in
any interleaving therefore gives the same sequence, and the same decisions.

Pure: the reader feeds it what it reads, the driver steps what it releases.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from streams.core.model import Change
from streams.core.watermarks import Marker, SourceWatermark, Watermarks

TopicPartition = tuple[str, int]
#: What the sequencer releases: a change to apply, or the new watermark (epoch ms).
Released = Change | int


@dataclass(frozen=True, slots=True)
class Span:
    """The part of one change-topic partition a replay reads: ``[start, end)``."""

    start: int
    end: int


def _order(change: Change) -> tuple[int, int, int]:
    """Commit order within one source database (Position.order), then commit time for a
    producer that fills no LSNs: any fixed order keeps a replay deterministic."""
    position = change.position
    return (position.commit_lsn, position.lsn, position.commit_ms)


class Sequencer:
    """Buffers what a reader reads, and releases it in event-time order.

    ``sources``: change topic -> CDC source; ``spans``: every partition of those
    topics the replay reads (a partition of a topic absent here is never vouched
    for, so the watermark would never move: list them all). ``stop_after_ms``: a
    record whose watermark is past it ends the replay (``--to`` as a time).
    ``tail``: at the end, also release the changes read after the last record's
    offsets (up to each span's end), which no watermark vouches for.
    """

    def __init__(self, sources: Mapping[str, str], spans: Mapping[TopicPartition, Span], *,
                 stop_after_ms: int | None = None, tail: bool = True) -> None:  # fmt: skip
        self.sources = dict(sources)
        self.spans = dict(spans)
        self.stop_after_ms = stop_after_ms
        self.tail = tail
        self.marks = Watermarks(frozenset((sources[t], p) for t, p in spans))
        self.watermark_ms = 0
        self.ended = False  # a record past the range was met: nothing more is released
        self._buffers: dict[TopicPartition, deque[tuple[int, Sequence[Change]]]] = {
            tp: deque() for tp in spans}  # fmt: skip
        self._read_to = {tp: span.start for tp, span in spans.items()}
        self._records: deque[SourceWatermark] = deque()
        self._by_source: dict[str, list[TopicPartition]] = {}
        for tp in sorted(spans):
            self._by_source.setdefault(sources[tp[0]], []).append(tp)

    # -- what the reader reads -----------------------------------------------------------
    def changes(self, topic: str, partition: int, offset: int, changes: Sequence[Change]) -> None:
        """The record at ``offset`` gave ``changes`` (none for a tombstone: still counted
        as read). Records at or past the span's end are the reader's to skip."""
        tp = (topic, partition)
        if changes:
            self._buffers[tp].append((offset, changes))
        if offset + 1 > self._read_to[tp]:
            self._read_to[tp] = offset + 1

    def reached(self, topic: str, partition: int, offset: int) -> None:
        """Everything below ``offset`` has been read (end of the partition, or a gap of
        compacted or control records)."""
        tp = (topic, partition)
        if offset > self._read_to[tp]:
            self._read_to[tp] = offset

    def watermark(self, record: SourceWatermark) -> None:
        """The next record of the watermark topic, in its order (unknown sources ignored)."""
        if record.source in self._by_source:
            self._records.append(record)

    # -- what the driver steps -----------------------------------------------------------
    def release(self) -> Iterator[Released]:
        """Everything the records read so far vouch for, in event-time order."""
        while self._records and not self.ended:
            record = self._records[0]
            if self.stop_after_ms is not None and record.watermark_ms > self.stop_after_ms:
                self.ended = True
                return
            partitions = self._by_source[record.source]
            bounds: dict[TopicPartition, int] = {}
            for tp in partitions:
                bound = record.offsets.get(tp[1])
                if bound is None:  # unknown: no marker for it (streams.core.watermarks)
                    continue
                if bound > self.spans[tp].end:  # vouches past the range: the range ends
                    self.ended = True
                    return
                if self._read_to[tp] < bound:
                    return  # wait for the reader
                bounds[tp] = bound
            self._records.popleft()
            yield from self._drain(bounds)
            markers = [Marker(record.source, tp[1], record.watermark_ms) for tp in bounds]
            self.marks = self.marks.with_markers(markers)
            if self.marks.watermark_ms > self.watermark_ms:
                self.watermark_ms = self.marks.watermark_ms
                yield self.watermark_ms

    def finish(self) -> Iterator[Released]:
        """After the last read: what is still releasable, then (with ``tail``) the rest."""
        yield from self.release()
        self._records.clear()
        if self.tail:
            yield from self._drain({tp: span.end for tp, span in self.spans.items()})

    def _drain(self, bounds: Mapping[TopicPartition, int]) -> Iterator[Change]:
        runs: list[list[Change]] = []
        for tp, bound in sorted(bounds.items()):
            buffer = self._buffers[tp]
            run: list[Change] = []
            while buffer and buffer[0][0] < bound:
                run.extend(buffer.popleft()[1])
            if run:
                runs.append(run)
        if len(runs) == 1:
            yield from runs[0]
        elif runs:
            yield from heapq.merge(*runs, key=_order)

    # -- flow control --------------------------------------------------------------------
    def waiting_for(self) -> list[TopicPartition]:
        """The partitions the next record waits for (never pause those)."""
        if not self._records or self.ended:
            return []
        record = self._records[0]
        return [tp for tp in self._by_source[record.source]
                if (bound := record.offsets.get(tp[1])) is not None
                and self._read_to[tp] < min(bound, self.spans[tp].end)]  # fmt: skip

    def buffered(self, tp: TopicPartition) -> int:
        return len(self._buffers[tp])

    @property
    def pending_records(self) -> int:
        return len(self._records)
