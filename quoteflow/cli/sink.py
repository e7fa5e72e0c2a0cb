"""`quoteflow sink`: run the ESP sink, and resolve or re-offer what it holds for a person."""

from __future__ import annotations

import click
from rich.table import Table

from quoteflow.cli.common import CliContext, console, pass_ctx, reporter


@click.group(invoke_without_command=True)
@click.pass_context
def sink(ctx: click.Context) -> None:
    """Deliver abandonment triggers to the ESP (sink.provider), each exactly once in effect.

    Without a subcommand, runs the sink until Ctrl-C or SIGTERM. Start more with
    the same sink.group_id to share the partitions.
    """
    if ctx.invoked_subcommand is not None:
        return
    from connectors.sink.runner import run_sink

    obj: CliContext = ctx.obj
    run_sink(obj.settings, reporter())


@sink.command("ambiguous")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@pass_ctx
def sink_ambiguous(obj: CliContext, limit: int) -> None:
    """Deliveries whose outcome is unknown, held for a person to resolve (oldest first)."""
    from connectors.sink.ledger import Ledger

    with Ledger(obj.settings.postgres.ops_conninfo()) as ledger:
        entries = ledger.open_entries("ambiguous", limit)
    table = Table("trigger", "provider", "customer", "request id", "attempts", "claimed", "why")
    for e in entries:
        table.add_row(e.trigger_id, e.provider, str(e.customer_id), str(e.request_id),
                      str(e.attempts), f"{e.claimed_at:%Y-%m-%d %H:%M:%S}", e.error or "")
    console.print(table)
    console.print(f"{len(entries)} ambiguous deliver{'y' if len(entries) == 1 else 'ies'}")


@sink.command("resolve")
@click.argument("trigger_id")
@click.option("--sent", "resolution", flag_value="sent",
              help="The ESP has it (checked in its dashboard or logs): count it as sent.")
@click.option("--resend", "resolution", flag_value="resend",
              help="The ESP never got it: forget the attempt so the next read delivers it.")
@click.option("--by", default=None, help="Who decided (default: $USER).")
@pass_ctx
def sink_resolve(obj: CliContext, trigger_id: str, resolution: str | None, by: str | None) -> None:
    """Decide an ambiguous delivery: --sent or --resend."""
    import getpass

    from connectors.sink.ledger import Ledger

    if resolution not in ("sent", "resend"):
        raise click.UsageError("say --sent or --resend")
    who = by or getpass.getuser()
    with Ledger(obj.settings.postgres.ops_conninfo()) as ledger:
        entry = ledger.resolve(trigger_id, "sent" if resolution == "sent" else "resend", who)
    if resolution == "sent":
        console.print(f"{trigger_id}: recorded as sent (decided by {who})")
    else:
        console.print(
            f"{trigger_id}: attempt forgotten; it is delivered when the sink reads it again:"
            f" replay {entry.topic}[{entry.partition}] from offset {entry.offset}"
        )


@sink.command("reoffer")
@click.argument("quote_id", type=int)
@click.option("--reason", required=True,
              help="Why this quote may be offered again (kept in the ledger).")
@click.option("--by", default=None, help="Who decided (default: $USER).")
@pass_ctx
def sink_reoffer(obj: CliContext, quote_id: int, reason: str, by: str | None) -> None:
    """Allow ONE more offer for a quote that already had one (the only way to re-offer).

    The sink keeps one offer per quote, ever: a later trigger for it (another rules
    version, another processor app) is a DUPLICATE. This sets the quote's offer aside,
    with who and why, so exactly the next trigger read for the quote is sent once.
    """
    import getpass

    from connectors.sink.ledger import Ledger

    who = by or getpass.getuser()
    with Ledger(obj.settings.postgres.ops_conninfo()) as ledger:
        moved = ledger.reoffer(quote_id, reason, who)
    offer = next(e for e in moved if e.state != "duplicate")
    dups = len(moved) - 1
    console.print(
        f"quote {quote_id}: its offer (trigger {offer.trigger_id}, {offer.state}) and"
        f" {dups} duplicate(s) set aside by {who}; the next trigger for it is sent once."
        " Replay the sink's group to a trigger of it, or wait for a new one."
    )
