"""``/metrics`` for ``quoteflow cdc``: lag in bytes and seconds, and what each source has done.

The values are read from each stream's :class:`~connectors.cdc.stream.Stats`
when Prometheus scrapes, by a custom collector: the streaming loop updates
plain integers as it always did and pays nothing for metrics.

* ``quoteflow_cdc_lag_bytes``: the server's WAL end minus the slot's confirmed
  position — WAL the server keeps for us;
* ``quoteflow_cdc_lag_seconds``: the age of the source watermark — how far
  behind the source's clock the acknowledged stream is, even when nothing
  changes (heartbeats move it); absent until the first watermark;
* counters of transactions, changes, events sent and acknowledged, snapshot
  rows, watermarks and skipped TRUNCATEs; the confirmed LSN; events in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from connectors.cdc.stats import Stats

_COUNTERS: tuple[tuple[str, str, Callable[[Stats], float]], ...] = (
    ("transactions", "Transactions read from the slot.", lambda s: s.transactions),
    ("changes", "Row changes read (insert, update, delete, truncate).", lambda s: s.changes),
    ("events", "Kafka records sent (events and tombstones).", lambda s: s.events),
    ("events_acked", "Kafka records acknowledged (acks=all).", lambda s: s.acked),
    ("snapshot_rows", "Snapshot rows read.", lambda s: s.snapshot_rows),
    ("watermarks", "Source watermarks published.", lambda s: s.watermarks),
    (
        "skipped_truncates",
        "TRUNCATEs not published (compacted topic).",
        lambda s: s.skipped_truncates,
    ),
)


class CdcCollector(Collector):
    """Metric families for every source, from its Stats at scrape time."""

    def __init__(self, stats: Mapping[str, Stats], clock: Callable[[], float] = time.time):
        self._stats = stats
        self._clock = clock

    def collect(self) -> Iterator[Any]:
        now = self._clock()
        lag_bytes = GaugeMetricFamily(
            "quoteflow_cdc_lag_bytes",
            "Server WAL end minus the slot's confirmed position.",
            labels=["source"],
        )
        lag_seconds = GaugeMetricFamily(
            "quoteflow_cdc_lag_seconds",
            "Age of the source watermark: how far behind the source clock Kafka is.",
            labels=["source"],
        )
        confirmed = GaugeMetricFamily(
            "quoteflow_cdc_confirmed_lsn", "The slot's confirmed position.", labels=["source"]
        )
        in_flight = GaugeMetricFamily(
            "quoteflow_cdc_events_in_flight",
            "Records sent, not yet acknowledged.",
            labels=["source"],
        )
        counters = [
            (CounterMetricFamily(f"quoteflow_cdc_{name}", text, labels=["source"]), read)
            for name, text, read in _COUNTERS
        ]
        for source, stats in self._stats.items():
            lag_bytes.add_metric([source], stats.lag_bytes)
            if stats.watermark_ms:
                lag_seconds.add_metric([source], max(0.0, now - stats.watermark_ms / 1000))
            confirmed.add_metric([source], stats.confirmed_lsn)
            in_flight.add_metric([source], stats.events - stats.acked)
            for family, read in counters:
                family.add_metric([source], read(stats))
        yield from (lag_bytes, lag_seconds, confirmed, in_flight)
        yield from (family for family, _ in counters)


def serve(stats: Mapping[str, Stats], host: str, port: int) -> Callable[[], None]:
    """Serve ``/metrics`` on ``host:port`` in a thread; returns the function that stops it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CdcCollector(stats))
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
