"""What every command module shares: the consoles, the settings context, the reporter.

A command's first use of ``settings`` loads the one settings model and
configures logging from it, before the command touches anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console

from quoteflow.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def reporter(prefix: str = "") -> Callable[[str], None]:
    """A progress line printer: each line led by the seconds since this reporter was made."""
    start = time.monotonic()

    def report(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - start:6.1f}s[/dim] {prefix}{line}")

    return report


class CliContext:
    """The root group's ``ctx.obj``: the --config given and the settings it leads to."""

    def __init__(self, config: Path | None) -> None:
        self._config = config
        self._settings: Settings | None = None

    @property
    def config_file(self) -> Path | None:
        """The --config given, for child processes (they read QUOTEFLOW_CONFIG)."""
        return self._config

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from quoteflow.logs import configure_logging

            self._settings = load_settings(self._config)
            configure_logging(self._settings.log)
        return self._settings


pass_ctx = click.make_pass_decorator(CliContext)
