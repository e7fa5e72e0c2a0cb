"""Supervise the local Schema Registry: Apicurio Registry, a Quarkus JVM we run ourselves.

Clients use its Confluent-compatible API (``/apis/ccompat/v7``), so everything
that speaks to a Confluent Schema Registry — confluent-kafka's serializers,
Debezium's Avro converter, Kafka Connect, kcat — works against it unchanged.

Schemas and their ids are kept in the stack's PostgreSQL (database
``stack.registry_database``), not in memory and not in a Kafka topic:

* ids must survive a restart, or every record already in Kafka (which names
  its writer schema only by id) becomes undecodable;
* PostgreSQL is already the stack's durable store, with ordinary backups
  (``pg_dump``); a KafkaSQL journal would be lost with its topic's retention
  or a broker's data directory, and is replayed in full on every start;
* the registry then needs nothing from Kafka, so it can serve (and be
  health-checked) before the broker is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devstack.stack.base import ComponentStatus, port_open, stopped_detail, wait_until
from devstack.stack.java import Java, require_java
from devstack.stack.process import Supervised
from devstack.stack.registry import config
from devstack.stack.registry.dist import LAUNCHER, ensure_dist
from devstack.stack.system import makedirs, pid_alive
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings

#: Quarkus stops in well under a second; give in-flight requests time anyway.
STOP_GRACE_S = 20.0
_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class _Probe:
    healthy: bool
    detail: str


class RegistryComponent:
    """Apicurio Registry on 127.0.0.1 with SQL storage in the stack's PostgreSQL."""

    name = "registry"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stack = settings.stack
        self._root = settings.stack.home / "registry"
        self._properties = self._root / "application.properties"
        self._process = Supervised(
            self._root / "registry.pid", marker=f"-Dquarkus.config.locations={self._properties}"
        )
        self._url = settings.stack.registry_url
        self._management = f"http://127.0.0.1:{settings.stack.registry_management_port}"
        self._info_url = f"http://127.0.0.1:{settings.stack.registry_port}/apis/registry/v3/system/info"

    # -- Component protocol -------------------------------------------------
    def install(self, report: Reporter) -> None:
        self._java(report)
        ensure_dist(self._stack.cache_dir, self._stack.registry_version, report)

    def up(self, report: Reporter) -> bool:
        if self._process.pid() is not None:
            self._wait_healthy(alive=None)
            report(f"registry already running at {self._url}")
            return False
        self._require_free_ports()
        self._require_postgres()
        java = self._java(report)
        dist = ensure_dist(self._stack.cache_dir, self._stack.registry_version, report)
        self._write_config()
        report(
            f"starting Apicurio Registry {self._stack.registry_version} on {self._url}"
            f" (Java {java.major}, storage: PostgreSQL database {self._stack.registry_database})"
        )
        started = time.monotonic()
        cmd = [
            java.path,
            "-Xms64m", f"-Xmx{self._stack.registry_heap_mb}m",
            # One collector thread's worth of work on a 2-core machine shared with Kafka.
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            self._process.marker,
            "-jar", str(dist / LAUNCHER),
        ]  # fmt: skip
        password = self._settings.postgres.password.get_secret_value()
        pid = self._process.spawn(
            cmd, log_file=self.log_file(), cwd=self._root, extra_env={config.PASSWORD_ENV: password}
        )
        self._wait_healthy(alive=lambda: pid_alive(pid))
        report(
            f"registry healthy at {self._url} (pid {pid}, {time.monotonic() - started:.1f}s)"
        )
        return True

    def down(self, report: Reporter) -> bool:
        pid = self._process.pid()
        if pid is not None:
            report(f"stopping registry (pid {pid})")
        return self._process.stop(grace_s=STOP_GRACE_S) is not None

    def status(self) -> ComponentStatus:
        pid = self._process.pid()
        if pid is None:
            detail = stopped_detail(self._ports())
            return ComponentStatus(self.name, self._url, False, False, detail)
        probe = self._probe()
        return ComponentStatus(self.name, self._url, True, probe.healthy, probe.detail, pid)

    def log_file(self) -> Path:
        return self._stack.logs_dir / "registry.log"

    # -- internals ----------------------------------------------------------
    def _ports(self) -> tuple[int, int]:
        return (self._stack.registry_port, self._stack.registry_management_port)

    def _require_free_ports(self) -> None:
        for port in self._ports():
            if port_open("127.0.0.1", port):
                raise StackError(
                    f"port {port} is in use by another process; stop it or choose other ports"
                    " (settings stack.registry_port / stack.registry_management_port)"
                )

    def _require_postgres(self) -> None:
        """Fail with a reason instead of letting Quarkus retry a dead database for minutes."""
        port = self._stack.postgres_port
        if not port_open("127.0.0.1", port):
            raise StackError(
                f"the registry keeps its schemas in the stack's PostgreSQL (database "
                f"{self._stack.registry_database}), which is not running on 127.0.0.1:{port}:"
                " start it first (`quoteflow stack up postgres`)"
            )

    def _java(self, report: Reporter) -> Java:
        setting = self._stack.registry_java_home
        return require_java(
            config.MIN_JAVA,
            needed_by=f"Apicurio Registry {self._stack.registry_version}",
            report=report,
            packages=["openjdk-21-jre-headless", "openjdk-25-jre-headless"],
            setting=("stack.registry_java_home", setting) if setting is not None else None,
            advice=(
                "install a JDK 21 or newer (Debian 12's own packages stop at 17; Temurin or"
                " another vendor's build works) under /usr/lib/jvm, or point"
                " stack.registry_java_home (env QUOTEFLOW_STACK__REGISTRY_JAVA_HOME) at it"
            ),
        )

    def _write_config(self) -> None:
        makedirs(self._root, 0o755)
        makedirs(self._stack.logs_dir, 0o755)
        self._properties.write_text(config.render(config.registry_properties(self._settings)))

    def _wait_healthy(self, alive: Callable[[], bool] | None) -> None:
        wait_until(
            lambda: self._probe().healthy,
            timeout_s=self._stack.start_timeout_s,
            what=f"the schema registry at {self._url}",
            alive=alive,
            log_file=self.log_file(),
        )

    def _get(self, url: str) -> Any:
        response = requests.get(url, timeout=_PROBE_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def _probe(self) -> _Probe:
        """Ready (storage reachable) on the management port, then a real ccompat request."""
        try:
            ready = self._get(f"{self._management}/health/ready")
        except (requests.RequestException, ValueError):
            return _Probe(False, "not ready (management /health/ready)")
        if not isinstance(ready, dict) or ready.get("status") != "UP":
            down = [
                str(check.get("name"))
                for check in (ready.get("checks") or [] if isinstance(ready, dict) else [])
                if isinstance(check, dict) and check.get("status") != "UP"
            ]
            return _Probe(False, "not ready: " + (", ".join(down) or "status not UP"))
        try:
            compatibility = self._get(f"{self._url}/config").get("compatibilityLevel", "?")
            info = self._get(self._info_url)
        except (requests.RequestException, ValueError, AttributeError):
            return _Probe(False, f"ready, but {self._url}/config does not answer")
        return _Probe(
            True,
            f"{info.get('name', 'Apicurio Registry')} {info.get('version', '?')},"
            f" db {self._stack.registry_database}, global compatibility {compatibility}",
        )
