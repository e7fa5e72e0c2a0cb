"""`quoteflow replay` on a real pipeline's topics: the live run's triggers, deterministically, never
an e-mail twice.

A real pipeline (CDC on the stack's QMS and CRM, a processor, a sink, the ESP
sandbox; tests/test_integration/running.py) decides and mails a handful of
quotes of this test's own. Then the replay reads the same change topics and
watermark records, in processes of its own as an engineer runs it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.esp_sandbox import SandboxClient
from quoteflow.settings import Settings
from quoteflow.topics.catalog import DECISIONS, DELIVERIES, TRIGGERS
from streams.core.detector import trigger_id
from tests.test_integration.running import (
    Pipeline,
    decoded,
    rules_text,
    running_pipeline,
    wait_for,
)

pytestmark = pytest.mark.integration

def replay(prefix: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    done = subprocess.run(
        [sys.executable, "-m", "quoteflow", "replay", *args], text=True, capture_output=True,
        env={**env, "QUOTEFLOW_TOPICS__PREFIX": prefix, "COLUMNS": "200"}, timeout=300,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def customers_and_quotes(settings: Settings, *, abandoned: int,
                         age: timedelta) -> dict[str, list[int]]:  # fmt: skip
    """Customers with consent and abandoned quotes, one accepted in time, one customer
    without consent: each quote its own customer, ids this test's own."""
    first = random.randrange(10**12, 2 * 10**12)
    ids = [first + n for n in range(abandoned + 2)]
    accepted, no_consent = ids[-2], ids[-1]
    at = datetime.now(UTC) - age
    pg = settings.postgres
    with psycopg.connect(pg.conninfo(pg.crm_database), autocommit=True) as crm:
        for customer_id in ids:
            crm.execute(
                "INSERT INTO public.customers (customer_id, first_name, last_name, email,"
                " marketing_consent, timezone) VALUES (%s, 'Ada', 'Lovelace', %s, %s,"
                " 'Europe/London')",
                (customer_id, f"ada.{customer_id}@example.com", customer_id != no_consent),
            )  # fmt: skip
    with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as qms:
        for quote_id in ids:
            qms.execute(
                "INSERT INTO public.quotes (quote_id, quote_ref, customer_id, product_code,"
                " channel, premium, currency, status, valid_until, created_at, updated_at)"
                " VALUES (%s, %s, %s, 'MOTOR-COMP', 'WEB', 456.00, 'GBP', 'QUOTED',"
                " current_date + 30, %s, %s)",
                (quote_id, f"Q-RP-{quote_id}", quote_id, at, at),
            )  # fmt: skip
        qms.execute("UPDATE public.quotes SET status = 'ACCEPTED' WHERE quote_id = %s",
                    (accepted,))  # fmt: skip
    return {"abandoned": ids[:abandoned], "accepted": [accepted], "no_consent": [no_consent]}


@pytest.fixture
def live(stack: object, settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    version = f"rp-{run}"
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(rules_text(version))
    with running_pipeline(settings, tmp_path, run=run, prefix=f"test.replay.{run}.",
                          rules_file=rules_file) as running:  # fmt: skip
        yield {"version": version, "pipeline": running, "rules": rules_file}


def by_quote(rows: list[dict[str, Any]], quotes: set[int]) -> dict[int, dict[str, Any]]:
    return {r["quote_id"]: r for r in rows if r["quote_id"] in quotes}


def test_replay_gives_the_live_triggers_twice_alike_and_never_mails_twice(
    live: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    """Issue 19 items 1 and 6: replaying the recorded range gives the live run's triggers
    (same ids, offers, due times) and decisions; a second replay writes identical records;
    a dry run writes nothing; a what-if with another offer shows exactly that difference;
    replaying into live twice (under new rules: new trigger ids) mails no quote again."""
    pipeline: Pipeline = live["pipeline"]
    version, prefix, children = live["version"], pipeline.prefix, pipeline.children
    # Due 20 s from now (a minute's delay): a deadline already past when the processor
    # first reads the quote races its customer's row (see test_pipeline).
    ids = customers_and_quotes(settings, abandoned=4, age=timedelta(seconds=40))
    ours = {q for group in ids.values() for q in group}
    client = SandboxClient(pipeline.sandbox.url)
    first = {q: trigger_id(q, version) for q in ids["abandoned"]}

    def attempts() -> dict[str, int]:
        return {t: n.get("received", 0) for t, n in client.triggers().items()}

    wait_for("every abandoned quote's e-mail",
             lambda: all(attempts().get(t, 0) >= 1 for t in first.values()), 240,
             children)  # fmt: skip
    wait_for("the no-consent decision", lambda: ids["no_consent"][0] in by_quote(
        decoded(settings, prefix + DECISIONS, "abandonment_decision"), ours), 60, children)
    live_triggers = by_quote(decoded(settings, prefix + TRIGGERS, "abandonment_trigger"), ours)
    live_decisions = by_quote(decoded(settings, prefix + DECISIONS, "abandonment_decision"), ours)
    assert set(live_triggers) == set(ids["abandoned"])

    # 1. The replay decides what the live run decided.
    replay(prefix, "--name", "one", "--rules", str(live["rules"]))
    one = decoded(settings, prefix + "quoteflow.replay.one.triggers", "abandonment_trigger")
    replayed = by_quote(one, ours)
    assert set(replayed) == set(live_triggers)
    for quote_id, trigger in replayed.items():
        expected = live_triggers[quote_id]
        for name in ("trigger_id", "offer", "deadline_at", "email", "rule_version"):
            assert trigger[name] == expected[name], (quote_id, name)
        assert trigger["replay"] is True and expected["replay"] is False
    one_decisions = decoded(settings, prefix + "quoteflow.replay.one.decisions",
                            "abandonment_decision")  # fmt: skip
    assert {q: (d["outcome"], d["reason"]) for q, d in by_quote(one_decisions, ours).items()} == {
        q: (d["outcome"], d["reason"]) for q, d in live_decisions.items()}

    # 2. Twice alike: the same records, byte for byte once decoded, fired_at included.
    replay(prefix, "--name", "two", "--rules", str(live["rules"]))
    two = decoded(settings, prefix + "quoteflow.replay.two.triggers", "abandonment_trigger")
    def key(record: dict[str, Any]) -> str:
        return json.dumps(record, sort_keys=True, default=str)

    assert sorted(map(key, two)) == sorted(map(key, one)) and one

    # 3. A dry run reads and decides, and writes nothing.
    dry = replay(prefix, "--name", "dry", "--dry-run", "--rules", str(live["rules"]))
    assert "TRIGGER" in dry.stdout and "sample of triggers" in dry.stdout
    assert "ada." not in dry.stdout  # addresses are masked
    from quoteflow.topics.admin import TopicAdmin

    assert not {t for t in TopicAdmin(settings).existing() if ".replay.dry." in t}

    # 4. What-if: another offer code, everything else alike -> exactly "changed offer".
    other = tmp_path / "rules-b.toml"
    other.write_text(rules_text(f"{version}-b", offer="WELCOME-7"))
    diff_file = tmp_path / "diff.jsonl"
    what_if = replay(prefix, "--rules", str(live["rules"]), "--compare", str(other),
                     "--diff-out", str(diff_file))  # fmt: skip
    assert "changed offer" in what_if.stdout
    diffs = [json.loads(line) for line in diff_file.read_text().splitlines()]
    mine = {d["quote_id"]: d for d in diffs if d["quote_id"] in ours}
    assert set(mine) == set(ids["abandoned"])
    assert {(d["kind"], d["a"]["offer"], d["b"]["offer"]) for d in mine.values()} == {
        ("offer", "WELCOME-5", "WELCOME-7")}

    # 5. Into live, twice, under the new rules: new trigger ids, same quotes: not mailed.
    refused = replay(prefix, "--into", "live", "--rules", str(other), check=False)
    assert refused.returncode == 1 and "add --yes" in refused.stdout  # no terminal, no --yes
    for _ in range(2):
        replay(prefix, "--into", "live", "--yes", "--rules", str(other))
    second = {q: trigger_id(q, f"{version}-b") for q in ids["abandoned"]}

    def receipts() -> dict[str, dict[str, Any]]:
        return {r["trigger_id"]: r for r in decoded(settings, prefix + DELIVERIES,
                                                    "esp_delivery_receipt")}  # fmt: skip

    wait_for("the replayed triggers to reach the sink",
             lambda: set(second.values()) <= set(receipts()), 120, children)  # fmt: skip
    time.sleep(3)  # anything else the sink read is finished too
    got = receipts()
    for q in ids["abandoned"]:
        assert got[second[q]]["status"] == "DUPLICATE", got[second[q]]
    counts = attempts()
    assert {q: counts.get(first[q], 0) + counts.get(second[q], 0) for q in ids["abandoned"]} == (
        dict.fromkeys(ids["abandoned"], 1))  # each quote e-mailed once, ever
    client.close()
