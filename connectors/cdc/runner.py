"""``quoteflow cdc``: the configured sources, one thread each, until SIGTERM or a failure.

Each source has its own replication connection, producer and serde, so they
share nothing mutable: a delivery callback always runs in the thread of the
source whose event it acknowledges. A failure in one source stops them all
(a half-running connector is worse than a stopped one: its lag hides), and
the process exits non-zero with that source's one-line reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from connectors.cdc.pgoutput import format_lsn
from connectors.cdc.sources import CDC_SOURCES, CdcSource
from connectors.cdc.stats import Stats
from connectors.cdc.stream import ChangeStream
from connectors.errors import CdcError
from quoteflow.errors import QuoteflowError
from quoteflow.liveness import Heartbeat
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.signals import on_signals
from quoteflow.topics import WATERMARKS, prefixed
from schemas.serde import Serde, serde_from_settings

#: How often the runner reports each source's progress.
REPORT_EVERY_S = 10.0


def describe(name: str, stats: Stats) -> str:
    watermark = (
        f", watermark lag {max(0.0, time.time() - stats.watermark_ms / 1000):.1f}s"
        if stats.watermark_ms
        else ", no watermark yet"
    )
    return (
        f"{name}: {stats.transactions} transactions, {stats.changes} changes,"
        f" {stats.acked}/{stats.events} events acknowledged,"
        f" confirmed {format_lsn(stats.confirmed_lsn)}, lag {stats.lag_bytes} bytes{watermark}"
    )


def run_sources(
    settings: Settings,
    names: Iterable[str],
    report: Reporter,
    stop: threading.Event | None = None,
) -> dict[str, Stats]:
    """Stream ``names`` until ``stop`` (SIGTERM/SIGINT when run from the main thread)."""
    wanted = list(dict.fromkeys(names))
    sources = [s for s in CDC_SOURCES if s.server_name in wanted]
    unknown = sorted(set(wanted) - {s.server_name for s in sources})
    if unknown:
        raise CdcError(f"unknown CDC source {', '.join(unknown)}")
    stop = stop or threading.Event()
    serdes = {s.server_name: serde_from_settings(settings.schema_registry) for s in sources}
    try:
        return _run_streams(settings, sources, serdes, report, stop)
    finally:
        for serde in serdes.values():
            serde.close()


def _run_streams(
    settings: Settings,
    sources: list[CdcSource],
    serdes: dict[str, Serde],
    report: Reporter,
    stop: threading.Event,
) -> dict[str, Stats]:
    prefix = settings.topics.prefix
    streams = {
        s.server_name: ChangeStream(
            settings, s, serdes[s.server_name],
            produce_to=prefixed(prefix, s.topic) if prefix else None,
            watermarks_to=prefixed(prefix, WATERMARKS) if prefix else None,
        )
        for s in sources
    }
    errors: dict[str, BaseException] = {}

    def run(name: str, stream: ChangeStream) -> None:
        try:
            stream.run(stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors[name] = exc
            stop.set()

    stop_metrics = _serve_metrics(settings, streams, report)
    restore = on_signals(stop) if threading.current_thread() is threading.main_thread() else None
    threads = [
        threading.Thread(target=run, args=(name, stream), name=f"cdc-{name}", daemon=True)
        for name, stream in streams.items()
    ]
    for thread in threads:
        thread.start()
    slots = ", ".join(s.slot for s in streams.values())
    report(f"streaming {', '.join(streams)} (slots {slots}); stop with Ctrl-C or SIGTERM")
    alive = Heartbeat(settings.health.file)
    proof = _Liveness(streams, heartbeats=settings.cdc.heartbeat_interval_s is not None)
    try:
        last = time.monotonic()
        while any(t.is_alive() for t in threads):
            stop.wait(0.5)
            if proof.advanced(threads):
                alive.beat()
            if time.monotonic() - last >= REPORT_EVERY_S:
                for name, stream in streams.items():
                    report(describe(name, stream.stats))
                last = time.monotonic()
            if stop.is_set():
                for thread in threads:
                    thread.join()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if restore is not None:
            restore()
        if stop_metrics is not None:
            stop_metrics()
    for name, stream in streams.items():
        report(describe(name, stream.stats))
    if errors:
        name, error = next(iter(errors.items()))
        if isinstance(error, QuoteflowError):
            raise CdcError(f"{name}: {error}") from error
        raise error
    return {name: stream.stats for name, stream in streams.items()}


class _Liveness:
    """Whether every stream has shown progress since the last time it was asked.

    A thread that is alive may still hang (a replication connection the network
    dropped silently); a watermark is published only after a heartbeat went round
    the source's WAL, Kafka and back, so a new one from every source is the proof.
    Without heartbeats there are no watermarks: living threads are all there is.
    """

    def __init__(self, streams: dict[str, ChangeStream], *, heartbeats: bool) -> None:
        self.streams, self.heartbeats = streams, heartbeats
        self.seen = {name: -1 for name in streams}

    def advanced(self, threads: list[threading.Thread]) -> bool:
        if not all(t.is_alive() for t in threads):
            return False
        if not self.heartbeats:
            return True
        now = {name: stream.stats.watermarks for name, stream in self.streams.items()}
        if all(now[name] > self.seen[name] for name in now):
            self.seen = now
            return True
        return False


def _serve_metrics(
    settings: Settings, streams: dict[str, ChangeStream], report: Reporter
) -> Callable[[], None] | None:
    port = settings.cdc.metrics_port
    if port is None:
        return None
    from connectors.cdc.metrics import serve

    host = settings.cdc.metrics_host
    try:
        stop = serve({name: stream.stats for name, stream in streams.items()}, host, port)
    except OSError as exc:
        raise CdcError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}):"
            " set cdc.metrics_port to a free port"
        ) from exc
    report(f"metrics on http://{host}:{port}/metrics")
    return stop
