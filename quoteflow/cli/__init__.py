"""The ``quoteflow`` command line: the root group, its entry point, and where each group lives.

Every command loads the one settings model first, so a bad value stops the
command before it touches anything. Errors of ours (QuoteflowError) become one
line on stderr and a non-zero exit code; anything else is a bug and keeps its
traceback.

Each command group has a module of its own here (``stack``, ``topics``, ...,
shared helpers in ``common``); this one only puts them under the root group.
The modules import what a command runs inside the command, so ``quoteflow
--help`` and a one-line error stay quick.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from quoteflow.cli import (
    bench,
    cdc,
    demo,
    esp_sandbox,
    groups,
    health,
    process,
    replay,
    schemas,
    sink,
    smoke,
    stack,
    topics,
)
from quoteflow.cli.common import CliContext, err_console
from quoteflow.errors import QuoteflowError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML settings file (default: $QUOTEFLOW_CONFIG, else ./quoteflow.toml if present).",
)
@click.version_option(package_name="quoteflow")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """quoteflow: unaccepted quotes to personalised offer e-mails, in minutes."""
    ctx.obj = CliContext(config)


for _command in (
    stack.stack,
    topics.topics,
    schemas.schemas,
    cdc.cdc,
    cdc.watermarks,
    cdc.snapshot,
    process.rules,
    process.process,
    replay.replay,
    sink.sink,
    esp_sandbox.esp_sandbox,
    bench.bench,
    groups.groups,
    health.health,
    demo.demo,
    smoke.smoke,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: our errors become one line and an exit code, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="quoteflow", standalone_mode=False)
    except QuoteflowError as exc:
        # soft_wrap: one line even where stderr is not a terminal (rich would wrap at 80).
        err_console.print(f"quoteflow: error: {exc}", markup=False, highlight=False,
                          soft_wrap=True)  # fmt: skip
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("quoteflow: aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(code, int):  # --help, --version and ctx.exit() hand back their code
        sys.exit(code)
