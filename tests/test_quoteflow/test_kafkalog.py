"""Kafka clients' logs go through quoteflow's logging, chatter at DEBUG, problems once."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap

import pytest

from quoteflow.kafkalog import (
    LIBRDKAFKA_LOGGER,
    LibraryChatterFilter,
    LibrdkafkaLog,
    library_level,
    librdkafka_level,
)
from quoteflow.logs import configure_logging
from quoteflow.settings import LogSettings

COORDINATOR_LOADING = ("GETPID [rdkafka#producer-1] [thrd:main]: Failed to acquire transactional"
                       " PID from broker TxnCoordinator/1: Broker: Coordinator load in progress:"
                       " retrying")  # fmt: skip
REFUSED = ("FAIL [rdkafka#producer-1] [thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap:"
           " Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)")


@pytest.mark.unit
def test_a_retried_coordinator_state_is_debug_and_a_refused_connection_is_not() -> None:
    assert librdkafka_level(logging.WARNING, COORDINATOR_LOADING) == logging.DEBUG
    assert librdkafka_level(logging.ERROR, REFUSED) == logging.ERROR
    idle = "FAIL [rdkafka#consumer-2] [thrd:b/1]: b/1: Disconnected (after 600012ms in state UP)"
    assert librdkafka_level(logging.INFO, idle) == logging.DEBUG


@pytest.mark.unit
def test_library_info_is_chatter_except_ready_and_recovery() -> None:
    info = logging.INFO
    chatter = "Discovered coordinator 1 for transactional id app-1-0"
    assert library_level("aiokafka.producer.sender", info, chatter) == logging.DEBUG
    assert library_level("faust.transport.conductor", info, "[^---Conductor]: Starting...") == 10
    assert library_level("faust.worker", info, "[^Worker]: Ready") == info
    assert library_level("faust.tables.recovery", info, "[^---Recovery]: Recovery complete") == info
    # Warnings of the same libraries, and quoteflow's own INFO, keep their level.
    assert library_level("aiokafka.consumer.group_coordinator", logging.WARNING, chatter) == 30
    assert library_level("quoteflow.streams", info, "Discovered coordinator") == info


@pytest.mark.unit
def test_a_repeated_client_line_is_logged_once_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = LibrdkafkaLog(repeat_s=60.0, clock=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger=LIBRDKAFKA_LOGGER)
    for second in range(10):
        now[0] = float(second)
        # Other clients say the same: it is the same problem.
        log.log(logging.ERROR, "%s [%s] %s", "FAIL", f"quoteflow#producer-{second}",
                "b/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused")
    assert len(caplog.records) == 1
    now[0] = 61.0
    log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1",
            "b/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused")
    assert len(caplog.records) == 2
    assert "(9 more like it in the last 61 s)" in caplog.records[1].getMessage()
    log.log(logging.WARNING, "%s [%s] %s", "GETPID", "rdkafka#producer-1",
            "Coordinator load in progress: retrying")
    assert caplog.records[-1].levelno == logging.DEBUG


@pytest.mark.unit
def test_the_handler_drops_demoted_chatter_at_info_and_shows_it_at_debug() -> None:
    def handled(level: int, name: str, message: str) -> logging.LogRecord | None:
        record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
        return record if LibraryChatterFilter(level).filter(record) else None

    group = "aiokafka.consumer.group_coordinator"
    assert handled(logging.INFO, group, "(Re-)joining group") is None
    shown = handled(logging.DEBUG, group, "(Re-)joining group")
    assert shown is not None and shown.levelname == "DEBUG"
    assert handled(logging.INFO, "quoteflow.cdc", "slot created") is not None


@pytest.mark.integration
def test_a_real_client_logs_through_quoteflow_never_raw_to_stderr() -> None:
    """A producer that cannot reach its broker: librdkafka's complaint is one quoteflow log
    line (masked, formatted), and no line of the process's output starts with '%' and a
    digit, the mark of librdkafka printing on its own."""
    program = textwrap.dedent("""
        from confluent_kafka import KafkaException, Producer
        from quoteflow.logs import configure_logging
        from quoteflow.settings import LogSettings, load_settings
        configure_logging(LogSettings(format="json"))
        settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"})
        producer = Producer({**settings.kafka.as_librdkafka_dict(), "transactional.id": "t"})
        try:
            producer.init_transactions(4)
        except KafkaException:
            pass
        producer.poll(0.5)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if line[:1] == "%" and line[1:2].isdigit()], lines
    refused = [line for line in lines if "Connection refused" in line]
    assert len(refused) == 1, lines  # once, however often the client retried
    assert '"logger": "quoteflow.kafka.client"' in refused[0]


@pytest.mark.unit
def test_configure_logging_installs_the_chatter_filter() -> None:
    configure_logging(LogSettings(level="INFO", format="console"))
    stream = io.StringIO()
    root = logging.getLogger()
    [handler] = [h for h in root.handlers if getattr(h, "_quoteflow", False)]
    assert isinstance(handler, logging.StreamHandler)
    old = handler.setStream(stream)
    try:
        logging.getLogger("aiokafka.producer.sender").info("Discovered coordinator 1 for x")
        logging.getLogger("faust.worker").info("[^Worker]: Ready")
    finally:
        handler.setStream(old)
    assert "Discovered coordinator" not in stream.getvalue()
    assert "Ready" in stream.getvalue()
