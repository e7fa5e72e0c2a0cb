"""The demo's last words: what was stopped, how to run it again, the summary and its JSON line.

The summary's JSON is always the last line of stdout (tests and CI parse it);
everything a person needs after an interruption or with --keep goes to stderr
so it never comes after that line.
"""

from __future__ import annotations

import json

from rich.console import Console

from devstack.demo.attach import Attach
from devstack.demo.options import DemoOptions
from devstack.demo.summary import Summary
from devstack.demo.view import summary_table


def stopped_line(out: Console, *, attached: bool, wrote: bool, names: str, killed: list[str],
                 keep_state: bool, logs: str) -> None:  # fmt: skip
    """What the way out did: the children stopped (or, attached, what stays behind)."""
    forced = f" (killed after the grace period: {', '.join(killed)})" if killed else ""
    state = ("the run's topics, slots and state kept for a resume" if keep_state
             else "the run's topics, slots and state removed")  # fmt: skip
    if attached:
        if wrote:  # something was written: say where it stays
            out.print("detached: the pipeline keeps running (this run's rows stay in the"
                      " QMS and CRM)", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip
    else:
        out.print(f"stopped: {names}{forced}; {state}; logs kept in {logs}",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip


def again_command(options: DemoOptions) -> str:
    """The command that runs this demo again, as it was asked for."""
    return " ".join(["quoteflow demo", *(["--quick"] if options.quick else []),
                     *(["--keep"] if options.keep else []), *attach_args(options.attach)])


def attach_args(attach: Attach | None) -> list[str]:
    if attach is None:
        return []
    prefix = ["--topic-prefix", attach.topic_prefix] if attach.topic_prefix else []
    return ["--attach", "--sandbox", attach.sandbox_url, *prefix]


def print_summary(console: Console, summary: Summary, extras: dict[str, object]) -> None:
    """The summary table, what did not go as planned, and the JSON last line."""
    console.print(summary_table(summary))
    for line in summary.surprises:
        console.print(f"not as planned: {line}", markup=False, highlight=False)
    if not summary.ok:
        console.print(f"[red]FAILED[/red]: delivered {summary.delivered} of {summary.triggered}"
                      f" triggered (abandoned {summary.abandoned})")  # fmt: skip
    # Plain print: one line however wide the terminal (rich would wrap it).
    print(json.dumps({**summary.as_json(), **extras}), flush=True)
