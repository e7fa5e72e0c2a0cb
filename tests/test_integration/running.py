"""A pipeline started the way docker-compose.yml starts one, natively: shared by the tests.

`quoteflow cdc`, `process` and `sink` run as child processes with the very
commands compose runs (:func:`tests.helpers.compose_command`), on topics,
replication slots, consumer groups and state of their own (one ``topics.prefix``
for all three), the sink delivering to an in-process ESP sandbox; everything is
removed on the way out, so tests never see each other's records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient

from connectors.cdc.sources import CDC_SOURCES
from devstack.children import WorkerProcess, sink_env
from devstack.esp_sandbox import Sandbox, SandboxConfig
from quoteflow.settings import Settings, load_settings
from quoteflow.topics.admin import TopicAdmin
from schemas.serde import serde_from_settings
from tests.helpers import compose_command, delete_subjects, read_to_end
from tests.test_connectors.conftest import drop_slot

#: The pipeline tests' rules: one minute's delay, no quiet hours, one offer; holdout and the
#: offer's code are the test's to choose.
RULES = """
version = "{version}"
[delay]
default_minutes = 1
[holdout]
percent = {holdout}
[quiet_hours]
start = "00:00"
end = "00:00"
[[offers]]
code = "{offer}"
description = "5% off"
discount_pct = 5
template_id = "t-welcome"
subject = "Your quote is waiting"
"""


def rules_text(version: str, *, offer: str = "WELCOME-5", holdout: int = 0) -> str:
    return RULES.format(version=version, offer=offer, holdout=holdout)


def decoded(settings: Settings, topic: str, schema: str) -> list[dict[str, Any]]:
    """Every committed record of ``topic``, decoded, read up to its end (never a timeout)."""
    serde = serde_from_settings(settings.schema_registry)
    try:
        return [serde.decode(schema, value, topic=topic)
                for _, value in read_to_end(settings, topic) if value]  # fmt: skip
    finally:
        serde.close()


@dataclass
class Pipeline:
    sandbox: Sandbox
    children: list[WorkerProcess]
    prefix: str


def wait_for(what: str, check: Callable[[], bool], timeout_s: float,
             children: list[WorkerProcess]) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while not check():
        for child in children:
            child.check()  # a component that died says so at once, with its log
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)


@contextlib.contextmanager
def running_pipeline(settings: Settings, tmp_path: Path, *, run: str, prefix: str,
                     rules_file: Path) -> Iterator[Pipeline]:  # fmt: skip
    """cdc, process (deciding with ``rules_file``) and sink on topics ``prefix``*, up."""
    sandbox = Sandbox(SandboxConfig(port=0))
    sandbox.start()
    slot_prefix = f"e2e_{run}"
    admin = TopicAdmin(settings)
    specs = [dataclasses.replace(spec, name=prefix + spec.name) for spec in admin.catalogue]
    admin.create(specs)
    base = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    common = {**base, "QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER": "true"}
    children: list[WorkerProcess] = []
    try:
        cdc = WorkerProcess(["-m", "quoteflow", *compose_command("cdc")], {
            **common, "QUOTEFLOW_CDC__SLOT_PREFIX": slot_prefix,
            "QUOTEFLOW_HEALTH__FILE": str(tmp_path / "cdc.alive"),
            "QUOTEFLOW_TOPICS__PREFIX": prefix,
            "QUOTEFLOW_CDC__STATE_DIR": str(tmp_path / "cdc"), "QUOTEFLOW_CDC__SNAPSHOT": "never",
            "QUOTEFLOW_CDC__HEARTBEAT_INTERVAL_S": "1",
        }, tmp_path / "cdc.log")  # fmt: skip
        children.append(cdc)

        def slots_active() -> bool:
            with psycopg.connect(settings.postgres.conninfo(settings.postgres.qms_database),
                                 autocommit=True) as conn:  # fmt: skip
                rows = conn.execute("SELECT count(*) FROM pg_replication_slots"
                                    " WHERE slot_name LIKE %s AND active",
                                    (f"{slot_prefix}%",)).fetchone()  # fmt: skip
            return rows is not None and rows[0] == 2

        wait_for("the CDC's two slots", slots_active, 60, children)
        children.append(WorkerProcess(["-m", "quoteflow", *compose_command("process")], {
            **common, "QUOTEFLOW_STREAMS__APP_ID": f"e2e-{run}",
            "QUOTEFLOW_HEALTH__FILE": str(tmp_path / "process.alive"),
            "QUOTEFLOW_TOPICS__PREFIX": prefix,
            "QUOTEFLOW_STREAMS__DATA_DIR": str(tmp_path / "streams"),
            "QUOTEFLOW_STREAMS__RULES_FILE": str(rules_file),
            "QUOTEFLOW_STREAMS__TICK_INTERVAL_S": "1",
        }, tmp_path / "process.log"))  # fmt: skip
        sink_settings = load_settings(sink={
            **sandbox.sink_overrides("customerio"), "group_id": f"e2e-sink-{run}",
            "read_timeout_s": 5.0, "commit_interval_s": 0.5,
        }).sink  # fmt: skip
        children.append(WorkerProcess(["-m", "quoteflow", *compose_command("sink")],
                                      sink_env(sink_settings, prefix,
                                               QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER="true",
                                               QUOTEFLOW_HEALTH__FILE=str(tmp_path / "sink.alive")),
                                      tmp_path / "sink.log"))  # fmt: skip
        yield Pipeline(sandbox, children, prefix)
    finally:
        for child in reversed(children):
            child.stop()
        sandbox.stop()
        for source in CDC_SOURCES:
            with contextlib.suppress(Exception):
                drop_slot(settings, source, f"{slot_prefix}_{source.server_name}")
        for spec in specs:
            delete_subjects(settings, spec.name)
        kafka = AdminClient(settings.kafka.as_librdkafka_dict())
        for future in kafka.delete_topics([s.name for s in specs]).values():
            with contextlib.suppress(Exception):  # cleanup is best effort
                future.result()
