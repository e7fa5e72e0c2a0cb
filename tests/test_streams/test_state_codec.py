"""Customer states survive the table's bytes unchanged."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from streams.core.detector import CustomerState, run_in_event_time
from streams.core.model import Change
from streams.core.state_codec import StateFormatError, decode_state, encode_state

from .core_helpers import rules
from .test_detector import histories

pytestmark = pytest.mark.unit


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_every_reachable_state_round_trips(history: list[Change | int]) -> None:
    # Stop before the last watermark, so queues and open quotes are part of the states.
    states, _ = run_in_event_time(history[:-1], rules())
    for state in states.values():
        assert decode_state(encode_state(state)) == state


def test_an_empty_state_round_trips() -> None:
    assert decode_state(encode_state(CustomerState(7))) == CustomerState(7)


@pytest.mark.parametrize("data", [b"", b"{}", b'{"v": 99}', b"[1]", b'{"v": 1, "id": 1}'])
def test_other_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_state(data)
