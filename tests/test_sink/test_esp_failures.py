"""What an ESP's refusals and failures do to a running sink, end to end (issue 16, items 1-2).

A refused credential or a wrong endpoint is the operator's mistake, not the
message's: the sink stops at once (one line naming provider, endpoint and
status, a non-zero exit), leaves every trigger unsent and retryable, and a
restart with the mistake fixed delivers each of them once. A 5xx from a provider
that cannot deduplicate may have been sent: it is held as ambiguous, never
repeated; a provider that deduplicates gets it retried. The sandbox is the
witness: it counts every request it received, not only the accepted ones.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import SinkError
from connectors.sink.ledger import Ledger
from tests.test_sink.triggers import make_trigger
from tests.test_sink.world import SinkWorld, sink_world, wait_for

pytestmark = pytest.mark.integration

WRONG = "revoked-key-0123456789"


def ledger_states(world: SinkWorld, triggers: list[dict[str, Any]]) -> dict[str, str]:
    with Ledger(world.settings.postgres.ops_conninfo()) as ledger:
        return {e.trigger_id: e.state for e in ledger.entries(t["trigger_id"] for t in triggers)}


def statuses(receipts: list[dict[str, Any]]) -> dict[str, str]:
    return {str(r["trigger_id"]): str(r["status"]) for r in receipts}


@pytest.fixture
def sendgrid(stack: object) -> Iterator[SinkWorld]:
    with sink_world("sendgrid") as world:
        yield world


@pytest.mark.parametrize("provider", ["sendgrid", "customerio"])
def test_a_wrong_key_stops_the_sink_and_a_fixed_restart_delivers_each_once(
    stack: object, provider: str, tmp_path: Path
) -> None:
    with sink_world(provider) as world:
        triggers = world.produce(make_trigger() for _ in range(40))
        log = tmp_path / "sink-wrong-key.log"
        sink = world.with_sink(secret=WRONG).spawn(log)
        try:
            code = sink.process.wait(60)  # it must stop by itself, promptly
        except subprocess.TimeoutExpired:
            pytest.fail("the sink kept running with a refused key")
        finally:
            sink.stop()
        text = log.read_text(errors="replace")
        assert code == 2, text  # SinkConfigError: a setting the ESP refuses
        assert "Traceback" not in text and WRONG not in text
        lines = [line for line in text.splitlines() if "quoteflow: error:" in line]
        assert len(lines) == 1, text
        (line,) = lines
        assert provider in line and "HTTP 401" in line and world.sandbox.url in line, line
        stats = world.client.stats()
        refused = stats["rejected"].get("401", 0)
        # Stopped at the first refusals: at most the requests already on their way.
        assert 1 <= refused <= world.settings.sink.concurrency
        assert stats["received"] == refused and stats["accepted"] == 0
        # Nothing was given up on: no rejected/failed/ambiguous row, no dead letter.
        assert ledger_states(world, triggers) == {}
        assert world.dead_letters(1, timeout_s=5) == []
        assert world.receipts(1, timeout_s=3) == []

        world.start()  # the key fixed
        world.wait_delivered(triggers)
        wait_for("every outcome recorded",
                 lambda: set(ledger_states(world, triggers).values()) == {"sent"})
        receipts = world.receipts(len(triggers) + 1, timeout_s=10)
        assert sorted(statuses(receipts)) == sorted(t["trigger_id"] for t in triggers)
        assert len(receipts) == len(triggers)  # exactly one receipt each
        assert set(statuses(receipts).values()) == {"SENT"}
        after = world.client.stats()
        # Every trigger's request reached the ESP once after the fix, none twice.
        assert after["received"] == refused + len(triggers)
        assert after["accepted"] == len(triggers) and after["deduplicated"] == 0
        assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
        assert world.dead_letters(1, timeout_s=3) == []
        world.stop_all()


def test_a_wrong_endpoint_path_stops_the_sink(stack: object) -> None:
    with sink_world("braze") as world:
        triggers = world.produce(make_trigger() for _ in range(10))
        wrong = world.with_sink(base_url=world.sandbox.url + "/rest/v1")  # -> 404
        wrong.start()
        (thread, _stop, outcome) = wrong.threads[0]
        thread.join(60)
        assert not thread.is_alive(), "the sink kept running against a wrong endpoint"
        assert outcome and isinstance(outcome[0], SinkError), outcome
        message = str(outcome[0])
        assert "braze" in message and "HTTP 404" in message and "/rest/v1" in message
        assert "\n" not in message
        wrong.threads.clear()
        assert set(ledger_states(world, triggers).values()) == set()
        assert world.dead_letters(1, timeout_s=5) == []
        world.start()
        world.wait_delivered(triggers)
        assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
        world.stop_all()


def test_a_5xx_burst_without_dedupe_is_held_as_ambiguous_not_resent(
    sendgrid: SinkWorld,
) -> None:
    world = sendgrid
    first = world.produce(make_trigger() for _ in range(5))
    world.start()
    world.wait_delivered(first)
    wait_for("the first receipts", lambda: len(world.receipts(5, timeout_s=5)) == 5)
    before = world.client.stats()
    world.client.faults(status_burst={"status": 500, "count": 8})
    second = world.produce(make_trigger() for _ in range(20))
    everything = first + second
    wait_for("every trigger decided", lambda: len(ledger_states(world, everything)) == 25
             and "pending" not in ledger_states(world, everything).values())  # fmt: skip
    receipts = world.receipts(26, timeout_s=10)
    assert len(receipts) == 25
    got = statuses(receipts)
    held = sorted(t for t, s in got.items() if s == "UNKNOWN")
    assert len(held) == 8 and sorted(got.values()).count("SENT") == 17
    assert all(r["attempts"] == 1 and r["http_status"] == 500 for r in receipts
               if r["status"] == "UNKNOWN")  # fmt: skip
    states = ledger_states(world, everything)
    assert sorted(t for t, s in states.items() if s == "ambiguous") == held
    with Ledger(world.settings.postgres.ops_conninfo()) as ledger:
        listed = {e.trigger_id for e in ledger.open_entries("ambiguous", 10_000)}
    assert set(held) <= listed
    stats = world.client.stats()
    # The burst happened, and nothing was asked twice: one request per trigger in all.
    assert stats["rejected"].get("500") == 8
    assert stats["received"] - before["received"] == 20
    delivered = world.delivered(everything)
    assert {t: n for t, n in delivered.items() if t in held} == {t: 0 for t in held}
    assert all(n == 1 for t, n in delivered.items() if t not in held)
    assert world.dead_letters(1, timeout_s=3) == []
    (sink_stats,) = world.stop_all()
    assert sink_stats.ambiguous == 8 and sink_stats.sent == 17


def test_a_5xx_burst_without_dedupe_under_the_resend_policy_is_retried(
    stack: object,
) -> None:
    with sink_world("braze", ambiguous="resend") as world:
        world.client.faults(status_burst={"status": 503, "count": 6})
        triggers = world.produce(make_trigger() for _ in range(12))
        world.start()
        world.wait_delivered(triggers)
        receipts = world.receipts(12)
        assert set(statuses(receipts).values()) == {"SENT"}
        stats = world.client.stats()
        assert stats["rejected"].get("503") == 6 and stats["received"] == 12 + 6
        assert world.delivered(triggers) == {t["trigger_id"]: 1 for t in triggers}
        world.stop_all()


def test_a_5xx_burst_with_dedupe_is_retried_and_delivered_once(stack: object) -> None:
    with sink_world("customerio") as world:
        first = world.produce(make_trigger() for _ in range(5))
        world.start()
        world.wait_delivered(first)
        before = world.client.stats()
        world.client.faults(status_burst={"status": 500, "count": 8})
        second = world.produce(make_trigger() for _ in range(20))
        world.wait_delivered(second)
        everything = first + second
        wait_for("every outcome recorded",
                 lambda: set(ledger_states(world, everything).values()) == {"sent"})
        receipts = world.receipts(25)
        assert set(statuses(receipts).values()) == {"SENT"}
        assert sum(r["attempts"] for r in receipts) == 25 + 8  # each 500 retried once
        stats = world.client.stats()
        assert stats["rejected"].get("500") == 8
        assert stats["received"] - before["received"] == 20 + 8
        assert stats["deduplicated"] == 0  # no accepted request was repeated
        assert world.delivered(everything) == {t["trigger_id"]: 1 for t in everything}
        world.stop_all()


def probes_within(outage_s: float, cooldown_s: float, max_cooldown_s: float) -> int:
    """How many probes a breaker that opened at the outage's start sends during it: one
    after each cooldown, doubling from ``cooldown_s`` up to ``max_cooldown_s``."""
    at, wait, probes = 0.0, cooldown_s, 0
    while at + wait <= outage_s:
        at += wait
        probes += 1
        wait = min(2 * wait, max_cooldown_s)
    return probes


def test_an_outage_without_dedupe_makes_a_bounded_number_of_ambiguous_deliveries(
    stack: object,
) -> None:
    outage_s = 8.0
    with sink_world("sendgrid", breaker_cooldown_max_s=2.0) as world:
        cfg = world.settings.sink
        world.client.faults(down_for_s=outage_s)  # every request answered 503
        triggers = world.produce(make_trigger() for _ in range(60))
        world.start()
        wait_for("every trigger decided", lambda: len(ledger_states(world, triggers)) == 60
                 and "pending" not in ledger_states(world, triggers).values(),
                 timeout_s=90)  # fmt: skip
        states = ledger_states(world, triggers)
        held = [t for t, s in states.items() if s == "ambiguous"]
        assert set(states.values()) <= {"sent", "ambiguous"}
        # The requests on their way when the run of 5xx began, then one per failed probe,
        # the probes backing off (cooldown 0.5 s doubling to 2 s): the README's bound.
        bound = (cfg.breaker_failures + cfg.concurrency - 1
                 + probes_within(outage_s, cfg.breaker_cooldown_s, cfg.breaker_cooldown_max_s))
        assert cfg.breaker_failures <= len(held) <= bound + 1, (len(held), bound)
        stats = world.client.stats()
        assert stats["rejected"].get("503") == len(held)  # each held one met the outage once
        assert stats["received"] == 60  # and no trigger was asked twice
        delivered = world.delivered(triggers)
        assert all(delivered[t] == (0 if s == "ambiguous" else 1) for t, s in states.items())
        world.stop_all()
