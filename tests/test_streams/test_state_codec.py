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


def test_a_format_1_state_still_reads_and_its_queue_is_applied_at_the_next_step() -> None:
    """Written by the core before format 2: no commit LSNs, no quoted times, a queue."""
    from streams.core.detector import step

    from .core_helpers import T0, customer

    old = (
        b'{"v":1,"id":7,"c":null,"cp":null,"q":[[[1,"Q-1",7,"MOTOR-COMP","WEB","456.00","GBP",'
        b'"QUOTED",1795428000000,1795428000000],[1010,1795428000000],1795429800000,'
        b'1795429800000,null,false]],"l":[],"o":[],"u":[["c",7,[7,"Ada","ada@example.com",'
        b'true,"Europe/London",null],[1020,1795429900000]]]}'
    )
    state = decode_state(old)
    assert state.quotes[1].quoted_ms == 0 and state.quotes[1].position.commit_lsn == 0
    assert len(state.queue) == 1
    result = step(state, None, T0 + 31 * 60_000, T0 + 31 * 60_000, rules())
    assert result.state.queue == () and result.state.customer == customer()
    assert len(result.outputs) == 1  # the queued customer arrived: the quote is offered


def test_an_empty_state_round_trips() -> None:
    assert decode_state(encode_state(CustomerState(7))) == CustomerState(7)


@pytest.mark.parametrize("data", [b"", b"{}", b'{"v": 99}', b"[1]", b'{"v": 1, "id": 1}'])
def test_other_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_state(data)
