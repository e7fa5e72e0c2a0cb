"""`quoteflow replay`: the core over a recorded range, to its own topics, live, or as a what-if."""

from __future__ import annotations

from pathlib import Path

import click

from quoteflow.cli.common import CliContext, console, err_console, pass_ctx


@click.command()
@click.option("--name", default=None,
              help="The replay's name: its topics are quoteflow.replay.NAME.triggers/.decisions "
                   "(default: the UTC time now).")
@click.option("--from", "start", default=None, metavar="WHEN",
              help="Start: an ISO time with its zone (2026-12-01T09:00Z), quotes-topic "
                   "offsets like 0=1200,1=1310, or 'beginning' (default).")
@click.option("--to", "end", default=None, metavar="WHEN",
              help="End: an ISO time with its zone, quotes-topic offsets, or 'end' (default: "
                   "the topics' ends now, pinned when the replay starts).")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), default=None,
              help="Rules file (default: streams.rules_file, else the shipped one).")
@click.option("--compare", "compare_file", type=click.Path(path_type=Path), default=None,
              help="What-if: a second rules file run over the same history in the same pass; "
                   "prints what it would do differently and writes nothing to Kafka.")
@click.option("--diff-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --compare: also write each difference as a JSON line to this file.")
@click.option("--dry-run", is_flag=True,
              help="Read and decide, write nothing: counts by outcome and a sample of triggers.")
@click.option("--into", type=click.Choice(["replay", "live"]), default="replay",
              show_default=True,
              help="'live' writes to the live triggers and decisions topics: the sink e-mails "
                   "every quote its ledger has not e-mailed yet. Asks first.")
@click.option("--yes", is_flag=True, help="Do not ask before writing to live topics.")
@click.option("--resume", is_flag=True,
              help="Finish a stopped replay: outputs already in its topics are not written "
                   "again.")
@click.option("--lanes", type=int, default=1, show_default=True,
              help="Processes sharing the customers (each reads every record).")
@pass_ctx
def replay(obj: CliContext, name: str | None, start: str | None, end: str | None,
           rules_file: Path | None, compare_file: Path | None, diff_out: Path | None,
           dry_run: bool, into: str, yes: bool, resume: bool, lanes: int) -> None:  # fmt: skip
    """Replay the change topics through the decision core, in event time.

    The watermark is the history's own (the CDC's watermark records), so the
    decisions are those the live pipeline made, or would have made with these
    rules. Safe by default: output goes to the replay's own topics; --into live
    asks first, and the sink's ledger still e-mails each quote at most once.
    Ctrl-C stops cleanly and prints the command that finishes the replay.
    """
    from quoteflow.cli.replay_view import confirm_live, print_plan, print_result, run_with_progress
    from streams.replay.plan import Options, prepare, resume_command
    from streams.replay.range import parse_bound

    options = Options(
        start=parse_bound("--from", start), end=parse_bound("--to", end), name=name,
        rules_file=rules_file, compare_file=compare_file, diff_out=diff_out, dry_run=dry_run,
        into="live" if into == "live" else "replay", resume=resume, lanes=lanes,
    )  # fmt: skip
    prepared = prepare(obj.settings, options, lambda line: console.print(f"[dim]{line}[/dim]"))
    print_plan(prepared, options)
    if prepared.live and not confirm_live(prepared, yes):
        err_console.print("nothing written: the live topics were not confirmed")
        raise SystemExit(1)
    result = run_with_progress(prepared)
    print_result(prepared, result, options)
    if result.stopped:
        console.print("[yellow]stopped before the end of the range.[/yellow] To finish it:")
        console.print(f"  {resume_command(options, prepared)}", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip
        raise SystemExit(130)
