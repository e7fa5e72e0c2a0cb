"""A worker restarted after ten real minutes down catches up without a fence: issue 15 item 17.

The scenario as seen end to end, in real wall-clock time: `quoteflow cdc` runs on the real
QMS and CRM databases while a workload writes quotes and customers continuously; the
worker (`quoteflow process`, shipped settings, the end-to-end test's 1-minute delay) is
stopped in the middle of it, ten minutes of changes and watermarks pile up, and a new
worker under the same app id starts on them. Every trigger must arrive once, and the
worker must catch up inside its transactions: a transaction that outlives the broker's
``transaction.timeout.ms`` is fenced, and although the worker then starts over
(:mod:`streams.fencing`), that is a crash with extra steps — the partition's decisions
wait a minute or more, and a fence that recurs is a crash loop.

``test_streams/test_backlog.py`` writes the same volume in seconds with compressed event
time; it never reproduced the fence. This scenario, on main as of f6159b9, fenced in one
of four ten-minute runs: one by-customer partition's transaction stayed open from the
first seconds of the catch-up (its input offsets never became committable, 920 sends in it
after 16 s) until the broker aborted it at 60 s (``ProducerFenced`` on
``<app_id>-watermark-markers-changelog``); the worker then started over and every trigger
arrived, late. The first run of this test on the same code lost one offer of 1,161, fence-free.

Takes about 14 minutes: marked ``slow`` so it can be selected (``-m slow``) or left out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from connectors.cdc.sources import CDC_SOURCES
from devstack.children import WorkerProcess
from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from tests.helpers import delete_subjects
from tests.test_connectors.conftest import drop_slot
from tests.test_integration.running import decoded, rules_text
from tests.test_integration.test_pipeline import _wait

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

OUTAGE_S = 600
#: The workload runs this long before the stop, and after the restart.
BEFORE_S, AFTER_S = 60, 60
QUOTES_PER_S = 2
#: One quote in this many is accepted ACCEPT_AFTER_S after it was quoted (inside the delay).
ACCEPT_EVERY, ACCEPT_AFTER_S = 5, 15
DELAY_S = 60  # the rules' 1-minute delay (running.RULES)
#: What a fenced worker writes (faust's warnings, streams.fencing's start-over line), and
#: the warning of a partition whose transaction cannot commit (streams.transactions).
FENCE_SIGNS = ("ProducerFenced", "producer was fenced", "input cannot be committed")


class Workload:
    """Customers with consent and one quote each, written to the real databases at a steady
    rate from a thread; every ``ACCEPT_EVERY``-th quote accepted in time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = random.randrange(10**12, 2 * 10**12)  # ids of this test's own
        self.quoted: list[int] = []
        self.accepted: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.failure is not None:
            raise self.failure

    def abandoned(self) -> set[int]:
        """The quotes that must get an offer: quoted and never accepted."""
        return set(self.quoted) - self.accepted

    def _run(self) -> None:
        pg = self.settings.postgres
        pending: list[tuple[float, int]] = []
        try:
            with (
                psycopg.connect(pg.conninfo(pg.crm_database), autocommit=True) as crm,
                psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as qms,
            ):
                start = time.monotonic()
                while not self._stop.is_set():
                    while len(self.quoted) < int((time.monotonic() - start) * QUOTES_PER_S):
                        quote_id = self.base + len(self.quoted)
                        self._quote(crm, qms, quote_id)
                        self.quoted.append(quote_id)
                        if quote_id % ACCEPT_EVERY == 0:
                            pending.append((time.monotonic() + ACCEPT_AFTER_S, quote_id))
                    while pending and pending[0][0] <= time.monotonic():
                        _, quote_id = pending.pop(0)
                        qms.execute("UPDATE public.quotes SET status = 'ACCEPTED', updated_at ="
                                    " now() WHERE quote_id = %s", (quote_id,))  # fmt: skip
                        self.accepted.add(quote_id)
                    self._stop.wait(0.05)
        except BaseException as exc:  # reported by stop()
            self.failure = exc

    @staticmethod
    def _quote(crm: psycopg.Connection[Any], qms: psycopg.Connection[Any], quote_id: int) -> None:
        now = datetime.now(UTC)
        crm.execute(
            "INSERT INTO public.customers (customer_id, first_name, last_name, email,"
            " marketing_consent, timezone) VALUES (%s, 'Ada', 'Lovelace', %s, true,"
            " 'Europe/London')", (quote_id, f"ada.{quote_id}@example.com"),
        )  # fmt: skip
        qms.execute(
            "INSERT INTO public.quotes (quote_id, quote_ref, customer_id, product_code,"
            " channel, premium, currency, status, valid_until, created_at, updated_at)"
            " VALUES (%s, %s, %s, 'MOTOR-COMP', 'WEB', 456.00, 'GBP', 'QUOTED',"
            " current_date + 30, %s, %s)", (quote_id, f"Q-BL-{quote_id}", quote_id, now, now),
        )  # fmt: skip


@pytest.fixture
def pipeline(stack: object, settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The CDC running on topics and slots of this test's own, and the worker's environment."""
    run = uuid.uuid4().hex[:8]
    version = f"backlog-{run}"
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(rules_text(version))
    slot_prefix = f"backlog_{run}"
    prefix = f"test.backlog.{run}."
    app_id = f"backlog-{run}"
    admin = TopicAdmin(settings)
    specs = [dataclasses.replace(spec, name=prefix + spec.name) for spec in admin.catalogue]
    admin.create(specs)
    base = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    common = {**base, "QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER": "true"}
    cdc = WorkerProcess(["-m", "quoteflow", "cdc"], {
        **common, "QUOTEFLOW_CDC__SLOT_PREFIX": slot_prefix, "QUOTEFLOW_TOPICS__PREFIX": prefix,
        "QUOTEFLOW_CDC__STATE_DIR": str(tmp_path / "cdc"), "QUOTEFLOW_CDC__SNAPSHOT": "never",
    }, tmp_path / "cdc.log")  # fmt: skip
    # The worker as shipped (tick, commit interval, session timeout), INFO to see its catch-up.
    worker_env = {
        **common, "QUOTEFLOW_STREAMS__APP_ID": app_id, "QUOTEFLOW_TOPICS__PREFIX": prefix,
        "QUOTEFLOW_STREAMS__DATA_DIR": str(tmp_path / "streams"),
        "QUOTEFLOW_STREAMS__RULES_FILE": str(rules_file), "QUOTEFLOW_LOG__LEVEL": "INFO",
    }  # fmt: skip
    try:

        def slots_active() -> bool:
            with psycopg.connect(settings.postgres.conninfo(settings.postgres.qms_database),
                                 autocommit=True) as conn:  # fmt: skip
                rows = conn.execute("SELECT count(*) FROM pg_replication_slots"
                                    " WHERE slot_name LIKE %s AND active",
                                    (f"{slot_prefix}%",)).fetchone()  # fmt: skip
            return rows is not None and rows[0] == 2

        _wait("the CDC's two slots", slots_active, 60, [cdc])
        yield {"version": version, "prefix": prefix, "cdc": cdc, "worker_env": worker_env}
    finally:
        cdc.stop()
        for source in CDC_SOURCES:
            with contextlib.suppress(Exception):
                drop_slot(settings, source, f"{slot_prefix}_{source.server_name}")
        kafka = AdminClient(settings.kafka.as_librdkafka_dict())
        names = [s.name for s in specs]
        names += [t for t in kafka.list_topics(timeout=10).topics if t.startswith(app_id + "-")]
        for spec in specs:
            delete_subjects(settings, spec.name)
        for future in kafka.delete_topics(names).values():
            with contextlib.suppress(Exception):  # cleanup is best effort
                future.result()


def test_a_worker_started_after_ten_real_minutes_down_catches_up_unfenced_every_trigger_once(
    pipeline: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    cdc, env, version = pipeline["cdc"], pipeline["worker_env"], pipeline["version"]
    workload = Workload(settings)
    first = WorkerProcess(["-m", "quoteflow", "process"], env, tmp_path / "process-1.log")
    second: WorkerProcess | None = None
    try:
        workload.start()
        time.sleep(BEFORE_S)
        first.check()
        first.stop()  # SIGTERM in the middle of the workload: a clean stop
        assert first.process.returncode == 0, (tmp_path / "process-1.log").read_text()[-3000:]
        for _ in range(OUTAGE_S // 10):
            time.sleep(10)
            cdc.check()
        second = WorkerProcess(["-m", "quoteflow", "process"], env, tmp_path / "process-2.log")
        time.sleep(AFTER_S)
        workload.stop()
        want = workload.abandoned()
        assert len(want) > 1000  # ten minutes at 2 quotes/s, a fifth accepted
        topic = pipeline["prefix"] + "quoteflow.abandonment.triggers"

        def offered() -> Counter[int]:
            # Only this test's quotes (the CDC captures every row other tests write too).
            return Counter(t["quote_id"] for t in decoded(settings, topic, "abandonment_trigger")
                           if t["rule_version"] == version and t["quote_id"] in want)  # fmt: skip

        # The last quotes fall due DELAY_S after the workload stops. (A read of the whole
        # topic takes a while: every 10 s is often enough.)
        deadline = time.monotonic() + DELAY_S + 180
        got = offered()
        while set(got) != want and time.monotonic() < deadline:
            second.check()
            cdc.check()
            time.sleep(10)
            got = offered()
        missing = want - set(got)
        if missing:  # what the worker decided for them instead, if anything
            decisions = decoded(settings, pipeline["prefix"] + "quoteflow.abandonment.decisions",
                                 "abandonment_decision")  # fmt: skip
            reasons = {d["quote_id"]: d["reason"] for d in decisions if d["quote_id"] in missing}
            raise AssertionError(f"{len(missing)} of {len(want)} offers missing: "
                                 f"{sorted(missing)[:10]}, decided as {reasons}")  # fmt: skip
        assert sorted(q for q, n in got.items() if n > 1) == []
        log = (tmp_path / "process-2.log").read_text(errors="replace")
        fences = [line for line in log.splitlines() if any(s in line for s in FENCE_SIGNS)]
        assert fences == [], f"{len(fences)} fence lines, the first: {fences[0][:300]}"
        assert second.process.poll() is None, log[-3000:]
    finally:
        workload.stop()
        first.stop()
        if second is not None:
            second.stop()
