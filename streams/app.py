"""Build the faust application from settings — a factory, never a module-level app.

A module-level ``app = faust.App(...)`` would read configuration at import time
and make every test share one app; a factory lets each process (and each test)
build its own from the one settings model.
"""

from __future__ import annotations

from typing import Any

import faust

from quoteflow.settings import Settings


def broker_url(bootstrap_servers: str) -> str:
    """faust's broker URL form for a Kafka bootstrap list ("h1:p1,h2:p2")."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


def create_app(settings: Settings, *, app_id: str | None = None, **overrides: Any) -> faust.App:
    """A faust App with RocksDB tables (rocksdict) and the configured processing guarantee.

    RocksDB keeps table state on local disk across restarts, so a restarted
    worker replays only the changelog tail instead of the whole table.
    """
    data_dir = settings.streams.data_dir
    assert data_dir is not None  # filled from stack.home by the settings model
    options: dict[str, Any] = {
        "broker": broker_url(settings.kafka.bootstrap_servers),
        "store": "rocksdb://",
        "processing_guarantee": settings.streams.processing_guarantee,
        "datadir": str(data_dir),
        "topic_replication_factor": settings.topics.replication_factor,
        "web_enabled": False,
        "autodiscover": False,
        # Logging is configured by quoteflow, not by faust's worker defaults.
        "loghandlers": [],
    }
    if settings.kafka.sasl_mechanism is not None:
        options["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka.sasl_username or "",
            password=(
                settings.kafka.sasl_password.get_secret_value()
                if settings.kafka.sasl_password
                else ""
            ),
            mechanism=settings.kafka.sasl_mechanism,
        )
    options.update(overrides)
    return faust.App(app_id or settings.streams.app_id, **options)
