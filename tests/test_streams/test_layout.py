"""The processor's check of the topics it reads, from the partition counts the broker reports."""

from __future__ import annotations

import pytest

from streams.errors import TopicLayoutError
from streams.layout import check_watermark_topic, expected_watermarks

pytestmark = pytest.mark.unit

SOURCES = {"qms": "p.qms.public.quotes", "crm": "p.crm.public.customers"}
WATERMARKS = "p.quoteflow.cdc.watermarks"


def test_a_watermark_topic_of_more_than_one_partition_is_refused_naming_topic_and_count() -> None:
    counts = {SOURCES["qms"]: 6, SOURCES["crm"]: 6, WATERMARKS: 6}
    with pytest.raises(TopicLayoutError) as refused:
        check_watermark_topic(counts, WATERMARKS)
    message = str(refused.value)
    assert "\n" not in message
    assert f"{WATERMARKS} has 6 partitions" in message and "exactly 1" in message


def test_a_missing_watermark_topic_is_refused_and_one_partition_accepted() -> None:
    with pytest.raises(TopicLayoutError, match=rf"topic {WATERMARKS} does not exist"):
        check_watermark_topic({SOURCES["qms"]: 6}, WATERMARKS)
    check_watermark_topic({WATERMARKS: 1}, WATERMARKS)


CHANGES = {topic: source for source, topic in SOURCES.items()}  # as the router's Topics


@pytest.mark.parametrize("count", [3, 6, 12])
def test_the_expected_markers_are_every_partition_of_each_change_topic(count: int) -> None:
    """Not the by-customer count: with fewer change partitions nothing would ever fire,
    with more the extra partitions' markers would be ignored (decided before they are read)."""
    counts = {SOURCES["qms"]: count, SOURCES["crm"]: 2, WATERMARKS: 1}
    marks = expected_watermarks(counts, CHANGES)
    assert marks.expected == {("qms", p) for p in range(count)} | {("crm", 0), ("crm", 1)}
    assert marks.watermark_ms == 0  # nothing seen yet: hold


def test_a_missing_change_topic_is_refused_naming_it() -> None:
    with pytest.raises(TopicLayoutError, match=rf"topic {SOURCES['crm']} does not exist"):
        expected_watermarks({SOURCES["qms"]: 6, WATERMARKS: 1}, CHANGES)
