"""The smoke round trip reports failures, not only successes."""

from __future__ import annotations

from typing import Any

import pytest

import devstack.smoke as smoke
from quoteflow.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def _results(settings: Settings) -> dict[str, smoke.Check]:
    return {c.name: c for c in smoke.run_smoke(settings, lambda _: None)}


def test_healthy_stack_passes_every_check(stack: object, settings: Settings) -> None:
    from quoteflow.topics.admin import TopicAdmin

    TopicAdmin(settings).create()
    results = _results(settings)
    assert all(c.ok for c in results.values()), results


def test_wrong_password_and_topic_drift_fail_with_reasons(stack: object) -> None:
    settings = load_settings(postgres={"password": "not-the-password"}, topics={"partitions": 2})
    results = _results(settings)
    postgres = results["postgres: CDC sources"]
    assert not postgres.ok and "password authentication failed" in postgres.detail
    assert "not-the-password" not in postgres.detail
    topics = results["kafka: catalogue topics"]
    assert not topics.ok and "quoteflow topics create" in topics.detail
    assert results["kafka: schema round trip"].ok  # one failure does not stop the others


def test_round_trip_detects_records_that_come_back_different(
    stack: object, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_read = smoke.read_partition

    def reversed_read(*args: Any, **kwargs: Any) -> Any:
        return list(reversed(real_read(*args, **kwargs)))

    monkeypatch.setattr(smoke, "read_partition", reversed_read)
    check = _results(settings)["kafka: schema round trip"]
    assert not check.ok and "decoded records differ" in check.detail
