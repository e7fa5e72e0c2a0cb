"""A worker restarted after an outage catches up its backlog: every trigger arrives once.

The worker is stopped cleanly, ten minutes of CDC output (changes and one watermark per
source per second) accumulate, and a new worker under the same app id starts on it.
The backlog is produced in seconds rather than waited for: what matters is its volume
when the worker starts, not the wall time that passed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.test_streams import test_processor
from tests.test_streams.backlog_helpers import produce_backlog, publish_watermark_at
from tests.test_streams.test_processor import (
    DELAY_S,
    PARTITIONS,
    Worker,
    World,
    _all_triggers,
    _heartbeats,
    _replay,
    _triggers,
)

pytestmark = pytest.mark.integration

# The fixtures of the processor tests: one test's topics and fake CDC source.
new_world, world = test_processor.new_world, test_processor.world

OUTAGE_S = 600
QUOTES_PER_S = 20


def test_a_worker_restarted_after_ten_minutes_down_sends_every_trigger_once(
    world: World, tmp_path: Path
) -> None:
    # The first worker runs "before the outage": its watermark (the CDC's, by hand) stops
    # where the backlog's commit times begin, so the backlog is news, not late data.
    outage_start = time.time() - OUTAGE_S
    world.send_customer(1, at_s=outage_start - 200)
    world.send_quote(11, 1, "QUOTED", updated_s=outage_start - DELAY_S - 30, op="c")
    publish_watermark_at(world, int(outage_start * 1000))
    log = tmp_path / "worker.log"
    first = Worker(world, log)
    try:
        before = _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=90)
        assert [t["quote_id"] for t in before] == [11], first.output()
    finally:
        first.stop()
    world.watermark_paused = True  # until the backlog is written: it carries its watermarks
    stop = threading.Event()
    beats = _heartbeats(world, stop)
    try:
        backlog = produce_backlog(
            world, start_s=outage_start, seconds=OUTAGE_S,
            customers=range(100, 2100), quotes_per_s=QUOTES_PER_S, partitions=PARTITIONS,
            delay_s=DELAY_S,
        )  # fmt: skip
        expected, _ = _replay(world, tmp_path)
        want = Counter(quote_id for _, quote_id, _ in expected)
        assert len(want) > 200 and backlog.watermarks == 2 * OUTAGE_S
        world.watermark_paused = False
        second = Worker(world, log)
        try:
            _triggers(world, until=lambda rs: len(rs) >= len(want), timeout_s=150)
            time.sleep(3)  # nothing more comes
            got = Counter(t["quote_id"] for t in _all_triggers(world))
            assert got == want, (
                f"missing {len(want - got)}, twice {sum((got - want).values())}; "
                + second.output()
            )  # fmt: skip
            assert second.process.poll() is None, second.output()
        finally:
            second.stop()
    finally:
        stop.set()
        beats.join(5)
