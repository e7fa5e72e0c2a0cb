"""Supervise the local Kafka broker: a JVM we start, watch and stop ourselves.

A pid file records the process ``up`` started together with the path of its
server.properties; ``down`` and ``status`` trust a pid only when that process
still runs with our properties file, so a recycled pid or someone else's broker
is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from pathlib import Path

from quoteflow.errors import StackError
from quoteflow.settings import Settings
from quoteflow.stack.base import ComponentStatus, Reporter, port_open, wait_until
from quoteflow.stack.kafka import config
from quoteflow.stack.kafka.jars import ensure_jars
from quoteflow.stack.system import apt_install, cmdline, makedirs, pid_alive, run, terminate

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


def _java_major(java: str) -> int:
    out = run([java, "-version"], what=f"{java} -version", timeout_s=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise StackError(f"JAVA_HOME={home} has no executable bin/java; fix or unset it")
        return str(java)
    return shutil.which("java")


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
        # The broker outlives this object when started from the CLI; when it is
        # stopped from the same process we reap it through this handle.
        self._proc: subprocess.Popen[bytes] | None = None

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
        if pid is None:
            self._paths.pid_file.unlink(missing_ok=True)
            return False
        report(f"stopping kafka (pid {pid})")
        terminate(pid, grace_s=STOP_GRACE_S)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)  # collect the exit status of our own child
            self._proc = None
        self._paths.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> ComponentStatus:
        pid = self._our_pid()
        if pid is None:
            ports = (self._stack.kafka_port, self._stack.kafka_controller_port)
            busy = [str(p) for p in ports if port_open("127.0.0.1", p)]
            detail = (
                f"port {', '.join(busy)} in use by a process quoteflow did not start"
                if busy
                else "stopped"
            )
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
        java = find_java()
        if java is None:
            apt_install(["default-jre-headless"], report=report, why="Java is needed to run Kafka")
            java = find_java()
        if java is None:
            raise StackError("java not found after installing it; set JAVA_HOME")
        if _java_major(java) < MIN_JAVA:
            raise StackError(
                f"{java} is older than Java {MIN_JAVA}, which Kafka 4 needs;"
                " point JAVA_HOME at a newer JDK"
            )
        return java

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
        with self.log_file().open("ab") as sink:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
            )
        self._proc = proc
        record = {"pid": proc.pid, "properties": str(self._paths.properties), "at": time.time()}
        self._paths.pid_file.write_text(json.dumps(record))
        return proc.pid

    def _our_pid(self) -> int | None:
        try:
            record = json.loads(self._paths.pid_file.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # An exact argument, not a substring: /tmp/x must not claim /var/tmp/x's broker.
        if pid_alive(pid) and str(self._paths.properties) in cmdline(pid):
            return pid
        return None

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
