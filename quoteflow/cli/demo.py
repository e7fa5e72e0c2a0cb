"""`quoteflow demo`: the whole pipeline on a synthetic workload, started here or attached to."""

from __future__ import annotations

import re
import sys
import time

import click

from quoteflow.cli.common import CliContext, console, err_console, pass_ctx
from quoteflow.settings import Settings


@click.command()
@click.option("--quick", is_flag=True,
              help="The short version: every lifecycle case once (under 3 minutes warm).")
@click.option("--keep", is_flag=True,
              help="Leave the pipeline running after the summary, for a look at the ESP"
                   " sandbox's inbox; Ctrl-C stops it.")
@click.option("--resume", "resume", metavar="RUN", default=None,
              help="Carry on with an interrupted run (Ctrl-C prints its id).")
@click.option("--attach", is_flag=True,
              help="Drive the workload against a pipeline that is already running (e.g."
                   " docker compose's) instead of starting one; needs --sandbox.")
@click.option("--sandbox", "sandbox_url", metavar="URL", default=None,
              help="With --attach: the ESP sandbox the running pipeline's sink delivers to.")
@click.option("--topic-prefix", "topic_prefix", metavar="PREFIX", default=None,
              help="With --attach: the running pipeline's topic prefix"
                   " [default: topics.prefix].")
@pass_ctx
def demo(obj: CliContext, quick: bool, keep: bool, resume: str | None, attach: bool,
         sandbox_url: str | None, topic_prefix: str | None) -> None:  # fmt: skip
    """The whole pipeline, quote to e-mail, on a synthetic workload, live.

    Brings the local stack up, starts the CDC, the processor, the sink and an ESP
    sandbox as supervised child processes, writes quotes and customers into the
    QMS and CRM databases and shows what happens to them. The last line printed is
    the summary as one JSON object.

    With --attach it starts nothing: it writes the workload to the databases of a
    pipeline that is already running, planned with that pipeline's rules
    (streams.rules_file, which must be the processor's), and reads what it decided
    and what its ESP sandbox received.
    """
    from devstack.demo.attach import Attach
    from devstack.demo.run import DemoOptions, run_demo

    attached = _attach_options(obj.settings, attach, keep, resume, sandbox_url, topic_prefix)

    start = time.monotonic()

    def say(line: str) -> None:  # one line each, even where stdout is not a terminal
        console.print(f"[dim]{time.monotonic() - start:6.1f}s[/dim] {line}", soft_wrap=True)

    options = DemoOptions(quick=quick, keep=keep, config_file=obj.config_file, resume=resume,
                          attach=Attach(*attached) if attached else None)  # fmt: skip
    code = run_demo(obj.settings, options, console, err_console, say)
    if code:
        sys.exit(code)


def _attach_options(settings: Settings, attach: bool, keep: bool, resume: str | None,
                    sandbox_url: str | None, topic_prefix: str | None,
                    ) -> tuple[str, str] | None:  # fmt: skip
    """(sandbox URL, topic prefix) for --attach, None without it; usage errors at once."""
    if not attach:
        given = [o for o, v in (("--sandbox", sandbox_url), ("--topic-prefix", topic_prefix))
                 if v is not None]  # fmt: skip
        if given:
            raise click.UsageError(f"{' and '.join(given)} only go with --attach")
        return None
    if keep or resume:
        raise click.UsageError("--attach does not go with --keep or --resume: the pipeline"
                               " is not the demo's to keep or resume")  # fmt: skip
    if not sandbox_url:
        raise click.UsageError("--attach needs --sandbox URL: the ESP sandbox the running"
                               " pipeline's sink delivers to (what was e-mailed is its count)")
    if not sandbox_url.startswith(("http://", "https://")):
        raise click.UsageError(f"--sandbox {sandbox_url}: expected an http:// or https:// URL")
    prefix = settings.topics.prefix if topic_prefix is None else topic_prefix
    if not re.fullmatch(r"[a-zA-Z0-9._-]*", prefix):
        raise click.UsageError(f"--topic-prefix {prefix!r}: letters, digits, '.', '_' and '-'"
                               " only (as the pipeline's topics.prefix setting)")  # fmt: skip
    return sandbox_url.rstrip("/"), prefix
