"""Which source partitions a rebalance takes from this worker (pure)."""

from __future__ import annotations

import pytest
from faust.types import TP

from streams.partition_loss import lost_partitions, source_partitions

pytestmark = pytest.mark.unit

SOURCES = {"app-customer-state-changelog": "app-by-customer",
           "app-watermark-markers-changelog": "app-by-customer"}  # fmt: skip


def test_a_partition_assigned_before_and_not_now_is_lost_even_if_faust_counts_none() -> None:
    assert lost_partitions({0, 1, 2}, {0, 2}, set()) == {1}


def test_partitions_kept_through_the_rebalance_are_not_lost() -> None:
    # faust's own count may name a partition that is assigned again at once (eager
    # rebalance): its transaction and its files are still this worker's.
    assert lost_partitions({0, 1}, {0, 1}, {0, 1}) == set()
    assert lost_partitions(set(), {0, 1}, set()) == set()


def test_only_the_tables_source_topic_counts_by_partition_number() -> None:
    tps = {TP("app-by-customer", 1), TP("app-customer-state-changelog", 3),
           TP("app-__assignor-__leader", 0), TP("qms.public.quotes", 2)}  # fmt: skip
    assert source_partitions(tps, SOURCES) == {1}
