"""TRUNCATE through ``quoteflow process`` (issue 15 item 11), against the real broker and
registry, as a worker process (the world and worker of :mod:`test_processor`).

A ``t`` event of the quotes topic closes the open quotes committed before it
(SUPPRESSED, "truncated"), a ``t`` of the customers topic (under the reserved
key) forgets the customer rows before it (no offer; UNMATCHED after the grace
period). Each test has a control: a quote or a customer written after the
truncate, whose trigger proves the worker ran past the truncate's deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas import examples
from tests.test_streams.test_processor import (
    DELAY_S,
    RULES,
    Worker,
    World,
    _all_triggers,
    _everything,
    _heartbeats,
    _triggers,
    new_world,  # noqa: F401 - the fixture, used through ``world``
)

pytestmark = pytest.mark.integration

TRUNCATED = "truncated: the quotes table was truncated"


@pytest.fixture
def world(new_world: Callable[..., World], tmp_path: Path) -> World:  # noqa: F811
    made = new_world()
    # No grace period: a quote whose customer row is gone is UNMATCHED at its deadline.
    (tmp_path / "rules.toml").write_text(RULES + "[unmatched]\ngrace_minutes = 0\n")
    return made


def send_truncate(world: World, table: str, *, at_s: float) -> None:
    """The CDC's ``t`` event: keyless on the quotes topic, under the reserved key on the
    compacted customers topic (``connectors.cdc.events.RESERVED_KEY``)."""
    world.lsn += 100
    if table == "quotes":
        topic, db, key = world.topic("qms.public.quotes"), "qms", None
        schema = "qms_quote_envelope"
    else:
        topic, db, schema = world.topic("crm.public.customers"), "crm", "crm_customer_envelope"
        key = world.serde.encode("crm_customer_key", {"customer_id": -1}, topic=topic,
                                 is_key=True)  # fmt: skip
    src = examples.source(table, db, ts_ms=int(at_s * 1000), lsn=world.lsn)
    value = world.serde.encode(schema, examples.envelope("t", None, None, src), topic=topic)
    world.producer.produce(topic, key=key, value=value)
    world.producer.flush(10)


def _decisions(world: World) -> list[tuple[int, str, str]]:
    """Every decision, once the (running) worker has consumed its whole input."""
    decisions = _everything(world, "quoteflow.abandonment.decisions", "abandonment_decision")
    return sorted((d["quote_id"], d["outcome"], d["reason"]) for d in decisions)


Decided = list[tuple[int, str, str]]


def _run_until_triggered(world: World, tmp_path: Path,
                         quote_id: int) -> tuple[list[Any], Decided]:  # fmt: skip
    """Every trigger and decision, read while the worker runs: "settled" means it has
    committed its whole input, which a stopped worker never does for the ticks it sent."""
    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        triggers = _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=90)
        assert [t["quote_id"] for t in triggers] == [quote_id], worker.output()
        return _all_triggers(world), _decisions(world)
    finally:
        stop.set()
        beats.join(5)
        worker.stop()


def test_a_quotes_truncate_suppresses_the_open_quotes_before_it(
    world: World, tmp_path: Path
) -> None:
    now = time.time()
    soon = now - DELAY_S + 8  # deadlines 8 s from now
    world.send_customer(1, at_s=now - 100)
    world.send_customer(2, at_s=now - 100)
    world.send_customer(3, at_s=now - 100)
    world.send_quote(31, 1, "QUOTED", updated_s=soon, op="c", partition=0)
    world.send_quote(32, 2, "QUOTED", updated_s=soon, op="c", partition=1)
    send_truncate(world, "quotes", at_s=soon + 1)
    world.send_quote(33, 3, "QUOTED", updated_s=soon + 2, op="c")  # after it: the control

    triggers, decisions = _run_until_triggered(world, tmp_path, 33)
    assert [t["quote_id"] for t in triggers] == [33]
    assert decisions == [(31, "SUPPRESSED", TRUNCATED), (32, "SUPPRESSED", TRUNCATED)]


def test_a_customers_truncate_offers_nothing_until_the_row_returns(
    world: World, tmp_path: Path
) -> None:
    now = time.time()
    soon = now - DELAY_S + 8
    world.send_customer(1, at_s=now - 100)
    world.send_customer(2, at_s=now - 100)
    world.send_quote(41, 1, "QUOTED", updated_s=soon, op="c")
    world.send_quote(42, 2, "QUOTED", updated_s=soon, op="c")
    send_truncate(world, "customers", at_s=soon + 1)
    world.send_customer(2, at_s=soon + 2)  # customer 2's row returns: the control

    triggers, decisions = _run_until_triggered(world, tmp_path, 42)
    assert [t["quote_id"] for t in triggers] == [42]
    assert [(q, o) for q, o, _ in decisions] == [(41, "UNMATCHED")]
