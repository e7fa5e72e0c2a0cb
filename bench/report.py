"""The benchmarks' shared figures: nearest-rank percentiles, rates and the JSON last line.

Every ``quoteflow bench`` command ends with one JSON line of figures (the last
line of stdout, which CI and the tests parse), so they share one convention:
rates are whole events per second, latencies milliseconds to one decimal, a
percentile is a value that occurred (nearest rank, never an interpolation) and
NaN when there was nothing to measure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol


class Figures(Protocol):
    """A benchmark's result: what its JSON last line holds."""

    def as_json(self) -> dict[str, Any]: ...


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank ``pct`` percentile (0 to 100) of ``values``; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def per_second(count: float, seconds: float) -> float:
    """``count`` events over ``seconds`` as a rate."""
    return count / seconds


def span_rate(times: Sequence[float]) -> float:
    """Events per second from the first to the last of ``times`` (seconds, any order).

    Counted between the first and the last event, so start-up, group joins and
    the wait for the first event are not in the rate.
    """
    ordered = sorted(times)
    return (len(ordered) - 1) / (ordered[-1] - ordered[0])


def rate_figure(rate: float) -> int:
    """A rate as the JSON line shows it: whole events per second."""
    return round(rate)


def ms_figure(ms: float) -> float:
    """A latency as the JSON line shows it: milliseconds to one decimal."""
    return round(ms, 1)


def json_line(figures: Figures | Mapping[str, Any]) -> str:
    """The benchmark's last line of stdout: its figures as one line of JSON."""
    data = figures if isinstance(figures, Mapping) else figures.as_json()
    return json.dumps(dict(data))
