"""The CDC connector's Prometheus metrics: the collector alone, and `quoteflow cdc` serving them."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.cdc.metrics import CdcCollector
from connectors.cdc.runner import run_sources
from connectors.cdc.stats import Stats
from connectors.errors import CdcError
from quoteflow.settings import Settings
from tests.helpers import free_ports


def _samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("source", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(stats: dict[str, Stats], now: float) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CdcCollector(stats, clock=lambda: now))
    return _samples(generate_latest(registry).decode())


@pytest.mark.unit
def test_lag_and_counts_per_source() -> None:
    qms = Stats(transactions=3, changes=7, events=9, acked=8, server_wal_end=5_000,
                confirmed_lsn=4_000, watermark_ms=1_000_000)  # fmt: skip
    crm = Stats(changes=1)
    samples = _scrape({"qms": qms, "crm": crm}, now=1_002.5)
    assert samples[("quoteflow_cdc_lag_bytes", "qms")] == 1_000
    assert samples[("quoteflow_cdc_lag_seconds", "qms")] == 2.5
    assert samples[("quoteflow_cdc_changes_total", "qms")] == 7
    assert samples[("quoteflow_cdc_events_acked_total", "qms")] == 8
    assert samples[("quoteflow_cdc_events_in_flight", "qms")] == 1
    assert samples[("quoteflow_cdc_confirmed_lsn", "qms")] == 4_000
    assert samples[("quoteflow_cdc_changes_total", "crm")] == 1
    # No watermark yet: no lag in seconds rather than a made-up one.
    assert ("quoteflow_cdc_lag_seconds", "crm") not in samples


@pytest.mark.integration
def test_quoteflow_cdc_serves_its_metrics(cdc_settings: Settings) -> None:
    port = free_ports(1)[0]
    settings = cdc_settings.model_copy(
        update={"cdc": cdc_settings.cdc.model_copy(update={"metrics_port": port})}
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_sources(settings, ["qms"], lambda _line: None, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        samples = _wait_for(port, ("quoteflow_cdc_lag_seconds", "qms"), errors)
        with psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO quotes (quote_ref, customer_id, product_code, channel, premium,"
                " currency, valid_until) VALUES (gen_random_uuid()::text, 1, 'P', 'WEB', 1,"
                " 'GBP', '2026-12-31')"
            )
        before = samples.get(("quoteflow_cdc_changes_total", "qms"), 0)
        deadline = time.monotonic() + 30
        while samples.get(("quoteflow_cdc_changes_total", "qms"), 0) <= before:
            assert time.monotonic() < deadline, "the insert never showed in the metrics"
            samples = _wait_for(port, ("quoteflow_cdc_changes_total", "qms"), errors)
        # Heartbeats keep the watermark within seconds of the source's clock.
        assert 0 <= samples[("quoteflow_cdc_lag_seconds", "qms")] < 10
        assert samples[("quoteflow_cdc_lag_bytes", "qms")] >= 0
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    with pytest.raises(OSError):  # the listener went away with the connector
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _wait_for(
    port: int, key: tuple[str, str], errors: list[BaseException]
) -> dict[tuple[str, str], float]:
    deadline = time.monotonic() + 30
    while True:
        assert not errors, errors
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                samples = _samples(answer.read().decode())
            if key in samples:
                return samples
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no {key} in the metrics"
        time.sleep(0.2)


@pytest.mark.integration
def test_a_taken_metrics_port_is_one_clear_error(cdc_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = cdc_settings.model_copy(
            update={"cdc": cdc_settings.cdc.model_copy(update={"metrics_port": port})}
        )
        with pytest.raises(CdcError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            run_sources(settings, ["qms"], lambda _line: None, threading.Event())
