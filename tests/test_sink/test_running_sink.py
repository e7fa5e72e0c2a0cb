"""The running sink's failure policy on the real stack: retry budget, circuit breaker,
rate limit and ``ambiguous = "resend"``.

The classes have unit tests; these check that the sink as it runs honours them,
seen from the ESP's side: the sandbox logs every request it received, with its
arrival time and what it answered (``world.client.requests()``). Bounds are
derived from the sink's settings, not tuned to a run. Retry and breaker tests
use Customer.io, which deduplicates, so a 5xx there is unambiguously "retry";
the resend policy test uses SendGrid, which cannot deduplicate.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.sink.ratelimit import RateLimiter
from tests.test_sink.triggers import make_trigger
from tests.test_sink.world import SinkWorld, sink_world, wait_for

pytestmark = pytest.mark.integration

Trigger = dict[str, Any]


def settled(world: SinkWorld, triggers: list[Trigger]) -> dict[str, str]:
    """Wait until each trigger's outcome is in the ledger and its receipt committed; its
    state (trigger id -> sent, failed, ambiguous...)."""

    def done() -> bool:
        entries = world.ledger(triggers)
        return len(entries) == len(triggers) and all(
            e.state != "pending" and e.receipt_at is not None for e in entries.values())

    wait_for(f"{len(triggers)} outcomes, receipted", done, timeout_s=90)
    return {t: e.state for t, e in world.ledger(triggers).items()}


def only_receipts(world: SinkWorld) -> dict[str, dict[str, Any]]:
    """The receipts topic read to its end: trigger id -> its one receipt (asserted)."""
    receipts = world.receipts_to_end()
    by_trigger = {r["trigger_id"]: r for r in receipts}
    assert len(by_trigger) == len(receipts), "a trigger has more than one receipt"
    return by_trigger


@pytest.fixture
def triggers() -> list[Trigger]:
    return [make_trigger() for _ in range(6)]


# --- (a) retry budget -------------------------------------------------------------------------


@pytest.fixture
def budget_world(stack: object) -> Iterator[SinkWorld]:
    # The breaker stays out of it (a threshold no run reaches): the budget alone decides.
    with sink_world("customerio", retry_budget_s=1.5, breaker_failures=10_000) as world:
        yield world


def test_a_spent_retry_budget_ends_in_failed_receipts_and_dead_letters_and_nothing_else(
    budget_world: SinkWorld, triggers: list[Trigger]
) -> None:
    world, cfg = budget_world, budget_world.settings.sink
    world.client.faults(down_for_s=600)  # 503 from a load balancer with no backend
    world.produce(triggers)
    world.start()
    assert set(settled(world, triggers).values()) == {"failed"}
    (stats,) = world.stop_all()
    assert (stats.failed, stats.sent, stats.rejected, stats.ambiguous) == (6, 0, 0, 0)
    ids = {t["trigger_id"] for t in triggers}

    receipts = only_receipts(world)
    assert set(receipts) == ids
    for receipt in receipts.values():
        assert receipt["status"] == "FAILED" and receipt["http_status"] == 503
        assert str(receipt["error"]).startswith("gave up after")
        # It kept trying for the whole budget (less the ms the receipt's times round off),
        # and stopped within one pause and one request of its end.
        spent_s = (receipt["completed_at"] - receipt["first_attempt_at"]).total_seconds()
        assert cfg.retry_budget_s - 0.01 <= spent_s <= (
            cfg.retry_budget_s + cfg.retry_max_s + cfg.connect_timeout_s + cfg.read_timeout_s)
        assert receipt["attempts"] >= 2

    letters = world.dead_letters_to_end()
    about = {world.serde.decode("abandonment_trigger", d["value"],
                                topic=world.topics.triggers)["trigger_id"]: d
             for d in letters}  # fmt: skip
    assert len(about) == len(letters) == 6 and set(about) == ids
    for trigger_id, letter in about.items():
        assert letter["error_type"] == "EspFailed" and letter["stage"] == "esp-sink"
        assert letter["attempts"] == receipts[trigger_id]["attempts"]

    # At the ESP: every request was one it refused (503), none went out.
    seen = world.requests_for(triggers)
    assert all(c["delivered"] == c["attempts"] == 0 for c in seen.values())
    assert {t: c["received"] for t, c in seen.items()} == {
        t: receipts[t]["attempts"] for t in ids}
    assert all(c["faulted"] == c["received"] for c in seen.values())
    assert world.client.stats()["messages"] == 0


# --- (b) circuit breaker ----------------------------------------------------------------------


def test_while_the_circuit_is_open_only_one_probe_per_cooldown_reaches_the_esp(
    stack: object,
) -> None:
    down_s = 5.0
    with sink_world("customerio", breaker_failures=3, breaker_cooldown_s=0.5,
                    concurrency=6) as world:  # fmt: skip
        cfg = world.settings.sink
        triggers = world.produce(make_trigger() for _ in range(30))
        world.client.faults(down_for_s=600)  # 503s until cleared
        world.start()
        wait_for("the first refused request",
                 lambda: world.client.stats()["providers"].get("customerio", {}).get(
                     "faulted", 0) > 0)  # fmt: skip
        time.sleep(down_s)
        world.client.clear_faults()
        world.wait_delivered(triggers)
        refused = sorted(r["received_at"] for r in world.client.requests() if r["fault"] == "down")
        # Requests let through while the circuit was closed: the failures that opened it
        # plus at most one in flight per other sender. Every later one is a probe.
        before_open = cfg.breaker_failures + cfg.concurrency - 1
        probes = refused[before_open:]
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(probes)]
        assert len(gaps) >= 2, f"too few probes to judge: {refused}"
        # One probe a cooldown: the next leaves at least cooldown_s after the last one's
        # answer (a 10 ms allowance for the two clocks the sandbox and sink read).
        assert min(gaps) >= cfg.breaker_cooldown_s - 0.01, gaps
        span = refused[-1] - refused[0]
        assert len(refused) <= before_open + span / cfg.breaker_cooldown_s + 1
        # Nothing lost or sent twice: each trigger accepted once, after its refusals.
        seen = world.requests_for(triggers)
        assert all(c["attempts"] == 1 and c["received"] == c["faulted"] + 1
                   for c in seen.values())  # fmt: skip
        assert {r["status"] for r in world.receipts(len(triggers))} == {"SENT"}


# --- (c) rate limit ---------------------------------------------------------------------------


#: How much sooner a request may reach the sandbox, relative to others, than its rate
#: token was granted (thread scheduling on a busy two-core CI machine).
JITTER_S = 0.25


def most_in_any_window(times: list[float], window_s: float) -> int:
    """The most timestamps that fall in any half-open window [t, t + window_s)."""
    times, most, first = sorted(times), 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.unit
def test_most_in_any_window() -> None:
    assert most_in_any_window([], 1.0) == 0
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([3.0, 0.0, 2.0, 1.0], 1.0) == 1


def test_the_rate_limit_bounds_the_requests_the_esp_receives_in_any_second(stack: object) -> None:
    rate = 20.0
    count = 70  # unthrottled, 16 senders send these in well under a second
    with sink_world("customerio", rate_limit_per_s=rate) as world:
        triggers = world.produce(make_trigger() for _ in range(count))
        world.start()
        world.wait_delivered(triggers)
        times = [r["received_at"] for r in world.client.requests()]
        assert len(times) == count
        # A token bucket of `rate` per second holding `burst` grants at most
        # burst + rate * w sends in any w seconds. Sends granted up to JITTER_S apart can
        # arrive closer together (sender threads and the sandbox's share one loaded
        # machine), so a 1 s window at the sandbox may hold what was granted in
        # 1 s + JITTER_S. A correctness bound, not a speed claim: unthrottled, all
        # `count` arrive within one second.
        burst = RateLimiter(rate).burst
        bound = int(burst + rate * (1.0 + JITTER_S))
        assert bound < count
        assert most_in_any_window(times, 1.0) <= bound


# --- (d) ambiguous = "resend" -----------------------------------------------------------------


def test_ambiguous_resend_sends_a_timed_out_request_again_risking_a_double_email(
    stack: object, triggers: list[Trigger]
) -> None:
    """``sink.ambiguous = "resend"`` with a provider that cannot deduplicate: a read timeout
    (the ESP accepted the request, its answer came too late) is sent again and ends SENT.
    The ESP then has the e-mail twice: the policy trades a possible double e-mail for
    never holding a trigger for a person. This test pins that risk down."""
    with sink_world("sendgrid", ambiguous="resend") as world:
        world.client.faults(timeouts={"count": 2, "delay_s": 4})  # > read_timeout_s (2 s)
        world.produce(triggers)
        world.start()
        assert set(settled(world, triggers).values()) == {"sent"}
        world.stop_all()
        late = [r["trigger_ids"][0] for r in world.client.requests() if r["fault"] == "timeout"]
        assert len(late) == 2 and len(set(late)) == 2
        receipts = only_receipts(world)
        seen = world.requests_for(triggers)
        for trigger in triggers:
            trigger_id = trigger["trigger_id"]
            again = trigger_id in late
            assert receipts[trigger_id]["status"] == "SENT"
            assert receipts[trigger_id]["attempts"] == (2 if again else 1)
            # The resend reached the ESP, which has no dedupe: a second e-mail.
            assert seen[trigger_id]["received"] == seen[trigger_id]["delivered"] == (
                2 if again else 1)
        assert world.client.stats()["triggers_delivered_more_than_once"] == 2
