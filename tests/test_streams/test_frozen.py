"""fast_init: the core's dataclasses are made faster and stay what they were."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from streams.core.detector import CustomerState, Left, OpenQuote, Step
from streams.core.frozen import fast_init
from streams.core.model import Position

from .core_helpers import customer, quote

pytestmark = pytest.mark.unit


def test_instances_are_built_stay_frozen_and_compare_as_before() -> None:
    position = Position(lsn=5, commit_ms=6)
    assert (position.lsn, position.commit_ms) == (5, 6) and position == Position(5, 6)
    assert hash(position) == hash(Position(5, 6))
    assert repr(position) == "Position(lsn=5, commit_ms=6, commit_lsn=0)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        position.lsn = 7  # type: ignore[misc]
    assert dataclasses.replace(customer(), email=None).email is None
    assert pickle.loads(pickle.dumps(quote())) == quote()


def test_defaults_and_default_factories() -> None:
    open_quote = OpenQuote(quote(), Position(1, 2), 3, 3)
    assert (open_quote.decided_ms, open_quote.triggered) == (None, False)
    first, second = CustomerState(7), CustomerState(7)
    assert first.quotes == {} and first.quotes is not second.quotes
    assert Step(first).outputs == () and Step(first).held_ms is None
    assert Left(Position(1, 2), decided=True, at_ms=3).decided
    with pytest.raises(TypeError, match=r"Position.__init__\(\) missing 1 required"):
        Position(1)  # type: ignore[call-arg]


def test_only_frozen_slotted_dataclasses_without_post_init() -> None:
    @dataclass(slots=True)
    class Thawed:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        x: int = field(default=0)

        def __post_init__(self) -> None:
            pass

    for cls in (Thawed, NoSlots, Checked):
        with pytest.raises(TypeError):
            fast_init(cls)
