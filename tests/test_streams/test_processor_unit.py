"""The deciding half of the processor without a broker: markers, holds, reassignment.

The processor is built for real (its faust app, topics, tables and agent are
faust's own objects, on an event loop of the test's); only its Kafka edges are
replaced: the two tables by dicts (the operations it uses are a mapping's), the
output topics by recorders of their sends, the serde by a recorder of what it
would encode, and the process-wide faust patches are left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quoteflow.settings import load_settings
from streams import processor as processor_module
from streams.core.items import Markers, Tick
from streams.core.model import Change
from streams.core.watermarks import Marker, Watermarks
from streams.processor import Processor, _decode_seen, _encode_seen

from .core_helpers import MINUTE, T0, Clock, customer, quote, rules

pytestmark = pytest.mark.unit

DEADLINE = T0 + 30 * MINUTE  # core_helpers.rules(): 30 minutes
CUSTOMER = 7
PARTITION = CUSTOMER % 2  # two by-customer partitions


class Sends:
    """An output topic: records each send's key and what the serde was given."""

    def __init__(self, serde: Recorder) -> None:
        self.serde, self.sent = serde, list[tuple[bytes | None, dict[str, Any]]]()

    async def send(self, *, key: bytes | None, value: bytes) -> None:
        self.sent.append((key, self.serde.records[int(value)]))


class Recorder:
    """The serde: keeps each record it is asked to encode; the value is its index."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def encode(self, schema: str, record: dict[str, Any], *, topic: str) -> bytes:
        self.records.append(record)
        return str(len(self.records) - 1).encode()


class Wall:
    """The processor's clock, in seconds, moved by the test."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def wall() -> Wall:
    return Wall(T0)


@pytest.fixture
def make(clean_env: pytest.MonkeyPatch, tmp_path: Path,
         wall: Wall) -> Iterator[Callable[[], Processor]]:  # fmt: skip
    """Processors on the default settings with two partitions, their Kafka edges faked."""
    clean_env.setattr(processor_module, "apply_patches", lambda app, **_: None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # what faust's services take when given none

    def build() -> Processor:
        settings = load_settings(streams={"data_dir": tmp_path}, topics={"partitions": 2})
        serde = Recorder()
        processor = Processor(settings, rules(), serde, app_id="unit",  # type: ignore[arg-type]
                              clock=wall)  # fmt: skip
        processor.app.loop = loop
        processor.states, processor.marks = {}, {}  # type: ignore[assignment]
        processor.triggers = Sends(serde)  # type: ignore[assignment]
        processor.decisions = Sends(serde)  # type: ignore[assignment]
        # One partition per source, as start_router reads them from the broker.
        processor.expected = Watermarks.expecting({"qms": 1, "crm": 1})
        return processor

    yield build
    asyncio.set_event_loop(None)
    loop.close()


def handle(processor: Processor, item: Any, partition: int = PARTITION) -> None:
    processor.app.loop.run_until_complete(processor._handle(partition, item))


def triggers(processor: Processor) -> list[tuple[bytes | None, int]]:
    sends: Any = processor.triggers
    return [(key, record["quote_id"]) for key, record in sends.sent]


def open_quote(processor: Processor) -> None:
    """Customer 7 with a consenting address and quote 1, quoted at T0 (due at DEADLINE)."""
    clock = Clock()
    changes: list[Change] = [clock.customer(customer(CUSTOMER)),
                             clock.quote(quote(1, customer_id=CUSTOMER))]  # fmt: skip
    for change in changes:
        handle(processor, change)


# -- markers and the watermark -------------------------------------------------------------------
def test_a_due_quote_waits_for_a_marker_of_every_source_partition(
    make: Callable[[], Processor], wall: Wall
) -> None:
    processor = make()
    open_quote(processor)
    wall.ms = DEADLINE + MINUTE  # due by the wall clock

    handle(processor, Markers((Marker("qms", 0, DEADLINE + 1),)))
    assert triggers(processor) == []  # crm has not spoken: the watermark is unknown (0)
    assert processor._marks(PARTITION).watermark_ms == 0
    assert processor.marks[str(PARTITION).encode()] == b"qms,0," + str(DEADLINE + 1).encode()

    handle(processor, Marker("crm", 0, DEADLINE + 1))  # a single marker, as older routers sent
    assert triggers(processor) == [(str(CUSTOMER).encode(), 1)]
    handle(processor, Tick(wall.ms))
    assert len(triggers(processor)) == 1  # decided once


def test_a_watermark_short_of_the_deadline_holds_and_the_stall_is_logged(
    make: Callable[[], Processor], wall: Wall, caplog: pytest.LogCaptureFixture
) -> None:
    processor = make()
    open_quote(processor)
    wall.ms = DEADLINE + MINUTE
    handle(processor, Markers((Marker("qms", 0, DEADLINE + 1), Marker("crm", 0, DEADLINE - 1))))
    assert triggers(processor) == []  # crm's changes before the deadline may still come
    stall_ms = int(processor.settings.streams.watermark_stall_s * 1000)
    with caplog.at_level(logging.WARNING, logger="quoteflow.streams"):
        wall.ms += stall_ms
        handle(processor, Tick(wall.ms))
    (held,) = [r for r in caplog.records if r.getMessage().startswith("due quotes held")]
    assert held.__dict__["lagging"] == ["crm:0"] and held.__dict__["partition"] == PARTITION

    handle(processor, Marker("crm", 0, DEADLINE + 1))
    assert triggers(processor) == [(str(CUSTOMER).encode(), 1)]


def test_markers_only_move_forward_and_only_expected_ones_count(
    make: Callable[[], Processor],
) -> None:
    processor = make()
    handle(processor, Markers((Marker("qms", 0, 5_000), Marker("crm", 0, 4_000))))
    handle(processor, Markers((Marker("qms", 0, 3_000), Marker("qms", 1, 9_000))))
    assert processor._marks(PARTITION).seen == {("qms", 0): 5_000, ("crm", 0): 4_000}
    assert processor._marks(PARTITION).watermark_ms == 4_000
    assert processor._marks(1 - PARTITION).watermark_ms == 0  # per partition


def test_the_markers_table_value_round_trips() -> None:
    expected = Watermarks.expecting({"qms": 2, "crm": 1})
    marks = expected.with_markers([Marker("qms", 1, 7), Marker("crm", 0, 9)])
    assert _decode_seen(expected, _encode_seen(marks)) == marks
    assert _decode_seen(expected, None) == expected


# -- reassignment --------------------------------------------------------------------------------
def test_after_a_rebalance_the_partition_is_read_again_from_its_tables(
    make: Callable[[], Processor], wall: Wall
) -> None:
    """The memory of a partition is dropped at every revocation; its markers and due times
    come back from the tables (which faust restored), so a due quote is still decided."""
    processor = make()
    open_quote(processor)
    handle(processor, Markers((Marker("qms", 0, DEADLINE + 1), Marker("crm", 0, DEADLINE + 1))))
    assert triggers(processor) == []  # not due by the wall clock yet (T0)
    states, marks = dict(processor.states), dict(processor.marks)

    processor.app.loop.run_until_complete(processor.app.on_partitions_revoked.send(set()))
    assert processor.local.marks == {} and processor.local.due == {}

    # Another worker's processor takes the partition over with the same tables.
    other = make()
    other.states, other.marks = states, marks  # type: ignore[assignment]
    for p in (processor, other):
        wall.ms = DEADLINE + MINUTE
        p._ensure_indexed(PARTITION)
        assert p._marks(PARTITION).watermark_ms == DEADLINE + 1
        handle(p, Tick(wall.ms))
        assert triggers(p) == [(str(CUSTOMER).encode(), 1)]


def test_indexing_a_partition_takes_only_its_own_customers(
    make: Callable[[], Processor],
) -> None:
    processor = make()
    open_quote(processor)  # customer 7, partition 1
    states = dict(processor.states)
    fresh = make()
    fresh.states = states  # type: ignore[assignment]
    fresh._ensure_indexed(1 - PARTITION)
    fresh._ensure_indexed(PARTITION)
    assert fresh.local.due[1 - PARTITION].ready(DEADLINE, 10) == []
    assert fresh.local.due[PARTITION].ready(DEADLINE, 10) == [CUSTOMER]
