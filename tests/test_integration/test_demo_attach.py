"""`quoteflow demo --attach` against a pipeline that is already running, natively.

The pipeline is started the way docker-compose.yml starts one (cdc, process and
sink with compose's own commands, on a topic prefix of their own, the processor
deciding with the demo's rules file as compose's ``rules`` config gives it), the
sink delivering to an in-process ESP sandbox; then the demo runs with the
command compose's ``demo`` service runs, pointed at this machine's sandbox and
prefix. What is checked is what a person gets (the exit status and the JSON on
the last line) and that the demo started and removed nothing of the pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from devstack.demo.run import DEMO_RULES
from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from tests.helpers import compose_command, drop_topics, free_ports
from tests.test_integration.running import running_pipeline

pytestmark = pytest.mark.integration


def _demo(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """compose's demo command, natively; the rules file as compose gives it to the demo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    env["QUOTEFLOW_STREAMS__RULES_FILE"] = str(DEMO_RULES)
    return subprocess.run([sys.executable, "-m", "quoteflow", *compose_command("demo"), *args],
                          env=env, capture_output=True, text=True, timeout=timeout_s,
                          check=False)  # fmt: skip


@pytest.mark.timeout(420)
def test_demo_attached_to_a_running_pipeline_delivers_every_offer_and_leaves_it_running(
    stack: object, settings: Settings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    prefix = f"test.attach.{run}."
    with running_pipeline(settings, tmp_path, run=run, prefix=prefix,
                          rules_file=DEMO_RULES) as pipeline:  # fmt: skip
        done = _demo("--quick", "--sandbox", pipeline.sandbox.url, "--topic-prefix", prefix,
                     timeout_s=360)  # fmt: skip
        assert done.returncode == 0, (
            f"exit {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr}")  # fmt: skip
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["abandoned"] > 0
        assert summary["triggered"] > 0
        assert summary["delivered"] == summary["triggered"]
        assert summary["as_planned"], done.stdout[-3000:]
        assert summary["deadline_to_esp_p99_ms"] is not None
        assert summary["components"] == {}  # it started no component of its own
        assert summary["inbox"] == f"{pipeline.sandbox.url.rstrip('/')}/"
        assert "attached: topics " + prefix in done.stdout
        for child in pipeline.children:  # the pipeline is still up: the demo left it be
            child.check()
        print(f"quoteflow demo --attach --quick: {summary['seconds']}s, {summary['quotes']}"
              f" quotes, {summary['triggered']} triggered, {summary['delivered']} delivered")
    demo_run = summary["run"]
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    assert not [t for t in admin.list_topics(timeout=10).topics
                if t.startswith(f"demo.{demo_run}")], "the attached demo made topics"  # fmt: skip
    pg = settings.postgres
    with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE %s",
                           (f"demo_{demo_run}_%",)).fetchone()  # fmt: skip
    assert row is not None and row[0] == 0, "the attached demo made replication slots"


def test_attached_demo_says_in_one_line_that_the_pipelines_topics_are_missing(
    stack: object,
) -> None:
    prefix = f"test.attach.none.{uuid.uuid4().hex[:8]}."
    (port,) = free_ports(1)
    done = _demo("--quick", "--sandbox", f"http://127.0.0.1:{port}", "--topic-prefix", prefix,
                 timeout_s=120)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("quoteflow: error: the pipeline's topics are missing:"), line
    assert f"{prefix}quoteflow.abandonment.triggers" in line and "--topic-prefix" in line


def test_attached_demo_says_in_one_line_that_the_sandbox_does_not_answer(
    stack: object, settings: Settings
) -> None:
    prefix = f"test.attach.nosandbox.{uuid.uuid4().hex[:8]}."
    admin = TopicAdmin(settings)
    admin.create([dataclasses.replace(s, name=prefix + s.name) for s in admin.catalogue])
    (port,) = free_ports(1)
    try:
        done = _demo("--quick", "--sandbox", f"http://127.0.0.1:{port}", "--topic-prefix",
                     prefix, timeout_s=120)  # fmt: skip
    finally:
        drop_topics(settings, (prefix,), subjects_of=prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"quoteflow: error: the ESP sandbox at http://127.0.0.1:{port}"
                           " did not answer"), line  # fmt: skip
    assert "check the esp-sandbox service" in line
