"""The by-customer topic's items survive their encoding, and junk is refused with one error."""

from __future__ import annotations

import pytest

from streams.core.items import Markers, Tick, decode_item, encode_item
from streams.core.state_codec import StateFormatError
from streams.core.watermarks import Marker
from tests.test_streams.core_helpers import Clock, customer, quote

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("item", [
    Tick(1_795_428_000_000),
    Marker("qms", 3, 1_795_428_000_000),
    Markers((Marker("qms", 0, 5), Marker("crm", 1, 6))),
    Markers(()),
    Clock().quote(quote()),
    Clock().customer(customer()),
    Clock().quote(None, quote_id=4, customer_id=7),
])  # fmt: skip
def test_every_item_round_trips(item: object) -> None:
    assert decode_item(encode_item(item)) == item  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"", b"{}", b'["x", 1]', b'["m", "qms"]', b'["ms", [[1]]]'])
def test_junk_is_a_state_format_error(data: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_item(data)
