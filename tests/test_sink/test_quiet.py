"""Quiet hours and the maximum age, judged by the sink just before it sends (issue 15 item 5).

Real Kafka, the real ops ledger, the ESP sandbox over HTTP. The quiet window is
put around the current wall time (clock times with seconds, in UTC), so it ends
a few seconds into the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.test_sink.test_delivery import ledger_states, statuses
from tests.test_sink.triggers import make_trigger
from tests.test_sink.world import SinkWorld, sink_world, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def world(stack: object) -> Iterator[SinkWorld]:
    with sink_world("customerio") as w:
        yield w


def window_around_now(ends_in_s: float) -> tuple[dict[str, str], float]:
    """A quiet window (UTC clock times) that began a minute ago and ends ``ends_in_s`` from
    now, whole seconds; and when it ends, as epoch seconds."""
    now = datetime.now(UTC)
    end = (now + timedelta(seconds=ends_in_s)).replace(microsecond=0) + timedelta(seconds=1)
    start = now - timedelta(minutes=1)
    return {"start": start.strftime("%H:%M:%S"), "end": end.strftime("%H:%M:%S")}, end.timestamp()


def test_a_trigger_inside_quiet_hours_is_held_then_sent_once(world: SinkWorld) -> None:
    window, ends_at = window_around_now(12)
    quiet = make_trigger(timezone="UTC", quiet_hours=window)
    others = [make_trigger(timezone="UTC") for _ in range(3)]  # no window: not held back
    world.produce([quiet, *others])
    world.start()
    world.wait_delivered(others, timeout_s=ends_at - time.time() - 2)
    assert time.time() < ends_at - 1, "the sink was too slow to tell anything"
    assert world.delivered([quiet]) == {quiet["trigger_id"]: 0}
    wait_for("the held trigger", lambda: world.delivered([quiet])[quiet["trigger_id"]] >= 1,
             timeout_s=ends_at - time.time() + 30)  # fmt: skip
    assert time.time() >= ends_at
    receipts = world.receipts(4)
    assert statuses(receipts) == {t["trigger_id"]: "SENT" for t in [quiet, *others]}
    time.sleep(1.0)  # a second send would show by now
    assert world.delivered([quiet, *others]) == {t["trigger_id"]: 1 for t in [quiet, *others]}
    (stats,) = world.stop_all()
    assert stats.held == 1 and stats.sent == 4


def test_a_held_trigger_is_not_committed_past_and_survives_a_restart(world: SinkWorld) -> None:
    window, ends_at = window_around_now(15)
    quiet = make_trigger(timezone="UTC", quiet_hours=window)
    later = make_trigger(timezone="UTC")  # another customer's, after it in the same partition
    world.produce([quiet, later])
    world.start()
    world.wait_delivered([later], timeout_s=ends_at - time.time() - 5)
    world.stop_all()  # stopped while it is held: its offset must not have been committed
    assert world.delivered([quiet]) == {quiet["trigger_id"]: 0}
    world.start()
    wait_for("the held trigger after a restart",
             lambda: world.delivered([quiet])[quiet["trigger_id"]] >= 1,
             timeout_s=ends_at - time.time() + 30)  # fmt: skip
    assert time.time() >= ends_at
    time.sleep(1.0)
    assert world.delivered([quiet, later]) == {quiet["trigger_id"]: 1, later["trigger_id"]: 1}


def test_a_trigger_older_than_the_maximum_age_expires_unsent(world: SinkWorld) -> None:
    fired = datetime.now(UTC) - timedelta(hours=25)
    old = make_trigger(fired_at=fired)
    fresh = make_trigger()
    world.produce([old, fresh])
    world.start()
    world.wait_delivered([fresh])
    receipts = world.receipts(2)
    assert statuses(receipts) == {old["trigger_id"]: "EXPIRED", fresh["trigger_id"]: "SENT"}
    expired = next(r for r in receipts if r["status"] == "EXPIRED")
    assert expired["attempts"] == 0 and "max_trigger_age" in (expired["error"] or "")
    assert world.delivered([old]) == {old["trigger_id"]: 0}
    assert ledger_states(world, [old]) == {old["trigger_id"]: "expired"}
    (stats,) = world.stop_all()
    assert stats.expired == 1
    # Read again (a replay from the start): the ledger says expired, still never sent.
    replay = world.with_sink(group_id=world.settings.sink.group_id + "-replay",
                             max_trigger_age="30h")  # fmt: skip
    replay.start()
    wait_for("the replay's receipts", lambda: len(world.receipts(4, timeout_s=2)) >= 4)
    replay.stop_all()
    assert world.delivered([old, fresh]) == {old["trigger_id"]: 0, fresh["trigger_id"]: 1}


def test_held_triggers_do_not_stop_the_reading_of_others(stack: object) -> None:
    # More held triggers than sink.max_in_flight: the others behind them still go out.
    with sink_world("customerio", max_in_flight=2, rate_limit_per_s=50) as world:
        window, ends_at = window_around_now(15)
        quiet = [make_trigger(timezone="UTC", quiet_hours=window) for _ in range(4)]
        others = [make_trigger(timezone="UTC") for _ in range(4)]
        world.produce([*quiet, *others])
        world.start()
        world.wait_delivered(others, timeout_s=ends_at - time.time() - 3)
        assert world.delivered(quiet) == {t["trigger_id"]: 0 for t in quiet}
        wait_for("the held triggers", lambda: all(world.delivered(quiet).values()),
                 timeout_s=ends_at - time.time() + 30)  # fmt: skip
        assert time.time() >= ends_at
        time.sleep(1.0)
        assert world.delivered([*quiet, *others]) == {
            t["trigger_id"]: 1 for t in [*quiet, *others]}
        (stats,) = world.stop_all()
        assert stats.held == 4 and stats.sent == 8


def test_a_replay_into_the_sandbox_is_not_judged_by_the_wall_clock(world: SinkWorld) -> None:
    # A replay's fired_at is event time (last week): a sandbox sink shows it, not expires it.
    window, _ = window_around_now(60)
    replayed = make_trigger(replay=True, fired_at=datetime.now(UTC) - timedelta(days=7),
                            timezone="UTC", quiet_hours=window)  # fmt: skip
    world.produce([replayed])
    world.start()
    world.wait_delivered([replayed], timeout_s=30)
    assert statuses(world.receipts(1)) == {replayed["trigger_id"]: "SENT"}
