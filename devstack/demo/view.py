"""The demo's live view and its final table (rich).

Rendering only: every number comes from :class:`~devstack.demo.observe.Seen`,
the sandbox's counts and the supervisor's health rows. Where stdout is not a
terminal (CI, a pipe) a live display would print nothing until the end, so the
demo prints one progress line every few seconds instead (:func:`progress_line`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from devstack.demo.observe import Seen
from devstack.demo.summary import Summary
from devstack.demo.supervisor import Health

#: Where the demo supervises no component (``--attach``): the pipeline is someone else's.
ATTACHED = "components: the running pipeline's (not supervised by the demo)"


def _health_table(health: Sequence[Health]) -> Table | str:
    # No restarts column: the demo restarts nothing (a component that dies ends the demo
    # with its log), so "alive" and the exit status say all there is.
    if not health:
        return ATTACHED
    table = Table("component", "state", "pid", "up", "memory", box=None)
    for h in health:
        state = "[green]alive[/green]" if h.alive else f"[red]exited ({h.exit_code})[/red]"
        table.add_row(h.name, state, str(h.pid or "-"), f"{h.uptime_s:.0f}s",
                      f"{h.rss_mb:.0f} MiB" if h.rss_mb else "-")  # fmt: skip
    return table


def live_view(*, phase: str, elapsed_s: float, steps_done: int, steps_total: int, seen: Seen,
              delivered: int, outstanding: int, health: Sequence[Health]) -> Panel:  # fmt: skip
    """The panel the demo refreshes twice a second."""
    funnel = Table("", "", box=None, show_header=False)
    funnel.add_row("workload steps written", f"{steps_done}/{steps_total}")
    funnel.add_row("changes captured (CDC)", str(seen.changes))
    funnel.add_row("open quotes (offerable, undecided)", str(seen.open_quotes()))
    funnel.add_row("triggers (offers decided)", str(len(seen.triggers)))
    for (outcome, reason), n in sorted(seen.by_reason().items()):
        funnel.add_row(f"  {outcome.lower()}: {reason}", str(n))
    funnel.add_row("delivered to the ESP", str(delivered))
    funnel.add_row("expected outcomes still to come", str(outstanding))
    return Panel(Group(funnel, "", _health_table(health)),
                 title=f"quoteflow demo: {phase} ({elapsed_s:.0f}s)")  # fmt: skip


def progress_line(*, phase: str, elapsed_s: float, seen: Seen, delivered: int,
                  outstanding: int, health: Sequence[Health]) -> str:  # fmt: skip
    alive = ", ".join(f"{h.name}:{'up' if h.alive else 'DOWN'}" for h in health) or "attached"
    return (f"{elapsed_s:6.1f}s {phase}: {seen.changes} changes, {seen.open_quotes()} open,"
            f" {len(seen.triggers)} triggered, {len(seen.decisions)} decisions,"
            f" {delivered} delivered, {outstanding} to come [{alive}]")  # fmt: skip


def summary_table(summary: Summary) -> Table:
    table = Table("", "", title=f"quoteflow demo {summary.run}: summary", show_header=False)
    table.columns[1].overflow = "fold"  # the logs' path whole, never cut with an ellipsis
    for name, value in summary.rows():
        table.add_row(name, value)
    return table
