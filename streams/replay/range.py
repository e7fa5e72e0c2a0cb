"""A replay's range as an engineer types it: ``--from`` and ``--to``, parsed before any read.

Both ends take either a time (ISO 8601 with its zone: which hour a time without
one meant is a guess, as ``quoteflow groups reset`` says too) or offsets of the
quotes change topic's partitions (``0=1200,1=1310``); ``--from`` also takes
``beginning`` and ``--to`` takes ``end`` (the topics' ends when the replay
starts, pinned then, so a running pipeline does not stretch it).
Parsing is pure, so every mistake is one line naming the option, before a
single connection is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.errors import ReplayError

_OFFSETS = re.compile(r"^\s*\d+\s*=\s*\d+\s*(,\s*\d+\s*=\s*\d+\s*)*$")


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a range: a time, per-partition offsets, or the topic's own end."""

    at_ms: int | None = None
    offsets: Mapping[int, int] | None = None

    @property
    def is_open(self) -> bool:
        """``beginning``/``end``: the topic decides."""
        return self.at_ms is None and self.offsets is None

    def spelled(self) -> str:
        """As the option is typed again (the resume command pins it this way)."""
        if self.at_ms is not None:
            return datetime.fromtimestamp(self.at_ms / 1000, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")  # fmt: skip
        if self.offsets is not None:
            return ",".join(f"{p}={o}" for p, o in sorted(self.offsets.items()))
        return ""


OPEN = Bound()


def parse_bound(option: str, text: str | None) -> Bound:
    """``text`` as typed after ``option`` (``--from`` or ``--to``); None: the open end."""
    if text is None:
        return OPEN
    value = text.strip()
    if value.lower() in ({"beginning", "earliest"} if option == "--from" else {"end", "latest"}):
        return OPEN
    if _OFFSETS.match(value):
        offsets: dict[int, int] = {}
        for part in value.split(","):
            partition, offset = (int(x) for x in part.split("="))
            if partition in offsets:
                raise ReplayError(f"{option} {text!r}: partition {partition} is given twice")
            offsets[partition] = offset
        return Bound(offsets=offsets)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        hint = "beginning" if option == "--from" else "end"
        raise ReplayError(
            f"{option} {text!r}: not a time (ISO 8601, e.g. 2026-12-01T09:00Z), "
            f"partition offsets (e.g. 0=1200,1=1310) or {hint!r}"
        ) from None
    if parsed.tzinfo is None:
        raise ReplayError(f"{option} {text!r}: give the time zone (Z or +hh:mm), e.g. "
                          f"{value}Z")  # fmt: skip
    return Bound(at_ms=int(parsed.timestamp() * 1000))


def check_range(start: Bound, end: Bound) -> None:
    """Refuse a range that is empty by construction (a typo, most likely)."""
    if start.at_ms is not None and end.at_ms is not None and end.at_ms <= start.at_ms:
        raise ReplayError(f"--to {end.spelled()} is not after --from {start.spelled()}")
    if start.offsets is not None and end.offsets is not None:
        for partition, offset in start.offsets.items():
            stop = end.offsets.get(partition)
            if stop is not None and stop < offset:
                raise ReplayError(
                    f"--to offset {stop} of partition {partition} is before its --from offset"
                    f" {offset}"
                )
