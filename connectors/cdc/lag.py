"""How far behind each CDC source is: its slot's lag in bytes, its watermark's age in seconds.

* **Bytes**: ``pg_current_wal_lsn() - confirmed_flush_lsn`` of the source's slot
  (``pg_replication_slots``): WAL the server keeps because the CDC has not yet
  confirmed it, which the CDC does only once Kafka acknowledged the changes.
  Other databases' traffic counts too (WAL is per server): an idle CDC
  confirms the server's end on keepalives, so an idle, running CDC stays near 0.
* **Seconds**: the age of the source's newest watermark record
  (:mod:`connectors.cdc.watermark_tail`), against this machine's clock (the
  watermark is the database server's: their skew is in the figure). It is
  known only where watermarks are published (``cdc.heartbeat_interval_s``, or
  ``quoteflow watermarks`` beside Debezium); otherwise the row says so.
  PostgreSQL's own ``pg_stat_replication`` lags are not used: they exist only
  while the CDC is connected and measure recent confirmations, not how old the
  oldest unconfirmed change is.

An unreachable database or broker is a row's state, not a crash: ``quoteflow
groups lag`` shows what it could read and says what it could not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from connectors.cdc.sources import CDC_SOURCES, slot_name
from connectors.cdc.watermark_tail import MAX_SCANNED, newest_records
from quoteflow.errors import QuoteflowError
from quoteflow.pgerrors import error_gist
from quoteflow.settings import Settings
from quoteflow.topics import WATERMARKS, prefixed
from schemas.serde import Serde, serde_from_settings

_SLOT = """
SELECT s.active, s.active_pid, s.wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
       s.confirmed_flush_lsn::text
  FROM pg_replication_slots s WHERE s.slot_name = %s
"""


@dataclass(frozen=True)
class SlotLag:
    """A replication slot as the server reports it now."""

    slot: str
    #: active (a CDC streams from it), inactive, missing, lost (invalidated), unreachable
    state: str
    lag_bytes: int | None = None
    confirmed_lsn: str | None = None
    active_pid: int | None = None
    problem: str = ""


@dataclass(frozen=True)
class SourceLag:
    """One CDC source's lag in bytes (its slot) and in seconds (its watermark's age)."""

    source: str
    database: str
    slot: SlotLag
    watermark_ms: int | None
    lag_s: float | None
    #: Why lag_s is unknown, when it is.
    seconds_note: str = ""


def slot_from_row(slot: str, row: Sequence[Any] | None) -> SlotLag:
    """The slot's state from its pg_replication_slots row (None: no such slot)."""
    if row is None:
        return SlotLag(
            slot,
            "missing",
            problem="no such slot: the CDC has not run here, or cdc.slot_prefix differs",
        )
    active, pid, wal_status, lag, confirmed = row
    if wal_status == "lost":
        return SlotLag(
            slot,
            "lost",
            confirmed_lsn=confirmed,
            problem="invalidated by the server: changes are lost, re-snapshot",
        )
    return SlotLag(
        slot,
        "active" if active else "inactive",
        lag_bytes=None if lag is None else max(0, int(lag)),
        confirmed_lsn=confirmed,
        active_pid=pid if active else None,
    )


def read_slot(conninfo: str, slot: str) -> SlotLag:
    """The slot's lag now; an unreachable server is a state, with the server's reason."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(_SLOT, (slot,)).fetchone()
    except psycopg.Error as exc:
        where = conninfo_to_dict(conninfo)
        server = f"PostgreSQL at {where.get('host')}:{where.get('port')}/{where.get('dbname')}"
        return SlotLag(slot, "unreachable", problem=f"{server}: {error_gist(exc)}")
    return slot_from_row(slot, row)


def lag_seconds(now_ms: int, watermark_ms: int) -> float:
    """The watermark's age; never negative (a server clock ahead of ours is not a lead)."""
    return max(0.0, (now_ms - watermark_ms) / 1000)


def source_lags(
    settings: Settings,
    sources: Sequence[str],
    now_ms: int | None = None,
    *,
    kafka_problem: str = "",
) -> list[SourceLag]:
    """Every named source's lag, slots first (the database), then the watermarks (Kafka;
    not asked when ``kafka_problem`` already says why it cannot answer)."""
    by_name = {s.server_name: s for s in CDC_SOURCES}
    slots: dict[str, tuple[str, SlotLag]] = {}
    for name in sources:
        database = by_name[name].database(settings.postgres)
        conninfo = settings.postgres.conninfo(database)
        slots[name] = (database, read_slot(conninfo, slot_name(settings.cdc.slot_prefix, name)))
    watermarks: dict[str, int] = {}
    if kafka_problem:
        note = f"watermarks unreadable: {kafka_problem}"
    else:
        watermarks, note = _watermarks(settings, sources)
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    lags = []
    for name in sources:
        database, slot_lag = slots[name]
        mark = watermarks.get(name)
        if mark is None:
            why = note or (
                f"no watermark of {name} in the last {MAX_SCANNED} records of the"
                " watermark topic: heartbeats off (cdc.heartbeat_interval_s), or"
                " Debezium without `quoteflow watermarks`"
            )
            lags.append(SourceLag(name, database, slot_lag, None, None, why))
        else:
            lags.append(SourceLag(name, database, slot_lag, mark, lag_seconds(now, mark)))
    return lags


def _watermarks(settings: Settings, sources: Sequence[str]) -> tuple[dict[str, int], str]:
    """The newest watermark_ms per source, or why none could be read."""
    topic = prefixed(settings.topics.prefix, WATERMARKS)
    try:
        raw = newest_records(
            settings.kafka.as_librdkafka_dict(),
            topic,
            sources,
            timeout_s=settings.topics.request_timeout_s,
        )
    except QuoteflowError as exc:
        return {}, f"watermarks unreadable: {exc}"
    if not raw:
        return {}, ""
    serde = serde_from_settings(settings.schema_registry)
    try:
        return _decode(serde, raw, topic), ""
    except QuoteflowError as exc:
        return {}, f"watermarks undecodable: {exc}"
    finally:
        serde.close()


def _decode(serde: Serde, raw: Mapping[str, bytes], topic: str) -> dict[str, int]:
    found = {}
    for source, value in raw.items():
        record = serde.decode("cdc_watermark", value, topic=topic)
        found[source] = int(record["watermark_ms"])
    return found
