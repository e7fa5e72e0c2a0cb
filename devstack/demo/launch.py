"""Starting a run's own pipeline: stack, topics and schemas, then each component as a child.

The order is the one an operator follows: the stack up, the topics and schemas
in place, then the ESP sandbox, the CDC (its slots must exist before the first
write, or the write is never captured), the processor and the sink, each a
supervised child process with its log under the run's directory. Each child
gets the run's own names (slots, topics, group, state directories) through
``QUOTEFLOW_*`` variables, so a run never touches another run's or a real
deployment's state.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from connectors.cdc.sources import CDC_SOURCES
from devstack.children import sink_env
from devstack.demo.observe import SandboxView
from devstack.demo.options import DEMO_RULES, DemoError
from devstack.demo.runs import RunNames, clean_stale_runs, write_record
from devstack.demo.supervisor import Child, Supervisor
from devstack.esp_sandbox import Sandbox, SandboxConfig
from quoteflow.errors import QuoteflowError
from quoteflow.settings import Settings, load_settings


def free_port() -> int:
    """A TCP port nothing listens on now (the sandbox child binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Launch:
    """One run's pipeline being brought up: where its state and logs go, who supervises it."""

    settings: Settings
    config_file: Path | None
    names: RunNames
    dir: Path
    supervisor: Supervisor
    say: Callable[[str], None]

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def prepare(self) -> None:
        """Stack, topics, schemas: idempotent, as `make demo` did before the demo existed."""
        from devstack.stack.local import LocalStack
        from quoteflow.topics.admin import TopicAdmin
        from schemas.subjects.admin import SubjectAdmin

        self.dir.mkdir(parents=True, exist_ok=True)
        write_record(self.dir, {})
        cleaned = clean_stale_runs(self.settings, self.names.run)
        if cleaned:
            self.say(f"removed what {len(cleaned)} interrupted earlier run(s) left behind")
        self.say("stack: bringing up PostgreSQL, Kafka and the Schema Registry (idempotent)")
        # Its progress matters on a fresh clone (installing takes minutes): pass it on.
        started = LocalStack(self.settings).up(lambda line: self.say(f"stack: {line}"))
        self.say(f"stack: {'started ' + ', '.join(started) if started else 'already running'}")
        admin = TopicAdmin(self.settings)
        created = admin.create()
        run_topics = [dataclasses.replace(spec, name=self.names.topic_prefix + spec.name)
                      for spec in admin.catalogue]  # fmt: skip
        admin.create(run_topics)
        self.say(f"topics: catalogue in place ({len(created)} created); this run's under"
                 f" {self.names.topic_prefix}*")  # fmt: skip
        with SubjectAdmin(self.settings) as subjects:
            results = subjects.register()
        refused = [r for r in results if r.refused or r.after.state != "ok"]
        if refused:
            raise DemoError(f"schemas: {len(refused)} subject(s) could not be registered;"
                            " see `quoteflow schemas check`")  # fmt: skip
        self.say(f"schemas: {len(results)} subjects registered (BACKWARD_TRANSITIVE)")

    def _env(self, **values: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("QUOTEFLOW_CDC__", "QUOTEFLOW_STREAMS__"))}  # fmt: skip
        if self.config_file is not None:
            env["QUOTEFLOW_CONFIG"] = str(self.config_file)
        # The run's own topics get their subjects from the first record written.
        env["QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER"] = "true"
        env.update(values)
        return env

    def start_sandbox(self) -> Sandbox:
        """The ESP sandbox's child started on a free port; a Sandbox (never started itself)
        that knows its URLs and what the sink needs to reach it."""
        port = free_port()
        sandbox = Sandbox(SandboxConfig(port=port))
        self.supervisor.start(Child("esp-sandbox", ["esp-sandbox", "--port", str(port)],
                                    self._env(), self.logs / "esp-sandbox.log"))  # fmt: skip
        return sandbox

    def start_pipeline(self, sandbox: Sandbox, view: SandboxView) -> None:
        """Once the sandbox answers: the CDC, the processor and the sink, in that order."""
        names, logs = self.names, self.logs
        self._wait("the ESP sandbox", lambda: _answers(view), 30)
        self.supervisor.start(Child("cdc", ["cdc"], self._env(
            QUOTEFLOW_CDC__SLOT_PREFIX=names.slot_prefix,
            QUOTEFLOW_TOPICS__PREFIX=names.topic_prefix,
            QUOTEFLOW_CDC__STATE_DIR=str(self.dir / "cdc"),
            QUOTEFLOW_CDC__SNAPSHOT="never",  # only this run's writes, not the tables' history
            QUOTEFLOW_CDC__HEARTBEAT_INTERVAL_S="1",
        ), logs / "cdc.log"))  # fmt: skip
        self.record()
        self._wait("the CDC's replication slots", self._slots_active, 60)
        self.supervisor.start(Child("process", ["process"], self._env(
            QUOTEFLOW_STREAMS__APP_ID=names.app_id,
            QUOTEFLOW_TOPICS__PREFIX=names.topic_prefix,
            QUOTEFLOW_STREAMS__DATA_DIR=str(self.dir / "streams"),
            QUOTEFLOW_STREAMS__RULES_FILE=str(DEMO_RULES),
            QUOTEFLOW_STREAMS__TICK_INTERVAL_S="1",
        ), logs / "process.log"))  # fmt: skip
        sink = load_settings(self.config_file, sink={
            **sandbox.sink_overrides("customerio"), "group_id": names.sink_group,
            "commit_interval_s": 0.5,
        }).sink  # fmt: skip
        # No QUOTEFLOW_SINK__ value of the caller's survives, and the provider, URL and key
        # override the config file's: the demo can only e-mail its own sandbox.
        env = {k: v for k, v in self._env().items() if not k.startswith("QUOTEFLOW_SINK__")}
        self.supervisor.start(Child("sink", ["sink"], {**env, **sink_env(sink, names.topic_prefix)},
                                    logs / "sink.log"))  # fmt: skip
        self.record()
        for child in self.supervisor.children:
            self.say(f"{child.name}: pid {child.pid}, log {child.log}")
        self.say(f"ESP sandbox inbox: {sandbox.url}/")

    def record(self) -> None:
        """The children's pids in the run's record: a later run removes what a killed one left."""
        write_record(self.dir, {c.name: c.pid for c in self.supervisor.children if c.pid})

    def _slots_active(self) -> bool:
        """Both sources' slots held by the CDC (pg_replication_slots is cluster-wide)."""
        pg = self.settings.postgres
        with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name"
                               " LIKE %s AND active",
                               (f"{self.names.slot_prefix}\\_%",)).fetchone()  # fmt: skip
        return row is not None and row[0] >= len(CDC_SOURCES)

    def _wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            self.supervisor.check()
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}"
                                f" (logs: {self.logs})")  # fmt: skip
            time.sleep(0.25)


def _answers(sandbox: SandboxView) -> bool:
    try:
        sandbox.delivered()
    except QuoteflowError:
        return False
    return True
