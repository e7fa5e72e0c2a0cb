"""`quoteflow process` and `rules check`: the stream processor and the rules file it runs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, pass_ctx


@click.group()
def rules() -> None:
    """The marketing rules file: check one before a worker runs it."""


@rules.command("check")
@click.argument("rules_file", type=click.Path(path_type=Path), required=False)
@pass_ctx
def rules_check(obj: CliContext, rules_file: Path | None) -> None:
    """Read RULES_FILE as a worker would (default: streams.rules_file, else the shipped one).

    A mistake is one line per bad key and exit code 1; a good file prints what it
    decides, so a reviewer sees the change before the workers roll.
    """
    from streams.core.rules import load_rules

    loaded = load_rules(rules_file or obj.settings.streams.rules_file)
    table = Table(title=f"rules {loaded.version}", show_header=False)
    for name, value in loaded.describe():
        table.add_row(name, value)
    console.print(table)


@click.command()
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), default=None,
              help="The marketing rules file (default: streams.rules_file, else the shipped one).")
@pass_ctx
def process(obj: CliContext, rules_file: Path | None) -> None:
    """Run a stream processor worker: quotes and customers in, triggers and decisions out.

    Start more workers with the same streams.app_id to share the partitions.
    Runs until Ctrl-C or SIGTERM.
    """
    from streams.core.rules import load_rules
    from streams.worker import run_worker

    rules = load_rules(rules_file or obj.settings.streams.rules_file)
    console.print(f"rules {rules.version}: {len(rules.offers)} offer(s)")
    run_worker(obj.settings, rules)
