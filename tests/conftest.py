"""Shared fixtures: the real local stack for integration tests, uuid topics per test.

The stack fixture is session-wide and starts only what is not running; at the
end it stops only what it started, so a developer's own `quoteflow stack up`
survives a test run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quoteflow.settings import ENV_PREFIX, Settings, load_settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test says what it needs, so `pytest -m unit` is the whole fast suite."""
    unmarked = [
        item.nodeid
        for item in items
        if not any(item.get_closest_marker(m) for m in ("unit", "integration"))
    ]
    if unmarked:
        raise pytest.UsageError("tests without a unit/integration marker: " + ", ".join(unmarked))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No QUOTEFLOW_* variable and no ./quoteflow.toml: only the model's own defaults."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings, pytestconfig: pytest.Config) -> Iterator[object]:
    """The real local stack; its progress is shown live (a cold start installs things)."""
    import time

    from devstack.stack.local import LocalStack

    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    start = time.monotonic()

    def report(line: str) -> None:
        text = f"\n[stack {time.monotonic() - start:6.1f}s] {line}"
        if capture is None:  # running with -p no:capture
            print(text, end="", flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(text, end="", flush=True)

    local = LocalStack(settings)
    started = local.up(report=report)
    try:
        # What a deployment does before the pipeline runs: producers never register
        # schemas themselves, and the broker creates no topic by itself.
        from quoteflow.topics.admin import TopicAdmin
        from schemas.subjects.admin import SubjectAdmin

        for created in TopicAdmin(settings).create():
            report(f"created topic {created}")
        with SubjectAdmin(settings) as admin:
            admin.register(report)
        yield local
    finally:
        if started:
            local.down(report=report, names=started)


TopicFactory = Callable[..., str]


@pytest.fixture
def topic_factory(stack: object, settings: Settings) -> Iterator[TopicFactory]:
    """Create topics with a uuid suffix, so tests never read each other's records."""
    from contextlib import ExitStack

    from quoteflow.topics.admin import TopicAdmin

    admin = TopicAdmin(settings)
    with ExitStack() as topics:

        def make(
            prefix: str = "test", partitions: int = 1, config: dict[str, str] | None = None
        ) -> str:
            scratch = admin.scratch(f"{prefix}.", partitions=partitions, config=config)
            return topics.enter_context(scratch)

        yield make
