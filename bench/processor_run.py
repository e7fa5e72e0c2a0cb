"""One ``quoteflow bench streams`` run: its names, topics, workers' environment and clean-up."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from bench import workload as wl
from devstack.children import child_env
from devstack.errors import BenchError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics import DEAD_LETTER, DECISIONS, TRIGGERS
from schemas.serde import Serde
from schemas.subjects.admin import delete_subjects

#: The rules' delay of every run (``wl.RULES_TOML``).
DELAY_MINUTES = 1


@dataclass
class Run:
    """One benchmark run's names, clients and scratch directory."""

    settings: Settings
    config_file: Path | None
    serde: Serde
    report: Reporter
    home: Path
    run_id: str
    partitions: int
    admin: AdminClient
    created: list[str]

    def prefix(self, phase: str) -> str:
        return f"bench.streams.{self.run_id}.{phase}."

    def app_id(self, phase: str) -> str:
        return f"bench-streams-{self.run_id}-{phase}"

    def create_topics(self, names: Sequence[str], *, compact: Sequence[str] = ()) -> None:
        new = [NewTopic(n, 1 if n.endswith((wl.WATERMARKS, DEAD_LETTER)) else self.partitions,
                        1, config={"cleanup.policy": "compact"} if n in compact else {})
               for n in names]  # fmt: skip
        for name, future in self.admin.create_topics(new).items():
            try:
                future.result()
            except KafkaException as exc:
                raise BenchError(f"cannot create topic {name}: {exc}") from None
            self.created.append(name)

    def phase_topics(self, phase: str) -> None:
        prefix = self.prefix(phase)
        self.create_topics([prefix + t for t in (wl.QUOTES, wl.CUSTOMERS, TRIGGERS, DECISIONS,
                                                 wl.WATERMARKS, DEAD_LETTER)])  # fmt: skip

    def worker_env(self, phase: str) -> dict[str, str]:
        return child_env(
            self.config_file,
            QUOTEFLOW_TOPICS__PREFIX=self.prefix(phase),
            QUOTEFLOW_STREAMS__APP_ID=self.app_id(phase),
            QUOTEFLOW_STREAMS__DATA_DIR=str(self.home / phase),
            QUOTEFLOW_STREAMS__RULES_FILE=str(self.home / "rules.toml"),
            QUOTEFLOW_TOPICS__PARTITIONS=str(self.partitions),
            # The outputs' subjects are the prefixed topics' own: registered for the run.
            QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER="true",
            QUOTEFLOW_LOG__LEVEL="WARNING",
        )  # fmt: skip


def produce(source: wl.Source, topic: str, values: Sequence[bytes], keys: Sequence[int]) -> None:
    key_topic = wl.CUSTOMERS if topic.endswith(wl.CUSTOMERS) else wl.QUOTES
    source.produce_raw(topic, values, keys, key_topic=key_topic)


def cleanup(run: Run, *, keep_home: bool) -> None:
    """Delete the run's topics and the subjects its workers registered; best effort."""
    names = list(run.created)
    with contextlib.suppress(Exception):
        topics = run.admin.list_topics(timeout=10).topics
        names += [t for t in topics if t.startswith(f"bench-streams-{run.run_id}")]
        for future in run.admin.delete_topics(sorted(set(names))).values():
            with contextlib.suppress(Exception):
                future.result()
    with contextlib.suppress(Exception):
        delete_subjects(run.settings, f"bench.streams.{run.run_id}.")
    run.serde.close()
    if not keep_home:
        shutil.rmtree(run.home, ignore_errors=True)
