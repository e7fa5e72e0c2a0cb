"""A fenced worker starts over in place: it never crashes, and never loops a supervisor.

Kafka fences a transactional producer when another producer initialises the
same transactional id (a new owner of the partition) or when the broker
aborted its transaction for running past ``transaction.timeout.ms``. Either
way that transaction's outputs, changelog writes and offsets are gone, while
the worker's RocksDB already holds its table writes and its consumer is past
its inputs. faust's answer was to crash (``ProducerFenced``), leaving the
restart to whatever supervises the process, and a backlog that fences again
made that a crash loop with no output at all.

Starting over is what makes the state right again: the unclean stop discards
local state (:func:`streams.worker.discard_state_after_crash`), the tables
are rebuilt from the changelogs as committed, the inputs are read again from
the committed offsets and new producers take the transactional ids over. So
the worker replaces its own process image (same pid, same supervisor view),
after a short, growing pause should fences repeat.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from aiokafka.errors import (  # type: ignore[import-untyped]
    IllegalOperation,
    InvalidProducerEpoch,
    ProducerFenced,
)

log = logging.getLogger("quoteflow.streams")

#: How many times this worker already started over after a fence (kept across exec).
RESTARTS_ENV = "QF_STREAMS_FENCED_RESTARTS"  # not QUOTEFLOW_*: settings reject unknown keys
MAX_PAUSE_S = 30.0


#: What a fenced producer's transaction dies of. faust may crash on the fence itself or on
#: what follows it: its next commit of the dead transaction raises IllegalOperation ("Not
#: in the middle of a transaction"), which chains nothing to the fence (seen end to end).
FENCED = (ProducerFenced, InvalidProducerEpoch, IllegalOperation)


def is_fenced(exc: BaseException | None) -> bool:
    """Whether ``exc`` or anything it was raised from is a producer fence (or its sequel)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, FENCED):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def pause_before_restart_s(restarts: int) -> float:
    """No pause for the first fence, then 1, 2, 4 ... seconds, at most ``MAX_PAUSE_S``."""
    return 0.0 if restarts <= 0 else min(MAX_PAUSE_S, 2.0 ** (restarts - 1))


def start_over(reason: BaseException | None) -> None:
    """Replace this process with a fresh run of the same command (never returns)."""
    restarts = int(os.environ.get(RESTARTS_ENV, "0") or 0)
    pause = pause_before_restart_s(restarts)
    log.warning(
        "the worker's producer was fenced: starting over, local state rebuilt from the"
        " changelogs",
        extra={"error": str(reason)[:200], "restarts": restarts, "pause_s": pause},
    )  # fmt: skip
    time.sleep(pause)
    os.environ[RESTARTS_ENV] = str(restarts + 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)  # noqa: S606 - this same command, in place


__all__ = ["is_fenced", "pause_before_restart_s", "start_over"]
