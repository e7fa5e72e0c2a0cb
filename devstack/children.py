"""quoteflow components as child processes (demo, benchmarks, tests), watched from outside.

Each faust worker runs as its own process (as in production: a worker owns its
event loop and signals), configured through the environment like any other
``quoteflow`` process. Progress is read from the outside, from the offsets the
worker's consumer group committed: under exactly-once those are committed in
the same transaction as the outputs, so "committed up to the end" means done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from devstack.errors import BenchError
from quoteflow.settings import Settings, SinkSettings


class WorkerProcess:
    """A child process whose output goes to a log file, kept for the error message."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *argv], env=dict(env), stdout=self._file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise BenchError(f"a benchmark worker exited ({self.process.returncode}); its log "
                             f"{self.log} ends with: " + " | ".join(tail))  # fmt: skip

    def rss_mb(self) -> tuple[float, float]:
        """(resident now, peak resident) in MiB, from /proc."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0]) / 1024
        return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it with ``sig`` (SIGKILL: a crash); SIGKILL anyway after 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._file.close()


def child_env(config_file: Path | None, **settings: str) -> dict[str, str]:
    """This process's environment, its config file, and the given ``QUOTEFLOW_*`` values."""
    env = dict(os.environ)
    if config_file is not None:
        env["QUOTEFLOW_CONFIG"] = str(config_file)
    env.update(settings)
    return env


class GroupProgress:
    """The committed offsets of one consumer group, read without joining it."""

    def __init__(self, settings: Settings, group: str) -> None:
        self._consumer = Consumer({
            **settings.kafka.as_librdkafka_dict(), "group.id": group,
            "enable.auto.commit": False,
        })  # fmt: skip

    def committed(self, topic: str, partitions: int) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: max(tp.offset, 0)
                for tp in self._consumer.committed(tps, timeout=10)}  # fmt: skip

    def wait_until(self, topic: str, ends: Mapping[int, int], *, timeout_s: float,
                   worker: WorkerProcess, what: str) -> float:  # fmt: skip
        """Poll until every partition of ``topic`` is committed up to ``ends``; the time then."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = self.committed(topic, len(ends))
            if all(done.get(p, 0) >= end for p, end in ends.items()):
                return time.perf_counter()
            worker.check()
            if time.monotonic() > deadline:
                behind = sum(max(end - done.get(p, 0), 0) for p, end in ends.items())
                raise BenchError(f"{what}: {behind} records still uncommitted after {timeout_s:.0f}"
                                 f" s (worker log: {worker.log})")  # fmt: skip
            time.sleep(0.05)

    def close(self) -> None:
        self._consumer.close()


def sink_env(sink: SinkSettings, topic_prefix: str, **extra: str) -> dict[str, str]:
    """A child ``quoteflow sink``'s environment: this one's, with ``sink``'s settings.

    ``topic_prefix`` is the pipeline's ``topics.prefix``: the sink reads and writes the
    topics of the run it belongs to.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_SINK__")}
    env["QUOTEFLOW_TOPICS__PREFIX"] = topic_prefix
    values = {
        "PROVIDER": sink.provider, "BASE_URL": sink.base_url or "",
        "SECRET": sink.secret.get_secret_value() if sink.secret else "",
        "GROUP_ID": sink.group_id,
        "CUSTOMERIO__SITE_ID": sink.customerio.site_id or "",
        "SENDGRID__FROM_EMAIL": sink.sendgrid.from_email or "",
        "BRAZE__CAMPAIGN_ID": sink.braze.campaign_id or "",
        "ACCEPT_REPLAYS": str(sink.accept_replays).lower(),
        "CONCURRENCY": str(sink.concurrency), "READ_TIMEOUT_S": str(sink.read_timeout_s),
        "RETRY_INITIAL_S": str(sink.retry_initial_s), "RETRY_MAX_S": str(sink.retry_max_s),
        "COMMIT_INTERVAL_S": str(sink.commit_interval_s),
        "SESSION_TIMEOUT_S": str(sink.session_timeout_s),
    }  # fmt: skip
    env.update({f"QUOTEFLOW_SINK__{k}": v for k, v in values.items()})
    env.update(extra)
    return env
