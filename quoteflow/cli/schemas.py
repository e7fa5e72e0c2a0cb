"""`quoteflow schemas`: register the repository's Avro schemas and check the registry for drift."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, pass_ctx, reporter


@click.group()
def schemas() -> None:
    """The repository's Avro schemas in the Schema Registry (TopicNameStrategy subjects)."""


@schemas.command("register")
@pass_ctx
def schemas_register(obj: CliContext) -> None:
    """Register every schema version under its subject, with BACKWARD_TRANSITIVE (idempotent).

    Producers never register schemas themselves (schema_registry.auto_register
    is off by default): this command, run by a person or CI, is the way in.
    """
    from schemas.subjects.admin import SubjectAdmin

    with SubjectAdmin(obj.settings) as admin:
        console.print(f"schema registry: {admin.url}")
        results = admin.register(reporter())
    _print_subjects([r.after for r in results])
    changed = sum(1 for r in results if r.changed)
    console.print(
        f"{changed} subject(s) changed, {len(results) - changed} already up to date"
        if changed
        else "every subject was already registered"
    )
    if any(r.refused or r.after.state != "ok" for r in results):
        sys.exit(1)


@schemas.command("check")
@pass_ctx
def schemas_check(obj: CliContext) -> None:
    """Compare the registry's latest version of each subject with the repository's.

    Exit 1 on drift: a subject missing or behind, a version the repository does
    not have, or a compatibility level other than BACKWARD_TRANSITIVE.
    """
    from schemas.subjects.admin import SubjectAdmin

    with SubjectAdmin(obj.settings) as admin:
        console.print(f"schema registry: {admin.url}")
        comparisons = admin.compare()
    _print_subjects(comparisons)
    if any(c.state != "ok" for c in comparisons):
        sys.exit(1)


def _print_subjects(comparisons: list[Any]) -> None:
    """One row per subject (never truncated), then each problem on a line of its own."""
    table = Table("subject", "schema", "registry", "state")
    table.columns[0].no_wrap = True
    table.columns[1].overflow = "fold"
    colour = {"ok": "green", "missing": "yellow", "behind": "yellow", "drift": "red"}
    for c in comparisons:
        table.add_row(
            c.subject.name, c.repository[-1].label, c.describe_registry(),
            f"[{colour[c.state]}]{c.state}[/{colour[c.state]}]",
        )  # fmt: skip
    console.print(table)
    for c in comparisons:
        for problem in c.problems():
            console.print(f"{c.subject.name}: {problem}", markup=False, highlight=False)
