"""`quoteflow health`: the container healthcheck, judging the component's heartbeat file."""

from __future__ import annotations

import sys

import click

from quoteflow.cli.common import CliContext, console, err_console, pass_ctx


@click.command()
@click.option("--max-age", "max_age_s", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Seconds a heartbeat stays good [default: health.max_age_s].")
@pass_ctx
def health(obj: CliContext, max_age_s: float | None) -> None:
    """Exit 0 while this container's component (cdc, process, sink) beats, 1 when stuck.

    The component touches health.file from the loop that does its work; this is
    the check a container orchestrator runs (docker-compose.yml's healthcheck).
    """
    from quoteflow.errors import ConfigError
    from quoteflow.liveness import judge

    settings = obj.settings.health
    if settings.file is None:
        raise ConfigError("health.file is not set (QUOTEFLOW_HEALTH__FILE): the component"
                          " writes no heartbeat to check")  # fmt: skip
    verdict = judge(settings.file, max_age_s or settings.max_age_s)
    if not verdict.alive:
        err_console.print(f"unhealthy: {verdict.message}", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(1)
    console.print(verdict.message, markup=False, highlight=False)
