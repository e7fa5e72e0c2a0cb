"""The processor's check of the topics it reads, from the partition counts the broker reports."""

from __future__ import annotations

import pytest

from streams.errors import TopicLayoutError
from streams.layout import check_watermark_topic

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
