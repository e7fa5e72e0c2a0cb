"""Closing faust's exactly-once gap: every send joins the transaction of the input that caused it.

faust 0.15 keeps one transactional producer per assigned source partition and
commits each one's transaction with that partition's input offsets. But its
``TransactionManager.send`` picks the producer by the *target* partition of
the send, and only when its consumer happens to have metadata for the target
topic: a send to an output topic the worker does not consume (the triggers
topic) went out in no transaction at all, and a send that did join one joined
the transaction of some unrelated partition. Either way a kill -9 between the
send and the commit left the output committed and the input unconsumed, so the
restarted worker sent it again.

:class:`SourceTransactionManager` routes a send made while an event is being
processed through the transactional producer of *that event's* partition, the
one whose commit carries its offset: the output, the table changelog writes
and the input offset commit or abort together. A send with no current event
is a table's changelog write (faust buffers them and publishes them later):
it joins the transaction of the same partition of the table's source topic,
co-partitioned with it. Without that, faust picked the transaction of the
changelog topic's own partition group, which commits with other offsets, or
never, leaving the changelog's read_committed end stuck (a worker taking over
a partition then refused to recover it). Any other send keeps faust's behaviour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.types import TP

from quoteflow.offsets import contiguous_run
from streams.partition_loss import drop_local_partitions, lost_partitions, source_partitions

log = logging.getLogger("quoteflow.streams")

#: A hole before a partition's first acknowledged offset that stays this long is taken for
#: what it is, offsets never delivered, and committed past. Meanwhile the partition's
#: transaction stays open, and the broker fences it at ``transaction.timeout.ms`` (60 s);
#: a hole of records still being processed would close far sooner (they are handled in
#: order, one at a time).
HOLE_FILL_S = 5.0
#: The clock of the hole's age (a test replaces it).
clock = time.monotonic


class SourceTransactionManager(TransactionManager):
    """faust's TransactionManager, with sends joining the current event's transaction."""

    #: Changelog topic -> the topic whose events change that table. Table writes are
    #: buffered and published later, outside the event's context; they join the
    #: transaction of the same partition of the table's source topic.
    changelog_sources: Mapping[str, str] = {}
    #: The source partitions this worker was assigned at the last rebalance.
    sources_assigned: frozenset[int] = frozenset()

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP]
    ) -> None:
        """Stop the producer of every transactional id this worker no longer owns, and
        delete the local table state of the partitions it lost.

        faust stops only the ids of the partitions it computes as revoked, and that
        set came out empty when a second worker joined: the first kept its producer
        for a partition it had handed over. The new owner's producer fenced it (and
        aborted its open transaction), but the stale one stayed in faust's map, so
        when the partition came back after the other worker died, faust found a
        producer "already in a transaction", kept it, and the first changelog write
        through it failed with ProducerFenced and crashed the worker. Deciding from
        the *new* assignment alone does not depend on that bookkeeping; a fresh
        producer for an id that comes back fences the dead owner's properly.

        A lost partition's open transaction dies with its producer, but its table writes
        are in the local RocksDB files already: they go too, before faust's tables see
        the new assignment (:mod:`streams.partition_loss`).
        """
        owned = self._tps_to_transactional_ids(assigned)
        producers: dict[str, Any] = getattr(self.producer, "_transaction_producers", {})
        stale = sorted(tid for tid in producers if tid not in owned)
        if stale:
            self.log.info("Stopping %d transactional producer(s) no longer owned: %s",
                          len(stale), ", ".join(stale))  # fmt: skip
            await self._stop_transactions(stale)
        now = source_partitions(assigned, self.changelog_sources)
        lost = lost_partitions(self.sources_assigned, now,
                               source_partitions(revoked, self.changelog_sources))  # fmt: skip
        drop_local_partitions(self.app, self.changelog_sources.keys(), lost)
        self.sources_assigned = frozenset(now)
        await super().on_rebalance(assigned, revoked, newly_assigned)

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        event = current_event()
        if event is not None:
            source_topic, source_partition = event.message.tp.topic, event.message.tp.partition
        elif topic in self.changelog_sources and partition is not None:
            source_topic, source_partition = self.changelog_sources[topic], partition
        else:
            return await super().send(topic, key, value, partition, timestamp, headers)
        group = self.app.assignor.group_for_topic(source_topic)
        transactional_id = f"{self.app.conf.id}-{group}-{source_partition}"
        return await self.producer.send(
            topic, key, value, partition, timestamp, headers,
            transactional_id=transactional_id,
        )  # fmt: skip


def _contiguous_new_offset(self: Any, tp: TP) -> int | None:
    """The offset to commit for ``tp``: past every acknowledged offset with no hole before it.

    faust's own answer stops at the first *repeated* offset: it adds the offset
    gaps it recorded (transaction markers, which a read_committed consumer never
    sees) to the acknowledged offsets, but a gap's range also holds the record
    that revealed it, which is acknowledged too, and the duplicate ends its
    "consecutive numbers" run. So each commit advanced a partition past a single
    transaction marker: a repartition topic written by several transactional
    producers gets one every few dozen records, and its committed offsets (and
    under exactly-once, the outputs committed with them) fell ever further behind
    the processing, ~100 records per partition per commit.
    """
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    highest = max(acked)
    gaps = self._gap[tp]
    if gaps:
        filled = sorted(gaps.overlap(0, highest), key=lambda interval: interval.begin)
        if filled:
            for interval in filled:
                acked.extend(range(interval.begin, interval.end))
            gaps.chop(0, max(filled[-1].end - 1, highest + 1))
    offsets = sorted(set(acked))
    committed = self._committed_offset[tp]
    if committed and offsets[0] - committed > 1:
        if _hole_age(self, tp) < HOLE_FILL_S:
            acked[:] = offsets
            return None  # a hole right after the committed offset: nothing to commit yet
        # Never delivered: the agent handles a partition's events one at a time, in
        # order, so an acknowledged offset has every delivered one before it acknowledged
        # too, and a hole before the first is what the fetch skipped (transaction markers,
        # aborted records) but faust did not record as a gap: its recovery can resume a
        # partition before it sets the read offset gaps are measured from. Left alone,
        # nothing of the partition commits and the broker fences its transaction.
        log.warning(
            "committing past offsets the consumer never delivered",
            extra={"topic": tp.topic, "partition": tp.partition, "committed": committed,
                   "first_acked": offsets[:5], "acked": len(offsets),
                   "gaps": sorted((i.begin, i.end) for i in gaps)[:5],
                   "read_offset": self._read_offset.get(tp)},
        )  # fmt: skip
        offsets = [*range(committed, offsets[0]), *offsets]
    _hole_closed(self, tp)
    run, rest = contiguous_run(offsets)
    acked[:] = rest
    self._acked_index[tp].difference_update(run)
    return run[-1] + 1


def _hole_age(consumer: Any, tp: TP) -> float:
    """Seconds since ``tp``'s processed input first stood behind a hole right after its
    committed offset (0 the first time it is seen)."""
    since: dict[TP, float] | None = getattr(consumer, "_quoteflow_hole_since", None)
    if since is None:
        since = consumer._quoteflow_hole_since = {}
    now = clock()
    return now - since.setdefault(tp, now)


def _hole_closed(consumer: Any, tp: TP) -> None:
    since: dict[TP, float] | None = getattr(consumer, "_quoteflow_hole_since", None)
    if since is not None:
        since.pop(tp, None)


__all__ = ["SourceTransactionManager"]
