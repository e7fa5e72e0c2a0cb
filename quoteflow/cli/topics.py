"""`quoteflow topics`: create the topic catalogue on the broker and check it for drift."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, pass_ctx


@click.group()
def topics() -> None:
    """The topic catalogue on the broker."""


@topics.command("create")
@pass_ctx
def topics_create(obj: CliContext) -> None:
    """Create every catalogue topic that is missing (idempotent), then check for drift."""
    from quoteflow.topics.admin import TopicAdmin

    admin = TopicAdmin(obj.settings)
    created = admin.create()
    for name in created:
        console.print(f"created {name}")
    if not created:
        console.print("all topics already existed")
    _print_topics(admin.report())


@topics.command("list")
@pass_ctx
def topics_list(obj: CliContext) -> None:
    """Show the catalogue with each topic's state; exit 1 on a missing topic or drift."""
    from quoteflow.topics.admin import TopicAdmin

    reports = TopicAdmin(obj.settings).report()
    _print_topics(reports)
    if any(r.state != "ok" for r in reports):
        sys.exit(1)


def _print_topics(reports: list[Any]) -> None:
    table = Table("topic", "partitions", "rf", "cleanup", "retention", "key / value", "state")
    for r in reports:
        spec = r.spec
        days = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000}d"
        state = {"ok": "[green]ok[/green]", "missing": "[yellow]missing[/yellow]"}.get(
            r.state, "[red]drift: " + "; ".join(r.problems) + "[/red]"
        )
        schemas = f"{spec.key_schema or 'string'} / {spec.value_schema}"
        table.add_row(
            spec.name, str(spec.partitions), str(spec.replication_factor),
            spec.cleanup_policy, days, schemas, state,
        )
    console.print(table)
