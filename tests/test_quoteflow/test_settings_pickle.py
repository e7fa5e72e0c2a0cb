"""Settings cross to processes (replay lanes, benchmark seeders) by pickle, values intact."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from quoteflow.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_settings_from_a_config_file_pickle_to_the_same_values(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "quoteflow.toml"
    config.write_text('[topics]\nprefix = "t."\n[kafka]\nbootstrap_servers = "k:1"\n')
    settings = load_settings(config)
    assert type(settings) is not Settings  # load_settings binds the file in a subclass
    copy = pickle.loads(pickle.dumps(settings))
    assert type(copy) is Settings
    assert copy.topics.prefix == "t." and copy.kafka.bootstrap_servers == "k:1"
    assert copy.model_dump() == settings.model_dump()
