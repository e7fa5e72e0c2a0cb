"""How long work tells a person what it is doing, without depending on who listens.

Installers, connectors, benchmarks and the CLI all take a ``Reporter``: the CLI
passes a console printer, tests and library callers ``silent``. A plain callable
keeps the product free of any terminal library below the CLI.
"""

from __future__ import annotations

from collections.abc import Callable

#: Receives one human-readable line per step of long work (install, start).
Reporter = Callable[[str], None]


def silent(_: str) -> None:
    """A reporter that says nothing (tests, library use)."""
