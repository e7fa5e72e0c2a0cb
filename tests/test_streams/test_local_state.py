"""Which local table files a worker may keep: the pure verdict and the files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from streams.local_state import (
    OFFSET_KEY,
    StoreIdentity,
    judge,
    partition_files,
    read_manifest,
    read_persisted_offset,
    write_manifest,
)

pytestmark = pytest.mark.unit

MINE = StoreIdentity("app-a", "app-a-customer-state-changelog", "id-1")
ENDS = {0: 100, 1: 50}


def test_files_of_this_app_and_changelog_within_its_end_are_kept() -> None:
    verdict = judge(MINE, MINE, {0: 99, 1: None}, ENDS)
    assert verdict.discard == frozenset()


def test_nothing_on_disk_nothing_to_discard() -> None:
    assert judge(None, MINE, {}, ENDS).discard == frozenset()


@pytest.mark.parametrize(
    ("recorded", "why"),
    [
        (None, "no manifest"),
        (StoreIdentity("app-b", "app-b-customer-state-changelog", "id-9"), "app 'app-b'"),
        (StoreIdentity("app-a", "app-a-other-changelog", "id-1"), "changelog"),
        (StoreIdentity("app-a", "app-a-customer-state-changelog", "id-0"), "created again"),
    ],
)
def test_files_of_another_app_or_changelog_are_all_discarded(
    recorded: StoreIdentity | None, why: str
) -> None:
    verdict = judge(recorded, MINE, {0: 3, 1: None}, ENDS)
    assert verdict.discard == {0, 1}
    assert why in verdict.reason


def test_a_partition_whose_offset_is_at_or_beyond_the_committed_end_is_discarded() -> None:
    # faust's own check refuses persisted > end - 1 (ConsistencyError); so do we, quietly.
    verdict = judge(MINE, MINE, {0: 100, 1: 49}, ENDS)
    assert verdict.discard == {0}
    assert judge(MINE, MINE, {0: 99, 1: 10_000}, ENDS).discard == {1}


def test_a_partition_the_changelog_no_longer_has_is_discarded() -> None:
    assert judge(MINE, MINE, {0: 1, 2: 1}, ENDS).discard == {2}


def test_a_partition_holding_writes_that_never_committed_is_discarded() -> None:
    verdict = judge(MINE, MINE, {0: 42, 1: 7}, ENDS, uncommitted=frozenset({1}))
    assert verdict.discard == {1} and "never committed" in verdict.reason
    # Another app's files go whole, whatever the check found.
    assert judge(None, MINE, {0: 42, 1: 7}, ENDS, frozenset({1})).discard == {0, 1}


def test_manifest_round_trip_and_unreadable_manifests(tmp_path: Path) -> None:
    assert read_manifest(tmp_path, "customer-state") is None
    write_manifest(tmp_path / "tables", "customer-state", MINE)
    assert read_manifest(tmp_path / "tables", "customer-state") == MINE
    (tmp_path / "tables" / "customer-state.manifest.json").write_text("{not json")
    assert read_manifest(tmp_path / "tables", "customer-state") is None


def test_partition_files_and_the_persisted_offset_faust_writes(tmp_path: Path) -> None:
    for name in ("customer-state-0.db", "customer-state-12.db", "customer-state-x.db",
                 "customer-state-extra-1.db", "watermark-markers-0.db"):  # fmt: skip
        (tmp_path / name).mkdir()
    assert sorted(partition_files(tmp_path, "customer-state")) == [0, 12]

    store = tmp_path / "real-0.db"
    db = Rdict(str(store), Options(raw_mode=True))
    db[b"k"] = b"v"
    db.close()
    assert read_persisted_offset(store) is None
    db = Rdict(str(store), Options(raw_mode=True))
    db[OFFSET_KEY] = b"41"
    db.close()
    assert read_persisted_offset(store) == 41
    assert read_persisted_offset(tmp_path / "customer-state-0.db") == 2**62  # not a store
