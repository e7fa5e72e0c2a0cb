"""The pure half of ``quoteflow watermarks``: which Debezium heartbeat Connect's offsets prove."""

from __future__ import annotations

import json

import pytest

from connectors.cdc.heartbeat import heartbeat_statement
from connectors.debezium.watermarks import (
    MAX_PENDING,
    Heartbeat,
    SourceProgress,
    committed_lsn,
    heartbeat_of,
    offset_key,
)
from devstack.debezium.connect import package_file, read_properties

pytestmark = pytest.mark.unit


def _message(prefix: str = "quoteflow.heartbeat", content: bytes = b"1700000000123",
             lsn: int = 500, op: str = "m") -> dict[str, object]:  # fmt: skip
    """A decoded record of Debezium's <prefix>.message topic (fields as the real one has)."""
    return {
        "op": op, "ts_ms": 1, "source": {"lsn": lsn, "ts_ms": 1, "sequence": f'["{lsn}","{lsn}"]'},
        "message": {"prefix": prefix, "content": content},
    }  # fmt: skip


def test_a_heartbeat_message_gives_its_position_and_time() -> None:
    assert heartbeat_of(_message()) == Heartbeat(500, 1_700_000_000_123)


def test_other_messages_and_malformed_records_are_not_heartbeats() -> None:
    assert heartbeat_of(_message(prefix="app.audit")) is None
    assert heartbeat_of(_message(content=b"not a time")) is None
    assert heartbeat_of(_message(op="c")) is None
    assert heartbeat_of(None) is None
    assert heartbeat_of({"op": "m", "message": None, "source": {"lsn": 1}}) is None


def test_connect_offset_records_give_the_connector_and_the_commit_position() -> None:
    key = json.dumps(["quoteflow-debezium-qms", {"server": "qms"}]).encode()
    assert offset_key(key) == ("quoteflow-debezium-qms", {"server": "qms"})
    assert offset_key(b"junk") is None and offset_key(None) is None
    assert offset_key(b'["only-a-name"]') is None
    value = b'{"lsn_proc":69972136,"messageType":"MESSAGE","lsn_commit":69972136,"lsn":69972136}'
    assert committed_lsn(value) == 69972136
    # A snapshot-phase offset has no commit position; a tombstone resets the offset.
    assert committed_lsn(b'{"lsn":5,"snapshot":"INITIAL"}') is None
    assert committed_lsn(None) is None and committed_lsn(b"{bad") is None


def test_nothing_is_proven_before_connect_commits_an_offset_reaching_the_heartbeat() -> None:
    progress = SourceProgress().with_heartbeat(Heartbeat(500, 1_000))
    assert progress.proven() is None  # no committed offset yet
    # Connect committed only records before the heartbeat: changes before it may be in flight.
    assert progress.with_committed(499).proven() is None
    # The commit record just before the heartbeat ends where the heartbeat starts: proven.
    assert progress.with_committed(500).proven() == Heartbeat(500, 1_000)
    assert progress.with_committed(900).proven() == Heartbeat(500, 1_000)


def test_the_newest_proven_heartbeat_wins_and_the_watermark_never_goes_back() -> None:
    progress = SourceProgress()
    for heartbeat in (Heartbeat(100, 1_000), Heartbeat(200, 2_000), Heartbeat(300, 3_000)):
        progress = progress.with_heartbeat(heartbeat)
    progress = progress.with_committed(250)
    chosen = progress.proven()
    assert chosen == Heartbeat(200, 2_000)
    progress = progress.published(chosen)
    assert progress.pending == (Heartbeat(300, 3_000),)
    assert progress.proven() is None  # nothing newer proven yet
    # An older heartbeat seen late (a re-read) never moves the watermark back.
    assert progress.with_heartbeat(Heartbeat(150, 1_500)).pending == (Heartbeat(300, 3_000),)
    assert progress.with_committed(300).proven() == Heartbeat(300, 3_000)


def test_a_reset_offset_proves_nothing_until_connect_commits_again() -> None:
    progress = SourceProgress().with_heartbeat(Heartbeat(500, 1_000)).with_committed(900)
    reset = progress.with_committed(committed_lsn(None))
    assert reset.proven() is None


def test_pending_heartbeats_are_bounded_keeping_the_newest() -> None:
    progress = SourceProgress()
    for n in range(MAX_PENDING + 10):
        progress = progress.with_heartbeat(Heartbeat(n + 1, n + 1))
    assert len(progress.pending) == MAX_PENDING
    assert progress.pending[0] == Heartbeat(11, 11)


def test_the_shipped_connector_configs_run_our_heartbeat_as_their_action_query() -> None:
    """The .properties files hold the statement on one line: it must stay ours."""
    for server in ("qms", "crm"):
        config = read_properties(package_file(f"{server}.properties"))
        assert " ".join(config["heartbeat.action.query"].split()) == " ".join(
            heartbeat_statement().split()
        )
        assert int(config["heartbeat.interval.ms"]) <= 1_000
        assert config["message.prefix.include.list"] == r"quoteflow\.heartbeat"
        assert "message.prefix.exclude.list" not in config
