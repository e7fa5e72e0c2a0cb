"""The sink end to end: real Kafka, the real ops PostgreSQL, the ESP sandbox over HTTP.

In every scenario the sandbox is the witness: each trigger must be accepted as a
new message exactly once (``delivered == 1``), whatever the ESP or the sink did.
For Customer.io and webhooks that count alone would hold even if the sink re-sent
everything (the ESP drops a repeated dedupe id), so the tests also count the
requests the sandbox *received* per trigger (``world.requests_for``): a resend
is allowed only where the outcome was unknown.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sink.ledger import Entry, Ledger
from quoteflow.logs import mask_email
from tests.helpers import committed_offsets
from tests.test_sink.triggers import make_trigger
from tests.test_sink.world import SinkWorld, sink_world, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def world(stack: object) -> Iterator[SinkWorld]:
    with sink_world("customerio") as w:
        yield w


def statuses(receipts: list[dict[str, object]]) -> dict[str, str]:
    return {str(r["trigger_id"]): str(r["status"]) for r in receipts}


def ledger_entries(world: SinkWorld, triggers: list[dict[str, object]]) -> dict[str, Entry]:
    return world.ledger(triggers)


def ledger_states(world: SinkWorld, triggers: list[dict[str, object]]) -> dict[str, str]:
    return {t: e.state for t, e in ledger_entries(world, triggers).items()}


TERMINAL = {"SENT", "REJECTED", "FAILED", "UNKNOWN", "EXPIRED"}


def receipts_by_trigger(receipts: list[dict[str, object]]) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for r in receipts:
        by.setdefault(str(r["trigger_id"]), []).append(str(r["status"]))
    return by


def received(world: SinkWorld, triggers: list[dict[str, object]]) -> dict[str, int]:
    """Per trigger: how many requests for it the sandbox received (accepted or not)."""
    return {t: c["received"] for t, c in world.requests_for(triggers).items()}


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
        assert received(world, triggers) == {t["trigger_id"]: 1 for t in triggers}
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
    # Each trigger was sent again only after a 429 (which the ESP did not act on).
    seen = world.requests_for(triggers)
    assert all(c["received"] == c["faulted"] + 1 and c["attempts"] == 1 for c in seen.values())


def test_a_burst_of_5xx_is_retried(world: SinkWorld) -> None:
    world.client.faults(status_burst={"status": 503, "count": 25})
    triggers = world.produce(make_trigger() for _ in range(15))
    world.start()
    world.wait_delivered(triggers)
    receipts = world.receipts(15)
    assert set(statuses(receipts).values()) == {"SENT"}
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
    # The burst happened: the ESP answered 25 requests with 503 (not acted on)...
    assert world.client.stats()["providers"]["customerio"]["faulted"] == 25
    seen = world.requests_for(triggers)
    assert sum(c["faulted"] for c in seen.values()) == 25
    # ...and each trigger was sent again only after a 503: accepted once, never resent
    # after it was accepted (the ESP's dedupe would have hidden that from `delivered`).
    assert all(c["received"] == c["faulted"] + 1 for c in seen.values())
    assert all(c["attempts"] == 1 and c["deduplicated"] == 0 for c in seen.values())
    assert sum(r["attempts"] for r in receipts) == 15 + 25


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
    # Resent only what timed out: one more request per timeout, no other.
    late = [r["trigger_ids"][0] for r in world.client.requests() if r["fault"] == "timeout"]
    assert len(late) == 3
    assert received(world, triggers) == {
        t["trigger_id"]: 1 + late.count(t["trigger_id"]) for t in triggers}


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
        assert received(world, triggers) == {t["trigger_id"]: 1 for t in triggers}
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
    world.receipts(5)  # the first five are receipted before the outage
    world.sandbox.stop()  # connections refused from now on
    second = world.produce(make_trigger() for _ in range(20))
    time.sleep(30)
    # Skipped nothing: 30 s of refused connections made no outcome for the second batch
    # (no FAILED, no REJECTED, no SENT without the ESP); all of them are still waiting.
    during = receipts_by_trigger(world.receipts_to_end())
    assert during == {t["trigger_id"]: ["SENT"] for t in first}
    world.sandbox.start()
    world.wait_delivered(second, timeout_s=60)
    everything = first + second
    assert world.delivered(everything) == {t["trigger_id"]: 1 for t in everything}
    # Refused connections never reach the ESP: each trigger arrived exactly once.
    assert received(world, everything) == {t["trigger_id"]: 1 for t in everything}
    assert set(statuses(world.receipts(25)).values()) == {"SENT"}
    (stats,) = world.stop_all()
    assert stats.sent == 25 and stats.failed == 0


def test_a_permanent_error_goes_to_the_dead_letter_topic_and_the_rest_flow(
    stack: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    with sink_world("sendgrid") as world:
        bad = make_trigger(template_id="not-a-dynamic-template")  # SendGrid answers 400
        # SendGrid answers 400 naming the address ("The to email address is invalid: ...").
        address = "zoe.pemberton@mail.invalid"
        refused = make_trigger(email=address)
        good = [make_trigger() for _ in range(5)]
        world.produce([good[0], bad, refused, *good[1:]])
        world.produce_raw(b"1", b"\x00 not avro at all")
        world.start()
        world.wait_delivered(good)
        receipts = world.receipts(7)
        got = statuses(receipts)
        assert got[bad["trigger_id"]] == got[refused["trigger_id"]] == "REJECTED"
        assert [got[t["trigger_id"]] for t in good] == ["SENT"] * 5
        letters = world.dead_letters(3)
        by_trigger = {d["error_message"]: d for d in letters if d["error_type"] == "EspRejected"}
        assert len(by_trigger) == 2
        for rejected in by_trigger.values():
            assert rejected["stage"] == "esp-sink" and rejected["attempts"] == 1
            assert rejected["value"] and rejected["source_topic"] == world.topics.triggers
        template = next(m for m in by_trigger if "template_id" in m)
        assert "HTTP 400" in template and bad["email"] not in template
        # The ESP echoed the address: the dead letter, the receipt and the logs carry it
        # masked, never in clear.
        masked = mask_email(address)
        assert masked != address
        [echoed] = [m for m in by_trigger if "is invalid" in m]
        assert "HTTP 400" in echoed and masked in echoed and address not in echoed
        [receipt] = [r for r in receipts if r["trigger_id"] == refused["trigger_id"]]
        assert masked in str(receipt["error"]) and address not in str(receipt["error"])
        logged = [r.getMessage() for r in caplog.records]
        assert any(masked in line for line in logged)
        assert not [line for line in logged if address in line]
        assert any(d["error_type"] != "EspRejected" for d in letters)  # the undecodable one
        assert world.delivered([bad, refused]) == {bad["trigger_id"]: 0,
                                                   refused["trigger_id"]: 0}  # fmt: skip
        assert received(world, [bad, refused]) == {bad["trigger_id"]: 1,
                                                   refused["trigger_id"]: 1}  # fmt: skip
        assert ledger_states(world, [bad, refused]) == {
            bad["trigger_id"]: "rejected", refused["trigger_id"]: "rejected"}


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
    # The replay sent nothing (Customer.io's dedupe would have hidden a resend).
    assert received(world, triggers) == {t["trigger_id"]: 1 for t in triggers}
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


def recorded_not_committed(world: SinkWorld, triggers: list[dict[str, object]]) -> int:
    """Triggers whose outcome is in the ledger while their offset is not committed: after a
    crash these are read again and are owed their receipt (none may be sent again)."""
    committed = committed_offsets(world.settings, world.settings.sink.group_id,
                                  world.topics.triggers)  # fmt: skip
    return sum(1 for e in ledger_entries(world, triggers).values()
               if e.state != "pending" and e.offset >= committed.get(e.partition, -1))


def kill_9_mid_batch(world: SinkWorld, log: Path
                     ) -> tuple[list[dict[str, object]], dict[str, str]]:  # fmt: skip
    """150 triggers; a `quoteflow sink` process killed -9 with sends in flight; a new sink.

    The kill leaves the three cases a restart must get right: triggers recorded and
    committed, recorded but not committed (read again: their receipts are owed, they
    must not be sent again), and claimed with requests in flight (pending). The killed
    sink commits every half second, so the second case is there to be seen. Returns the
    triggers and the ledger as the killed sink left it (trigger id -> state).
    """
    world.client.faults(latency_ms=150)
    triggers = world.produce(make_trigger() for _ in range(150))
    sink = world.with_sink(commit_interval_s=0.5).spawn(log)
    pid = sink.process.pid

    def frozen_mid_batch() -> bool:
        """Freeze the sink (SIGSTOP), let a commit already sent land, then judge the moment.

        Judging a running sink races its next commit: the state seen a moment before
        the kill may be gone at the kill (seen in CI: killed right after a commit).
        A frozen sink can neither send nor commit, so what is judged is what is killed.
        """
        if sum(world.delivered(triggers).values()) < 20:
            return False
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.3)
        if recorded_not_committed(world, triggers) >= 5:
            return True
        os.kill(pid, signal.SIGCONT)
        return False

    try:
        wait_for("deliveries, some committed, some not", frozen_mid_batch)
        sink.stop(signal.SIGKILL)
    finally:
        sink.stop(signal.SIGKILL)
    assert sum(world.delivered(triggers).values()) < len(triggers), "killed too late"
    assert recorded_not_committed(world, triggers) > 0, "killed right after a commit"
    at_kill = ledger_states(world, triggers)
    world.start()
    return triggers, at_kill


def one_terminal_receipt_each(world: SinkWorld, triggers: list[dict[str, object]]
                              ) -> dict[str, str]:  # fmt: skip
    """After the restart: stop once every trigger has a receipt, read the receipts topic to
    its end, and check each trigger has exactly one terminal receipt (any other receipt
    of it says DUPLICATE). Returns trigger id -> its terminal status."""
    ids = {str(t["trigger_id"]) for t in triggers}
    wait_for("a receipt for every trigger",
             lambda: set(receipts_by_trigger(world.receipts_to_end())) >= ids)
    world.stop_all()  # a clean stop commits what is left: nothing more can come
    by_trigger = receipts_by_trigger(world.receipts_to_end())
    assert set(by_trigger) == ids, "receipts missing or for triggers never produced"
    terminal = {t: [s for s in got if s in TERMINAL] for t, got in by_trigger.items()}
    twice = {t: got for t, got in terminal.items() if len(got) != 1}
    assert not twice, f"not exactly one terminal receipt: {twice}"
    others = {s for got in by_trigger.values() for s in got if s not in TERMINAL}
    assert others <= {"DUPLICATE"}
    return {t: got[0] for t, got in terminal.items()}


def test_kill_9_mid_batch_then_restart_delivers_each_once(world: SinkWorld,
                                                          tmp_path: Path) -> None:  # fmt: skip
    triggers, at_kill = kill_9_mid_batch(world, tmp_path / "sink-1.log")
    world.wait_delivered(triggers)
    wait_for("every outcome recorded",
             lambda: set(ledger_states(world, triggers).values()) == {"sent"})
    assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
    # Seen at the ESP: only a claim the killed sink left pending (outcome unknown) may be
    # sent again, once; what it had recorded, or never claimed, went out exactly once.
    seen = received(world, triggers)
    pending = {t for t, state in at_kill.items() if state == "pending"}
    assert {t: n for t, n in seen.items() if t not in pending} == {
        t["trigger_id"]: 1 for t in triggers if t["trigger_id"] not in pending}
    assert all(seen[t] <= 2 for t in pending)
    assert len(pending) <= 2 * world.settings.sink.concurrency
    assert one_terminal_receipt_each(world, triggers) == {
        t["trigger_id"]: "SENT" for t in triggers}


def test_kill_9_without_a_dedupe_id_never_sends_twice(stack: object, tmp_path: Path) -> None:
    with sink_world("sendgrid") as world:
        triggers, at_kill = kill_9_mid_batch(world, tmp_path / "sink-1.log")
        wait_for("every trigger decided", lambda: set(
            ledger_states(world, triggers).values()) <= {"sent", "ambiguous"} and len(
            ledger_states(world, triggers)) == len(triggers))  # fmt: skip
        delivered, states = world.delivered(triggers), ledger_states(world, triggers)
        assert max(delivered.values()) == 1  # never twice
        assert max(received(world, triggers).values()) == 1  # no second request either
        # What the kill interrupted is held, not guessed: every undelivered one is ambiguous.
        assert all(states[t] == "ambiguous" for t, n in delivered.items() if n == 0)
        # Claims are made as requests leave, not as triggers are read, and outcomes recorded
        # as they come: what a kill can leave unknown is the requests in flight plus the
        # answers of one dispatcher turn, each at most `concurrency`.
        held = sum(1 for s in states.values() if s == "ambiguous")
        assert 0 < held <= 2 * world.settings.sink.concurrency
        assert all(n == 1 for t, n in delivered.items() if states[t] == "sent")
        # Each trigger's one terminal receipt says what the ledger says.
        assert one_terminal_receipt_each(world, triggers) == {
            t: {"sent": "SENT", "ambiguous": "UNKNOWN"}[state] for t, state in states.items()}
        assert {t for t, s in states.items() if s == "ambiguous"} <= {
            t for t, s in at_kill.items() if s == "pending"}  # only what the kill left open
