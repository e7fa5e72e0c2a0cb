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
@pass_ctx
def snapshot(obj: CliContext, source: str) -> None:
    """Ask for a new snapshot of SOURCE's table (backfill), as `r` events into its topic.

    The request is a message in the source's WAL: the running `quoteflow cdc`
    meets it in order with the changes, or the next one to start does.
    """
    from connectors.cdc.snapshot import request_snapshot
    from connectors.cdc.sources import CDC_SOURCES

    target = next(s for s in CDC_SOURCES if s.server_name == source)
    database = target.database(obj.settings.postgres)
    lsn = request_snapshot(obj.settings.postgres.conninfo(database), target.qualified_table)
    console.print(
        f"snapshot of {database}.{target.qualified_table} requested at LSN {lsn};"
        f" `quoteflow cdc {source}` runs it"
    )
