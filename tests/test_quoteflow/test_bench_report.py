"""bench/report.py: the benchmarks' shared percentiles, rates and JSON last line."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench.report import json_line, ms_figure, per_second, percentile, rate_figure, span_rate

pytestmark = pytest.mark.unit


def test_percentile_is_nearest_rank_of_the_values_in_any_order() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 51.0
    assert percentile(values, 99) == 100.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_percentile_matches_the_fraction_form_the_cdc_and_sink_benchmarks_used() -> None:
    """The old ``ordered[int(n * 0.99)]`` of bench/cdc.py: the same index at every size."""
    for n in range(1, 5_000):
        values = [float(v) for v in range(n)]
        for pct in (50, 99):
            assert percentile(values, pct) == values[min(n - 1, int(n * (pct / 100)))], (n, pct)


def test_rates_and_figures() -> None:
    assert per_second(300, 1.5) == 200.0
    assert span_rate([3.0, 1.0, 2.0, 5.0]) == 0.75  # 3 intervals over 4 s: start-up not counted
    assert rate_figure(1234.5678) == 1235
    assert ms_figure(12.345) == 12.3


def test_the_json_line_is_one_line_of_the_result_figures() -> None:
    class Result:
        def as_json(self) -> dict[str, Any]:
            return {"events_per_s": 10, "p99_ms": 1.5}

    line = json_line(Result())
    assert "\n" not in line
    assert json.loads(line) == {"events_per_s": 10, "p99_ms": 1.5}
    assert line == json.dumps(Result().as_json())  # what `quoteflow bench ...` printed
    assert json_line({"a": 1}) == '{"a": 1}'
