"""A minimal faust worker for the integration test, run as its own process.

It counts values into a RocksDB-backed table (changelogged, inside faust's
exactly_once transactions) and echoes ``value=count`` to a sink topic.
"""

from __future__ import annotations

import sys
from typing import Any

import faust

from quoteflow.settings import load_settings
from streams.app import create_app


def build(app_id: str, source: str, sink: str, data_dir: str) -> faust.App:
    settings = load_settings(streams={"data_dir": data_dir})
    app = create_app(settings, app_id=app_id, topic_partitions=1)
    source_topic = app.topic(source, value_type=bytes, value_serializer="raw")
    sink_topic = app.topic(
        sink, key_type=bytes, key_serializer="raw", value_type=bytes, value_serializer="raw"
    )
    counts = app.Table("counts", default=int, partitions=1)

    @app.agent(source_topic)
    async def count(stream: Any) -> None:
        async for value in stream:
            word = value.decode()
            counts[word] += 1
            await sink_topic.send(key=value, value=f"{word}={counts[word]}".encode())

    return app


if __name__ == "__main__":
    probe = build(*sys.argv[1:5])
    assert probe.conf.processing_guarantee.value == "exactly_once"
    faust.Worker(probe, loglevel="INFO").execute_from_commandline()
