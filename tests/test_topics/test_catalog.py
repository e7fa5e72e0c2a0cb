"""The catalogue itself: complete, consistent with the schemas, drift described per key."""

from __future__ import annotations

import pytest

from quoteflow.topics.catalog import (
    CATALOGUE,
    ActualTopic,
    by_name,
    drift,
    for_environment,
    stream_partitions,
)
from schemas.catalog import default_catalog

pytestmark = pytest.mark.unit


def test_names_are_unique_and_every_schema_exists() -> None:
    names = [t.name for t in CATALOGUE]
    assert len(names) == len(set(names))
    known = set(default_catalog().names())
    for spec in CATALOGUE:
        assert spec.value_schema in known
        assert spec.key_schema is None or spec.key_schema in known


def test_every_value_schema_has_a_topic() -> None:
    used = {t.value_schema for t in CATALOGUE} | {t.key_schema for t in CATALOGUE}
    assert {n for n in default_catalog().names() if not n.endswith("_key")} <= used


def test_customers_are_compacted_and_change_events_use_debezium_names() -> None:
    assert by_name("crm.public.customers").cleanup_policy == "compact"
    assert by_name("crm.public.customers").retention_ms == -1
    assert by_name("qms.public.quotes").key_schema == "qms_quote_key"


def test_the_processor_partition_count_is_the_setting_else_the_quotes_topics() -> None:
    assert stream_partitions(None) == by_name("qms.public.quotes").partitions
    assert stream_partitions(6) == 6


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"qms\.public\.quotes"):
        by_name("qms.quotes")


def test_environment_sets_replication_and_min_isr() -> None:
    prod = for_environment(replication_factor=3)
    assert all(t.replication_factor == 3 for t in prod)
    assert all(t.config()["min.insync.replicas"] == "2" for t in prod)
    local = for_environment(replication_factor=1, partitions=2)
    assert all(t.config()["min.insync.replicas"] == "1" for t in local)
    assert all(t.partitions == 2 for t in local if t.fixed_partitions is None)


def test_drift_names_each_difference() -> None:
    spec = for_environment(1)[0]
    same = ActualTopic(spec.name, spec.partitions, 1, spec.config())
    assert drift(spec, same) == []
    changed = dict(spec.config(), **{"retention.ms": "1000"})
    other = ActualTopic(spec.name, spec.partitions + 1, 1, changed)
    found = drift(spec, other)
    assert f"partitions {spec.partitions + 1}, declared {spec.partitions}" in found
    assert f"retention.ms=1000, declared {spec.retention_ms}" in found
    assert len(found) == 2


def test_the_watermark_topic_keeps_one_partition_whatever_the_environment() -> None:
    """The CDC watermarks are one ordered log per source, read from partition 0:
    ``topics.partitions`` sizes every other topic, never this one."""
    local = {t.name: t.partitions for t in for_environment(1, partitions=6)}
    assert local.pop("quoteflow.cdc.watermarks") == 1
    assert set(local.values()) == {6}
    assert by_name("quoteflow.cdc.watermarks").partitions == 1


def test_a_watermark_topic_with_more_partitions_is_reported_in_one_line() -> None:
    (spec,) = (t for t in for_environment(1, partitions=6) if t.name == "quoteflow.cdc.watermarks")
    actual = ActualTopic(spec.name, 6, 1, spec.config())
    assert drift(spec, actual) == [
        "partitions 6, must be 1 (one ordered log per source; recreate the topic with 1)"
    ]


def test_the_environment_s_catalogue_takes_the_one_topic_prefix() -> None:
    names = [t.name for t in for_environment(1, prefix="staging.")]
    assert names == [f"staging.{spec.name}" for spec in CATALOGUE]
    assert [t.name for t in for_environment(1)] == [spec.name for spec in CATALOGUE]
