"""fast_init: the core's dataclasses are made faster and stay what they were."""

from __future__ import annotations

import dataclasses
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.core import frozen
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


def test_the_c_helper_is_built_and_used() -> None:
    """`pip install` builds streams/core/_slots.pyx: without it the core's objects are
    built through the slots' descriptors (same objects, twice the time)."""
    assert frozen.c_helper_built()
    assert "_fill" in Position.__init__.__globals__


@dataclass(frozen=True, slots=True)
class _Pair:
    left: object
    right: object = None


@pytest.mark.parametrize("c_helper", [True, False], ids=["C", "descriptors"])
def test_both_ways_build_the_same_objects_and_hold_their_references(
    c_helper: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not c_helper:
        monkeypatch.setattr("streams.core.frozen._slots", None)
    cls: Any = fast_init(_copy(_Pair))
    value, other = object(), object()
    before = sys.getrefcount(value)
    pair = cls(value)
    assert (pair.left, pair.right) == (value, None)
    assert sys.getrefcount(value) == before + 1
    cls.__init__(pair, other, value)  # re-initialised: the old values are let go
    assert pair.left is other and pair.right is value
    assert sys.getrefcount(value) == before + 1
    del pair
    assert sys.getrefcount(value) == before
    assert cls(1, right=2) == cls(left=1, right=2) != cls(2, 1)


def _copy(cls: type) -> type:
    """A fresh frozen slotted dataclass of the same fields (fast_init changes its class)."""
    return dataclass(frozen=True, slots=True)(
        type(cls.__name__, (), {"__annotations__": {"left": object, "right": object},
                                "right": None}))  # fmt: skip


def test_the_c_helper_refuses_another_class_instance() -> None:
    from streams.core import _slots

    with pytest.raises(TypeError, match="not an instance"):
        Position.__init__(quote(), 1, 2, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _slots.Slots(Position, (object(),))  # not a slot's descriptor
    with pytest.raises(TypeError):  # another class's slot
        _slots.Slots(Position, (vars(OpenQuote)["quote"],))
