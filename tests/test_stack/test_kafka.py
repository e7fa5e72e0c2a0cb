"""The local stack's Kafka: its configuration, jars and pid file, then a real private broker.

The unit tests need no broker. The integration tests start their own broker
with a private home and free ports, reusing the jar cache, so they never touch
the default stack or the session's shared one.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from base64 import urlsafe_b64decode
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import system
from devstack.stack.kafka import component as kafka_component
from devstack.stack.kafka import config
from devstack.stack.kafka.component import KafkaComponent, new_cluster_id
from devstack.stack.kafka.jars import MARKER, ensure_jars, jar_dir
from quoteflow.errors import StackError
from quoteflow.reporting import silent
from quoteflow.settings import StackSettings, load_settings
from tests.helpers import free_ports

# -- config -----------------------------------------------------------------------


@pytest.mark.unit
def test_server_properties_use_the_configured_ports_and_one_node_replication(
    tmp_path: Path,
) -> None:
    stack = StackSettings(home=tmp_path, kafka_port=29092, kafka_controller_port=29093)
    props = config.server_properties(stack, tmp_path / "data")

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == f"{config.NODE_ID}@127.0.0.1:29093"
    assert props["log.dirs"] == str(tmp_path / "data")
    # One broker cannot meet the defaults (3 and 2); transactions would never initialise.
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert "19092" not in config.render(props)  # no default port left behind


@pytest.mark.unit
def test_render_writes_one_key_value_line_per_property_after_a_comment() -> None:
    text = config.render({"a.b": "1", "listeners": "PLAINTEXT://h:1,CONTROLLER://h:2"})
    lines = text.splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == ["a.b=1", "listeners=PLAINTEXT://h:1,CONTROLLER://h:2"]
    assert text.endswith("\n")


# -- cluster id -------------------------------------------------------------------


def _uuid_bytes(cluster_id: str) -> bytes:
    return urlsafe_b64decode(cluster_id + "==")


@pytest.mark.unit
def test_cluster_id_is_a_uuid_in_unpadded_url_safe_base64() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert set(cluster_id) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert len(_uuid_bytes(cluster_id)) == 16


@pytest.mark.unit
def test_cluster_id_may_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why `up` passes --cluster-id=<id>: a leading "-" would otherwise read as a flag."""
    import uuid

    raw = b"\xf8" + bytes(range(15))  # 0b111110.. encodes as "-", base64 index 62
    monkeypatch.setattr(kafka_component.uuid, "uuid4", lambda: uuid.UUID(bytes=raw))
    cluster_id = new_cluster_id()
    assert cluster_id.startswith("-")
    assert len(cluster_id) == 22
    assert _uuid_bytes(cluster_id) == raw


# -- jars -------------------------------------------------------------------------


@pytest.mark.unit
def test_ensure_jars_returns_at_once_when_the_marker_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = jar_dir(tmp_path, "4.4.0")
    target.mkdir(parents=True)
    (target / MARKER).write_text("4.4.0\n")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # mvn (and apt-get) could not run if called
    reported: list[str] = []

    assert ensure_jars(tmp_path, "4.4.0", reported.append) == target
    assert reported == []


@pytest.mark.unit
def test_ensure_jars_without_mvn_and_not_root_says_to_install_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(system, "is_root", lambda: False)

    with pytest.raises(StackError, match=r"mvn") as caught:
        ensure_jars(tmp_path / "cache", "4.4.0", silent)
    assert "apt-get install maven" in str(caught.value)
    assert not jar_dir(tmp_path / "cache", "4.4.0").exists()


# -- pid file (its generic logic is tested in test_process.py) -----------------------


@pytest.fixture
def component(tmp_path: Path) -> KafkaComponent:
    """A component with a private home; nothing is started."""
    return KafkaComponent(load_settings(stack={"home": tmp_path / "home"}))


def _write_pid_file(component: KafkaComponent, pid: int) -> None:
    """The pid file as `up` writes it."""
    paths = component._paths
    paths.root.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "properties": str(paths.properties), "at": 0}
    paths.pid_file.write_text(json.dumps(record))


@pytest.mark.unit
def test_a_live_process_running_our_properties_is_ours_until_it_exits(
    component: KafkaComponent,
) -> None:
    # Harmless, and its command line names our server.properties as the broker's does.
    script = "import time; time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", script, str(component._paths.properties)])
    try:
        _write_pid_file(component, proc.pid)
        assert component._our_pid() == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert component._our_pid() is None


# -- a real private broker ----------------------------------------------------------


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[KafkaComponent]:
    """A broker of our own: private home, free ports, the shared jar cache."""
    kafka_port, controller_port, postgres_port = free_ports(3)
    settings = load_settings(
        stack={
            "home": tmp_path / "stack",
            "kafka_port": kafka_port,
            "kafka_controller_port": controller_port,
            "postgres_port": postgres_port,
        }
    )
    kafka = KafkaComponent(settings)
    try:
        yield kafka
    finally:
        kafka.down(silent)


def _listen(port: int) -> socket.socket:
    """Another process's server on ``port``, as far as the broker can tell."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def _cluster_id(kafka: KafkaComponent) -> str:
    meta = kafka._paths.data / "meta.properties"
    for line in meta.read_text().splitlines():
        if line.startswith("cluster.id="):
            return line.partition("=")[2]
    raise AssertionError(f"no cluster.id in {meta}")


@pytest.mark.integration
@pytest.mark.parametrize("setting", ["kafka_port", "kafka_controller_port"])
def test_up_refuses_a_port_held_by_a_process_we_did_not_start(
    private_kafka: KafkaComponent, setting: str
) -> None:
    port = getattr(private_kafka._stack, setting)
    with _listen(port):
        status = private_kafka.status()
        assert (status.running, status.healthy) == (False, False)
        assert status.detail == f"port {port} in use by a process quoteflow did not start"
        with pytest.raises(StackError, match=rf"stack\.{setting}\b") as caught:
            private_kafka.up(silent)
    assert f"port {port} is in use" in str(caught.value)
    assert not private_kafka._paths.pid_file.exists()


@pytest.mark.integration
def test_up_down_and_up_again_formats_the_storage_only_once(
    private_kafka: KafkaComponent, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = private_kafka
    assert kafka.status().detail == "stopped"
    # An id starting with "-" must reach the format tool as a value, not as a flag.
    monkeypatch.setattr(kafka_component, "new_cluster_id", lambda: "-AECAwQFBgcICQoLDA0ODw")

    first: list[str] = []
    assert kafka.up(first.append) is True
    assert any(line.startswith("formatting Kafka storage") for line in first)
    assert _cluster_id(kafka) == "-AECAwQFBgcICQoLDA0ODw"
    status = kafka.status()
    assert (status.running, status.healthy) == (True, True)
    assert "KRaft" in status.detail and status.pid is not None
    assert status.address == f"127.0.0.1:{kafka._stack.kafka_port}"
    cluster_id = _cluster_id(kafka)

    assert kafka.up(silent) is False  # already running: nothing started
    assert kafka.status().pid == status.pid

    assert kafka.down(silent) is True
    assert kafka.status().detail == "stopped"
    assert not system.pid_alive(status.pid)
    assert kafka.down(silent) is False

    again: list[str] = []
    assert kafka.up(again.append) is True
    assert not any("formatting" in line for line in again)
    assert _cluster_id(kafka) == cluster_id
    assert kafka.down(silent) is True
