"""The peek benchmark's plumbing: it reads what it says, and refuses figures that mean nothing.

No timing is asserted (a shared machine makes any threshold flaky); the figures
themselves come from ``python -m bench.peek``.
"""

from __future__ import annotations

import json

import pytest

from bench import peek as bench_peek
from schemas.embedded import EmbeddedSerde
from schemas.serde import make_serde

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("url", [None, "mock://bench-peek-test"])
def test_measure_times_the_three_readers_on_the_same_messages(url: str | None) -> None:
    serde = make_serde(url)
    data = bench_peek.messages(serde, 300)
    figures = bench_peek.measure(serde, data, passes=1)
    assert figures.messages == len(data) == 300
    assert min(figures.peek_per_s, figures.decode_per_s, figures.fastavro_per_s) > 0
    line = figures.as_json()
    assert set(line) == {"messages", "peek_per_s", "decode_per_s", "fastavro_per_s",
                         "peek_cost_vs_decode"}  # fmt: skip
    assert line["peek_cost_vs_decode"] == round(figures.decode_per_s / figures.peek_per_s, 3)


def test_a_peek_that_disagrees_with_the_decode_stops_the_benchmark() -> None:
    class Lying(EmbeddedSerde):
        def decode(self, schema_name: str, data: bytes, *, topic: str,
                   is_key: bool = False) -> dict[str, object]:  # fmt: skip
            record = super().decode(schema_name, data, topic=topic, is_key=is_key)
            record["after"] = {**record["after"], "customer_id": -1}
            return record

    lying = Lying()
    with pytest.raises(AssertionError, match="disagree"):
        bench_peek.measure(lying, bench_peek.messages(lying, 10), passes=1)


def test_the_last_line_is_the_json_figures(capsys: pytest.CaptureFixture[str]) -> None:
    bench_peek.main(["--serde", "embedded", "--events", "200"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["messages"] == 200
