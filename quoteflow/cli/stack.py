"""`quoteflow stack`: install, start, stop and inspect the local PostgreSQL, Kafka and registry."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, pass_ctx, reporter


@click.group()
def stack() -> None:
    """The local stack: PostgreSQL, Apache Kafka (KRaft) and the Schema Registry, run here."""


_component_arg = click.argument("components", nargs=-1)


@stack.command("install")
@_component_arg
@pass_ctx
def stack_install(obj: CliContext, components: tuple[str, ...]) -> None:
    """Install what the stack needs (PostgreSQL, Java, Maven, Kafka, registry); start nothing."""
    from devstack.stack.local import LocalStack

    report = reporter()
    for component in LocalStack(obj.settings).select(components or None):
        component.install(report)
        report(f"{component.name}: installed")


@stack.command("up")
@_component_arg
@pass_ctx
def stack_up(obj: CliContext, components: tuple[str, ...]) -> None:
    """Install what is missing and start the stack (idempotent)."""
    from devstack.stack.local import LocalStack

    local = LocalStack(obj.settings)
    started = local.up(reporter(), components or None)
    _print_status(local.status())
    if not started:
        console.print("everything was already running")


@stack.command("down")
@_component_arg
@pass_ctx
def stack_down(obj: CliContext, components: tuple[str, ...]) -> None:
    """Stop what `stack up` started (never other instances)."""
    from devstack.stack.local import LocalStack

    stopped = LocalStack(obj.settings).down(reporter(), components or None)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")


@stack.command("status")
@pass_ctx
def stack_status(obj: CliContext) -> None:
    """Show each component with its address and health; exit 1 if any is unhealthy."""
    from devstack.stack.local import LocalStack

    statuses = LocalStack(obj.settings).status()
    _print_status(statuses)
    if not all(s.healthy for s in statuses):
        sys.exit(1)


@stack.command("logs")
@_component_arg
@click.option(
    "-n", "--lines", default=40, show_default=True, type=click.IntRange(min=0),
    help="Lines per component.",
)
@click.option("--path", "path_only", is_flag=True, help="Print the log file paths only.")
@pass_ctx
def stack_logs(obj: CliContext, components: tuple[str, ...], lines: int, path_only: bool) -> None:
    """Show the end of each component's log."""
    from devstack.stack.base import read_tail
    from devstack.stack.local import LocalStack

    for component in LocalStack(obj.settings).select(components or None):
        log = component.log_file()
        if path_only:
            console.print(str(log))
            continue
        console.rule(f"{component.name}: {log}")
        if not log.is_file():
            console.print("[dim](no log yet)[/dim]")
            continue
        for line in read_tail(log, lines):
            console.print(line, markup=False, highlight=False)


def _print_status(statuses: list[Any]) -> None:
    table = Table("component", "address", "running", "healthy", "pid", "detail")
    for s in statuses:
        ok = "[green]yes[/green]" if s.healthy else "[red]no[/red]"
        run = "yes" if s.running else "no"
        table.add_row(s.name, s.address, run, ok, str(s.pid or "-"), s.detail)
    console.print(table)
