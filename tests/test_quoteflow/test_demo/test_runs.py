"""A run's names: valid where each is used, and no run's a prefix of another's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.demo.runs import Resume, RunNames, write_record
from quoteflow.settings import CdcSettings, SinkSettings, StreamsSettings, TopicsSettings

pytestmark = pytest.mark.unit


def test_names_are_accepted_by_the_settings_they_go_into() -> None:
    names = RunNames.new(datetime(2026, 12, 6, 13, 0, tzinfo=UTC))
    CdcSettings(slot_prefix=names.slot_prefix)
    TopicsSettings(prefix=names.topic_prefix)
    StreamsSettings(app_id=names.app_id)
    SinkSettings(group_id=names.sink_group)
    for name in (names.topic_prefix, names.app_id, names.sink_group):
        assert name.startswith(names.topics_start)


def test_run_ids_have_one_width_so_none_starts_with_another() -> None:
    start = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)
    ids = [RunNames.new(start + timedelta(seconds=s)).run for s in (0, 1, 59, 3600, 86_400 * 400)]
    assert len({len(i) for i in ids}) == 1
    assert all(not b.startswith(a) for a in ids for b in ids if a != b)


def test_the_resume_record_survives_its_json(tmp_path: Path) -> None:
    resume = Resume("202612061300001234", datetime(2026, 12, 6, 13, 0, tzinfo=UTC), True,
                    42.5, frozenset({0, 1, 5}), {"t-1": 1}, 1_765_000_000.0)  # fmt: skip
    write_record(tmp_path, {"cdc": 1}, resume)
    record = json.loads((tmp_path / "run.json").read_text())
    assert Resume.from_json(record["resume"]) == resume
