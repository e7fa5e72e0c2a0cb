"""The local stack as one unit: PostgreSQL first (CDC sources, registry storage), then
Kafka, then the schema registry."""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from devstack.stack.base import Component, ComponentStatus
from devstack.stack.system import makedirs
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter, silent
from quoteflow.settings import Settings


def default_components(settings: Settings) -> list[Component]:
    from devstack.stack.kafka import KafkaComponent
    from devstack.stack.postgres import PostgresComponent
    from devstack.stack.registry import RegistryComponent

    return [PostgresComponent(settings), KafkaComponent(settings), RegistryComponent(settings)]


class LocalStack:
    """Brings every component up or down, in dependency order, idempotently."""

    def __init__(self, settings: Settings, components: Sequence[Component] | None = None) -> None:
        self.settings = settings
        self.components = list(components) if components is not None else default_components(
            settings
        )

    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def select(self, names: Iterable[str] | None) -> list[Component]:
        if names is None:
            return list(self.components)
        wanted = list(names)
        unknown = sorted(set(wanted) - set(self.names()))
        if unknown:
            raise StackError(
                f"unknown component {', '.join(unknown)} (known: {', '.join(self.names())})"
            )
        return [c for c in self.components if c.name in wanted]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up` or `down` at a time per stack home (a test run beside a CLI call)."""
        with (self.settings.stack.home / ".stack.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def up(self, report: Reporter = silent, names: Iterable[str] | None = None) -> list[str]:
        """Start what is not running; return the names started now (for a matching down).

        If a component fails, the ones this call started are stopped again, so a
        failed `up` leaves the machine as it found it.
        """
        # PostgreSQL runs as its own OS user when we are root and must enter this.
        makedirs(self.settings.stack.home, 0o755)
        started: list[str] = []
        with self._locked():
            try:
                for component in self.select(names):
                    if component.up(report):
                        started.append(component.name)
            except BaseException:
                if started:
                    report(f"start-up failed; stopping what it started: {', '.join(started)}")
                    for component in reversed(self.select(started)):
                        component.down(report)
                raise
        return started

    def down(self, report: Reporter = silent, names: Iterable[str] | None = None) -> list[str]:
        """Stop components in reverse order; return the names that were stopped."""
        selected = self.select(names)
        if not self.settings.stack.home.is_dir():
            return []  # never started here, so nothing of ours can be running
        stopped = []
        with self._locked():
            for component in reversed(selected):
                if component.down(report):
                    stopped.append(component.name)
        return stopped

    def status(self) -> list[ComponentStatus]:
        return [c.status() for c in self.components]
