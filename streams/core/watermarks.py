"""The source watermark through the processor's repartitioning: markers, then a minimum.

A CDC watermark record says: every change committed before ``watermark_ms`` is
in the change topic, below the listed offset of each partition. The CDC lists
every partition of the topic (it reads their end offsets when it starts); a
partition a record does not list is *unknown*, never "empty": a record from a
connector that restarted and has written nothing there yet, or from a topic
that grew partitions, says nothing about what may still be in flight to it, so
no marker is sent for it on that record's word. The processor
does not read the change topics where it decides: it first moves every change
to a topic partitioned by customer id. So the watermark travels the same way,
as *markers*:

1. A repartitioning task that has read partition ``p`` of a change topic up to
   the record's offset for ``p`` has forwarded every change of ``p`` committed
   before ``watermark_ms``; it then sends a marker ``(source, p, watermark_ms)``
   to *every* partition of the by-customer topic, behind those changes (one
   producer, one partition: order is kept).
2. A deciding task on by-customer partition ``q`` keeps the newest marker of
   every (source, change-topic partition); once it has one from each, its
   watermark is their minimum: every change committed before it, from every
   partition of both sources, is already in ``q``.

Both halves are pure and kept here; the drivers only move the messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SourceWatermark:
    """One ``quoteflow.cdc.watermarks`` record, as the processor uses it."""

    source: str
    watermark_ms: int
    offsets: Mapping[int, int]  # change-topic partition -> exclusive offset bound


@dataclass(frozen=True, slots=True)
class Marker:
    """Partition ``partition`` of ``source``'s change topic is forwarded up to ``watermark_ms``."""

    source: str
    partition: int
    watermark_ms: int


def ready_markers(
    watermark: SourceWatermark, positions: Mapping[int, int], sent: Mapping[int, int]
) -> list[Marker]:
    """Markers a repartitioning task may send now.

    ``positions``: for each change-topic partition the task reads, the offset of
    the next record it will read (everything before it is forwarded); ``sent``:
    the newest watermark already sent per partition (markers only move forward).
    A partition the record does not list holds: nothing is known of it.
    """
    markers = []
    for partition, position in sorted(positions.items()):
        if watermark.watermark_ms <= sent.get(partition, 0):
            continue
        bound = watermark.offsets.get(partition)
        if bound is not None and position >= bound:
            markers.append(Marker(watermark.source, partition, watermark.watermark_ms))
    return markers


def newest_ready_markers(
    history: Sequence[SourceWatermark], positions: Mapping[int, int], sent: Mapping[int, int]
) -> list[Marker]:
    """Per partition, the marker of the newest record in ``history`` (oldest first) it may send.

    With changes arriving all the time, the newest record's offsets are always a
    little ahead of what the task has committed (markers wait for committed
    positions); waiting for it would hold every deadline until a commit happened
    to overtake a heartbeat. A slightly older record that the position has
    passed still moves the watermark forward.
    """
    chosen: dict[int, Marker] = {}
    for watermark in reversed(history):
        pending = {p: at for p, at in positions.items() if p not in chosen}
        if not pending:
            break
        for marker in ready_markers(watermark, pending, sent):
            chosen[marker.partition] = marker
    return [chosen[p] for p in sorted(chosen)]


@dataclass(frozen=True, slots=True)
class Watermarks:
    """A deciding task's view: the newest marker of each (source, partition) it expects."""

    expected: frozenset[tuple[str, int]]
    seen: Mapping[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def expecting(cls, partitions: Mapping[str, int]) -> Watermarks:
        """``partitions``: source -> number of partitions of its change topic."""
        return cls(frozenset((s, p) for s, n in partitions.items() for p in range(n)))

    def with_markers(self, markers: Iterable[Marker]) -> Watermarks:
        seen = dict(self.seen)
        for marker in markers:
            key = (marker.source, marker.partition)
            if key in self.expected and marker.watermark_ms > seen.get(key, 0):
                seen[key] = marker.watermark_ms
        return Watermarks(self.expected, seen)

    @property
    def watermark_ms(self) -> int:
        """Every change committed before this has arrived (0 until every partition spoke)."""
        if not self.expected or any(key not in self.seen for key in self.expected):
            return 0
        return min(self.seen[key] for key in self.expected)

    def lagging(self) -> list[tuple[str, int]]:
        """The (source, partition) pairs holding the watermark back (the stall log names
        them): those with no marker yet, or else those at the minimum."""
        missing = sorted(k for k in self.expected if k not in self.seen)
        if missing:
            return missing
        current = self.watermark_ms
        return sorted(k for k in self.expected if self.seen[k] <= current)
