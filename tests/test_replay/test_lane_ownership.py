"""streams/replay/reader.owned: which lane decodes a change, from its rows' customer ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.replay.reader import owned

pytestmark = pytest.mark.unit


def lane(n: int, of: int = 2) -> Callable[[int], bool]:
    return lambda customer_id: customer_id % of == n


def test_a_change_is_the_lane_of_its_customer() -> None:
    assert owned(4, None, lane(0)) is True  # an insert: after only
    assert owned(5, None, lane(0)) is False
    assert owned(None, 5, lane(1)) is True  # a delete: before only
    assert owned(5, 5, lane(0)) is False  # an update of one customer's quote


def test_a_quote_that_moved_between_customers_is_both_lanes() -> None:
    # It leaves customer 4 (lane 0) and joins customer 5 (lane 1): each must see its half.
    assert owned(5, 4, lane(0)) is True
    assert owned(5, 4, lane(1)) is True
    assert owned(5, 4, lane(0, of=3)) is False  # 5 and 4 are lanes 2 and 1 of three


def test_a_change_without_customers_is_every_lanes() -> None:
    assert owned(None, None, lane(0)) is None  # a TRUNCATE: every lane applies it
    assert owned(None, None, lane(1)) is None


def test_a_customer_id_that_is_not_an_int_is_no_lanes_own_claim() -> None:
    assert owned("4", None, lane(0)) is False
