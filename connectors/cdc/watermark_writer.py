"""A stream's heartbeats into its source's WAL, and the source watermarks they become.

A heartbeat (:mod:`connectors.cdc.heartbeat`) is written on its own connection
when due. Read back from the slot, it rides in :class:`~connectors.cdc.progress.Progress`
as an empty transaction: once the slot may confirm past it, every change
committed before its time is in Kafka, and the watermark record says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg

from connectors.cdc import pgoutput as pg
from connectors.cdc.heartbeat import sees_all_sessions, write_heartbeat
from connectors.cdc.producing import Producing
from connectors.cdc.progress import Txn
from connectors.cdc.stats import Stats
from connectors.cdc.watermarks import parse_heartbeat, source_watermark
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist
from quoteflow.topics import WATERMARKS
from schemas.errors import SerdeError
from schemas.serde import Serde

log = logging.getLogger("quoteflow.cdc")


class WatermarkWriter:
    """Owns the heartbeat connection, the next heartbeat's time and the heartbeats read
    but not yet confirmed; publishes the newest confirmed one as the source watermark."""

    def __init__(
        self,
        conninfo: str,
        source: str,
        serde: Serde,
        stats: Stats,
        *,
        interval_s: float,
        topic: str,
    ) -> None:
        """``source`` is the server name (the records' key); ``topic`` where they go."""
        self._conninfo, self._source, self._serde = conninfo, source, serde
        self._stats, self._interval_s, self._topic = stats, interval_s, topic
        self._conn: psycopg.Connection[Any] | None = None
        self._next_at = 0.0
        #: (heartbeat as an empty transaction, its server clock ms, its LSN), oldest first.
        self._read: list[tuple[Txn, int, int]] = []

    @property
    def pending(self) -> bool:
        """Whether heartbeats wait for the slot's confirmation (then :meth:`publish`)."""
        return bool(self._read)

    def maybe_heartbeat(self) -> None:
        """Write a heartbeat into the source's WAL when one is due (one tiny WAL record); its
        time is bounded by commits stamped but not yet logged (connectors.cdc.heartbeat)."""
        if time.monotonic() < self._next_at:
            return
        self._next_at = time.monotonic() + self._interval_s
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
                if not sees_all_sessions(self._conn):
                    log.warning(
                        "the role cannot see other roles' transactions (pg_stat_activity): a"
                        " commit by another role can be missed by the watermark;"
                        " GRANT pg_read_all_stats to the connector's role",
                        extra={"source": self._source},
                    )
            write_heartbeat(self._conn)
        except psycopg.Error as exc:
            # The stream goes on; only the watermark stalls (and says so in its lag).
            log.warning("heartbeat failed", extra={"error": error_gist(exc)})
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def read(self, message: pg.LogicalMessage, producing: Producing) -> None:
        """Everything committed before the heartbeat has been read: once it is all in Kafka,
        the watermark can be published (it rides in Progress as an empty transaction)."""
        server_ms = parse_heartbeat(message.content)
        if server_ms is None or producing.txn is not None:
            return
        progress = producing.progress
        txn = progress.begin()
        progress.commit(txn, message.lsn)
        self._read.append((txn, server_ms, message.lsn))

    def publish(self, producing: Producing) -> None:
        """The newest heartbeat the slot may confirm past, as a watermark record."""
        confirmed = producing.progress.confirmed
        latest: tuple[int, int] | None = None
        while self._read:
            txn, server_ms, lsn = self._read[0]
            if txn.end_lsn is None or confirmed < txn.end_lsn:
                break
            self._read.pop(0)
            latest = (server_ms, lsn)
        if latest is None:
            return  # only the newest watermark that is ready matters
        record = source_watermark(
            self._source, producing.topic, latest[0], latest[1],
            producing.acked_offsets, time.time_ns() // 1_000_000,
        )  # fmt: skip
        try:
            value = self._serde.encode("cdc_watermark", record, topic=WATERMARKS)
        except SerdeError as exc:
            raise CdcError(f"cannot encode a watermark: {exc}") from exc
        producing.producer.produce(self._topic, key=self._source.encode(), value=value)
        self._stats.watermarks += 1
        self._stats.watermark_ms = latest[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
