"""`quoteflow snapshot`'s work: request a backfill loudly, follow it to its end, or cancel it.

The command itself (its options and help) is in :mod:`quoteflow.cli.cdc`; this
module wires the CDC's backfill helpers (:mod:`connectors.cdc.backfill`) to a
person: what will be re-read and where it goes, before it is asked; a rich bar
with rows, chunks, rate and ETA while the CDC works; a summary table at the
end; and on Ctrl-C the exact commands to follow it again or cancel it (the
snapshot itself runs in the CDC, so stopping the follower stops nothing).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.cdc.backfill import Total, check_where, request_cancel, slot_status, total_rows
from connectors.cdc.follow import Follower, Reading, View
from connectors.cdc.pgoutput import parse_lsn
from connectors.cdc.requests import new_request_id, valid_request_id
from connectors.cdc.snapshot import load_state, request_snapshot, state_path
from connectors.cdc.sources import CDC_SOURCES, CdcSource, slot_name
from connectors.cdc.watermarks import SnapshotState
from connectors.errors import CdcError
from quoteflow.cli.common import console
from quoteflow.settings import Settings
from quoteflow.topics.catalog import prefixed

#: How often the CDC's state file and slot are read while following.
POLL_S = 1.0
#: How long "the CDC has not reached the request yet" is not worth saying.
WAIT_QUIET_S = 3.0
#: An exact count longer than this falls back to the planner's estimate.
COUNT_TIMEOUT_S = 30.0


class Interrupted(Exception):
    """Ctrl-C while following: the command prints how to resume and exits 130."""


@dataclass(frozen=True)
class Target:
    """The source a command is about, and where its CDC keeps its bookkeeping."""

    source: CdcSource
    database: str
    conninfo: str
    slot: str
    state_file: Path
    topic: str
    #: How to spell this command again (``quoteflow [--config F] snapshot qms``).
    command: str

    @classmethod
    def of(cls, settings: Settings, name: str, config: Path | None) -> Target:
        source = next(s for s in CDC_SOURCES if s.server_name == name)
        database = source.database(settings.postgres)
        slot = slot_name(settings.cdc.slot_prefix, name)
        words = ["quoteflow", *(["--config", str(config)] if config else []), "snapshot", name]
        return cls(
            source, database, settings.postgres.conninfo(database), slot,
            state_path(settings.cdc, slot), prefixed(settings.topics.prefix, source.topic),
            shlex.join(words),
        )  # fmt: skip


def request(target: Target, where: str | None, *, count: bool) -> tuple[str, int, Total]:
    """Check, announce and write the request: its id, its LSN and the rows it should read."""
    table = target.source.qualified_table
    if where is not None:
        check_where(target.conninfo, target.source, where)  # one line, nothing requested
    slot = slot_status(target.conninfo, target.slot)
    if not slot.exists:
        raise CdcError(
            f"replication slot {target.slot} does not exist yet, so the CDC would never read the"
            f" request: start `quoteflow cdc {target.source.server_name}` first (a new slot"
            " snapshots every row itself unless cdc.snapshot = \"never\")"
        )
    running = _running(target)
    if running is not None:
        raise CdcError(
            f"snapshot {running.snapshot_id} of {table} is still running ({running.rows:,} rows"
            f" so far); follow it with `{target.command} --follow {running.snapshot_id}` or"
            f" cancel it with `{target.command} --cancel {running.snapshot_id}` first"
        )
    with console.status(f"{'counting' if count else 'estimating'} the rows to read…"):
        total = total_rows(
            target.conninfo, target.source, where, count=count, timeout_s=COUNT_TIMEOUT_S
        )
    console.print(
        f"[bold]Backfill[/bold] of {target.database}.{table}\n"
        f"  rows:  {'where ' + where if where else 'every row'}: {total.describe()}\n"
        f"  into:  {target.topic}, as `r` events every consumer of that topic reads",
        highlight=False,
    )
    request_id = new_request_id()
    lsn = request_snapshot(
        target.conninfo, table, request_id=request_id, where=where, slot=target.slot
    )
    console.print(f"requested snapshot [bold]{request_id}[/bold] at LSN {lsn}", highlight=False)
    if not slot.active:
        console.print(
            f"[yellow]no `quoteflow cdc {target.source.server_name}` is reading slot"
            f" {target.slot} now: the request waits in the slot and runs when one starts[/yellow]"
        )
    return request_id, parse_lsn(lsn), total


def cancel(target: Target, request_id: str) -> None:
    _check_id(request_id)
    lsn = request_cancel(target.conninfo, target.source, request_id, target.slot)
    console.print(
        f"cancellation of snapshot {request_id} written at LSN {lsn}: the CDC stops it after"
        " the chunk in flight (rows already sent stay in the topic)",
        highlight=False,
    )


def totals_for(target: Target, request_id: str, *, count: bool) -> Total:
    """The expected rows when following again: the filter comes from the CDC's record."""
    _check_id(request_id)
    state = _state(target)
    if state is None or state.snapshot_id != request_id or state.done:
        return Total(None, "unknown")  # not running: nothing to measure against
    return total_rows(
        target.conninfo, target.source, state.where, count=count, timeout_s=COUNT_TIMEOUT_S
    )


def follow(target: Target, request_id: str, *, request_lsn: int | None, total: Total) -> View:
    """Show the snapshot's progress until it ends; Ctrl-C raises :class:`Interrupted`."""
    follower = Follower(request_id, request_lsn=request_lsn, total=total.rows)
    started = time.monotonic()
    columns = (
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.fields[counts]}"), TextColumn("{task.fields[speed]}"),
        TextColumn("ETA {task.fields[eta]}"), TimeElapsedColumn(),
    )  # fmt: skip
    view = View("waiting")
    state: SnapshotState | None = None
    shown_note = ""
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(request_id, total=total.rows, counts="", speed="", eta="?")
            while True:
                state = _state(target)
                slot = slot_status(target.conninfo, target.slot)
                view = follower.see(
                    Reading(time.monotonic(), state, slot.active, slot.confirmed_lsn)
                )
                bar.update(
                    task, completed=view.rows, description=f"{request_id} {view.phase}",
                    counts=_counts(view, total), speed=_speed(view), eta=_eta(view),
                )  # fmt: skip
                # "waiting" is news only once it lasts: the CDC usually meets a request at once.
                patient = view.phase == "waiting" and time.monotonic() - started < WAIT_QUIET_S
                if view.note and view.note != shown_note and not patient:
                    bar.console.print(f"[yellow]{view.note}[/yellow]")
                    shown_note = view.note
                if view.final:
                    break
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        raise Interrupted from None
    summary(target, request_id, view, total, state, time.monotonic() - started)
    return view


def resume_hint(target: Target, request_id: str) -> str:
    return (
        f"stopped following; snapshot {request_id} goes on in the CDC.\n"
        f"  follow it again: {target.command} --follow {request_id}\n"
        f"  cancel it:       {target.command} --cancel {request_id}"
    )


def summary(
    target: Target,
    request_id: str,
    view: View,
    total: Total,
    state: SnapshotState | None,
    followed_s: float,
) -> None:
    table = Table(title=f"snapshot {request_id}", show_header=False)
    table.add_row("table", f"{target.database}.{target.source.qualified_table}")
    ours = state is not None and state.snapshot_id == request_id
    where = state.where if ours and state is not None else None
    table.add_row("filter", where or "(every row)")
    table.add_row("topic", target.topic)
    table.add_row("outcome", view.phase + (f": {view.note}" if view.note else ""))
    table.add_row("rows read", f"{view.rows:,}")
    table.add_row("chunks", f"{view.chunks:,}")
    table.add_row("expected", total.describe())
    if ours and state is not None and state.updated_ms > state.started_ms:
        took = (state.updated_ms - state.started_ms) / 1000
        table.add_row("took", f"{took:,.1f}s in the CDC ({view.rows / took:,.0f} rows/s)")
    table.add_row("followed", f"{followed_s:,.1f}s")
    console.print(table)
    console.print(
        f"snapshot {request_id} {view.phase}: {view.rows} rows in {view.chunks} chunks",
        highlight=False,
    )


# -- internals ----------------------------------------------------------------------------
def _check_id(request_id: str) -> None:
    if not valid_request_id(request_id):
        raise CdcError(f"{request_id!r} is not a snapshot request id (6-32 hex digits)")


def _state(target: Target) -> SnapshotState | None:
    return load_state(target.state_file)


def _running(target: Target) -> SnapshotState | None:
    state = _state(target)
    return state if state is not None and not state.done else None


def _counts(view: View, total: Total) -> str:
    expected = "?"
    if total.rows is not None:
        expected = f"{total.rows:,}{'' if total.how == 'counted' else '~'}"
    return f"{view.rows:,}/{expected} rows, {view.chunks:,} chunks"


def _speed(view: View) -> str:
    return f"{view.rows_per_s:,.0f} rows/s" if view.rows_per_s is not None else ""


def _eta(view: View) -> str:
    if view.phase == "done":
        return "0:00"
    if view.eta_s is None:
        return "?"
    minutes, seconds = divmod(int(view.eta_s), 60)
    return f"{minutes}:{seconds:02d}"
