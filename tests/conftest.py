"""Shared fixtures: the real local stack for integration tests, uuid topics per test.

The stack fixture is session-wide and starts only what is not running; at the
end it stops only what it started, so a developer's own `quoteflow stack up`
survives a test run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from quoteflow.settings import Settings, load_settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test says what it needs, so `pytest -m unit` is the whole fast suite."""
    unmarked = [
        item.nodeid
        for item in items
        if not any(item.get_closest_marker(m) for m in ("unit", "integration"))
    ]
    if unmarked:
        raise pytest.UsageError("tests without a unit/integration marker: " + ", ".join(unmarked))


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings, pytestconfig: pytest.Config) -> Iterator[object]:
    """The real local stack; its progress is shown live (a cold start installs things)."""
    import time

    from quoteflow.stack.local import LocalStack

    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    start = time.monotonic()

    def report(line: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[stack {time.monotonic() - start:6.1f}s] {line}", end="", flush=True)

    local = LocalStack(settings)
    started = local.up(report=report)
    try:
        yield local
    finally:
        if started:
            local.down(report=report, names=started)


TopicFactory = Callable[..., str]


@pytest.fixture
def topic_factory(stack: object, settings: Settings) -> Iterator[TopicFactory]:
    """Create topics with a uuid suffix, so tests never read each other's records."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    made: list[str] = []

    def make(
        prefix: str = "test", partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])
        futures[name].result(timeout=30)
        made.append(name)
        return name

    yield make
    if made:
        for future in admin.delete_topics(made, request_timeout=30).values():
            future.result(timeout=30)
