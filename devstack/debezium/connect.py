"""Running the real Debezium PostgreSQL connector in Kafka Connect standalone, from Maven Central.

Why it is here: quoteflow's change events claim Debezium's layout, and the
only honest proof is Debezium itself writing the same changes side by side
(the interop test), and a user who prefers Debezium to ``quoteflow cdc``
gets a configuration that is known to produce our topics.

The jars (Connect, Debezium, Apicurio's Avro converter: ~110 jars, 52 MB)
are resolved with the machine's ``mvn`` into the stack's cache folder, like
the broker's. The connector and worker configurations are the checked-in
``*.properties`` files next to this module; :class:`ConnectStandalone` only
overrides what differs per run (addresses from the settings, a test's own
slot and topics).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from connectors.errors import CdcError
from devstack.stack.java import render_properties, require_java
from devstack.stack.maven import cached, mvn
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings

DEBEZIUM_VERSION = "3.7.0.Final"
#: Copied on its own: its pom's parent (io.apicurio:apicurio-registry:3.0.9) does not
#: resolve from Maven Central, so it cannot be a dependency of pom.xml. Its classes are
#: those of 3.0.2 (the serde line pom.xml brings) but for one JSON converter we do not use.
CONVERTER = "io.apicurio:apicurio-registry-utils-converter:3.0.9"
CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
HEAP = "-Xmx256m"  # measured: ~35 MB heap used, 175-225 MB resident
START_TIMEOUT_S = 120.0

#: Maven settings that keep resolution on Maven Central: Debezium's and Apicurio's poms
#: declare other repositories, which this kind of machine cannot reach (each would time out).
_CENTRAL_ONLY = """<settings><mirrors><mirror><id>central-only</id><mirrorOf>*,!central</mirrorOf>
<url>file://{empty}</url></mirror></mirrors></settings>
"""


def package_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def read_properties(text: str) -> dict[str, str]:
    """The key=value lines of a .properties file (the subset ours use: no continuations)."""
    properties: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = line.partition("=")
        properties[key.strip()] = value.strip().replace("\\\\", "\\")
    return properties


def jar_dir(settings: Settings) -> Path:
    return settings.stack.cache_dir / f"debezium-connect-{DEBEZIUM_VERSION}" / "libs"


def ensure_jars(settings: Settings, report: Reporter) -> Path:
    """The folder of Connect + Debezium + converter jars, resolved with mvn on first use."""
    target = jar_dir(settings)

    def fill(staging: Path) -> None:
        with (
            tempfile.TemporaryDirectory() as scratch,
            resources.as_file(resources.files(__package__).joinpath("pom.xml")) as pom,
        ):
            empty = Path(scratch) / "empty"
            empty.mkdir()
            maven_settings = Path(scratch) / "settings.xml"
            maven_settings.write_text(_CENTRAL_ONLY.format(empty=empty))
            what = f"mvn resolving Debezium {DEBEZIUM_VERSION} and Kafka Connect"
            common = ["-s", str(maven_settings)]
            mvn(
                [*common, "-f", str(pom), "dependency:copy-dependencies",
                 "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
                what=what, report=report, why="fetch Debezium's jars",
            )  # fmt: skip
            mvn(
                [*common, "-f", str(pom), "dependency:copy", f"-Dartifact={CONVERTER}",
                 f"-DoutputDirectory={staging}"],
                what=what, report=report, why="fetch Apicurio's Avro converter",
            )  # fmt: skip
        for needed in ("connect-runtime-", "debezium-connector-postgres-", "utils-converter-"):
            if not any(staging.glob(f"*{needed}*.jar")):
                raise CdcError(f"mvn finished but no {needed}*.jar was resolved")

    if not (target / ".complete").is_file():
        report(f"resolving Debezium {DEBEZIUM_VERSION} + Kafka Connect jars with mvn into {target}")
    return cached(target, fill, marker_text=DEBEZIUM_VERSION)


@dataclass(frozen=True)
class ConnectorRun:
    """What one connector writes and where it keeps its place, for one Connect run."""

    name: str
    config: Mapping[str, str]


def connector_config(
    settings: Settings, server: str, *, name: str, slot: str, overrides: Mapping[str, str]
) -> ConnectorRun:
    """``<server>.properties`` pointed at ``settings``' database and registry, plus overrides."""
    config = read_properties(package_file(f"{server}.properties"))
    registry = settings.schema_registry.url
    if registry is None or "/apis/ccompat/" not in registry:
        raise CdcError("Debezium's converter needs the Apicurio registry (schema_registry.url)")
    native = registry.split("/apis/ccompat/")[0] + "/apis/registry/v3"
    pg = settings.postgres
    config.update(
        {
            "name": name,
            "database.hostname": pg.host,
            "database.port": str(pg.port),
            "database.user": pg.user,
            "database.dbname": getattr(pg, f"{server}_database"),
            "slot.name": slot,
            "publication.name": slot,
            "key.converter.apicurio.registry.url": native,
            "value.converter.apicurio.registry.url": native,
            **overrides,
        }
    )
    return ConnectorRun(name, config)


class ConnectStandalone:
    """One Kafka Connect standalone process running one connector, on this machine."""

    #: The launcher's main class; the distributed worker swaps it.
    main_class = "org.apache.kafka.connect.cli.ConnectStandalone"

    def __init__(self, settings: Settings, run: ConnectorRun, *, rest_port: int, home: Path):
        self._settings = settings
        self._runs = [run]
        self._rest = f"http://127.0.0.1:{rest_port}"
        self._home = home
        self._process: subprocess.Popen[bytes] | None = None
        self.log = home / "connect.log"

    def _worker_properties(self) -> dict[str, str]:
        worker = read_properties(package_file("worker.properties"))
        worker.update(
            {
                "bootstrap.servers": self._settings.kafka.bootstrap_servers,
                "listeners": self._rest,
                "offset.storage.file.filename": str(self._home / "connect.offsets"),
                "offset.flush.interval.ms": "1000",
            }
        )
        return worker

    def _arguments(self) -> list[str]:
        """The launcher's arguments: the worker file, then the connector's (standalone)."""
        (self._home / "connector.properties").write_text(render_properties(self._runs[0].config))
        return [str(self._home / "worker.properties"), str(self._home / "connector.properties")]

    def _submit(self) -> None:
        """Standalone reads its connector from the command line: nothing to submit."""

    def start(self, report: Reporter) -> None:
        libs = ensure_jars(self._settings, report)
        java = require_java(
            17, needed_by="Kafka Connect", report=report,
            advice="install a JDK 17 or newer", packages=("default-jre-headless",),
        )  # fmt: skip
        (self._home / "worker.properties").write_text(
            render_properties(self._worker_properties())
        )
        (self._home / "log4j2.properties").write_text(package_file("log4j2.properties"))
        env = {
            **os.environ,
            "QUOTEFLOW_POSTGRES__PASSWORD": self._settings.postgres.password.get_secret_value(),
        }
        command = [
            java.path, HEAP, "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
            f"-Dlog4j2.configurationFile={self._home / 'log4j2.properties'}",
            "-cp", f"{libs}/*", self.main_class, *self._arguments(),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self._home
            )
        report(f"Kafka Connect starting ({java.describe()}), log {self.log}")
        self._submit()
        for run in self._runs:
            self._await_running(run.name)

    def _await_running(self, name: str) -> None:
        """Until the connector's task runs (Debezium has its slot then), or a clear error."""
        deadline = time.monotonic() + START_TIMEOUT_S
        state = "no answer"
        while time.monotonic() < deadline:
            self._check_alive()
            status = self.status(name)
            if status is not None:
                tasks = status.get("tasks", [])
                state = tasks[0]["state"] if tasks else status["connector"]["state"]
                if state == "RUNNING" and tasks:
                    return
                if state == "FAILED":
                    trace = str((tasks or [status["connector"]])[0].get("trace", "no trace"))
                    first = trace.strip().splitlines()[0] if trace.strip() else "no trace"
                    raise CdcError(f"connector {name} failed: {first}")
            time.sleep(0.5)
        raise CdcError(f"connector {name} not running after {START_TIMEOUT_S:g}s: {state}")

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise CdcError(f"Kafka Connect exited ({self._process.returncode}): {self._tail()}")

    def status(self, name: str | None = None) -> dict[str, Any] | None:
        url = f"{self._rest}/connectors/{name or self._runs[0].name}/status"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                answer: dict[str, Any] = json.load(response)
                return answer
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return " | ".join(lines[-5:]) or "no output"

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None


class ConnectDistributed(ConnectStandalone):
    """One Kafka Connect *distributed* worker (a cluster of one) running several connectors.

    Distributed mode is what production runs, and the mode that keeps source
    offsets in a Kafka topic (``offset.storage.topic``): ``quoteflow watermarks``
    reads that topic as its proof that Kafka acknowledged everything Debezium
    sent before a heartbeat (see :mod:`connectors.debezium.watermarks`).
    Connectors are submitted over the REST API once the worker answers.
    """

    main_class = "org.apache.kafka.connect.cli.ConnectDistributed"

    def __init__(
        self, settings: Settings, runs: list[ConnectorRun], *, rest_port: int, home: Path,
        group_id: str, offsets_topic: str,
    ):  # fmt: skip
        super().__init__(settings, runs[0], rest_port=rest_port, home=home)
        self._runs = list(runs)
        self.group_id = group_id
        self.offsets_topic = offsets_topic

    @property
    def internal_topics(self) -> list[str]:
        """The worker's own topics (it creates them): configs, offsets, status."""
        return [f"{self.group_id}-configs", self.offsets_topic, f"{self.group_id}-status"]

    def _worker_properties(self) -> dict[str, str]:
        worker = super()._worker_properties()
        del worker["offset.storage.file.filename"]
        configs, offsets, status = self.internal_topics
        worker.update(
            {
                "group.id": self.group_id,
                "config.storage.topic": configs,
                "offset.storage.topic": offsets,
                "status.storage.topic": status,
                "config.storage.replication.factor": "1",
                "offset.storage.replication.factor": "1",
                "status.storage.replication.factor": "1",
                "offset.storage.partitions": "1",
                "status.storage.partitions": "1",
            }
        )
        return worker

    def _arguments(self) -> list[str]:
        return [str(self._home / "worker.properties")]

    def _submit(self) -> None:
        """POST each connector once the REST API answers (the worker joined its group)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        for run in self._runs:
            body = json.dumps({"name": run.name, "config": dict(run.config)}).encode()
            while True:
                self._check_alive()
                request = urllib.request.Request(  # noqa: S310 - loopback
                    f"{self._rest}/connectors", data=body, method="POST",
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                try:
                    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
                        break
                except urllib.error.HTTPError as exc:
                    if exc.code == 409 and "already exists" in exc.read().decode(errors="replace"):
                        break
                    if exc.code not in (404, 409, 503) or time.monotonic() > deadline:
                        raise CdcError(
                            f"Kafka Connect refused connector {run.name}: HTTP {exc.code}"
                        ) from exc
                except (urllib.error.URLError, OSError) as exc:
                    if time.monotonic() > deadline:
                        raise CdcError(f"Kafka Connect's REST API never answered: {exc}") from exc
                time.sleep(0.5)


@contextmanager
def connect_standalone(
    settings: Settings, run: ConnectorRun, *, rest_port: int, home: Path, report: Reporter
) -> Iterator[ConnectStandalone]:
    connect = ConnectStandalone(settings, run, rest_port=rest_port, home=home)
    try:
        connect.start(report)
        yield connect
    finally:
        connect.stop()


@contextmanager
def connect_distributed(
    settings: Settings, runs: list[ConnectorRun], *, rest_port: int, home: Path,
    group_id: str, offsets_topic: str, report: Reporter,
) -> Iterator[ConnectDistributed]:  # fmt: skip
    connect = ConnectDistributed(
        settings, runs, rest_port=rest_port, home=home, group_id=group_id,
        offsets_topic=offsets_topic,
    )  # fmt: skip
    try:
        connect.start(report)
        yield connect
    finally:
        connect.stop()
