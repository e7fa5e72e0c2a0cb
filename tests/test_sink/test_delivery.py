"""The sink end to end: real Kafka, the real ops PostgreSQL, the ESP sandbox over HTTP.

In every scenario the sandbox is the witness: each trigger must be accepted as a
new message exactly once (``delivered == 1``), whatever the ESP or the sink did.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sink.ledger import Ledger
from tests.test_sink.triggers import make_trigger
from tests.test_sink.world import SinkWorld, sink_world, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def world(stack: object) -> Iterator[SinkWorld]:
    with sink_world("customerio") as w:
        yield w


def statuses(receipts: list[dict[str, object]]) -> dict[str, str]:
    return {str(r["trigger_id"]): str(r["status"]) for r in receipts}


def ledger_states(world: SinkWorld, triggers: list[dict[str, object]]) -> dict[str, str]:
    with Ledger(world.settings.postgres.ops_conninfo()) as ledger:
        return {e.trigger_id: e.state for e in ledger.entries(t["trigger_id"] for t in triggers)}


@pytest.mark.parametrize("provider", ["sendgrid", "braze", "customerio", "webhook"])
def test_each_provider_delivers_every_trigger_once(stack: object, provider: str) -> None:
    with sink_world(provider) as world:
        # Customers with two and three triggers: their lanes keep them in order.
        triggers = [make_trigger() for _ in range(10)]
        triggers += [make_trigger(customer_id=triggers[0]["customer_id"]) for _ in range(2)]
        triggers += [make_trigger(customer_id=triggers[1]["customer_id"])]
        world.produce(triggers)
        world.start()
        world.wait_delivered(triggers)
        receipts = world.receipts(len(triggers))
        wait_for("every outcome recorded",
                 lambda: set(ledger_states(world, triggers).values()) == {"sent"})
        assert statuses(receipts) == {t["trigger_id"]: "SENT" for t in triggers}
        assert all(r["provider"] == provider and r["attempts"] == 1 for r in receipts)
        by_id = {t["trigger_id"]: t for t in triggers}
        for r in receipts:  # v2: who and what for dashboards, and the customer's wait
            trigger = by_id[r["trigger_id"]]
            assert (r["customer_id"], r["quote_id"]) == (trigger["customer_id"],
                                                         trigger["quote_id"])  # fmt: skip
            assert r["request_id"] and r["latency_ms"] >= 0
        if provider in ("sendgrid", "braze"):  # the ESP's message id reaches the receipt
            assert all(r["esp_message_id"] for r in receipts)
        assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
        # Per-customer order: the sandbox received each customer's triggers as produced.
        messages = world.client.messages(provider=provider)
        for customer in (triggers[0]["customer_id"], triggers[1]["customer_id"]):
            produced = [t["trigger_id"] for t in triggers if t["customer_id"] == customer]
            got = [m["trigger_id"] for m in sorted(messages, key=lambda m: m["received_at"])
                   if m["trigger_id"] in produced]  # fmt: skip
            assert got == produced
        world.stop_all()


def test_throttled_by_429_with_retry_after(world: SinkWorld) -> None:
    world.client.faults(rate_limit={"count": 6, "retry_after_s": 1})
    triggers = world.produce(make_trigger() for _ in range(20))
    world.start()
    world.wait_delivered(triggers)
    receipts = world.receipts(20)
    assert set(statuses(receipts).values()) == {"SENT"}
    assert sum(r["attempts"] for r in receipts) == 20 + 6  # each 429 retried once, no more
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
    assert world.client.stats()["rejected"].get("429") == 6


def test_a_burst_of_5xx_is_retried(world: SinkWorld) -> None:
    world.client.faults(status_burst={"status": 503, "count": 25})
    triggers = world.produce(make_trigger() for _ in range(15))
    world.start()
    world.wait_delivered(triggers)
    assert set(statuses(world.receipts(15)).values()) == {"SENT"}
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}


def test_timeouts_are_resent_with_the_dedupe_id(world: SinkWorld) -> None:
    # The sandbox accepts these and answers after the sink's 2 s read timeout.
    world.client.faults(timeouts={"count": 3, "delay_s": 4})
    triggers = world.produce(make_trigger() for _ in range(8))
    world.start()
    world.wait_delivered(triggers)
    receipts = world.receipts(8)
    assert set(statuses(receipts).values()) == {"SENT"}
    assert sum(r["attempts"] for r in receipts) >= 8 + 3
    counts = world.client.triggers()
    assert sum(c["deduplicated"] for c in counts.values()) >= 3  # resends the ESP dropped
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}


def test_timeouts_without_a_dedupe_id_are_held_as_ambiguous(stack: object) -> None:
    with sink_world("sendgrid") as world:
        world.client.faults(timeouts={"count": 2, "delay_s": 4})
        triggers = world.produce(make_trigger() for _ in range(6))
        world.start()
        receipts = world.receipts(6)
        got = statuses(receipts)
        held = sorted(t for t, s in got.items() if s == "UNKNOWN")
        assert len(held) == 2 and sorted(got.values()).count("SENT") == 4
        # Held, not resent: the sandbox has each of them once (it did accept them).
        assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
        states = ledger_states(world, triggers)
        assert sorted(t for t, s in states.items() if s == "ambiguous") == held
        with Ledger(world.settings.postgres.ops_conninfo()) as ledger:
            listed = {e.trigger_id for e in ledger.open_entries("ambiguous", 10_000)}
            assert set(held) <= listed
            for trigger_id in held:  # a person checked the ESP's activity feed
                ledger.resolve(trigger_id, "sent", "test")
        assert set(ledger_states(world, triggers).values()) == {"sent"}


def test_the_esp_down_for_30_s_loses_and_skips_nothing(world: SinkWorld) -> None:
    first = world.produce(make_trigger() for _ in range(5))
    world.start()
    world.wait_delivered(first)
    world.sandbox.stop()  # connections refused from now on
    second = world.produce(make_trigger() for _ in range(20))
    time.sleep(30)
    assert world.client.url  # the sandbox keeps its history across the outage
    world.sandbox.start()
    world.wait_delivered(second, timeout_s=60)
    everything = first + second
    assert world.delivered(everything) == {t["trigger_id"]: 1 for t in everything}
    assert set(statuses(world.receipts(25)).values()) == {"SENT"}
    (stats,) = world.stop_all()
    assert stats.sent == 25 and stats.failed == 0


def test_a_permanent_error_goes_to_the_dead_letter_topic_and_the_rest_flow(
    stack: object,
) -> None:
    with sink_world("sendgrid") as world:
        bad = make_trigger(template_id="not-a-dynamic-template")  # SendGrid answers 400
        good = [make_trigger() for _ in range(5)]
        world.produce([good[0], bad, *good[1:]])
        world.produce_raw(b"1", b"\x00 not avro at all")
        world.start()
        world.wait_delivered(good)
        receipts = statuses(world.receipts(6))
        assert receipts[bad["trigger_id"]] == "REJECTED"
        assert [receipts[t["trigger_id"]] for t in good] == ["SENT"] * 5
        letters = world.dead_letters(2)
        rejected = next(d for d in letters if d["error_type"] == "EspRejected")
        assert rejected["stage"] == "esp-sink" and rejected["attempts"] == 1
        message = rejected["error_message"]
        assert "HTTP 400" in message and "template_id" in message
        assert bad["email"] not in rejected["error_message"]
        assert rejected["value"] and rejected["source_topic"] == world.topics.triggers
        assert any(d["error_type"] != "EspRejected" for d in letters)  # the undecodable one
        assert world.delivered([bad]) == {bad["trigger_id"]: 0}
        assert ledger_states(world, [bad]) == {bad["trigger_id"]: "rejected"}


def test_replaying_the_whole_topic_sends_nothing_twice(world: SinkWorld) -> None:
    triggers = world.produce(make_trigger() for _ in range(20))
    world.start()
    world.wait_delivered(triggers)
    world.stop_all()
    # A replay: a new consumer group reads the topic from the beginning.
    replay = world.with_sink(group_id=world.settings.sink.group_id + "-replay")
    replay.start()
    receipts = world.receipts(40)
    assert sorted(r["status"] for r in receipts) == ["DUPLICATE"] * 20 + ["SENT"] * 20
    assert all(r["latency_ms"] is None for r in receipts if r["status"] == "DUPLICATE")
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
    replay.stop_all()


def test_replay_flagged_triggers_are_dropped_by_a_production_sink(world: SinkWorld) -> None:
    production = world.with_sink(accept_replays=False)
    replayed = world.produce([make_trigger(replay=True) for _ in range(3)])
    live = world.produce([make_trigger()])
    production.start()
    production.wait_delivered(live)
    (stats,) = production.stop_all()
    assert stats.replays_dropped == 3
    assert world.delivered(replayed) == {t["trigger_id"]: 0 for t in replayed}


def kill_9_mid_batch(world: SinkWorld, log: Path) -> list[dict[str, object]]:
    """150 triggers; a `quoteflow sink` process killed -9 with sends in flight; a new sink."""
    world.client.faults(latency_ms=150)
    triggers = world.produce(make_trigger() for _ in range(150))
    sink = world.spawn(log)
    try:
        wait_for("some deliveries", lambda: sum(world.delivered(triggers).values()) >= 20)
        sink.stop(signal.SIGKILL)
    finally:
        sink.stop(signal.SIGKILL)
    assert sum(world.delivered(triggers).values()) < len(triggers), "killed too late"
    world.start()
    return triggers


def test_kill_9_mid_batch_then_restart_delivers_each_once(world: SinkWorld,
                                                          tmp_path: Path) -> None:  # fmt: skip
    triggers = kill_9_mid_batch(world, tmp_path / "sink-1.log")
    world.wait_delivered(triggers)
    wait_for("every outcome recorded",
             lambda: set(ledger_states(world, triggers).values()) == {"sent"})
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}


def test_kill_9_without_a_dedupe_id_never_sends_twice(stack: object, tmp_path: Path) -> None:
    with sink_world("sendgrid") as world:
        triggers = kill_9_mid_batch(world, tmp_path / "sink-1.log")
        wait_for("every trigger decided", lambda: set(
            ledger_states(world, triggers).values()) <= {"sent", "ambiguous"} and len(
            ledger_states(world, triggers)) == len(triggers))  # fmt: skip
        delivered, states = world.delivered(triggers), ledger_states(world, triggers)
        assert max(delivered.values()) == 1  # never twice
        # What the kill interrupted is held, not guessed: every undelivered one is ambiguous.
        assert all(states[t] == "ambiguous" for t, n in delivered.items() if n == 0)
        # Claims are made as requests leave, not as triggers are read, and outcomes recorded
        # as they come: what a kill can leave unknown is the requests in flight plus the
        # answers of one dispatcher turn, each at most `concurrency`.
        held = sum(1 for s in states.values() if s == "ambiguous")
        assert 0 < held <= 2 * world.settings.sink.concurrency
        assert all(n == 1 for t, n in delivered.items() if states[t] == "sent")
