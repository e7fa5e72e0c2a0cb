"""``quoteflow bench sink`` end to end on the real stack, at a small scale.

Checks that every phase ran (real sink processes, a sandbox child, Kafka, the
ledger) and that the figures are measurements, not the speeds themselves.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient

from connectors.sink.ledger import Ledger
from quoteflow.cli import cli
from quoteflow.settings import Settings

pytestmark = pytest.mark.integration


def test_the_benchmark_runs_every_phase_and_leaves_nothing_behind(
    stack: object, settings: Settings
) -> None:
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    before = set(admin.list_topics(timeout=10).topics)
    rows_before = bench_rows(settings)
    result = CliRunner().invoke(cli, [
        "bench", "sink", "--sends", "300", "--latency-ms", "10", "--concurrency", "8",
        "--rate", "50", "--seconds", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    for key in ("sends_per_s", "baseline_per_s", "p50_ms", "p99_ms",
                "sends_per_s_two_processes", "sink_cpu_ms_per_send",
                "baseline_cpu_ms_per_send"):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["p50_ms"] <= figures["p99_ms"]
    assert figures["latency_sends"] == 50 and figures["sends"] == 300
    # The injected latency is a floor for produce-to-received: the sandbox records a
    # request after sleeping it.
    assert figures["p50_ms"] >= 10
    assert figures["baseline_per_s"] == max(figures["baseline_runs"])
    left = set(admin.list_topics(timeout=10).topics) - before
    assert not [t for t in left if t.startswith("bench.sink.")]
    assert bench_rows(settings) == rows_before, "the run's ledger rows are removed"


def bench_rows(settings: Settings) -> int:
    """Benchmark rows in the ledger (the migrations are applied first on a fresh ops db)."""
    Ledger(settings.postgres.ops_conninfo()).close()
    with psycopg.connect(settings.postgres.ops_conninfo()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM sink_deliveries WHERE trigger_id LIKE 'bench-%'"
        ).fetchone()
    assert row is not None
    return int(row[0])
