"""Liveness: a component's loop touches its file; `quoteflow health` judges its age."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from quoteflow.cli import cli
from quoteflow.errors import ConfigError
from quoteflow.liveness import Heartbeat, judge
from quoteflow.settings import load_settings

pytestmark = pytest.mark.unit


def test_a_beat_is_written_at_most_every_few_seconds(tmp_path: Path) -> None:
    now = [100.0]
    path = tmp_path / "alive"
    beat = Heartbeat(path, every_s=2.0, clock=lambda: now[0])
    assert not path.exists()
    beat.beat()
    assert path.exists()
    os.utime(path, (1.0, 1.0))  # as if written long ago
    now[0] = 101.0
    beat.beat()  # within every_s: not written again
    assert path.stat().st_mtime == 1.0
    now[0] = 102.5
    beat.beat()
    assert path.stat().st_mtime > 1.0


def test_a_previous_runs_beat_is_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    path.touch()
    Heartbeat(path)
    assert not path.exists()  # the old file must not vouch for a process that hangs at start


def test_without_a_file_nothing_is_written(tmp_path: Path) -> None:
    Heartbeat(None).beat()
    assert list(tmp_path.iterdir()) == []


def test_judge_by_age(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    assert not judge(path, 60).alive and "no heartbeat yet" in judge(path, 60).message
    path.touch()
    os.utime(path, (1000.0, 1000.0))
    assert judge(path, 60, now_s=1030.0).alive
    stale = judge(path, 60, now_s=1090.0)
    assert not stale.alive and "90 s ago" in stale.message and "health.max_age_s" in stale.message


def test_the_health_command_exits_by_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("QUOTEFLOW_")]:
        monkeypatch.delenv(key)
    runner = CliRunner()
    unset = runner.invoke(cli, ["health"])
    assert unset.exit_code != 0 and "health.file is not set" in str(unset.exception or "")
    path = tmp_path / "alive"
    monkeypatch.setenv("QUOTEFLOW_HEALTH__FILE", str(path))
    assert runner.invoke(cli, ["health"]).exit_code == 1
    path.touch()
    ok = runner.invoke(cli, ["health"])
    assert ok.exit_code == 0, ok.output
    os.utime(path, (1.0, 1.0))
    assert runner.invoke(cli, ["health", "--max-age", "30"]).exit_code == 1


def test_liveness_must_outlast_the_cdc_heartbeats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"health\.max_age_s"):
        load_settings(health={"file": str(tmp_path / "a"), "max_age_s": 10},
                      cdc={"heartbeat_interval_s": 5})  # fmt: skip
    load_settings(health={"file": str(tmp_path / "a"), "max_age_s": 15},
                  cdc={"heartbeat_interval_s": 5})  # fmt: skip


def test_the_cdc_beats_only_when_every_source_published_a_watermark() -> None:
    from connectors.cdc.runner import _Liveness

    class _Stream:
        def __init__(self) -> None:
            self.stats = type("S", (), {"watermarks": 0})()

    qms, crm = _Stream(), _Stream()
    proof = _Liveness({"qms": qms, "crm": crm}, heartbeats=True)  # type: ignore[dict-item]
    alive = threading.current_thread()
    assert proof.advanced([alive])  # first look: both counts are new
    qms.stats.watermarks = 1
    assert not proof.advanced([alive])  # crm is silent: it may hang
    crm.stats.watermarks = 1
    assert proof.advanced([alive])
    dead = threading.Thread(target=lambda: None)
    assert not proof.advanced([dead])  # never started
    assert _Liveness({}, heartbeats=False).advanced([alive])
