"""The delivery ledger on the real PostgreSQL: migrations, claims, outcomes, resolutions.

Each test works in a schema of its own (search_path), so migrations run from
scratch and nothing is shared with the stack's ops tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from connectors.errors import SinkError
from connectors.sink.ledger import Claim, Final, Late, Ledger
from connectors.sink.migrate import migrate, migrations
from quoteflow.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def conninfo(stack: object, settings: Settings) -> Iterator[str]:
    schema = f"test_ledger_{uuid.uuid4().hex[:10]}"
    base = settings.postgres.ops_conninfo()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    try:
        yield make_conninfo(**{**conninfo_to_dict(base), "options": f"-c search_path={schema}"})
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


def claim(trigger_id: str, offset: int = 1, customer: int = 7) -> Claim:
    return Claim(trigger_id, "sendgrid", customer, uuid.uuid4(), None, "t", 0, offset)


def test_migrations_apply_once(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        names = migrate(conn)
        assert names == [f"{m.version:04d}_{m.name}" for m in migrations()]
        assert migrate(conn) == []
        versions = conn.execute("SELECT version FROM sink_schema_migrations").fetchall()
        assert [v for (v,) in versions] == [m.version for m in migrations()]
    with Ledger(conninfo) as ledger:  # a restart: nothing to apply
        assert ledger.applied == []


def test_claim_once_then_found(conninfo: str) -> None:
    now = datetime.now(UTC)
    with Ledger(conninfo) as ledger:
        assert ledger.claim([claim("a"), claim("b", 2)]) == {}
        found = ledger.claim([claim("a", 9), claim("c", 3)])
        assert set(found) == {"a"}
        entry = found["a"]
        assert entry.state == "pending" and entry.read_at("t", 0, 1)
        assert not entry.read_at("t", 0, 9)
        ledger.record([Final("a", "sent", 2, 202, "m-1", None, now, now),
                       Final("b", "rejected", 1, 400, None, "HTTP 400", now, now)])
        # An outcome is written once: a second record of the same trigger changes nothing.
        ledger.record([Final("a", "failed", 9, 500, None, "late", now, now)])
        rows = {e.trigger_id: e for e in ledger.entries(["a", "b", "c"])}
        assert (rows["a"].state, rows["a"].attempts, rows["a"].esp_message_id) == ("sent", 2, "m-1")
        assert (rows["b"].state, rows["b"].error) == ("rejected", "HTTP 400")
        assert rows["c"].state == "pending"
        # Read again at its own offset before its receipt was committed: the receipt is owed.
        assert rows["a"].redelivered_at("t", 0, 1) and not rows["a"].redelivered_at("t", 0, 2)
        ledger.receipted(["a"])
        (a,) = ledger.entries(["a"])
        assert a.receipt_at is not None and not a.redelivered_at("t", 0, 1)  # now a replay
        ledger.release([("c", 0), ("a", 0)])  # only pending claims are forgotten
        assert {e.trigger_id for e in ledger.entries(["a", "b", "c"])} == {"a", "b"}


def test_outcomes_and_claims_in_one_statement(conninfo: str) -> None:
    now = datetime.now(UTC)
    with Ledger(conninfo) as ledger:
        ledger.claim([claim("m"), claim("n", 2)])
        found = ledger.claim([claim("o", 3), claim("m", 4)],
                             [Final("m", "sent", 1, 200, None, None, now, now),
                              Final("n", "rejected", 1, 400, None, "HTTP 400", now, now)])
        assert set(found) == {"m"} and found["m"].state == "sent"  # recorded first
        states = {e.trigger_id: e.state for e in ledger.entries(["m", "n", "o"])}
        assert states == {"m": "sent", "n": "rejected", "o": "pending"}
        assert ledger.claim([], [Final("o", "sent", 1, 200, None, None, now, now)]) == {}
        assert [e.state for e in ledger.entries(["o"])] == ["sent"]


def test_ambiguous_resolution(conninfo: str) -> None:
    now = datetime.now(UTC)
    with Ledger(conninfo) as ledger:
        ledger.claim([claim("x"), claim("y", 2)])
        ledger.record([Final("x", "ambiguous", 1, None, None, "read timeout", now, now),
                       Final("y", "ambiguous", 1, None, None, "read timeout", now, now)])
        assert [e.trigger_id for e in ledger.open_entries("ambiguous")] == ["x", "y"]
        ledger.resolve("x", "sent", "alice")
        ledger.resolve("y", "resend", "bob")
        assert ledger.open_entries("ambiguous") == []
        (x,) = ledger.entries(["x"])
        assert (x.state, x.resolution) == ("sent", "sent")
        assert ledger.entries(["y"]) == []
        assert ledger.claim([claim("y", 5)]) == {}  # claimable again
        with pytest.raises(SinkError, match="not ambiguous"):
            ledger.resolve("x", "sent", "alice")
        with pytest.raises(SinkError, match="not in the delivery ledger"):
            ledger.resolve("nope", "sent", "alice")


def test_unreachable_ops_database_is_one_clear_error(settings: Settings) -> None:
    bad = settings.postgres.model_copy(update={"ops_port": 1, "connect_timeout_s": 2})
    with pytest.raises(SinkError, match="ops database is not reachable"):
        Ledger(bad.ops_conninfo())


# --- issue 16 item 3: claims carry owner + epoch ------------------------------------------
def owned(trigger_id: str, epoch: int, quote: int | None = None, offset: int = 1) -> Claim:
    return Claim(trigger_id, "sendgrid", 7, uuid.uuid4(), None, "t", 0, offset, quote, epoch)


def sink(conninfo: str, owner: str) -> Ledger:
    """A sink's ledger in group "g" (partition t[0] is where ``owned`` claims are read)."""
    return Ledger(conninfo, owner=owner, group="g")


def test_epochs_grow_with_every_assignment(conninfo: str) -> None:
    with sink(conninfo, "a") as a, sink(conninfo, "b") as b:
        first = a.assign([("t", 0), ("t", 1)])
        assert first == {("t", 0): 1, ("t", 1): 1}
        assert b.assign([("t", 0)]) == {("t", 0): 2}
        assert a.assign([("t", 0), ("t", 1)]) == {("t", 0): 3, ("t", 1): 2}
        with Ledger(conninfo, owner="c", group="replay") as other_group:  # its own epochs
            assert other_group.assign([("t", 0)]) == {("t", 0): 1}


def test_release_by_a_non_owner_deletes_nothing(conninfo: str) -> None:
    with sink(conninfo, "a") as a, sink(conninfo, "b") as b:
        ea = a.assign([("t", 0)])[("t", 0)]
        assert a.claim([owned("r1", ea), owned("r2", ea, offset=2)]) == {}
        assert b.release([("r1", ea), ("r2", ea)]) == 0  # not b's claims
        assert a.release([("r1", ea + 1)]) == 0  # a's trigger, not the epoch it claimed in
        assert {e.trigger_id for e in a.entries(["r1", "r2"])} == {"r1", "r2"}
        # The group moves t[0] to b, which takes r2 over: a's release no longer reaches it.
        eb = b.assign([("t", 0)])[("t", 0)]
        (seen,) = b.entries(["r2"])
        took = b.take_over(owned("r2", eb, offset=2), seen)
        assert took is not None and (took.owner, took.epoch, took.state) == ("b", eb, "pending")
        assert a.release([("r1", ea), ("r2", ea)]) == 1
        assert [(e.trigger_id, e.owner) for e in a.entries(["r1", "r2"])] == [("r2", "b")]
        # a, not yet told it lost t[0], can neither claim there nor take b's claim back.
        assert a.claim([owned("r3", ea, offset=3)]) == {} and a.fenced == {"r3"}
        assert a.entries(["r3"]) == []
        assert a.take_over(owned("r2", ea, offset=2), took) is None
        assert a.entries(["r2"])[0].owner == "b"


def test_record_by_a_stale_owner_does_not_overwrite(conninfo: str) -> None:
    now = datetime.now(UTC)
    with sink(conninfo, "a") as a, sink(conninfo, "b") as b:
        ea = a.assign([("t", 0)])[("t", 0)]
        ca, cb = owned("s1", ea), owned("s2", ea, offset=2)
        a.claim([ca, cb])
        # b took both over; it resent s1 (sent) and holds s2 as ambiguous.
        eb = b.assign([("t", 0)])[("t", 0)]
        s1, s2 = sorted(b.entries(["s1", "s2"]), key=lambda e: e.trigger_id)
        b.take_over(owned("s1", eb), s1)
        b.take_over(owned("s2", eb, offset=2), s2)
        b.record([Final("s1", "sent", 1, 202, "m-b", None, now, now, owned("s1", eb)),
                  Final("s2", "ambiguous", 0, None, None, "taken over", now, now,
                        owned("s2", eb, offset=2))])  # fmt: skip
        assert b.take_late() == Late([], [], [])
        # a's outcomes arrive late, under its old claims: neither overwrites b's.
        a.record([Final("s1", "failed", 3, 500, None, "HTTP 500", now, now, ca),
                  Final("s2", "sent", 1, 202, "m-a", None, now, now, cb)])  # fmt: skip
        late = a.take_late()
        assert sorted(late.kept) == ["s1", "s2"] and late.restored == late.dropped == []
        rows = {e.trigger_id: e for e in a.entries(["s1", "s2"])}
        assert (rows["s1"].state, rows["s1"].esp_message_id) == ("sent", "m-b")
        assert rows["s1"].late_outcome and rows["s1"].late_outcome["state"] == "failed"
        # a knows s2 went out (its 2xx): the unknown b held is settled as sent, and says so.
        assert (rows["s2"].state, rows["s2"].esp_message_id) == ("sent", "m-a")
        assert rows["s2"].resolution == "sent"
        assert rows["s2"].late_outcome and rows["s2"].late_outcome["owner"] == "a"


def test_a_late_sent_outcome_whose_row_is_gone_is_written_back(conninfo: str) -> None:
    now = datetime.now(UTC)
    with sink(conninfo, "a") as a, Ledger(conninfo) as person:
        c = owned("w1", a.assign([("t", 0)])[("t", 0)], quote=77)
        a.claim([c])
        person._run("DELETE FROM sink_deliveries WHERE trigger_id = 'w1'", [])
        a.record([Final("w1", "sent", 1, 202, "m-1", None, now, now, c)])
        assert a.take_late().restored == ["w1"]
        (row,) = a.entries(["w1"])
        assert (row.state, row.quote_id, row.esp_message_id) == ("sent", 77, "m-1")


def test_a_conflicting_row_that_vanishes_is_claimed_again(conninfo: str) -> None:
    """The row a claim conflicted with is gone before it is read (another sink released
    it): the trigger is claimed again, never handed back as claimed without a row."""
    with Ledger(conninfo) as ledger, psycopg.connect(conninfo, autocommit=True) as other:
        ledger.claim([claim("v")])
        lookup = ledger.entries
        vanished: list[str] = []

        def entries_after_a_release(ids):  # type: ignore[no-untyped-def]
            ids = list(ids)
            if not vanished:  # between the INSERT's conflict and this SELECT
                other.execute("DELETE FROM sink_deliveries WHERE trigger_id = 'v'")
                vanished.append("v")
            return lookup(ids)

        ledger.entries = entries_after_a_release  # type: ignore[method-assign]
        mine = claim("v", 5)
        assert ledger.claim([mine]) == {}  # claimed
        assert vanished == ["v"]
        (row,) = lookup(["v"])
        assert (row.request_id, row.offset, row.state) == (mine.request_id, 5, "pending")


# --- issue 16 item 4: one offer per quote, ever -----------------------------------------
def test_a_second_trigger_for_a_quote_is_a_duplicate_whatever_its_state(conninfo: str) -> None:
    now = datetime.now(UTC)
    with sink(conninfo, "a") as ledger:
        assert ledger.assign([("t", 0)]) == {("t", 0): 1}
        assert ledger.claim([owned("q1-r1", 1, quote=501)]) == {}
        # Another rules version's trigger for the same quote: recorded, not claimed.
        found = ledger.claim([owned("q1-r2", 1, quote=501, offset=2)])
        dup = found["q1-r2"]
        assert (dup.state, dup.duplicate_of, dup.quote_id) == ("duplicate", "q1-r1", 501)
        assert dup.error and "q1-r1" in dup.error and dup.read_at("t", 0, 2)
        assert dup.receipt_at is None  # its DUPLICATE receipt is owed
        for state in ("rejected", "failed", "expired", "sent"):  # every state blocks
            quote = 600 + len(state)
            first = owned(f"{state}-1", 1, quote=quote)
            ledger.claim([first])
            ledger.record([Final(first.trigger_id, state, 1, None, None, None, now, now,
                                 first)])  # fmt: skip
            again = ledger.claim([owned(f"{state}-2", 1, quote=quote)])
            assert again[f"{state}-2"].state == "duplicate", state
        # Two triggers of one quote in one batch: one claim, one duplicate of it.
        both = ledger.claim([owned("b-1", 1, quote=700), owned("b-2", 1, quote=700, offset=2)])
        assert set(both) == {"b-2"} and both["b-2"].duplicate_of == "b-1"


def test_reoffer_lets_exactly_the_next_trigger_through(conninfo: str) -> None:
    now = datetime.now(UTC)
    with sink(conninfo, "a") as ledger:
        assert ledger.assign([("t", 0)]) == {("t", 0): 1}
        with pytest.raises(SinkError, match="quote 900 has no offer"):
            ledger.reoffer(900, "customer asked", "alice")
        first = owned("o-1", 1, quote=900)
        ledger.claim([first])
        with pytest.raises(SinkError, match="a send is in progress"):
            ledger.reoffer(900, "customer asked", "alice")
        ledger.record([Final("o-1", "ambiguous", 1, None, None, "timeout", now, now, first)])
        with pytest.raises(SinkError, match="resolve it first"):
            ledger.reoffer(900, "customer asked", "alice")
        ledger.resolve("o-1", "sent", "alice")
        ledger.claim([owned("o-2", 1, quote=900)])  # a duplicate, set aside with the offer
        with pytest.raises(SinkError, match="needs a reason"):
            ledger.reoffer(900, "  ", "alice")
        moved = ledger.reoffer(900, "template was broken", "alice")
        assert [e.trigger_id for e in moved] == ["o-1", "o-2"]
        (who, why, _, previous), = ledger.reoffers(900)
        assert (who, why) == ("alice", "template was broken")
        assert [p["trigger_id"] for p in previous] == ["o-1", "o-2"]
        # Exactly the next trigger is the new offer; the one after it is its duplicate.
        assert ledger.claim([owned("o-3", 1, quote=900)]) == {}
        assert ledger.claim([owned("o-1", 1, quote=900)])["o-1"].duplicate_of == "o-3"


def test_existing_rows_migrate_and_are_backfilled_when_read_again(conninfo: str) -> None:
    """Rows written under 0001-0002 (no quote, owner or epoch) still block their trigger
    id, can be taken over like a stopped sink's claim, and get their quote on a re-read."""
    now = datetime.now(UTC)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE sink_schema_migrations (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for m in migrations()[:2]:
            conn.execute(m.sql.encode())
            conn.execute("INSERT INTO sink_schema_migrations (version, name) VALUES (%s, %s)",
                         (m.version, m.name))  # fmt: skip
        for trigger_id, state in (("old-sent", "sent"), ("old-pending", "pending")):
            conn.execute(
                "INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state,"
                " request_id, source_topic, source_partition, source_offset)"
                " VALUES (%s, 'sendgrid', 7, %s, gen_random_uuid(), 't', 0, 1)",
                (trigger_id, state))  # fmt: skip
    with sink(conninfo, "a") as ledger:
        assert ledger.applied == [f"{m.version:04d}_{m.name}" for m in migrations()[2:]]
        assert ledger.assign([("t", 0)]) == {("t", 0): 1}
        rows = {e.trigger_id: e for e in ledger.entries(["old-sent", "old-pending"])}
        assert {(e.quote_id, e.owner, e.epoch) for e in rows.values()} == {(None, None, 0)}
        # A stopped sink's claim from before: taken over by whoever reads it again.
        took = ledger.take_over(owned("old-pending", 1, quote=41), rows["old-pending"])
        assert took is not None and (took.owner, took.epoch) == ("a", 1)
        ledger.record([Final("old-pending", "sent", 1, 202, None, None, now, now,
                             owned("old-pending", 1, quote=41))])  # fmt: skip
        # Read again with its quote: the old row is found and now knows its quote...
        assert ledger.claim([owned("old-sent", 1, quote=40)])["old-sent"].state == "sent"
        assert ledger.entries(["old-sent"])[0].quote_id == 40
        # ...so another rules version's trigger for that quote is a duplicate of it.
        assert ledger.claim([owned("new-40", 1, quote=40)])["new-40"].duplicate_of == "old-sent"
