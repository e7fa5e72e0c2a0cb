"""How `quoteflow replay` shows itself: the plan, the live check, the progress, the summary."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from quoteflow.cli.common import console

if TYPE_CHECKING:
    from streams.replay.driver import Result
    from streams.replay.plan import Options, Prepared


def _when(ms: int) -> str:
    if ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_plan(prepared: Prepared, options: Options) -> None:
    job = prepared.job
    table = Table(title=f"replay {prepared.name}", show_header=False)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    table.add_row("range", f"--from {options.start.spelled() or 'beginning'} "
                           f"--to {options.end.spelled() or 'end'}")  # fmt: skip
    for topic in (job.names.quotes, job.names.customers):
        spans = [s for (t, _p), s in job.pinned.spans.items() if t == topic]
        records = sum(s.end - s.start for s in spans)
        table.add_row(topic, f"{records:,} records in {len(spans)} partition(s)")
    wm = job.pinned.watermarks
    table.add_row(job.names.watermarks, f"{wm.end - wm.start:,} watermark records")
    table.add_row("rules", " vs ".join(r.version for r in job.rules))
    if prepared.what_if:
        target = "nothing (what-if: the difference only)"
    elif job.target.dry_run:
        target = "nothing (dry run)"
    else:
        target = f"{job.target.triggers}, {job.target.decisions}"
        if prepared.live:
            target = f"LIVE: {target}"
    table.add_row("writes to", target)
    table.add_row("lanes", str(job.lanes))
    console.print(table)


def confirm_live(prepared: Prepared, yes: bool) -> bool:
    """Loud before touching anything live; a script must say --yes."""
    job = prepared.job
    console.print(
        f"[bold red]This writes the replay's triggers to the LIVE topic {job.target.triggers}."
        "[/bold red] The sink will e-mail every quote among them that its ledger has not "
        "e-mailed before (a quote is e-mailed at most once, ever)."
    )
    if yes:
        return True
    if not click.get_text_stream("stdin").isatty():
        console.print("not a terminal: add --yes to write to live topics from a script")
        return False
    typed = click.prompt("Type the replay's name to go on", default="", show_default=False)
    return bool(typed == prepared.name)


@contextmanager
def _ctrl_c(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the replay to stop cleanly; a second one is the usual abort."""

    def first(_signum: int, _frame: object) -> None:
        stop.set()
        console.print("[yellow]stopping after the records in hand "
                      "(Ctrl-C again to abort)[/yellow]")  # fmt: skip
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_with_progress(prepared: Prepared) -> Result:
    from streams.replay.driver import run

    stop = threading.Event()
    columns = (TextColumn("[bold]replay[/bold]"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip
    with _ctrl_c(stop), Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("replay", total=max(prepared.job.pinned.events, 1), rate="")

        def report(events: int) -> None:
            speed = progress.tasks[0].speed
            progress.update(task, completed=events,
                            rate=f"{speed:,.0f} events/s" if speed else "")  # fmt: skip

        result = run(prepared.job, stop, report)
        if not result.stopped:
            progress.update(task, completed=max(prepared.job.pinned.events, 1))
    return result


def print_result(prepared: Prepared, result: Result, options: Options) -> None:
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    table = Table(title="replay summary", show_header=False)
    table.add_row("change records read", f"{result.events:,}")
    table.add_row("time", f"{result.seconds:,.1f} s ({rate:,.0f} events/s)")
    table.add_row("watermark reached", _when(result.watermark_ms))
    if result.undecodable:
        table.add_row("undecodable records (skipped)", f"{result.undecodable:,}")
    for version, tally in zip((r.version for r in prepared.job.rules), result.tallies,
                              strict=True):  # fmt: skip
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(tally.outcomes.items())) or "none"
        table.add_row(f"outcomes ({version})", counts)
    if not prepared.job.target.dry_run:
        table.add_row("written", f"{result.written:,}")
        if result.skipped:
            table.add_row("already written (skipped)", f"{result.skipped:,}")
    console.print(table)
    if options.dry_run and result.tallies and result.tallies[0].sample:
        _print_sample(result)
    if prepared.what_if and not result.stopped:
        _print_differences(prepared, result, options)


def _print_sample(result: Result) -> None:
    table = Table(title="sample of triggers")
    for heading in ("quote", "customer", "e-mail", "offer", "deadline", "fires"):
        table.add_column(heading)
    for t in result.tallies[0].sample:
        table.add_row(t.quote_ref, str(t.customer_id), t.email, t.offer, _when(t.deadline_ms),
                      _when(t.fire_ms))  # fmt: skip
    console.print(table)


def _print_differences(prepared: Prepared, result: Result, options: Options) -> None:
    from streams.replay.compare import KINDS

    a, b = (r.version for r in prepared.job.rules)
    counts = {kind: 0 for kind in KINDS}
    for difference in result.differences:
        counts[difference.kind] += 1
    summary = Table(title=f"what-if: A {a} vs B {b}")
    summary.add_column("difference")
    summary.add_column("quotes", justify="right")
    summary.add_row("quotes compared", f"{result.compared:,}")
    for kind, heading in KINDS.items():
        summary.add_row(heading, f"{counts[kind]:,}")
    console.print(summary)
    shown = Table(title="first differences")
    for heading in ("difference", "quote", "customer", "A", "B"):
        shown.add_column(heading)
    for d in result.differences[:20]:
        shown.add_row(KINDS[d.kind], d.quote_ref, str(d.customer_id), _verdict(d.a),
                      _verdict(d.b))  # fmt: skip
    if result.differences:
        console.print(shown)
    if options.diff_out is not None:
        with options.diff_out.open("w", encoding="utf-8") as out:
            for d in result.differences:
                out.write(json.dumps(d.as_json(), sort_keys=True) + "\n")
        console.print(f"{len(result.differences):,} difference(s) written to {options.diff_out}")


def _verdict(verdict: object) -> str:
    from streams.replay.compare import Verdict

    if not isinstance(verdict, Verdict):
        return "-"
    if verdict.triggered:
        return f"offer {verdict.offer} at {_when(verdict.at_ms)}"
    if verdict.waiting:
        return f"due {_when(verdict.at_ms)}, after the range"
    return f"{verdict.outcome}: {verdict.reason}"
