"""The CDC stream against the stack's real PostgreSQL and Kafka: every change kind, as events.

Each test writes through ordinary SQL, streams with a slot of its own, and
reads the change topic back through the registry serde — the same path the
processor will read — comparing with what PostgreSQL itself reports (the
transaction id, commit LSNs, the row as stored).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from connectors.cdc.pgoutput import parse_lsn
from quoteflow.settings import Settings
from schemas.debezium import parse_zoned_timestamp

from .conftest import Record, end_offsets, read_new, streaming

pytestmark = pytest.mark.integration

QUOTES = "qms.public.quotes"
CUSTOMERS = "crm.public.customers"

INSERT_QUOTE = """
INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium, currency, status,
                    valid_until)
VALUES (%s, %s, 'MOTOR-COMP', 'WEB', %s, 'GBP', 'QUOTED', '2026-12-31')
RETURNING quote_id, pg_current_xact_id()::text
"""


def _for(records: list[Record], field: str, ids: set[int]) -> list[Record]:
    """The records of rows with primary key ``field`` in ``ids`` (keys identify tombstones too)."""
    return [r for r in records if r.key is not None and r.key[field] in ids]


def test_insert_update_key_change_and_delete_become_debezium_events(
    cdc_settings: Settings,
) -> None:
    since = end_offsets(cdc_settings, QUOTES)
    ref = f"Q-T-{uuid.uuid4().hex[:8]}"
    with (
        streaming(cdc_settings, "qms") as running,
        psycopg.connect(cdc_settings.postgres.conninfo("qms"), autocommit=True) as conn,
    ):
        inserted = conn.execute(INSERT_QUOTE, (ref, 77_001, Decimal("612.37"))).fetchone()
        quote_id, insert_xid = inserted
        with conn.transaction():
            update_xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            conn.execute("UPDATE quotes SET status = 'ACCEPTED' WHERE quote_id = %s", (quote_id,))
        moved = quote_id + 1_000_000_000
        conn.execute("UPDATE quotes SET quote_id = %s WHERE quote_id = %s", (moved, quote_id))
        conn.execute("DELETE FROM quotes WHERE quote_id = %s", (moved,))
        ids = {quote_id, moved}
        records = read_new(
            cdc_settings, QUOTES, since,
            until=lambda rs: len(_for(rs, "quote_id", ids)) >= 7,
            key_schema="qms_quote_key", value_schema="qms_quote_envelope",
        )  # fmt: skip
        end_lsn = parse_lsn(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
    stats = running.stream.stats

    ours = _for(records, "quote_id", ids)
    ops = [(r.key["quote_id"] if r.key else None, r.value["op"] if r.value else None) for r in ours]
    assert sorted(ops, key=lambda o: (o[0] != quote_id, o[1] is None)) == [
        (quote_id, "c"), (quote_id, "u"), (quote_id, "d"), (quote_id, None),
        (moved, "c"), (moved, "d"), (moved, None),
    ]  # fmt: skip
    by_op = {(r.key["quote_id"], r.value["op"]): r.value for r in ours if r.key and r.value}

    created = by_op[(quote_id, "c")]
    assert created["before"] is None
    after = created["after"]
    assert after["quote_ref"] == ref and after["premium"] == Decimal("612.37")
    assert after["valid_until"] == date(2026, 12, 31) and after["currency"] == "GBP"
    assert after["created_at"].endswith("Z") and len(after["created_at"]) == 27
    assert created["source"]["txId"] == int(insert_xid)
    assert created["source"]["snapshot"] == "false"
    assert created["source"]["name"] == "qms" and created["source"]["table"] == "quotes"

    updated = by_op[(quote_id, "u")]
    assert updated["before"]["status"] == "QUOTED" and updated["after"]["status"] == "ACCEPTED"
    assert updated["source"]["txId"] == int(update_xid)
    assert parse_zoned_timestamp(updated["after"]["updated_at"]) >= parse_zoned_timestamp(
        after["updated_at"]
    )

    # The key change: the old key ends (d + tombstone), the new one begins (c), one position.
    old_end, new_start = by_op[(quote_id, "d")], by_op[(moved, "c")]
    assert old_end["after"] is None and old_end["before"]["quote_id"] == quote_id
    assert new_start["after"]["quote_id"] == moved
    assert old_end["source"]["lsn"] == new_start["source"]["lsn"]

    deleted = by_op[(moved, "d")]
    assert deleted["after"] is None and deleted["before"]["status"] == "ACCEPTED"

    # Positions grow with the changes; every commit time is a real epoch-ms timestamp.
    lsns = [by_op[k]["source"]["lsn"] for k in ((quote_id, "c"), (quote_id, "u"), (moved, "d"))]
    assert lsns == sorted(lsns) and len(set(lsns)) == 3
    assert all(v["source"]["ts_ms"] > 1_700_000_000_000 for v in by_op.values())
    assert all(v["ts_ms"] >= v["source"]["ts_ms"] for v in by_op.values())
    sequence = by_op[(moved, "d")]["source"]["sequence"]
    assert sequence == f'["{_last_commit(by_op)}","{lsns[-1]}"]'

    # Everything was acknowledged, so the slot's position passed every change.
    assert stats.acked == stats.events and stats.events >= 7
    assert lsns[-1] < stats.confirmed_lsn <= end_lsn


def _last_commit(by_op: dict[tuple[int, str], dict[str, Any]]) -> str:
    """The delete's lastCommitLsn: the key change transaction's end LSN, which is at most the
    delete's own (equal when the delete is the next WAL record, as Debezium shows too)."""
    deleted = by_op[next(k for k in by_op if k[1] == "d" and k[0] > 1_000_000_000)]
    last_commit = str(deleted["source"]["sequence"]).split('"')[1]
    moved_in = by_op[next(k for k in by_op if k[1] == "c" and k[0] > 1_000_000_000)]
    assert moved_in["source"]["lsn"] < int(last_commit) <= deleted["source"]["lsn"]
    return last_commit


def test_customer_nulls_and_booleans_on_the_compacted_topic(
    cdc_settings: Settings,
) -> None:
    since = end_offsets(cdc_settings, CUSTOMERS)
    email = f"t-{uuid.uuid4().hex[:8]}@example.com"
    with (
        streaming(cdc_settings, "crm") as running,
        psycopg.connect(cdc_settings.postgres.conninfo("crm"), autocommit=True) as conn,
    ):
        with_contact = conn.execute(
            "INSERT INTO customers (first_name, last_name, email, marketing_consent,"
            " consent_updated_at, segment) VALUES ('Ada', 'Lovelace', %s, true,"
            " '2026-11-01 10:00:00.5+01', 'gold') RETURNING customer_id",
            (email,),
        ).fetchone()[0]
        without = conn.execute(
            "INSERT INTO customers (first_name, last_name) VALUES ('No', 'Contact')"
            " RETURNING customer_id"
        ).fetchone()[0]
        ids = {with_contact, without}
        records = read_new(
            cdc_settings, CUSTOMERS, since,
            until=lambda rs: len(_for(rs, "customer_id", ids)) >= 2,
            key_schema="crm_customer_key", value_schema="crm_customer_envelope",
        )  # fmt: skip
    running.finish()
    rows = {r.key["customer_id"]: r.value["after"] for r in _for(records, "customer_id", ids)
            if r.key and r.value}  # fmt: skip
    assert rows[with_contact]["email"] == email
    assert rows[with_contact]["marketing_consent"] is True
    assert rows[with_contact]["consent_updated_at"] == "2026-11-01T09:00:00.500000Z"
    assert rows[without]["email"] is None and rows[without]["phone"] is None
    assert rows[without]["marketing_consent"] is False
    assert rows[without]["consent_updated_at"] is None
