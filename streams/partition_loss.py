"""A partition handed over mid-transaction: its local table state goes with the transaction.

A table write reaches RocksDB at once, before its transaction commits. When a
worker loses a partition in a rebalance (another worker joined, or took it
while this one was slow), its open transaction for that partition can never
commit: faust stops its producer, and the next owner's producer for the same
transactional id aborts it. Yet faust keeps the partition's RocksDB files, and
when the partition comes back it reads the changelog into them from the
offset recorded in them (a standby replica does the same meanwhile): records
the changelog gained since then overwrite their keys, but a key whose last
write was the aborted one keeps it. A quote marked offered by a transaction
whose trigger was aborted stayed offered, and its e-mail was never sent.

So the worker deletes the local files of every partition it loses and forgets
the changelog offsets faust remembers for them; whatever it holds of such a
partition afterwards (a standby replica, or the partition itself when it comes
back) is read from the changelog's beginning, read committed. The price is a
full read of the lost partitions' changelogs (compacted: about one record per
customer) after a rebalance that moves them.

The partitions a worker keeps through a rebalance keep their files: their
transaction stays open and commits, or a fence makes the worker start over
(:mod:`streams.fencing`), which discards all local state.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Collection, Mapping
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, AppT

log = logging.getLogger("quoteflow.streams.state")


def lost_partitions(before: Collection[int], now: Collection[int],
                    revoked: Collection[int]) -> set[int]:  # fmt: skip
    """The source partitions this worker decided and no longer does.

    ``before``/``now``: the source partitions assigned at the previous rebalance and at
    this one; ``revoked``: the source partitions faust counts as revoked. Both views,
    because faust's own count (its previous assignment minus the new one) has come out
    empty when a second worker joined.
    """
    return (set(before) - set(now)) | (set(revoked) - set(now))


def drop_local_partitions(app: AppT, changelogs: Collection[str],
                          partitions: Collection[int]) -> None:  # fmt: skip
    """Delete ``partitions`` of every table whose changelog is in ``changelogs`` from local
    disk and from what faust remembers of them, so that the next read of them (standby or
    active) starts at the changelog's beginning.

    Called during a rebalance before faust's tables handle it (no agent is processing
    an event then): faust then opens a fresh store for whatever of these partitions it
    is assigned, finds no offset in it, and reads the changelog from its start.
    """
    if not partitions:
        return
    manager: Any = app.tables  # faust's TableManager: recovery is not on TableManagerT
    recovery = manager.recovery
    pending: dict[TP, Any] = manager._pending_persisted_offsets
    for table in list(manager.values()):
        changelog = table.changelog_topic.get_topic_name()
        if changelog not in changelogs:
            continue
        store = table.data
        if not isinstance(store, RocksDBStore):
            raise TypeError(f"table {table.name}: local state must be RocksDB, not {store!r}")
        for partition in sorted(partitions):
            db = store._dbs.pop(partition, None)
            if db is not None:
                db.close()  # before deleting: a live handle could write into the new files
            path = store.partition_path(partition)
            if path.exists():
                shutil.rmtree(path)
            tp = TP(changelog, partition)
            recovery.revoke(tp)  # its active/standby offsets and highwaters
            pending.pop(tp, None)
        store._key_index.clear()  # key -> partition: a cache that may name a dropped one
        buffered: list[Any] = recovery.buffers.get(table, [])
        # Changelog records read for the old files and not applied yet: applied to the new
        # ones they would record an offset past everything before them.
        buffered[:] = [e for e in buffered if e.message.partition not in partitions]
    log.info("local table state of lost partitions deleted: read again from the changelogs",
             extra={"partitions": sorted(partitions)})  # fmt: skip


def source_partitions(tps: Collection[TP], sources: Mapping[str, str]) -> set[int]:
    """The partition numbers of ``tps`` that belong to a topic in ``sources``' values."""
    topics = set(sources.values())
    return {tp.partition for tp in tps if tp.topic in topics}


__all__ = ["drop_local_partitions", "lost_partitions", "source_partitions"]
