"""The local stack as one unit: PostgreSQL first (CDC sources), then Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from quoteflow.errors import StackError
from quoteflow.settings import Settings
from quoteflow.stack.base import Component, ComponentStatus, Reporter, silent
from quoteflow.stack.system import makedirs


def default_components(settings: Settings) -> list[Component]:
    from quoteflow.stack.kafka import KafkaComponent
    from quoteflow.stack.postgres import PostgresComponent

    return [PostgresComponent(settings), KafkaComponent(settings)]


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

    def up(self, report: Reporter = silent, names: Iterable[str] | None = None) -> list[str]:
        """Start what is not running; return the names started now (for a matching down)."""
        # PostgreSQL runs as its own OS user when we are root and must enter this.
        makedirs(self.settings.stack.home, 0o755)
        started = []
        for component in self.select(names):
            if component.up(report):
                started.append(component.name)
        return started

    def down(self, report: Reporter = silent, names: Iterable[str] | None = None) -> list[str]:
        """Stop components in reverse order; return the names that were stopped."""
        stopped = []
        for component in reversed(self.select(names)):
            if component.down(report):
                stopped.append(component.name)
        return stopped

    def status(self) -> list[ComponentStatus]:
        return [c.status() for c in self.components]
