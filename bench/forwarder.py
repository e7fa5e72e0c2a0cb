"""faust's own ceiling: an agent that only forwards each record (``python -m ...forwarder``).

Built like the processor's app (same factory, commit interval, producer linger,
buffers and processing guarantee, and under exactly-once the same transaction
manager), so the difference between the two is the processor's own work: the
decoding, the repartition hop, the tables and the core.
"""

from __future__ import annotations

import sys

import faust

from quoteflow.settings import Settings, load_settings
from streams.app import create_app, raw_topic
from streams.faust_patches import apply_patches
from streams.processor import FETCH_MAX_WAIT_MS


def build_forwarder(settings: Settings, *, app_id: str, source: str, target: str) -> faust.App:
    app = create_app(
        settings, app_id=app_id,
        broker_commit_interval=settings.streams.commit_interval_s,
        producer_linger=0.05, producer_max_batch_size=512 * 1024, stream_buffer_maxsize=4096,
        consumer_auto_offset_reset="earliest",
    )  # fmt: skip
    inbound, outbound = raw_topic(app, source), raw_topic(app, target)
    apply_patches(app, fetch_max_wait_ms=FETCH_MAX_WAIT_MS, changelog_sources={})

    async def forward(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await outbound.send(key=event.key, value=event.value)

    app.agent(inbound, name="forward")(forward)
    return app


def main(argv: list[str]) -> None:
    """``forwarder APP_ID SOURCE TARGET``: runs until SIGTERM; settings from the environment."""
    app_id, source, target = argv
    settings = load_settings()
    app = build_forwarder(settings, app_id=app_id, source=source, target=target)
    worker = faust.Worker(app, loglevel=settings.log.level.lower(), override_logging=False)
    worker.spinner = None  # no terminal escapes in the benchmark's output
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
