"""`quoteflow groups`: each component's lag, and resetting a component's consumer group.

``lag`` reads; ``reset`` shows its plan first and writes only when told
(``--yes`` or a confirmation), never while the group has members. The Kafka
logic is the kernel's (:mod:`quoteflow.groups`), the CDC's slot lag the CDC's
(:mod:`connectors.cdc.lag`); this module wires them for a person.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, err_console, pass_ctx
from quoteflow.groups.components import COMPONENTS

if TYPE_CHECKING:
    from connectors.cdc.lag import SourceLag
    from quoteflow.groups.admin import GroupAdmin
    from quoteflow.groups.components import ComponentGroup
    from quoteflow.groups.plan import ResetPlan, TopicLag

log = logging.getLogger("quoteflow.groups")


@click.group()
def groups() -> None:
    """Lag per component (CDC slots, consumer groups); reset a component's group offsets."""


@groups.command("lag")
@click.argument("components", nargs=-1, type=click.Choice(("cdc", *COMPONENTS)))
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, for scripts.")
@pass_ctx
def groups_lag(obj: CliContext, components: tuple[str, ...], as_json: bool) -> None:
    """Lag of COMPONENTS (default all: cdc, router, processor, sink).

    The CDC: each source slot's WAL not yet confirmed (bytes) and the age of its
    newest watermark (seconds). The others: their consumer group's committed
    offsets against each partition's end, per partition and in total. Exit 1
    when a part could not be read (it is shown as such).
    """
    from quoteflow.errors import QuoteflowError
    from quoteflow.groups.admin import GroupAdmin
    from quoteflow.groups.components import component_groups

    settings = obj.settings
    chosen = components or ("cdc", *COMPONENTS)
    admin = GroupAdmin(settings)
    with err_console.status("reading the slots and groups"):
        # One probe of the broker first: when it is down, every part says so at once
        # instead of each waiting out its own request timeout.
        try:
            admin.partitions(())
            kafka_problem = ""
        except QuoteflowError as exc:
            kafka_problem = str(exc)
        cdc: list[SourceLag] = []
        if "cdc" in chosen:
            from connectors.cdc.lag import source_lags

            cdc = source_lags(settings, settings.cdc.sources, kafka_problem=kafka_problem)
        found = [
            _group_lag(admin, group, kafka_problem)
            for name, group in component_groups(settings).items()
            if name in chosen
        ]
    if as_json:
        click.echo(json.dumps({"cdc": [_cdc_json(s) for s in cdc], "groups": found}))
    else:
        if cdc:
            console.print(_cdc_table(cdc))
        if found:
            console.print(_groups_table(found))
    unreadable = [s for s in cdc if s.slot.state == "unreachable"] + [
        g for g in found if g["problem"]
    ]
    if unreadable:
        sys.exit(1)


def _group_lag(admin: GroupAdmin, cg: ComponentGroup, kafka_problem: str) -> dict[str, Any]:
    """One component's group as plain data (the table's and --json's), or its problem."""
    from quoteflow.errors import QuoteflowError
    from quoteflow.groups.plan import by_topic

    out: dict[str, Any] = {
        "component": cg.component,
        "group": cg.group,
        "state": None,
        "members": 0,
        "topics": [],
        "missing_topics": [],
        "problem": kafka_problem,
    }
    if kafka_problem:
        return out
    try:
        info = admin.describe(cg.group)
        out["state"], out["members"] = info.state, len(info.members)
        # Its own topics, and any other it has committed offsets for (a topic renamed).
        topics = sorted({*cg.topics, *(t for t, _ in admin.committed(cg.group))})
        partitions = admin.partitions(topics)
        out["missing_topics"] = [t for t in topics if t not in partitions]
        lags: tuple[TopicLag, ...] = by_topic(admin.positions(cg.group, partitions))
    except QuoteflowError as exc:
        out["problem"] = str(exc)
        return out
    out["topics"] = [
        {
            "topic": t.topic,
            "total": t.total,
            "partitions": [
                {
                    "partition": p.partition,
                    "committed": p.committed,
                    "start": p.start,
                    "end": p.end,
                    "lag": p.lag,
                }
                for p in t.positions
            ],
        }
        for t in lags
    ]
    return out


def _cdc_json(s: SourceLag) -> dict[str, Any]:
    return {
        "source": s.source,
        "database": s.database,
        "slot": s.slot.slot,
        "state": s.slot.state,
        "lag_bytes": s.slot.lag_bytes,
        "confirmed_lsn": s.slot.confirmed_lsn,
        "watermark_ms": s.watermark_ms,
        "lag_s": None if s.lag_s is None else round(s.lag_s, 3),
        "problem": s.slot.problem,
        "seconds_note": s.seconds_note,
    }


def _size(n: int | None) -> str:
    """Bytes as a person reads them (1.2 MiB)."""
    if n is None:
        return "—"
    size, units = float(n), ["B", "KiB", "MiB", "GiB"]
    while size >= 1024 and len(units) > 1:
        size, units = size / 1024, units[1:]
    return f"{n} B" if units[0] == "B" else f"{size:.1f} {units[0]}"


def _cdc_table(rows: list[SourceLag]) -> Table:
    table = Table(
        "source", "slot", "state", "lag (bytes)", "lag (s)", "note", title="CDC replication slots"
    )
    for s in rows:
        colour = {"active": "green", "inactive": "yellow"}.get(s.slot.state, "red")
        state = f"[{colour}]{s.slot.state}[/{colour}]"
        if s.slot.active_pid:
            state += f" (pid {s.slot.active_pid})"
        seconds = "unknown" if s.lag_s is None else f"{s.lag_s:.1f}"
        note = "; ".join(n for n in (s.slot.problem, s.seconds_note) if n)
        table.add_row(
            f"{s.source} ({s.database})", s.slot.slot, state, _size(s.slot.lag_bytes), seconds, note
        )
    return table


def _groups_table(found: list[dict[str, Any]]) -> Table:
    table = Table(
        "component",
        "group",
        "state",
        "topic",
        "partition",
        "committed",
        "end",
        "lag",
        title="Consumer groups",
    )
    for g in found:
        state = g["state"] or "?"
        if g["members"]:
            state += f", {g['members']} member(s)"
        head = [g["component"], g["group"], state]
        if g["problem"]:
            table.add_row(*head, f"[red]unreadable: {g['problem']}[/red]", "", "", "", "")
            continue
        for missing in g["missing_topics"]:
            table.add_row(*head, missing, "[red]topic missing[/red]", "", "", "")
            head = ["", "", ""]
        for t in g["topics"]:
            topic = t["topic"]
            for p in t["partitions"]:
                committed = "[yellow]none[/yellow]" if p["committed"] is None else p["committed"]
                lag = "—" if p["lag"] is None else p["lag"]
                cells = (p["partition"], committed, p["end"], lag)
                table.add_row(*head, topic, *(str(c) for c in cells))
                head, topic = ["", "", ""], ""
            total = "no commit" if t["total"] is None else str(t["total"])
            blank = [""] * 4
            table.add_row(*blank, "[bold]total[/bold]", "", "", f"[bold]{total}[/bold]",
                          end_section=True)  # fmt: skip
    return table


@groups.command("reset")
@click.argument("component", type=click.Choice(COMPONENTS))
@click.option(
    "--to-datetime",
    default=None,
    metavar="ISO",
    help="From each partition's first record at or after this time (with its zone,"
    " e.g. 2026-12-06T18:00:00Z).",
)
@click.option(
    "--to-offset",
    default=None,
    metavar="P=O[,P=O]",
    help="Named partitions to offsets: 0=120,1=98 (TOPIC:0=120 where the group reads"
    " several topics); the others stay.",
)
@click.option("--to-earliest", is_flag=True, help="Every partition from its log start.")
@click.option("--to-latest", is_flag=True, help="Every partition from its end (skip the rest).")
@click.option(
    "--topic",
    "only_topics",
    multiple=True,
    metavar="TOPIC",
    help="Only this one of the group's topics (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Apply without asking (the plan is still printed).")
@pass_ctx
def groups_reset(
    obj: CliContext,
    component: str,
    to_datetime: str | None,
    to_offset: str | None,
    to_earliest: bool,
    to_latest: bool,
    only_topics: tuple[str, ...],
    dry_run: bool,
    yes: bool,
) -> None:
    """Move COMPONENT's consumer group (router, processor, sink) to new offsets.

    The plan (partition, committed, new, change) is printed first; --dry-run
    stops there. Refused while the group has members: stop the component
    first. One offset commit applies the whole plan.
    """
    from quoteflow.errors import GroupError, GroupOptionError
    from quoteflow.groups.admin import GroupAdmin
    from quoteflow.groups.components import component_groups
    from quoteflow.groups.plan import ToDatetime, choose_target, plan_reset, refuse_if_active

    target = choose_target(
        to_datetime=to_datetime, to_offset=to_offset, to_earliest=to_earliest, to_latest=to_latest
    )
    settings = obj.settings
    cg = component_groups(settings)[component]
    unknown = [t for t in only_topics if t not in cg.topics]
    if unknown:
        raise GroupOptionError(
            f"--topic {unknown[0]}: the {component} reads {', '.join(cg.topics)}"
        )
    topics = only_topics or cg.topics
    admin = GroupAdmin(settings)
    partitions = admin.partitions(topics)
    missing = [t for t in topics if t not in partitions]
    if missing:
        raise GroupError(
            f"topic {missing[0]} does not exist: nothing to reset"
            " (quoteflow topics create, or check topics.prefix)"
        )
    info = admin.describe(cg.group)
    if not dry_run:
        refuse_if_active(info)  # before anything else: one line, as kafka-consumer-groups.sh
    positions = admin.positions(cg.group, partitions)
    by_time = None
    if isinstance(target, ToDatetime):
        by_time = admin.offsets_for_time([(p.topic, p.partition) for p in positions], target.at_ms)
    plan = plan_reset(cg.group, positions, target, by_time)
    console.print(_plan_table(plan, component, info.state, len(info.members)))
    console.print(f"re-reads {plan.reread} record(s), skips {plan.skipped} record(s)")
    err_console.print(f"[yellow]note[/yellow]: {cg.caution}", highlight=False)
    if dry_run:
        if info.active:
            err_console.print(
                f"[yellow]the group is {info.state} with {len(info.members)}"
                " member(s): a reset would be refused now[/yellow]"
            )
        console.print("dry run: nothing changed")
        return
    if not plan.changes_anything:
        console.print("every partition is already there: nothing to change")
        return
    if not yes and not click.confirm(
        f"Reset group {cg.group} ({component}) at {settings.kafka.bootstrap_servers}?",
        default=False,
        err=True,
    ):
        err_console.print("not confirmed: nothing changed")
        sys.exit(1)
    refuse_if_active(admin.describe(cg.group))  # a consumer may have started meanwhile
    _apply(admin, plan, cg)


def _apply(admin: GroupAdmin, plan: ResetPlan, cg: ComponentGroup) -> None:
    from quoteflow.errors import GroupError

    after = admin.apply(plan)
    wrong = [r for r in plan.rows if after.get((r.topic, r.partition)) != r.new]
    if wrong:
        r = wrong[0]
        raise GroupError(
            f"group {plan.group}: {r.topic}[{r.partition}] reads"
            f" {after.get((r.topic, r.partition))} after the reset, not {r.new}"
        )
    log.warning(
        "consumer group reset",
        extra={
            "group": plan.group,
            "component": cg.component,
            "partitions": len(plan.rows),
            "reread": plan.reread,
            "skipped": plan.skipped,
        },
    )
    console.print(
        f"reset group {plan.group}: {len(plan.rows)} partition(s) now at the new"
        f" offsets; `{cg.command}` reads from there when it starts"
    )


def _plan_table(plan: ResetPlan, component: str, state: str, members: int) -> Table:
    who = f"{members} member(s)" if members else "no members"
    table = Table(
        "topic",
        "partition",
        "committed",
        "new",
        "change",
        "note",
        title=f"reset plan: {component}, group {plan.group} ({state}, {who})",
    )
    for r in plan.rows:
        if r.change is None:
            change = "[yellow]first commit[/yellow]"
        elif r.change > 0:
            change = f"[red]+{r.change} skipped[/red]"
        elif r.change < 0:
            change = f"[cyan]{r.change} re-read[/cyan]"
        else:
            change = "0"
        current = "none" if r.current is None else str(r.current)
        table.add_row(r.topic, str(r.partition), current, str(r.new), change, r.note)
    return table
