"""Supervise the local Kafka broker: a JVM we start, watch and stop ourselves.

The process is :class:`~devstack.stack.process.Supervised`, marked by the path
of its own server.properties, so a recycled pid or someone else's broker is
never signalled.
"""

from __future__ import annotations

import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from pathlib import Path

from devstack.stack.base import ComponentStatus, port_open, stopped_detail, wait_until
from devstack.stack.java import require_java
from devstack.stack.kafka import config
from devstack.stack.kafka.jars import ensure_jars
from devstack.stack.process import Supervised
from devstack.stack.system import makedirs, pid_alive, run
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings

MIN_JAVA = 17  # Kafka 4.x brokers need Java 17 or newer
STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class _Paths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def pid_file(self) -> Path:
        return self.root / "kafka.pid"


def new_cluster_id() -> str:
    """Kafka's cluster id format: a UUID as unpadded URL-safe base64 (22 chars)."""
    return urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaComponent:
    """Apache Kafka in KRaft mode, one node, on 127.0.0.1."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self._stack = settings.stack
        self._paths = _Paths(settings.stack.home / "kafka")
        self._bootstrap = f"127.0.0.1:{settings.stack.kafka_port}"
        self._process = Supervised(self._paths.pid_file, marker=str(self._paths.properties))

    # -- Component protocol -------------------------------------------------
    def install(self, report: Reporter) -> None:
        self._java(report)
        ensure_jars(self._stack.cache_dir, self._stack.kafka_version, report)

    def up(self, report: Reporter) -> bool:
        if self._our_pid() is not None:
            wait_until(
                self._healthy,
                timeout_s=self._stack.start_timeout_s,
                what=f"Kafka at {self._bootstrap}",
                log_file=self.log_file(),
            )
            report(f"kafka already running at {self._bootstrap}")
            return False
        for port in (self._stack.kafka_port, self._stack.kafka_controller_port):
            if port_open("127.0.0.1", port):
                raise StackError(
                    f"port {port} is in use by another process; stop it or choose other ports"
                    " (settings stack.kafka_port / stack.kafka_controller_port)"
                )
        java = self._java(report)
        jars = ensure_jars(self._stack.cache_dir, self._stack.kafka_version, report)
        self._write_config()
        classpath = f"{jars}/*"
        if not (self._paths.data / "meta.properties").is_file():
            cluster_id = new_cluster_id()
            report(f"formatting Kafka storage in {self._paths.data} (cluster {cluster_id})")
            run(
                [
                    java, f"-Dlog4j2.configurationFile={self._paths.log4j}",
                    "-cp", classpath, "kafka.tools.StorageTool", "format",
                    # "=" form: an id may start with "-", which argparse4j reads as a flag
                    f"--cluster-id={cluster_id}", "--config", str(self._paths.properties),
                ],
                what="formatting Kafka storage",
                timeout_s=120,
            )
        report(f"starting Kafka {self._stack.kafka_version} on {self._bootstrap}")
        pid = self._spawn(java, classpath)
        wait_until(
            self._healthy,
            timeout_s=self._stack.start_timeout_s,
            what=f"Kafka at {self._bootstrap}",
            alive=lambda: pid_alive(pid),
            log_file=self.log_file(),
        )
        report(f"kafka healthy at {self._bootstrap} (pid {pid})")
        return True

    def down(self, report: Reporter) -> bool:
        pid = self._our_pid()
        if pid is not None:
            report(f"stopping kafka (pid {pid})")
        return self._process.stop(grace_s=STOP_GRACE_S) is not None

    def status(self) -> ComponentStatus:
        pid = self._our_pid()
        if pid is None:
            ports = (self._stack.kafka_port, self._stack.kafka_controller_port)
            detail = stopped_detail(ports)
            return ComponentStatus(self.name, self._bootstrap, False, False, detail)
        healthy = self._healthy()
        detail = f"Apache Kafka {self._stack.kafka_version}, KRaft"
        if not healthy:
            detail += ", not answering metadata requests yet"
        return ComponentStatus(self.name, self._bootstrap, True, healthy, detail, pid)

    def log_file(self) -> Path:
        return self._stack.logs_dir / "kafka.log"

    # -- internals ----------------------------------------------------------
    def _java(self, report: Reporter) -> str:
        return require_java(
            MIN_JAVA,
            needed_by=f"Kafka {self._stack.kafka_version}",
            report=report,
            packages=["default-jre-headless"],
            advice="install one (e.g. `sudo apt-get install default-jre-headless`)"
            " or point JAVA_HOME at it",
        ).path

    def _write_config(self) -> None:
        from importlib import resources

        # 0755 whatever the umask: PostgreSQL (another OS user under root) shares logs_dir.
        makedirs(self._paths.data, 0o755)
        makedirs(self._stack.logs_dir, 0o755)
        props = config.server_properties(self._stack, self._paths.data)
        self._paths.properties.write_text(config.render(props))
        log4j = resources.files(__package__).joinpath("log4j2.properties").read_text()
        self._paths.log4j.write_text(log4j)

    def _spawn(self, java: str, classpath: str) -> int:
        heap = self._stack.kafka_heap_mb
        cmd = [
            java, "-Xms128m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._paths.log4j}",
            "-cp", classpath, "kafka.Kafka", str(self._paths.properties),
        ]
        return self._process.spawn(cmd, log_file=self.log_file())

    def _our_pid(self) -> int | None:
        return self._process.pid()

    def _healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not port_open("127.0.0.1", self._stack.kafka_port):
            return False
        admin = AdminClient({"bootstrap.servers": self._bootstrap, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=3)
        except Exception:  # noqa: BLE001 - any client error means "not healthy yet"
            return False
        return bool(metadata.brokers)
