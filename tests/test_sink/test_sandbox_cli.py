"""``quoteflow esp-sandbox`` as a user and the benchmark meet it: one-line refusals, and a
child process that serves until SIGTERM and then exits cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from devstack.esp_sandbox import SandboxClient
from tests.helpers import free_ports

pytestmark = pytest.mark.unit

ENV = {**os.environ, "COLUMNS": "200"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "quoteflow", "esp-sandbox", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=ENV,
                          check=False)  # fmt: skip


def test_a_non_loopback_host_is_refused_without_allow_remote() -> None:
    done = run("--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "--host 0.0.0.0 is not a loopback address" in done.stderr
    assert "--allow-remote" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run("--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_python_m_serves_until_sigterm_and_exits_zero() -> None:
    [port] = free_ports(1)
    child = subprocess.Popen(
        [sys.executable, "-m", "quoteflow", "esp-sandbox", "--port", str(port),
         "--latency-ms", "5", "--api-key", "other-key"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        with SandboxClient(f"http://127.0.0.1:{port}") as client:
            client.wait_ready(timeout_s=30)
            assert client.faults()["latency_ms"] == 5
            assert client.stats()["received"] == 0
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert f"ESP sandbox listening on http://127.0.0.1:{port}" in out
    assert f"sink.base_url=http://127.0.0.1:{port}/webhook" in out
    assert "other-key" not in out + err  # credentials are not printed
