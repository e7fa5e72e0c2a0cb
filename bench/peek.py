"""How much cheaper a peek at the customer is than a full decode, on the replay's messages.

Why: the replay driver's lanes read every message and fully decode only their
own customers'; the plan holds only if learning the customer (a compiled peek,
:class:`schemas.peeker.CustomerIds`) costs a small fraction of a decode. This
times, on the same messages (``bench.workload`` quote changes encoded by the
serde): the peek, the serde's full ``decode``, and fastavro's
``schemaless_reader`` alone on the body (the floor of any fastavro decode).
Each is the best of a few passes, so a neighbour's burst of CPU on a shared
machine does not decide the figure.

Run ``python -m bench.peek`` (``--serde embedded|mock|registry``, ``--events``);
the last line is one JSON object, as every benchmark's.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_reader

from bench.report import json_line, rate_figure
from bench.workload import workload
from quoteflow.topics import QUOTES
from schemas.peeker import CustomerIds
from schemas.serde import Serde, make_serde, serde_from_settings

SCHEMA = "qms_quote_envelope"
#: Passes over the messages per reader; the fastest counts.
PASSES = 3


@dataclass(frozen=True)
class PeekFigures:
    """Messages per second of each way to read them, and the peek's cost against a decode."""

    messages: int
    peek_per_s: float
    decode_per_s: float
    fastavro_per_s: float

    @property
    def peek_cost(self) -> float:
        """A peek's time as a fraction of a full decode's (the target: well under 0.25)."""
        return self.decode_per_s / self.peek_per_s

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "peek_per_s": rate_figure(self.peek_per_s),
            "decode_per_s": rate_figure(self.decode_per_s),
            "fastavro_per_s": rate_figure(self.fastavro_per_s),
            "peek_cost_vs_decode": round(self.peek_cost, 3),
        }


def messages(serde: Serde, events: int, *, topic: str = QUOTES) -> list[bytes]:
    """``events`` quote changes of the benchmark workload, encoded by ``serde``."""
    quotes = workload(events, max(1, events // 10), start_ms=1_795_000_000_000).quotes
    return [serde.encode(SCHEMA, envelope, topic=topic) for envelope in quotes]


def best_rate(read: Callable[[bytes], object], data: Sequence[bytes], passes: int) -> float:
    """Messages per second of ``read`` over ``data``: the fastest of ``passes`` passes."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for message in data:
            read(message)
        best = min(best, time.perf_counter() - started)
    return len(data) / best


def measure(serde: Serde, data: Sequence[bytes], *, topic: str = QUOTES,
            passes: int = PASSES) -> PeekFigures:  # fmt: skip
    """Time the three readers on ``data`` (checking first that peek and decode agree)."""
    customers = CustomerIds(serde, SCHEMA)
    writer = serde.writer_of(SCHEMA, data[0], topic=topic)
    for message in data[:1000]:
        decoded = serde.decode(SCHEMA, message, topic=topic)
        row = decoded["after"] or decoded["before"]
        expected = None if row is None else row["customer_id"]
        if customers(message, topic=topic) != expected:
            raise AssertionError("the peek and the decode disagree: the figures would mean nothing")

    def peek(message: bytes) -> object:
        return customers(message, topic=topic)

    def decode(message: bytes) -> object:
        return serde.decode(SCHEMA, message, topic=topic)

    parsed, start = writer.parsed, writer.body_offset

    def fastavro_alone(message: bytes) -> object:
        return schemaless_reader(io.BytesIO(message[start:]), parsed, None)

    return PeekFigures(
        messages=len(data),
        peek_per_s=best_rate(peek, data, passes),
        decode_per_s=best_rate(decode, data, passes),
        fastavro_per_s=best_rate(fastavro_alone, data, passes),
    )


def _serde(kind: str) -> Serde:
    if kind == "embedded":
        return make_serde(None)
    if kind == "mock":
        return make_serde("mock://bench-peek")
    from quoteflow.settings import load_settings

    return serde_from_settings(load_settings().schema_registry)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peek", description=__doc__)
    parser.add_argument("--serde", choices=("embedded", "mock", "registry"), default="embedded")
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    serde = _serde(args.serde)
    try:
        data = messages(serde, args.events)
        figures = measure(serde, data)
    finally:
        serde.close()
    print(f"{args.serde} serde, {figures.messages} quote changes of "
          f"{sum(map(len, data)) // len(data)} bytes on average")  # fmt: skip
    for name, rate in (("peek (CustomerIds)", figures.peek_per_s),
                       ("Serde.decode", figures.decode_per_s),
                       ("fastavro schemaless_reader", figures.fastavro_per_s)):  # fmt: skip
        print(f"  {name:<28} {rate:>10,.0f} /s  {1e6 / rate:6.2f} µs")
    print(f"  a peek costs {figures.peek_cost:.1%} of a decode")
    print(json_line(figures))


if __name__ == "__main__":
    main()
