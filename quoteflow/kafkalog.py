"""Kafka clients' own logs, through quoteflow's logging, at levels a person can act on.

librdkafka prints straight to stderr (``%4|1733…|GETPID|rdkafka#producer-1| …``)
unless a client is given a ``logger``; then confluent-kafka hands each line to
it from the client's ``poll``/``flush``, where the masking filter and the
chosen format apply like to every other line. aiokafka and faust log through
:mod:`logging` already, but at INFO they narrate every coordinator lookup, group
join and component start: useful when debugging a rebalance, noise otherwise.

Both get the same treatment: *chatter* (a coordinator being found or still
loading, an idle connection closed by the broker, a component starting) is
demoted to DEBUG; anything else keeps its level, so a real problem (a broker
unreachable, authentication refused, a fenced producer) is still one line at
WARNING or ERROR.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

#: Where librdkafka's lines go (one logger for every confluent-kafka client).
LIBRDKAFKA_LOGGER = "quoteflow.kafka.client"

#: librdkafka lines that describe a transient state the client retries on its own.
_LIBRDKAFKA_CHATTER = re.compile(
    r"Coordinator load in progress|COORDINATOR_LOAD_IN_PROGRESS|Not coordinator"
    r"|NOT_COORDINATOR|COORDINATOR_NOT_AVAILABLE|Coordinator not available"
    r"|Disconnected \(after \d+ms in state UP"  # the broker closed an idle connection
    r"|: retrying$",
    re.IGNORECASE,
)

#: Parts of a librdkafka line that name the client or thread, not the problem.
_CLIENT_NAMES = re.compile(r"\[(?:[^\]\s]*#(?:producer|consumer)-\d+|thrd:[^\]]*)\]")
#: Distinct lines remembered for repeat counting (a bound, should a client vary its text).
_MAX_REMEMBERED = 1000

#: Top-level names of the libraries whose INFO is lifecycle chatter ("abc" is faust's
#: transaction manager, which logs under its base class's module).
CHATTY_LIBRARIES = frozenset({"aiokafka", "faust", "mode", "abc"})

#: INFO lines of those libraries worth seeing: the worker is up, table recovery (which
#: can take minutes after an outage) finished, a stop was asked for.
_KEPT_INFO = re.compile(r"\[\^Worker\]: Ready$|Recovery complete|Signal received")


def librdkafka_level(level: int, text: str) -> int:
    """The level a librdkafka line deserves: its own, or DEBUG for retried transients."""
    if level > logging.DEBUG and _LIBRDKAFKA_CHATTER.search(text):
        return logging.DEBUG
    return level


def library_level(logger_name: str, level: int, text: str) -> int:
    """The level a line from aiokafka/faust deserves: their INFO is chatter unless kept."""
    if level != logging.INFO or logger_name.partition(".")[0] not in CHATTY_LIBRARIES:
        return level
    return level if _KEPT_INFO.search(text) else logging.DEBUG


class LibrdkafkaLog:
    """The ``logger`` a confluent-kafka client is configured with.

    confluent-kafka calls ``log(level, "%s [%s] %s", facility, client, text)`` with
    librdkafka's syslog level already mapped to :mod:`logging`'s; the level is
    judged here, then the line is logged on :data:`LIBRDKAFKA_LOGGER`. A line
    repeated within ``repeat_s`` (a broker down is refused at every reconnect, a
    few times a second) is counted, not logged: one line per problem, and the
    count with its next appearance.
    """

    def __init__(self, name: str = LIBRDKAFKA_LOGGER, *, repeat_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._log = logging.getLogger(name)
        self._repeat_s, self._clock = repeat_s, clock
        self._lock = threading.Lock()
        #: The text of a line -> (when it was last logged, repeats since then).
        self._seen: dict[str, tuple[float, int]] = {}

    def log(self, level: int, msg: str, *args: Any) -> None:
        text = msg % args if args else msg
        level = librdkafka_level(level, text)
        if not self._log.isEnabledFor(level):
            return
        # The client and thread names differ between otherwise identical lines.
        key = _CLIENT_NAMES.sub("", text)
        now = self._clock()
        with self._lock:
            last, repeats = self._seen.get(key, (None, 0))
            if last is not None and now - last < self._repeat_s:
                self._seen[key] = (last, repeats + 1)
                return
            self._seen[key] = (now, 0)
            if len(self._seen) > _MAX_REMEMBERED:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._repeat_s}
        if repeats:
            self._log.log(level, "%s (%d more like it in the last %.0f s)", text, repeats,
                          now - last if last is not None else 0.0)  # fmt: skip
        else:
            self._log.log(level, "%s", text)


#: One instance for every client: it holds nothing but a logger.
CLIENT_LOG = LibrdkafkaLog()


class LibraryChatterFilter(logging.Filter):
    """On quoteflow's handler: demotes aiokafka/faust chatter, then applies ``level``.

    A handler filter rather than logger levels: setting ``faust`` to WARNING would
    also hide the few INFO lines an operator wants (the worker is ready, recovery
    is complete), and DEBUG must still show everything.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name.partition(".")[0] in CHATTY_LIBRARIES:
            level = library_level(record.name, record.levelno, record.getMessage())
            if level != record.levelno:
                record.levelno, record.levelname = level, logging.getLevelName(level)
        return record.levelno >= self.level
