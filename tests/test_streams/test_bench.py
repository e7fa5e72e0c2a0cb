"""``quoteflow bench streams`` end to end on the real stack, at a small scale.

Checks that every phase ran over real workers and brokers and that the figures
are measurements (positive, ordered as the design says they must be), not the
speeds themselves: those are the benchmark's to report, never a test's to assert.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient

from quoteflow.cli import cli
from quoteflow.settings import Settings

pytestmark = pytest.mark.integration


def test_the_benchmark_runs_every_phase_and_leaves_nothing_behind(
    stack: object, settings: Settings
) -> None:
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    before = set(admin.list_topics(timeout=10).topics)
    result = CliRunner().invoke(cli, [
        "bench", "streams", "--events", "1000", "--open-quotes", "400",
        "--latency-quotes", "20", "--memory-quotes", "800",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    for key in ("events_per_s", "faust_ceiling_per_s", "baseline_per_s", "core_events_per_s",
                "detect_p50_ms", "detect_p99_ms", "rss_mb_1m_open"):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["detect_p50_ms"] <= figures["detect_p99_ms"] <= figures["visible_p99_ms"]
    # The core alone is always faster than with decoding; Kafka alone than faust.
    assert figures["core_events_per_s"] > figures["core_decode_events_per_s"]
    assert figures["baseline_per_s"] > figures["faust_ceiling_per_s"]
    left = set(admin.list_topics(timeout=10).topics) - before
    assert not [t for t in left if t.startswith(("bench.streams.", "bench-streams-"))]
