"""`quoteflow cdc`, `snapshot` and `watermarks`: the change-data-capture side of the pipeline."""

from __future__ import annotations

import click

from connectors.cdc.sources import SOURCE_NAMES
from quoteflow.cli.common import CliContext, console, pass_ctx, reporter


@click.command()
@click.argument("sources", nargs=-1, type=click.Choice(SOURCE_NAMES))
@pass_ctx
def cdc(obj: CliContext, sources: tuple[str, ...]) -> None:
    """Stream committed changes of the QMS and CRM databases into their topics.

    SOURCES default to cdc.sources (both). Runs until Ctrl-C or SIGTERM, then
    waits for Kafka to acknowledge what was sent and confirms it to the slot.
    """
    from connectors.cdc.runner import run_sources

    run_sources(obj.settings, sources or obj.settings.cdc.sources, reporter())


@click.command()
@pass_ctx
def watermarks(obj: CliContext) -> None:
    """Publish the source watermark when Debezium, not `quoteflow cdc`, writes the changes.

    Reads the quoteflow heartbeats Debezium publishes (its heartbeat.action.query)
    and Kafka Connect's committed offsets (watermarks.connect_offsets_topic), and
    writes quoteflow.cdc.watermarks. Runs until Ctrl-C or SIGTERM.
    """
    from connectors.debezium.publisher import run_watermarks

    run_watermarks(obj.settings, reporter())


@click.command()
@click.argument("source", type=click.Choice(SOURCE_NAMES))
@click.option(
    "--where",
    metavar="PREDICATE",
    help="Only the rows matching this SQL condition on the table, e.g."
    " \"updated_at >= '2026-11-01'\". Checked by the database before anything is asked.",
)
@click.option(
    "--follow",
    "follow_id",
    metavar="REQUEST_ID",
    help="Follow an earlier request (the id it printed) instead of making one.",
)
@click.option(
    "--cancel",
    "cancel_id",
    metavar="REQUEST_ID",
    help="Stop a running snapshot after its chunk in flight.",
)
@click.option("--no-follow", is_flag=True, help="Write the request and return at once.")
@click.option(
    "--total",
    type=click.Choice(["count", "estimate"]),
    default="count",
    show_default=True,
    help="The rows to expect: count(*) of the matching rows (one read-only scan, the"
    " planner's estimate after 30s), or the planner's estimate (no scan).",
)
@pass_ctx
def snapshot(
    obj: CliContext,
    source: str,
    where: str | None,
    follow_id: str | None,
    cancel_id: str | None,
    no_follow: bool,
    total: str,
) -> None:
    """Ask for a new snapshot of SOURCE's table (backfill), as `r` events into its topic.

    The request is a message in the source's WAL: the running `quoteflow cdc`
    meets it in order with the changes, or the next one to start does. Then this
    command follows it to its end (rows, chunks, rate, ETA) from the CDC's
    progress record; Ctrl-C stops following only, and prints how to follow
    again or cancel. An interrupted CDC resumes the snapshot after its last
    confirmed chunk.
    """
    from connectors.errors import CdcError
    from quoteflow.cli import snapshot_view as sv

    if sum(x is not None for x in (where, follow_id, cancel_id)) > 1:
        raise click.UsageError("--where, --follow and --cancel go one at a time")
    if no_follow and follow_id is not None:
        raise click.UsageError("--no-follow and --follow contradict each other")
    target = sv.Target.of(obj.settings, source, obj.config_file)
    if cancel_id is not None:
        sv.cancel(target, cancel_id)
        return
    count = total == "count"
    lsn: int | None = None
    if follow_id is not None:
        request_id, expected = follow_id, sv.totals_for(target, follow_id, count=count)
    else:
        request_id, lsn, expected = sv.request(target, where, count=count)
        if no_follow:
            console.print(f"follow it with: {target.command} --follow {request_id}")
            return
    try:
        view = sv.follow(target, request_id, request_lsn=lsn, total=expected)
    except sv.Interrupted:
        console.print(sv.resume_hint(target, request_id), highlight=False)
        click.get_current_context().exit(130)
    if view.phase in ("failed", "ignored", "lost"):
        raise CdcError(f"snapshot {request_id} {view.phase}: {view.note}")
