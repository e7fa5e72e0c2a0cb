"""A worker restarted after an outage catches up its backlog: every trigger arrives once.

The worker is stopped cleanly, ten minutes of CDC output (changes and one watermark per
source per second) accumulate, and a new worker under the same app id starts on it.
The backlog is produced in seconds rather than waited for: what matters is its volume
when the worker starts, not the wall time that passed. The layout and the worker's settings
are production's: 6 partitions everywhere (the catalogue's default), the default tick, commit
interval, session timeout and log level.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_streams import test_processor
from tests.test_streams.backlog_helpers import produce_backlog, publish_watermark_at
from tests.test_streams.test_processor import (
    DELAY_S,
    TOPICS,
    Worker,
    World,
    _all_triggers,
    _heartbeats,
    _replay,
    _triggers,
)

pytestmark = pytest.mark.integration

new_world = test_processor.new_world  # the fixture: a test's topics and fake CDC source

OUTAGE_S = 600
QUOTES_PER_S = 20
#: Production's layout: the catalogue's partition count (``topics.partitions`` unset).
PARTITIONS = 6
#: The worker's settings as shipped (the other processor tests tick and commit faster).
PRODUCTION = {
    "QUOTEFLOW_STREAMS__TICK_INTERVAL_S": "0.25", "QUOTEFLOW_STREAMS__COMMIT_INTERVAL_S": "0.5",
    "QUOTEFLOW_STREAMS__SESSION_TIMEOUT_S": "30", "QUOTEFLOW_LOG__LEVEL": "INFO",
}  # fmt: skip


def test_a_worker_restarted_after_ten_minutes_down_sends_every_trigger_once(
    new_world: Callable[..., World], tmp_path: Path
) -> None:
    world = new_world({name: PARTITIONS if n > 1 else n for name, n in TOPICS.items()},
                      partitions=PARTITIONS)  # fmt: skip
    # The first worker runs "before the outage": its watermark (the CDC's, by hand) stops
    # where the backlog's commit times begin, so the backlog is news, not late data.
    outage_start = time.time() - OUTAGE_S
    world.send_customer(1, at_s=outage_start - 200)
    world.send_quote(11, 1, "QUOTED", updated_s=outage_start - DELAY_S - 30, op="c")
    publish_watermark_at(world, int(outage_start * 1000))
    log = tmp_path / "worker.log"
    first = Worker(world, log, **PRODUCTION)
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
        second = Worker(world, log, **PRODUCTION)
        try:
            _triggers(world, until=lambda rs: len(rs) >= len(want), timeout_s=150)
            # Everything the worker will ever send for its input: read to the end once it
            # has committed all of it.
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
