"""Issue 16 items 3 and 4, end to end at the sink: real Kafka, the ops PostgreSQL, the sandbox.

- One offer per quote, ever: a second trigger for a quote (another rules version, another
  processor app) is recorded as a duplicate and not sent; `quoteflow sink reoffer` is the
  one way to let exactly one more through.
- Claims carry owner + epoch: a sink frozen with requests on the wire (its partitions
  lost and taken over meanwhile) neither has its e-mails sent again nor has its outcomes
  dropped from the ledger.

The sandbox is the witness: it counts the requests it *received* per trigger (deduplicated
ones included), so a resend cannot hide behind the provider's deduplication.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from connectors.sink.ledger import Entry, Ledger
from tests.test_quoteflow.test_cli import quoteflow
from tests.test_sink.triggers import make_trigger
from tests.test_sink.world import SinkWorld, sink_world, wait_for

pytestmark = pytest.mark.integration


def received_per_quote(world: SinkWorld, triggers: Iterable[dict[str, Any]]) -> dict[int, int]:
    """Requests the sandbox received for each quote, whatever it answered (repeats included)."""
    seen = world.client.triggers()
    counts: Counter[int] = Counter()
    for t in triggers:
        counts[int(t["quote_id"])] += seen.get(t["trigger_id"], {}).get("received", 0)
    return dict(counts)


def rows(world: SinkWorld, triggers: Iterable[dict[str, Any]]) -> dict[str, Entry]:
    with Ledger(world.settings.postgres.ops_conninfo()) as ledger:
        return {e.trigger_id: e for e in ledger.entries(t["trigger_id"] for t in triggers)}


def for_quote(first: dict[str, Any], rules: str) -> dict[str, Any]:
    """Another trigger for ``first``'s quote, as another rules version decides it."""
    return make_trigger(quote_id=first["quote_id"], customer_id=first["customer_id"],
                        email=first["email"], rule_version=rules)  # fmt: skip


def test_a_second_trigger_for_a_quote_is_a_duplicate_and_reoffer_allows_one_more(
    stack: object,
) -> None:
    with sink_world("sendgrid") as world:
        first, other = make_trigger(), make_trigger()
        again = for_quote(first, "2026.04")
        assert again["trigger_id"] != first["trigger_id"]
        quote = int(first["quote_id"])
        world.produce([first, other, again])
        world.start()
        by_id = {r["trigger_id"]: r for r in world.receipts(3)}
        assert by_id[first["trigger_id"]]["status"] == "SENT"
        assert by_id[other["trigger_id"]]["status"] == "SENT"
        dup = by_id[again["trigger_id"]]
        assert dup["status"] == "DUPLICATE" and dup["quote_id"] == quote
        assert dup["attempts"] == 0 and dup["latency_ms"] is None  # nothing was sent
        assert first["trigger_id"] in dup["error"]  # names the offer it duplicates
        assert received_per_quote(world, [first, other, again]) == {
            quote: 1, int(other["quote_id"]): 1}  # fmt: skip
        row = rows(world, [again])[again["trigger_id"]]
        assert (row.state, row.duplicate_of, row.quote_id) == ("duplicate", first["trigger_id"],
                                                               quote)  # fmt: skip

        # The one way to offer the quote again: a person's decision, with a reason.
        done = quoteflow("sink", "reoffer", str(quote), "--reason", "template was broken",
                         "--by", "alice", timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "set aside by alice" in done.stdout and first["trigger_id"] in done.stdout
        third, fourth = for_quote(first, "2026.05"), for_quote(first, "2026.06")
        world.produce([third, fourth])
        statuses = {r["trigger_id"]: r["status"] for r in world.receipts(5)}
        assert (statuses[third["trigger_id"]], statuses[fourth["trigger_id"]]) == (
            "SENT", "DUPLICATE")  # fmt: skip
        assert received_per_quote(world, [first, again, third, fourth]) == {quote: 2}
        with Ledger(world.settings.postgres.ops_conninfo()) as ledger:
            ((who, why, _, previous),) = ledger.reoffers(quote)
        assert (who, why) == ("alice", "template was broken")
        assert {p["trigger_id"] for p in previous} == {first["trigger_id"], again["trigger_id"]}
        world.stop_all()


@pytest.mark.integration
def test_reoffer_errors_are_one_line(stack: object) -> None:
    unknown = quoteflow("sink", "reoffer", "987654321012345", "--reason", "why not", timeout=60)
    assert unknown.returncode == 1 and "has no offer in the delivery ledger" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    no_reason = quoteflow("sink", "reoffer", "1", timeout=60)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr


def test_a_sink_that_loses_its_partitions_mid_send_keeps_every_outcome(
    stack: object, tmp_path: Path
) -> None:
    """Sink A (a process) has requests hanging in the ESP when it freezes (SIGSTOP): its
    session times out, sink B is given the partitions and takes A's claims over (SendGrid
    has no deduplication: held as ambiguous, not resent). A wakes up, its requests answer
    202 after B took over: every trigger is e-mailed once, and the ledger ends with every
    trigger sent (A's late outcomes settle B's unknowns instead of vanishing)."""
    with sink_world("sendgrid", session_timeout_s=6, read_timeout_s=60, concurrency=8) as world:
        world.client.faults(latency_ms=10_000)
        triggers = world.produce(make_trigger() for _ in range(24))
        ids = [t["trigger_id"] for t in triggers]
        a = world.spawn(tmp_path / "sink-a.log")
        try:
            wait_for("A's requests on the wire", lambda: world.client.stats()["received"] >= 8)
            os.kill(a.process.pid, signal.SIGSTOP)
            claimed = {t: e for t, e in rows(world, triggers).items() if e.state == "pending"}
            assert claimed, "A claimed nothing before it froze"
            world.start()  # sink B: the group gives it the partitions once A's session ends

            def taken_over() -> bool:  # A is frozen: only B can have decided them
                now = rows(world, triggers)
                return all(now[t].state != "pending" for t in claimed)

            wait_for("B to take A's claims over", taken_over, timeout_s=90)
            os.kill(a.process.pid, signal.SIGCONT)

            def settled() -> bool:
                now = rows(world, triggers)
                return len(now) == len(ids) and all(e.state == "sent" for e in now.values())

            wait_for("every trigger recorded sent", settled, timeout_s=120)
        finally:
            os.kill(a.process.pid, signal.SIGCONT)
            a.stop(signal.SIGKILL)
        counts = world.client.triggers()
        assert {t: counts.get(t, {}).get("received", 0) for t in ids} == dict.fromkeys(ids, 1)
        assert world.delivered(triggers) == dict.fromkeys(ids, 1)
        final = rows(world, triggers)
        late = [t for t in claimed if final[t].late_outcome]
        assert late, "no outcome of A's arrived after the takeover: the scenario did not happen"
        assert all(final[t].late_outcome["state"] == "sent" for t in late)  # type: ignore[index]
        world.stop_all()
