"""The source watermark when the real Debezium produces the change topics: what is sound.

A ``quoteflow.cdc.watermarks`` record promises: *every change committed before
``watermark_ms`` is in the change topic below the listed offset of each
partition (every partition listed)*. ``quoteflow cdc`` keeps that promise
itself (:mod:`connectors.cdc.heartbeat`, :mod:`connectors.cdc.watermarks`).
With Debezium producing the change topics, ``quoteflow watermarks`` keeps it
from three things Debezium and Kafka Connect already write, and this module
holds the pure half: which heartbeat is proven, and when.

What is *not* enough, and why:

* Debezium's heartbeat topic (``__debezium-heartbeat.<prefix>``) carries only
  Connect's wall clock (``ts_ms``). A change committed a second before that
  clock may still be on its way from the WAL, so the clock is no watermark;
  and the source offset a heartbeat carries goes to Connect, not to the topic.
* A commit time (``source.ts_ms``, the offset's ``ts_usec``) is no watermark
  either: PostgreSQL stamps a commit before it inserts the commit record, so
  commits reach the WAL out of timestamp order (``connectors/cdc/heartbeat.py``).
* A record being *in Kafka* proves nothing about the records before it on
  other partitions: Connect's producer sends asynchronously, and Kafka orders
  only within a partition.

What is, in three steps:

1. **A time in the WAL.** Debezium's ``heartbeat.action.query`` runs our
   heartbeat statement every ``heartbeat.interval.ms``
   (:func:`connectors.cdc.heartbeat.heartbeat_statement`): a non-transactional
   logical message ``quoteflow.heartbeat`` at WAL position ``L`` whose content
   is a time ``T`` such that every commit record after ``L`` carries a commit
   time >= ``T`` (the proof is in :mod:`connectors.cdc.heartbeat`). So every
   change committed before ``T`` has its commit record before ``L``. Debezium
   publishes the message (``message.prefix.include.list``) to
   ``<prefix>.message`` with ``source.lsn = L``: that gives the pair (L, T).
2. **Acknowledged up to L.** Kafka Connect writes a source offset to its
   offsets topic (``offset.storage.topic``) only for a record whose every
   predecessor of the same source partition Kafka acknowledged
   (``SubmittedRecords``); Debezium's PostgreSQL connector has one source
   partition (``{"server": <prefix>}``) and dispatches in WAL commit order.
   The offset's ``lsn_commit`` is the position of the last commit (or
   non-transactional message) processed before that record: Debezium sets it
   at each commit to the commit's end LSN and at each message to its LSN
   (``PostgresStreamingChangeEventSource.commitMessage``). If a committed
   offset has ``lsn_commit >= L``, the commit or message it names ends at or
   after ``L``'s start: it is the message itself, something after it, or the
   commit record immediately before it (a commit record's end is the next
   record's start). In every case each commit record before ``L`` was
   processed no later than that, so its changes were dispatched before the
   offset's record, and therefore acknowledged. (The offset's ``lsn`` is not
   usable: a transaction that commits after ``L`` carries change LSNs from
   before ``L``.)
3. **Offsets.** The change topic's end offsets read *after* seeing that
   committed offset are at or above every acknowledged record: every change
   committed before ``T`` lies below them. Later changes may too; a consumer
   then reads a little more than it needs, never less. Every partition of the
   topic is listed, as the processor requires.

Requirements this rests on (docs/cdc.md, "Debezium instead, or beside"): Connect's
default ``errors.tolerance=none`` (a record it skipped would still commit its
offset), the producer's default ``acks=all``, one task per connector (the
PostgreSQL connector has one), and a database role that sees every session in
``pg_stat_activity`` (``pg_read_all_stats``), as for ``quoteflow cdc``.
Offsets reach the topic every ``offset.flush.interval.ms`` (Connect's default
is 60 s): set it to about a second, or the watermark lags by that much.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from connectors.cdc.watermarks import HEARTBEAT_PREFIX, parse_heartbeat

#: Heartbeats kept waiting for Connect's offsets (the newest win; older ones add nothing).
MAX_PENDING = 1_000


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Our heartbeat message as Debezium published it: WAL position and safe time."""

    lsn: int
    watermark_ms: int


def heartbeat_of(value: Mapping[str, Any] | None) -> Heartbeat | None:
    """The heartbeat in a decoded record of Debezium's ``<prefix>.message`` topic, or None.

    Other prefixes (a user's own messages) and anything malformed are not ours.
    """
    if not value or value.get("op") != "m":
        return None
    message, source = value.get("message"), value.get("source")
    if not isinstance(message, Mapping) or not isinstance(source, Mapping):
        return None
    if message.get("prefix") != HEARTBEAT_PREFIX:
        return None
    content, lsn = message.get("content"), source.get("lsn")
    if isinstance(content, str):
        content = content.encode()
    if not isinstance(content, bytes) or not isinstance(lsn, int):
        return None
    watermark_ms = parse_heartbeat(content)
    return None if watermark_ms is None else Heartbeat(lsn, watermark_ms)


def offset_key(key: bytes | None) -> tuple[str, dict[str, Any]] | None:
    """(connector name, source partition) of a record of Connect's offsets topic, or None.

    Connect writes the key as the JSON ``["<connector>", {<source partition>}]``.
    """
    try:
        parsed = json.loads(key or b"")
    except ValueError:
        return None
    if (
        isinstance(parsed, list) and len(parsed) == 2
        and isinstance(parsed[0], str) and isinstance(parsed[1], dict)
    ):  # fmt: skip
        return parsed[0], parsed[1]
    return None


def committed_lsn(value: bytes | None) -> int | None:
    """``lsn_commit`` of a committed Debezium PostgreSQL offset; None for a tombstone (the
    offset was reset) or an offset with no commit yet (snapshot phase)."""
    try:
        parsed = json.loads(value) if value else None
    except ValueError:
        return None
    lsn = parsed.get("lsn_commit") if isinstance(parsed, dict) else None
    return lsn if isinstance(lsn, int) and not isinstance(lsn, bool) else None


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """One source: heartbeats seen and not yet proven, and Connect's committed position."""

    pending: tuple[Heartbeat, ...] = ()
    #: The newest committed ``lsn_commit`` seen on the offsets topic (None: none yet).
    committed: int | None = None
    #: The last watermark published: watermarks only move forward.
    published_ms: int = 0

    def with_heartbeat(self, heartbeat: Heartbeat) -> SourceProgress:
        """Remember a heartbeat until the committed offset reaches it (the oldest go first
        when too many wait: a newer proven heartbeat makes them worthless anyway)."""
        if heartbeat.watermark_ms <= self.published_ms or heartbeat in self.pending:
            return self
        pending = sorted((*self.pending, heartbeat), key=lambda h: h.lsn)[-MAX_PENDING:]
        return replace(self, pending=tuple(pending))

    def with_committed(self, lsn: int | None) -> SourceProgress:
        """The offsets topic's newest value for this connector. A reset (tombstone, or an
        offset without a commit position) forgets the position: nothing is proven by it."""
        return replace(self, committed=lsn)

    def proven(self) -> Heartbeat | None:
        """The heartbeat to publish now: of those the committed offset has reached
        (``lsn <= committed``), the one with the greatest time, if it moves the watermark."""
        if self.committed is None:
            return None
        reached = [h for h in self.pending if h.lsn <= self.committed]
        best = max(reached, key=lambda h: h.watermark_ms, default=None)
        return best if best is not None and best.watermark_ms > self.published_ms else None

    def published(self, heartbeat: Heartbeat) -> SourceProgress:
        """After publishing ``heartbeat``: it and every heartbeat not newer are done."""
        pending = tuple(
            h for h in self.pending
            if h.watermark_ms > heartbeat.watermark_ms and h.lsn > heartbeat.lsn
        )  # fmt: skip
        return replace(self, pending=pending, published_ms=heartbeat.watermark_ms)
