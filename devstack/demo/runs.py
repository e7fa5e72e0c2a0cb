"""Each demo run's own names, and the removal of what a run leaves behind.

Every run works on names of its own (topics ``demo.<run>.*`` and the processor's
``demo.<run>-*``, replication slots ``demo_<run>_*``, consumer groups, state
directories), so a second run never reads the first one's triggers, offsets or
table state and the numbers of each run are its own. A run removes its Kafka,
registry and PostgreSQL state when it ends; one that could not (killed, machine
rebooted) is removed by the next run, which finds its directory with a dead
pid. Replication slots matter most: a forgotten slot makes PostgreSQL keep WAL
for ever. Log files are kept for the last :data:`KEEP_LOGS` runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient

from connectors.cdc.sources import CDC_SOURCES
from quoteflow.settings import Settings
from schemas.subjects.admin import delete_subjects

#: Run directories (logs) kept; older ones are deleted by the next run.
KEEP_LOGS = 5
#: An interrupted run stays resumable this long (its slots keep WAL meanwhile); only the
#: newest one does. Older ones are removed by the next run like crashed ones.
RESUMABLE_FOR_S = 3600.0


@dataclass(frozen=True)
class Resume:
    """Where an interrupted run stopped: enough to rebuild its plan and carry on."""

    run: str
    started: datetime
    quick: bool
    elapsed_s: float
    done: frozenset[int]
    #: The earlier sandbox's deliveries per trigger id (that process is gone).
    delivered: dict[str, int]
    stopped_at: float

    def as_json(self) -> dict[str, object]:
        return {"run": self.run, "started": self.started.isoformat(), "quick": self.quick,
                "elapsed_s": self.elapsed_s, "done": sorted(self.done),
                "delivered": self.delivered, "stopped_at": self.stopped_at}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resume:
        return cls(str(data["run"]), datetime.fromisoformat(str(data["started"])),
                   bool(data["quick"]), float(data["elapsed_s"]),
                   frozenset(int(i) for i in data["done"]),
                   {str(k): int(v) for k, v in dict(data["delivered"]).items()},
                   float(data["stopped_at"]))  # fmt: skip


@dataclass(frozen=True)
class RunNames:
    """Every name a run uses, derived from its id (fixed width: no id prefixes another)."""

    run: str

    @classmethod
    def new(cls, now: datetime) -> RunNames:
        return cls(f"{now.astimezone(UTC):%Y%m%d%H%M%S}{os.getpid() % 10_000:04d}")

    @property
    def topic_prefix(self) -> str:
        return f"demo.{self.run}."

    @property
    def app_id(self) -> str:
        """The processor's app id: its internal topics are ``<app_id>-...``."""
        return f"demo.{self.run}"

    @property
    def sink_group(self) -> str:
        return f"demo.{self.run}.sink"

    @property
    def slot_prefix(self) -> str:
        return f"demo_{self.run}"

    @property
    def topics_start(self) -> str:
        """What every topic (and registry subject) of the run starts with."""
        return f"demo.{self.run}"


def runs_dir(settings: Settings) -> Path:
    return settings.stack.home / "demo" / "runs"


def _alive(pid: int, marker: str) -> bool:
    """Is ``pid`` running *and* still the process we recorded (pids are reused)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def write_record(run_dir: Path, children: dict[str, int], resume: Resume | None = None) -> None:
    """What a later run needs to clean up after this one if it dies (or to resume it)."""
    record: dict[str, object] = {"pid": os.getpid(), "children": children}
    if resume is not None:
        record["resume"] = resume.as_json()
    (run_dir / "run.json").write_text(json.dumps(record))


def load_resume(settings: Settings, run: str) -> Resume | None:
    """The resumable state of interrupted run ``run``, or None (no such run, finished,
    crashed, or running now)."""
    record_file = runs_dir(settings) / run / "run.json"
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        return None
    if "resume" not in record or _alive(int(record.get("pid", 0)), "demo"):
        return None
    try:
        return Resume.from_json(record["resume"])
    except (KeyError, TypeError, ValueError):
        return None


def remove_run_state(settings: Settings, names: RunNames, *, slot_wait_s: float = 20.0) -> None:
    """Drop the run's slots, topics, subjects and consumer groups; best effort per item
    (a cleanup that fails half-way must not hide the demo's own result)."""
    for source in CDC_SOURCES:
        slot = f"{names.slot_prefix}_{source.server_name}"
        with contextlib.suppress(psycopg.Error):
            _drop_slot(settings, source.database(settings.postgres), slot, slot_wait_s)
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    with contextlib.suppress(Exception):
        delete_subjects(settings, names.topics_start)
    with contextlib.suppress(Exception):
        ours = [t for t in admin.list_topics(timeout=10).topics
                if t.startswith(names.topics_start)]  # fmt: skip
        for future in (admin.delete_topics(ours) if ours else {}).values():
            with contextlib.suppress(Exception):
                future.result()
    with contextlib.suppress(Exception):
        for future in admin.delete_consumer_groups([names.app_id, names.sink_group]).values():
            with contextlib.suppress(Exception):
                future.result()


def _drop_slot(settings: Settings, database: str, slot: str, wait_s: float) -> None:
    """Drop ``slot`` once no walsender holds it (a stopped CDC's takes a moment to go)."""
    with psycopg.connect(settings.postgres.conninfo(database), autocommit=True) as conn:
        deadline = time.monotonic() + wait_s
        while True:
            row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                               (slot,)).fetchone()  # fmt: skip
            if row is None:
                return
            if not row[0] or time.monotonic() > deadline:
                if row[0]:  # still held: end the walsender that holds it (ours, by name)
                    conn.execute("SELECT pg_terminate_backend(active_pid) FROM"
                                 " pg_replication_slots WHERE slot_name = %s", (slot,))  # fmt: skip
                    time.sleep(0.5)
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                return
            time.sleep(0.2)


def clean_stale_runs(settings: Settings, current: str, now: float | None = None) -> list[str]:
    """Remove the state of earlier runs whose demo process is gone (and stop any child of
    theirs still running), except the newest interrupted run while it may be resumed;
    trim old log directories. The run ids cleaned."""
    root = runs_dir(settings)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    cleaned = []
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name != current)
    resumable = [d.name for d in dirs if (r := load_resume(settings, d.name)) is not None
                 and now - r.stopped_at < RESUMABLE_FOR_S]  # fmt: skip
    keep = resumable[-1:]
    for run_dir in dirs:
        if run_dir.name in keep:
            continue
        record_file = run_dir / "run.json"
        if not record_file.is_file():
            continue
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            record = {}
        if _alive(int(record.get("pid", 0)), "demo"):
            continue  # another demo, running now
        for pid in record.get("children", {}).values():
            if _alive(int(pid), "quoteflow"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(pid), signal.SIGKILL)
        remove_run_state(settings, RunNames(run_dir.name), slot_wait_s=5.0)
        record_file.unlink(missing_ok=True)
        for state in ("cdc", "streams"):
            shutil.rmtree(run_dir / state, ignore_errors=True)
        cleaned.append(run_dir.name)
    for old in dirs[:-KEEP_LOGS] if len(dirs) > KEEP_LOGS else []:
        if not (old / "run.json").exists():
            shutil.rmtree(old, ignore_errors=True)
    return cleaned
