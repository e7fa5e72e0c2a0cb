"""`quoteflow smoke`: check the sources and round-trip one record of every schema."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, pass_ctx, reporter


@click.command()
@pass_ctx
def smoke(obj: CliContext) -> None:
    """Check the sources and round-trip one record of every schema through Kafka."""
    from devstack.smoke import run_smoke

    checks = run_smoke(obj.settings, reporter())
    table = Table("check", "result", "time", "detail")
    for c in checks:
        result = "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        table.add_row(c.name, result, f"{c.seconds:.2f}s", c.detail)
    console.print(table)
    if not all(c.ok for c in checks):
        sys.exit(1)
