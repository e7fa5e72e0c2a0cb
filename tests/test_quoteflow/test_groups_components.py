"""The kernel's component groups are the groups and topics the real components use.

The kernel may not import the router, the processor or the sink, so it derives
their groups and topics from the settings; these tests build the real ones
(their Kafka clients faked: a group id is configuration, not traffic) and hold
the kernel's names to theirs, so a rename there fails here instead of making
``quoteflow groups reset`` move a group nobody reads in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest

from quoteflow.groups.components import COMPONENTS, component_groups
from quoteflow.settings import Settings, load_settings
from quoteflow.topics import CUSTOMERS, QUOTES, TRIGGERS

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return load_settings(
        streams={"app_id": "app-x", "data_dir": tmp_path}, topics={"prefix": "stage."},
        sink={"group_id": "sink-x"}, schema_registry={"mode": "embedded"},
    )  # fmt: skip


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # what faust's services take when given none
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def consumers_of(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[dict[str, Any]]:
    """The configs ``module`` builds its confluent-kafka consumers with."""
    configs: list[dict[str, Any]] = []

    def consumer(config: dict[str, Any]) -> MagicMock:
        configs.append(config)
        return MagicMock()

    monkeypatch.setattr(module, "Consumer", consumer)
    monkeypatch.setattr(module, "Producer", MagicMock())
    return configs


def test_every_component_has_a_group(settings: Settings) -> None:
    assert tuple(component_groups(settings)) == COMPONENTS


def test_the_router_group_and_topics_are_the_routers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams import router as router_module
    from streams.router import Router, Topics

    configs = consumers_of(monkeypatch, router_module)
    ours = component_groups(settings)["router"]
    topics = Topics(sources={"stage." + QUOTES: "qms", "stage." + CUSTOMERS: "crm"},
                    quotes="stage." + QUOTES, watermarks="w", by_customer="b",
                    dead_letter="d")  # fmt: skip
    router = Router(settings, MagicMock(), topics, app_id=settings.streams.app_id, partitions=2)
    assert configs[0]["group.id"] == ours.group == "app-x-router"
    assert router.consumer is not None
    assert set(ours.topics) == set(topics.sources)


def test_the_processor_group_and_topic_are_the_faust_apps(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, loop: asyncio.AbstractEventLoop
) -> None:
    from streams import processor as processor_module
    from streams.core.rules import load_rules
    from streams.processor import Processor

    monkeypatch.setattr(processor_module, "apply_patches", lambda app, **_: None)
    processor = Processor(settings, load_rules(), MagicMock())
    ours = component_groups(settings)["processor"]
    assert ours.group == processor.app.conf.id == "app-x"  # faust's consumer group is conf.id
    assert ours.topics == (processor.by_customer.get_topic_name(),)


def test_the_sink_group_and_topic_are_the_sinks(settings: Settings) -> None:
    from connectors.sink.state import SinkTopics

    ours = component_groups(settings)["sink"]
    assert ours.group == settings.sink.group_id == "sink-x"
    assert ours.topics == (SinkTopics.with_prefix(settings.topics.prefix).triggers,)
    assert ours.topics == ("stage." + TRIGGERS,)
