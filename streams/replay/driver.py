"""A replay run: lanes that read the range, step the core, and write or count what it decides.

One lane reads the whole range and steps every customer. With more lanes
(processes, so both cores work) each still reads every record — the watermark
needs them all, and reading is the cheap part — but decodes and steps only the
customers ``customer_id % lanes == lane``: a customer's changes and decisions
stay in one lane, in order, so the decisions are those of one lane.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from quoteflow.settings import Settings
from schemas.serde import serde_from_settings
from streams.core.event_time import EventTimeRun
from streams.core.model import Output
from streams.core.rules import Rules
from streams.errors import ReplayError
from streams.replay.collector import batch_collection
from streams.replay.compare import Comparison, Difference
from streams.replay.outputs import Tally, Target, Writer
from streams.replay.reader import Names, PinnedRange, RangeReader
from streams.replay.sequencer import Released

#: How often (released items) a lane reports how far it read.
REPORT_EVERY = 5_000


@dataclass(frozen=True)
class Job:
    """Everything a lane needs; picklable, since lanes run in processes."""

    settings: Settings
    names: Names
    pinned: PinnedRange
    rules: tuple[Rules, ...]  # one, or two for a what-if (A, B)
    target: Target
    skip: frozenset[str] = frozenset()  # output ids already written (a resume)
    lanes: int = 1


@dataclass
class Result:
    """What the lanes read, decided and wrote, added up."""

    events: int = 0  # change records read (every lane reads them all: counted once)
    undecodable: int = 0  # change and watermark records that could not be read
    tallies: list[Tally] = field(default_factory=list)  # per rules version
    written: int = 0
    skipped: int = 0
    watermark_ms: int = 0
    differences: list[Difference] = field(default_factory=list)
    compared: int = 0
    stopped: bool = False  # Ctrl-C or a stop: the range was not finished
    seconds: float = 0.0

    def add(self, lane: Result) -> None:
        self.events = max(self.events, lane.events)
        self.undecodable += lane.undecodable  # each counted by one lane (RangeReader)
        if not self.tallies:
            self.tallies = [Tally() for _ in lane.tallies]
        for mine, theirs in zip(self.tallies, lane.tallies, strict=True):
            mine.merge(theirs)
        self.written += lane.written
        self.skipped += lane.skipped
        self.watermark_ms = max(self.watermark_ms, lane.watermark_ms)
        self.differences.extend(lane.differences)
        self.compared += lane.compared
        self.stopped = self.stopped or lane.stopped


def run_lane(job: Job, lane: int, stop: threading.Event | Any, progress: Callable[[int], None],
             *, retain: list[object] | None = None) -> Result:  # fmt: skip
    """Read the whole range; step and write this lane's customers.

    ``retain`` keeps the lane's states (and clients) alive past the return: a lane
    process that exits right after sending its result never frees them one by one.
    """
    with batch_collection():
        return _run_lane(job, lane, stop, progress, retain)


def _run_lane(job: Job, lane: int, stop: threading.Event | Any,
              progress: Callable[[int], None], retain: list[object] | None) -> Result:  # fmt: skip
    serde = serde_from_settings(job.settings.schema_registry)
    lanes = job.lanes
    keep = None if lanes == 1 else (lambda customer_id: customer_id % lanes == lane)
    reader = RangeReader(job.settings, serde, job.names, job.pinned, keep=keep,
                         counts_shared=lane == 0)  # fmt: skip
    runs = [EventTimeRun(rules) for rules in job.rules]
    tallies = [Tally() for _ in runs]
    comparison = Comparison() if len(runs) == 2 else None
    writer = None if job.target.dry_run else Writer(job.settings, serde, job.target,
                                                    job.rules[0], skip=job.skip)  # fmt: skip
    if retain is not None:
        retain += [runs, writer, reader, comparison]
    try:
        _step_all(reader.read(stop), runs, tallies, None if writer is None else writer.write,
                  comparison, lambda: progress(reader.events))  # fmt: skip
        progress(reader.events)
        if writer is not None:
            writer.flush()
    finally:
        serde.close()
    stopped = bool(stop.is_set())
    result = Result(events=reader.events, undecodable=reader.undecodable, tallies=tallies,
                    watermark_ms=runs[0].watermark_ms, stopped=stopped)  # fmt: skip
    if writer is not None:
        result.written, result.skipped = writer.written, writer.skipped
    if comparison is not None and not stopped:
        result.differences = comparison.finish(lambda side, customer_id, quote_id: _due(
            runs[side], customer_id, quote_id))
        result.compared = comparison.compared
    return result


def _step_all(items: Iterator[Released], runs: list[EventTimeRun], tallies: list[Tally],
              write: Callable[[Output], None] | None, comparison: Comparison | None,
              report: Callable[[], None]) -> None:  # fmt: skip
    """Step every rules version (side 0 is written) over what the reader releases,
    counting, and comparing the first decisions of a what-if's two sides."""
    sides = [(side, run.advance, run.apply, tally.add)
             for side, (run, tally) in enumerate(zip(runs, tallies, strict=True))]  # fmt: skip
    for released, item in enumerate(items, 1):
        watermark = type(item) is int
        for side, advance, apply, add in sides:
            outputs = advance(item) if watermark else apply(item)  # type: ignore[arg-type]
            for output in outputs:
                add(output)
                if write is not None and side == 0:
                    write(output)
                if comparison is not None:
                    comparison.add(side, output)
        if released % REPORT_EVERY == 0:
            report()


def _due(run: EventTimeRun, customer_id: int, quote_id: int) -> int | None:
    """When ``run`` has the quote due, if it holds it undecided."""
    state = run.states.get(customer_id)
    open_quote = None if state is None else state.quotes.get(quote_id)
    if open_quote is None or open_quote.decided:
        return None
    return open_quote.due_ms


def run(job: Job, stop: threading.Event, progress: Callable[[int], None]) -> Result:
    """Run ``job`` in its lanes; ``progress`` gets the change records read so far."""
    started = time.monotonic()
    if job.lanes == 1:
        result = Result()
        result.add(run_lane(job, 0, stop, progress))
    else:
        result = _run_processes(job, stop, progress)
    result.seconds = time.monotonic() - started
    return result


def _run_processes(job: Job, stop: threading.Event, progress: Callable[[int], None]) -> Result:
    context = multiprocessing.get_context("spawn")  # librdkafka's threads do not survive fork
    lane_stop = context.Event()
    counters = [context.Value("q", 0) for _ in range(job.lanes)]
    results: multiprocessing.Queue[tuple[int, Result | str]] = context.Queue()
    processes = [context.Process(target=_lane_main, name=f"replay-lane-{lane}",
                                 args=(job, lane, lane_stop, counters[lane], results))
                 for lane in range(job.lanes)]  # fmt: skip
    for process in processes:
        process.start()
    total = Result()
    done: dict[int, Result] = {}
    try:
        while len(done) < job.lanes:
            if stop.is_set():
                lane_stop.set()
            with contextlib.suppress(queue.Empty):
                lane, outcome = results.get(timeout=0.2)
                if isinstance(outcome, str):
                    lane_stop.set()
                    raise ReplayError(f"replay lane {lane} failed: {outcome}")
                done[lane] = outcome
            progress(min(c.value for c in counters))
            dead = [p for i, p in enumerate(processes) if i not in done and not p.is_alive()
                    and p.exitcode not in (0, None)]  # fmt: skip
            if dead and results.empty():
                lane_stop.set()
                raise ReplayError(f"replay lane {dead[0].name} exited with code {dead[0].exitcode}")
    finally:
        lane_stop.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    for lane in sorted(done):
        total.add(done[lane])
    return total


def _lane_main(job: Job, lane: int, stop: Any, counter: Synchronized[int],
               results: multiprocessing.Queue[tuple[int, Result | str]]) -> None:  # fmt: skip
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and tells us
    from quoteflow.logs import configure_logging

    configure_logging(job.settings.log)

    def report(events: int) -> None:
        counter.value = events

    retained: list[object] = []
    try:
        results.put((lane, run_lane(job, lane, stop, report, retain=retained)))
    except Exception as exc:  # noqa: BLE001 - told to the parent, which fails the replay
        results.put((lane, f"{type(exc).__name__}: {exc}"))
        return
    # Done: the outputs are flushed and the result is in the queue's pipe once its feeder
    # thread is joined. Freeing the states' millions of objects one by one and tearing
    # the interpreter down (half a second on the benchmark) would only delay the parent,
    # which waits for this process to end.
    results.close()
    results.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
