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
from connectors.sink.ledger import Claim, Final, Ledger
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
        ledger.release(["c", "a"])  # only pending claims are forgotten
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
