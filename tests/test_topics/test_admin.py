"""Topic creation and drift detection against the real broker (uuid-named specs)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from quoteflow.topics.catalog import TopicSpec

pytestmark = pytest.mark.integration


@pytest.fixture
def specs(stack: object, settings: Settings) -> Iterator[list[TopicSpec]]:
    admin = TopicAdmin(settings)
    tag = uuid.uuid4().hex[:8]
    made = [replace(s, name=f"test.{tag}.{s.name}") for s in admin.catalogue]
    yield made
    client = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    existing = set(client.list_topics(timeout=10).topics)
    doomed = [s.name for s in made if s.name in existing]
    if doomed:
        for future in client.delete_topics(doomed).values():
            future.result(timeout=30)


def test_create_is_idempotent_and_matches_the_catalogue(
    specs: list[TopicSpec], settings: Settings
) -> None:
    admin = TopicAdmin(settings)
    assert [r.state for r in admin.report(specs)] == ["missing"] * len(specs)
    assert sorted(admin.create(specs)) == sorted(s.name for s in specs)
    assert admin.create(specs) == []
    reports = admin.report(specs)
    assert [r.state for r in reports] == ["ok"] * len(specs), [r.problems for r in reports]


def test_drift_is_flagged(specs: list[TopicSpec], settings: Settings) -> None:
    admin = TopicAdmin(settings)
    customers = next(s for s in specs if s.cleanup_policy == "compact")
    admin.create([customers])
    client = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    resource = ConfigResource(
        ResourceType.TOPIC,
        customers.name,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in client.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    # The change reaches the broker through the KRaft metadata log, a moment later.
    deadline = time.monotonic() + 15
    (report,) = admin.report([customers])
    while report.state != "drift" and time.monotonic() < deadline:
        time.sleep(0.2)
        (report,) = admin.report([customers])
    assert report.state == "drift"
    assert report.problems == ("cleanup.policy=delete, declared compact",)
