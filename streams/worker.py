"""Run one processor worker (``quoteflow process``): faust's Worker, the router, local state.

:mod:`streams.processor` builds the app and decides; this module is the process
around it: the internal topics declared before the worker joins, local table
state judged (and discarded after a crash) before faust opens it, the router
thread started and stopped with the worker, and a fenced worker started over.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import faust

from quoteflow.settings import Settings
from streams.app import declare_topics
from streams.core.rules import Rules
from streams.fencing import is_fenced, start_over
from streams.local_state import prepare_tables
from streams.processor import build_processor

log = logging.getLogger("quoteflow.streams")


def run_worker(settings: Settings, rules: Rules) -> None:
    """Run one processor worker until SIGTERM/SIGINT (faust's Worker handles both)."""
    processor = build_processor(settings, rules)
    declare_topics(settings, processor.internal_topics(), processor.partitions)
    tabledir = Path(processor.app.conf.tabledir)
    clean = discard_state_after_crash(tabledir)
    prepare_tables(settings, tabledir, processor.app.conf.id, processor.changelogs())
    worker = faust.Worker(
        processor.app, loglevel=settings.log.level.lower(), override_logging=False
    )
    # mode's start-up spinner writes terminal escapes ("\x1b[?25h OK ^") to stdout, a
    # log file included; quoteflow's own lines say when the worker is up.
    worker.spinner = None
    stop_router = processor.start_router()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code in (0, None):
            clean.write_text("stopped cleanly\n")
        elif is_fenced(worker.crash_reason):
            stop_router.set()
            processor.stop_router()
            start_over(worker.crash_reason)  # no clean marker: local state is rebuilt
        raise
    finally:
        stop_router.set()
        processor.stop_router()


def discard_state_after_crash(tabledir: Path) -> Path:
    """Delete local table state a crashed worker left; returns the clean-stop marker.

    A table write reaches RocksDB at once, before its transaction commits; after
    a kill -9 the local store can hold writes whose transaction was aborted (a
    trigger that never went out, recorded as sent). Like Kafka Streams under
    exactly-once, state that was not closed cleanly is rebuilt from the
    changelog, read committed; a clean stop keeps it for a fast restart.
    """
    marker = tabledir.parent / f"{tabledir.name}.clean"
    if tabledir.exists() and not marker.exists():
        log.warning(
            "the last worker did not stop cleanly: local state discarded, restoring it"
            " from the changelog topics",
            extra={"tabledir": str(tabledir)},
        )
        shutil.rmtree(tabledir)
    marker.unlink(missing_ok=True)
    return marker
