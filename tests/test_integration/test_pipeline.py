"""The whole pipeline on real rows: `quoteflow cdc` -> `process` -> `sink` -> the ESP sandbox.

Rows are written to the stack's real QMS and CRM databases; the CDC (its own
slots), a processor (its own app id and state) and a sink (its own consumer
group) run as child processes, as in production, on topics of their own (one
``topics.prefix`` for all three); the sandbox is the witness of what was
e-mailed. Customer and quote ids are this test's own, so the rows other tests
write to the same databases never count.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.children import WorkerProcess
from devstack.esp_sandbox import SandboxClient
from quoteflow.settings import Settings
from streams.core.detector import trigger_id
from tests.helpers import compose_command
from tests.test_integration.running import decoded, rules_text, running_pipeline, wait_for

pytestmark = pytest.mark.integration

def _wait(what: str, check: Callable[[], bool], timeout_s: float,
          children: list[WorkerProcess]) -> None:  # fmt: skip
    wait_for(what, check, timeout_s, children)


@pytest.fixture
def pipeline(stack: object, settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    version = f"e2e-{run}"
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(rules_text(version))
    with running_pipeline(settings, tmp_path, run=run, prefix=f"test.e2e.{run}.",
                          rules_file=rules_file) as running:  # fmt: skip
        yield {"version": version, "sandbox": running.sandbox, "children": running.children,
               "prefix": running.prefix}


def test_quote_to_email_on_real_rows_sends_only_the_abandoned_offer(
    pipeline: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    """An acceptance in time, an abandonment, a consent withdrawn before the decision and
    a quote older than the maximum age: exactly one e-mail, to the abandoned quote's
    customer; the others are decided (too old, no consent) or not at all (accepted)."""
    ids = random.randrange(10**12, 2 * 10**12)
    abandoned, accepted, withdrawn, old = (ids + n for n in range(4))
    now = datetime.now(UTC)
    pg = settings.postgres
    with psycopg.connect(pg.conninfo(pg.crm_database), autocommit=True) as crm:
        for customer_id in (abandoned, accepted, withdrawn, old):
            crm.execute(
                "INSERT INTO public.customers (customer_id, first_name, last_name, email,"
                " marketing_consent, timezone) VALUES (%s, 'Ada', 'Lovelace', %s, true,"
                " 'Europe/London')", (customer_id, f"ada.{customer_id}@example.com"),
            )  # fmt: skip
    with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as qms:
        for quote_id, at in ((abandoned, now), (accepted, now), (withdrawn, now),
                             (old, now - timedelta(days=60))):  # fmt: skip
            qms.execute(
                "INSERT INTO public.quotes (quote_id, quote_ref, customer_id, product_code,"
                " channel, premium, currency, status, valid_until, created_at, updated_at)"
                " VALUES (%s, %s, %s, 'MOTOR-COMP', 'WEB', 456.00, 'GBP', 'QUOTED',"
                " current_date + 30, %s, %s)",
                (quote_id, f"Q-E2E-{quote_id}", quote_id, at, at),
            )  # fmt: skip
        time.sleep(5)
        qms.execute("UPDATE public.quotes SET status = 'ACCEPTED' WHERE quote_id = %s",
                    (accepted,))  # fmt: skip
    with psycopg.connect(pg.conninfo(pg.crm_database), autocommit=True) as crm:
        crm.execute("UPDATE public.customers SET marketing_consent = false,"
                    " consent_updated_at = now() WHERE customer_id = %s", (withdrawn,))  # fmt: skip

    version, children, prefix = pipeline["version"], pipeline["children"], pipeline["prefix"]
    client = SandboxClient(pipeline["sandbox"].url)
    expected = trigger_id(abandoned, version)
    others = {trigger_id(q, version) for q in (accepted, withdrawn, old)}

    def delivered() -> dict[str, int]:
        return {t: n.get("delivered", 0) for t, n in client.triggers().items()}

    _wait("the abandoned quote's e-mail", lambda: delivered().get(expected, 0) >= 1, 240,
          children)  # fmt: skip

    def decided() -> dict[int, str]:
        records = decoded(settings, prefix + "quoteflow.abandonment.decisions",
                               "abandonment_decision")  # fmt: skip
        return {r["quote_id"]: r["reason"] for r in records
                if r["rule_version"] == version}  # fmt: skip

    _wait("the decisions of the withdrawn and the old quote",
          lambda: {withdrawn, old} <= set(decided()), 60, children)  # fmt: skip
    reasons = decided()
    assert reasons[withdrawn] == "no marketing consent"
    assert reasons[old].startswith("too_old")
    assert accepted not in reasons  # accepted in time: no decision, no offer

    triggers = [t for t in decoded(settings, prefix + "quoteflow.abandonment.triggers",
                                        "abandonment_trigger")
                if t["rule_version"] == version]  # fmt: skip
    # Rows other tests write meanwhile flow through this pipeline too: judge ours.
    ours = {abandoned, accepted, withdrawn, old}
    assert [t["quote_id"] for t in triggers if t["quote_id"] in ours] == [abandoned]
    time.sleep(3)  # let the sink finish anything it read
    counts = delivered()
    assert counts[expected] == 1
    assert not others & {t for t, n in counts.items() if n}
    (message,) = client.messages(trigger_id=expected)
    assert f"ada.{abandoned}@example.com" in str(message)
    client.close()

    # What an operator reads: the Kafka clients speak through quoteflow's logging, and
    # the processor's coordinator lookups (one per transactional producer) are DEBUG.
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("cdc", "process", "sink")}
    for name, text in logs.items():
        raw = [line for line in text.splitlines() if re.match(r"%\d", line)]
        assert not raw, f"{name}: librdkafka printed on its own: {raw[:3]}"
    assert "Discovered coordinator" not in logs["process"]

    # docker-compose.yml's health check, natively: each component's loop beats...
    for name in ("cdc", "process", "sink"):
        healthy = _health(tmp_path / f"{name}.alive")
        assert healthy.returncode == 0, f"{name}: {healthy.stderr}"
    # ...and a frozen one (its loop stuck) is unhealthy within the max age.
    sink = children[-1].process
    sink.send_signal(signal.SIGSTOP)
    try:
        time.sleep(4)
        stuck = _health(tmp_path / "sink.alive", "--max-age", "3")
    finally:
        sink.send_signal(signal.SIGCONT)
    assert stuck.returncode == 1 and "its loop is stuck" in stuck.stderr, stuck.stderr


def _health(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    return subprocess.run([sys.executable, "-m", "quoteflow", "health", *args], text=True,
                          env={**env, "QUOTEFLOW_HEALTH__FILE": str(path)},
                          capture_output=True, timeout=60)  # fmt: skip


def _second_processor(pipeline: dict[str, Any], tmp_path: Path, app_id: str,
                      rules_version: str) -> WorkerProcess:
    """Another `quoteflow process` on the pipeline's topics: its own app id (no state, the
    change topics read from the start) and rules version, as a new deployment would be.
    Among the pipeline's children, so it is stopped with them."""
    rules_file = tmp_path / "rules-b.toml"
    rules_file.write_text(rules_text(rules_version))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    child = WorkerProcess(["-m", "quoteflow", *compose_command("process")], {
        **env, "QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER": "true",
        "QUOTEFLOW_STREAMS__APP_ID": app_id,
        "QUOTEFLOW_HEALTH__FILE": str(tmp_path / "process-b.alive"),
        "QUOTEFLOW_TOPICS__PREFIX": pipeline["prefix"],
        "QUOTEFLOW_STREAMS__DATA_DIR": str(tmp_path / "streams-b"),
        "QUOTEFLOW_STREAMS__RULES_FILE": str(rules_file),
        "QUOTEFLOW_STREAMS__TICK_INTERVAL_S": "1",
    }, tmp_path / "process-b.log")  # fmt: skip
    pipeline["children"].append(child)
    return child


def _abandoned_quotes(settings: Settings, count: int, *, age: timedelta) -> list[int]:
    """``count`` quotes (each its own consenting customer) created ``age`` ago, never
    accepted: each is due an offer at its deadline (the rules' delay after creation)."""
    first = random.randrange(10**12, 2 * 10**12)
    ids = [first + n for n in range(count)]
    at = datetime.now(UTC) - age
    pg = settings.postgres
    with psycopg.connect(pg.conninfo(pg.crm_database), autocommit=True) as crm:
        for customer_id in ids:
            crm.execute(
                "INSERT INTO public.customers (customer_id, first_name, last_name, email,"
                " marketing_consent, timezone) VALUES (%s, 'Ada', 'Lovelace', %s, true,"
                " 'Europe/London')", (customer_id, f"ada.{customer_id}@example.com"),
            )  # fmt: skip
    with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as qms:
        for quote_id in ids:
            qms.execute(
                "INSERT INTO public.quotes (quote_id, quote_ref, customer_id, product_code,"
                " channel, premium, currency, status, valid_until, created_at, updated_at)"
                " VALUES (%s, %s, %s, 'MOTOR-COMP', 'WEB', 456.00, 'GBP', 'QUOTED',"
                " current_date + 30, %s, %s)",
                (quote_id, f"Q-E2E-{quote_id}", quote_id, at, at),
            )  # fmt: skip
    return ids


def test_a_second_processor_app_under_new_rules_mails_no_quote_twice(
    pipeline: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    """Issue 16 item 4: a processor started under a new app id and a new rules version
    reads the change topics from the start and re-decides every quote, each with a new
    trigger id; the one sink mails each quote once and says DUPLICATE for the second."""
    # Due 20 s from now (the rules' delay is a minute): a deadline already past when the
    # processor first reads the quote races its customer's row, and a quote decided
    # before its customer is read waits out the unmatched grace (10 min) instead.
    quotes = _abandoned_quotes(settings, 6, age=timedelta(seconds=40))
    version, children, prefix = pipeline["version"], pipeline["children"], pipeline["prefix"]
    client = SandboxClient(pipeline["sandbox"].url)
    first = {q: trigger_id(q, version) for q in quotes}

    def attempts() -> dict[str, int]:  # requests received per trigger, whatever the answer
        return {t: n.get("received", 0) for t, n in client.triggers().items()}

    _wait("every quote's first offer", lambda: all(attempts().get(t, 0) >= 1
                                                   for t in first.values()),
          240, children)  # fmt: skip

    # A new deployment: another app id (no state, offsets from the start), new rules.
    version_b = f"{version}-b"
    _second_processor(pipeline, tmp_path, f"{version}-app-b", version_b)
    second = {q: trigger_id(q, version_b) for q in quotes}

    def receipts() -> dict[str, dict[str, Any]]:
        return {r["trigger_id"]: r for r in decoded(
            settings, prefix + "quoteflow.esp.deliveries", "esp_delivery_receipt")}  # fmt: skip

    _wait("the second app's triggers to reach the sink",
          lambda: set(second.values()) <= set(receipts()), 240, children)  # fmt: skip
    time.sleep(3)  # anything else the sink read is finished too
    got = receipts()
    for q in quotes:
        assert got[first[q]]["status"] == "SENT", q
        dup = got[second[q]]
        assert dup["status"] == "DUPLICATE" and first[q] in dup["error"], dup
    counts = attempts()
    per_quote = {q: counts.get(first[q], 0) + counts.get(second[q], 0) for q in quotes}
    assert per_quote == dict.fromkeys(quotes, 1)  # each quote e-mailed once, ever
    client.close()
