"""Snapshot requests as WAL messages: they round-trip, and junk or a forged id is no request.

The CDC acts on what :func:`parse` returns, so anything else in the signal
prefix (another tool's message, a truncated one) must be ignored, never
misread as "snapshot everything".
"""

from __future__ import annotations

import pytest

from connectors.cdc.requests import (
    CancelRequest,
    SnapshotRequest,
    encode,
    for_slot,
    new_request_id,
    parse,
    valid_request_id,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "request_",
    [
        SnapshotRequest("public.quotes"),
        SnapshotRequest("public.quotes", "0123456789ab"),
        SnapshotRequest("public.quotes", "0123456789ab", "updated_at >= '2026-11-01'"),
        SnapshotRequest("public.quotes", "abcdef", 'x = \'"; {}\\\''),
        SnapshotRequest("public.quotes", "0123456789ab", None, "quoteflow_qms"),
        CancelRequest("public.customers", "0123456789ab"),
        CancelRequest("public.customers", "0123456789ab", "quoteflow_crm"),
    ],
)
def test_a_request_round_trips(request_: SnapshotRequest | CancelRequest) -> None:
    assert parse(encode(request_).encode()) == request_


def test_an_older_quoteflows_request_is_an_unfiltered_snapshot() -> None:
    assert parse(b'{"snapshot":"public.quotes"}') == SnapshotRequest("public.quotes", None, None)


@pytest.mark.parametrize(
    "content",
    [
        b"", b"{", b"[]", b"3", b'{"snapshot": 3}', b'{"cancel": "abcdef"}',
        b'{"snapshot": "public.quotes", "id": "../../etc"}',
        b'{"snapshot": "public.quotes", "id": 7}',
        b'{"snapshot": "public.quotes", "where": ["x"]}',
        b'{"cancel": 5, "table": "public.quotes"}',
        b'{"snapshot": "public.quotes", "slot": 1}',
    ],
)  # fmt: skip
def test_junk_is_no_request(content: bytes) -> None:
    assert parse(content) is None


def test_new_ids_are_valid_and_distinct() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100 and all(valid_request_id(i) for i in ids)
    assert not valid_request_id("ABCDEF") and not valid_request_id("abc")


def test_a_request_is_for_its_slots_cdc_or_for_any_when_it_names_none() -> None:
    addressed = SnapshotRequest("public.quotes", "abcdef", None, "quoteflow_qms")
    assert for_slot(addressed, "public.quotes", "quoteflow_qms")
    assert not for_slot(addressed, "public.quotes", "test_123_qms")  # another pipeline's CDC
    assert not for_slot(addressed, "public.customers", "quoteflow_qms")
    assert for_slot(SnapshotRequest("public.quotes"), "public.quotes", "test_123_qms")
