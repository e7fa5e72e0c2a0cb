"""``connectors.cdc.progress``: which LSN the slot may be told is flushed.

Confirming too far loses data for good (PostgreSQL recycles the WAL and a
restart resumes past events Kafka never got); confirming too little only
holds WAL back. So the tests pin the safety rule first and progress second:

* the position moves only past the longest prefix of committed transactions
  whose every event Kafka acknowledged, whatever order the acknowledgements
  come in; an open transaction blocks, an empty one is confirmable at once,
  a failed one blocks for good;
* ``server_at`` confirms the server's WAL end only when nothing is open or
  pending, and the position never moves backwards;
* ``pending`` counts what awaits Kafka's answer (a refused event no longer does).

A hypothesis state machine then runs random interleavings of begin, sent,
commit, acked, failed and keepalives over many transactions, checking after
every step that the position never decreases, never reaches the end LSN of a
transaction with an unacknowledged event (or of any transaction after it),
and equals what a simple model of the rules says.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from connectors.cdc.progress import Progress, Txn

pytestmark = pytest.mark.unit

START = 1_000


def committed(progress: Progress, end_lsn: int, events: int = 1) -> Txn:
    """A transaction with ``events`` sent and committed at ``end_lsn``, none acknowledged."""
    txn = progress.begin()
    if events:
        progress.sent(txn, events)
    progress.commit(txn, end_lsn)
    return txn


def test_a_new_progress_confirms_where_the_slot_is() -> None:
    progress = Progress(START)
    assert progress.confirmed == START
    assert progress.pending == 0
    assert progress.idle


def test_a_transaction_is_confirmed_once_all_its_events_are_acknowledged() -> None:
    progress = Progress(START)
    txn = committed(progress, 1_100, events=2)
    progress.acked(txn)
    assert progress.confirmed == START
    progress.acked(txn)
    assert progress.confirmed == 1_100
    assert progress.idle


def test_acknowledgements_before_the_commit_count() -> None:
    progress = Progress(START)
    txn = progress.begin()
    progress.sent(txn)
    progress.acked(txn)
    assert progress.confirmed == START  # no end LSN yet
    progress.commit(txn, 1_100)
    assert progress.confirmed == 1_100


def test_a_later_transaction_acknowledged_first_waits_for_the_earlier() -> None:
    progress = Progress(START)
    first = committed(progress, 1_100)
    second = committed(progress, 1_200)
    progress.acked(second)
    assert progress.confirmed == START
    progress.acked(first)
    assert progress.confirmed == 1_200


def test_acknowledgements_in_order_move_the_position_step_by_step() -> None:
    progress = Progress(START)
    first = committed(progress, 1_100)
    second = committed(progress, 1_200)
    progress.acked(first)
    assert progress.confirmed == 1_100
    progress.acked(second)
    assert progress.confirmed == 1_200


def test_out_of_order_acknowledgements_across_several_transactions() -> None:
    progress = Progress(START)
    txns = [committed(progress, 1_000 + 100 * i, events=2) for i in (1, 2, 3)]
    for txn, expected in [
        (txns[2], START),
        (txns[0], START),
        (txns[2], START),
        (txns[1], START),
        (txns[0], 1_100),
        (txns[1], 1_300),
    ]:
        progress.acked(txn)
        assert progress.confirmed == expected


def test_an_open_transaction_blocks_the_ones_after_it() -> None:
    progress = Progress(START)
    done = committed(progress, 1_100)
    progress.acked(done)
    open_txn = progress.begin()
    progress.sent(open_txn)
    progress.acked(open_txn)
    assert progress.confirmed == 1_100
    assert not progress.idle
    progress.commit(open_txn, 1_200)
    assert progress.confirmed == 1_200


def test_an_empty_committed_transaction_is_confirmable_at_once() -> None:
    progress = Progress(START)
    committed(progress, 1_100, events=0)
    assert progress.confirmed == 1_100
    assert progress.idle


def test_an_empty_transaction_behind_an_unacknowledged_one_waits() -> None:
    progress = Progress(START)
    first = committed(progress, 1_100)
    committed(progress, 1_200, events=0)
    assert progress.confirmed == START
    progress.acked(first)
    assert progress.confirmed == 1_200


def test_server_at_confirms_the_wal_end_when_idle() -> None:
    progress = Progress(START)
    progress.server_at(5_000)
    assert progress.confirmed == 5_000


def test_server_at_never_moves_the_position_backwards() -> None:
    progress = Progress(START)
    progress.server_at(5_000)
    progress.server_at(4_000)
    assert progress.confirmed == 5_000
    low = Progress(START)
    low.server_at(START - 1)
    assert low.confirmed == START


def test_server_at_is_ignored_while_a_transaction_is_open() -> None:
    progress = Progress(START)
    progress.begin()
    progress.server_at(5_000)
    assert progress.confirmed == START


def test_server_at_is_ignored_while_events_are_pending() -> None:
    progress = Progress(START)
    txn = committed(progress, 1_100)
    progress.server_at(5_000)
    assert progress.confirmed == START
    progress.acked(txn)
    assert progress.confirmed == 1_100
    progress.server_at(5_000)
    assert progress.confirmed == 5_000


def test_a_transaction_ending_before_the_position_does_not_move_it_back() -> None:
    progress = Progress(5_000)
    txn = committed(progress, 1_100)
    progress.acked(txn)
    assert progress.confirmed == 5_000


def test_a_failed_transaction_blocks_forever() -> None:
    progress = Progress(START)
    failed = committed(progress, 1_100, events=2)
    later = committed(progress, 1_200)
    progress.failed(failed)  # one event refused for good: it is never acknowledged
    progress.acked(failed)  # the other one is
    progress.acked(later)
    committed(progress, 1_300, events=0)
    progress.server_at(5_000)
    assert progress.confirmed == START
    assert not progress.idle


def test_a_refused_event_is_no_longer_pending() -> None:
    progress = Progress(START)
    txn = committed(progress, 1_100, events=2)
    progress.failed(txn)
    assert progress.pending == 1
    progress.acked(txn)
    assert progress.pending == 0
    assert progress.confirmed == START


def test_a_failure_after_the_other_events_were_acknowledged_still_blocks() -> None:
    progress = Progress(START)
    txn = progress.begin()
    progress.sent(txn, 2)
    progress.acked(txn)
    progress.failed(txn)
    progress.commit(txn, 1_100)
    assert progress.confirmed == START


def test_pending_counts_unacknowledged_events_of_every_transaction() -> None:
    progress = Progress(START)
    first = committed(progress, 1_100, events=3)
    second = progress.begin()
    progress.sent(second)
    progress.sent(second)
    assert progress.pending == 5
    progress.acked(second)
    progress.acked(first)
    assert progress.pending == 3
    for _ in range(2):
        progress.acked(first)
    assert progress.pending == 1  # second's remaining event; first is confirmed and gone
    assert progress.confirmed == 1_100


def test_begin_inside_an_open_transaction_is_refused() -> None:
    progress = Progress(START)
    progress.begin()
    with pytest.raises(RuntimeError, match="open transaction"):
        progress.begin()


def test_commit_of_a_transaction_that_is_not_open_is_refused() -> None:
    progress = Progress(START)
    txn = committed(progress, 1_100, events=0)
    with pytest.raises(RuntimeError, match="not open"):
        progress.commit(txn, 1_200)
    progress.begin()
    with pytest.raises(RuntimeError, match="not open"):
        progress.commit(txn, 1_200)


# -- random interleavings ---------------------------------------------------------------


@dataclass
class Model:
    """What the test knows about one transaction."""

    txn: Txn
    awaiting: int = 0  # sent, neither acknowledged nor refused yet
    refused: int = 0  # refused by Kafka: never acknowledged
    end_lsn: int | None = None

    @property
    def done(self) -> bool:
        return self.end_lsn is not None and self.awaiting == 0 and self.refused == 0


class ProgressMachine(RuleBasedStateMachine):
    """Random begin/sent/commit/acked/failed/keepalive sequences against a model of the rules.

    LSNs only grow, as the server's do: each commit and keepalive is past
    everything before it, so a later transaction always ends after an earlier one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.progress = Progress(START)
        self.wal = START  # the server's WAL position so far
        self.txns: list[Model] = []  # in commit (= begin) order
        self.open: Model | None = None
        self.seen = START  # the lowest value confirmed may have from now on
        self.expected = START

    @initialize(confirmed=st.integers(0, 10_000))
    def start(self, confirmed: int) -> None:
        self.progress = Progress(confirmed)
        self.wal = self.seen = self.expected = confirmed

    # -- rules ---------------------------------------------------------------------
    @precondition(lambda self: self.open is None)
    @rule(gap=st.integers(1, 50))
    def begin(self, gap: int) -> None:
        self.wal += gap
        self.open = Model(self.progress.begin())
        self.txns.append(self.open)

    @precondition(lambda self: self.open is not None)
    @rule(count=st.integers(1, 3))
    def sent(self, count: int) -> None:
        assert self.open is not None
        if count == 1:
            self.progress.sent(self.open.txn)
        else:
            self.progress.sent(self.open.txn, count)
        self.open.awaiting += count

    @precondition(lambda self: self.open is not None)
    @rule(gap=st.integers(1, 50))
    def commit(self, gap: int) -> None:
        assert self.open is not None
        self.wal += gap
        self.progress.commit(self.open.txn, self.wal)
        self.open.end_lsn = self.wal
        self.open = None
        self._advance_model()

    @precondition(lambda self: any(m.awaiting for m in self.txns))
    @rule(data=st.data())
    def acked(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from([m for m in self.txns if m.awaiting]))
        self.progress.acked(model.txn)
        model.awaiting -= 1
        self._advance_model()

    @precondition(lambda self: any(m.awaiting for m in self.txns))
    @rule(data=st.data())
    def failed(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from([m for m in self.txns if m.awaiting]))
        self.progress.failed(model.txn)
        model.awaiting -= 1
        model.refused += 1

    @rule(gap=st.integers(0, 50), stale=st.integers(0, 5_000))
    def keepalive(self, gap: int, stale: int) -> None:
        """The server's WAL end: usually past everything so far, sometimes an old value."""
        if stale:
            wal_end = max(0, self.wal - stale)
        else:
            self.wal += gap
            wal_end = self.wal
        self.progress.server_at(wal_end)
        if self.open is None and all(m.done for m in self.txns):
            self.expected = max(self.expected, wal_end)

    def _advance_model(self) -> None:
        for model in self.txns:
            if not model.done:
                return
            assert model.end_lsn is not None
            self.expected = max(self.expected, model.end_lsn)

    # -- invariants ----------------------------------------------------------------
    @invariant()
    def confirmed_never_decreases(self) -> None:
        assert self.progress.confirmed >= self.seen
        self.seen = self.progress.confirmed

    @invariant()
    def confirmed_never_reaches_an_unfinished_transaction_or_any_after_it(self) -> None:
        blocked = next((i for i, m in enumerate(self.txns) if not m.done), len(self.txns))
        for model in self.txns[blocked:]:
            if model.end_lsn is not None:
                assert self.progress.confirmed < model.end_lsn
        assert self.progress.confirmed <= self.wal

    @invariant()
    def confirmed_is_what_the_rules_allow(self) -> None:
        assert self.progress.confirmed == self.expected

    @invariant()
    def pending_counts_the_events_awaiting_kafka(self) -> None:
        assert self.progress.pending == sum(m.awaiting for m in self.txns)

    @invariant()
    def idle_means_nothing_open_or_unfinished(self) -> None:
        idle = self.open is None and all(m.done for m in self.txns)
        assert self.progress.idle == idle


ProgressMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProgressInterleavings = ProgressMachine.TestCase
