"""Whether a trigger may be sent *now*: quiet hours where the customer lives, and its age.

The processor judges quiet hours when it emits a trigger, but the e-mail goes
out later — after an outage or a watermark stall the catch-up would send at
02:30 local. So the sink judges again just before sending, from the window and
the time zone the trigger carries (the sink never reads the rules file): inside
the window it *holds* the trigger until the window ends (never drops it). A
trigger older than ``sink.max_trigger_age`` at that moment is *expired*: an
offer a day late is worse than none. Pure: the wall time is an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.wire import QuietHours

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def parse_clock(text: str) -> time:
    """A local clock time ``HH:MM`` (the rules file's) or ``HH:MM:SS``."""
    match = _CLOCK.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a clock time HH:MM or HH:MM:SS")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """No e-mail from ``start`` (inclusive) to ``end`` (exclusive), local clock times; a
    window with ``start > end`` spans midnight, ``start == end`` is no window at all."""

    start: time
    end: time

    @classmethod
    def parse(cls, start: str, end: str) -> QuietWindow:
        return cls(parse_clock(start), parse_clock(end))

    def contains(self, clock: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end


@dataclass(frozen=True, slots=True)
class Send:
    """Send it now."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Inside quiet hours: keep it, and judge again at ``until_ms`` (the window's end)."""

    until_ms: int


@dataclass(frozen=True, slots=True)
class Expired:
    """Older than the maximum age: never send it."""

    age_ms: int


Verdict = Send | Hold | Expired


def zone_of(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The trigger's IANA zone; a missing or unknown one falls back to ``default`` (then UTC)."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone)


def _first_at_or_after(day: date, clock: time, zone: ZoneInfo, after_ms: int) -> int:
    """The first instant after ``after_ms`` at which the local wall clock of ``day`` reads
    ``clock`` or later. Twice on a fall-back day (the second pass when the first is past);
    in a spring-forward gap, the moment the clocks jump."""
    for fold in (0, 1):
        wall = datetime.combine(day, clock, tzinfo=zone).replace(fold=fold)
        at_ms = int(wall.timestamp() * 1000)
        if _local(at_ms, zone).replace(tzinfo=None) != wall.replace(tzinfo=None, fold=0):
            # In the gap: fold=0 reads the clock with the old offset (after the jump),
            # fold=1 with the new one (before it). The jump lies between: find it.
            lo = int(wall.replace(fold=1).timestamp() * 1000)
            hi = int(wall.replace(fold=0).timestamp() * 1000)
            lo, hi = min(lo, hi), max(lo, hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _local(mid, zone).time() >= clock and _local(mid, zone).date() == day:
                    hi = mid
                else:
                    lo = mid
            at_ms = hi
        if at_ms > after_ms:
            return at_ms
    return after_ms  # unreachable for a wall time still ahead; kept total


def decide(now_ms: int, *, fired_at_ms: int, timezone: str | None, window: QuietWindow | None,
           max_age_ms: int, default_timezone: str = "UTC") -> Verdict:  # fmt: skip
    """Send, hold until the window's end, or expire — for a trigger at wall time ``now_ms``.

    Expiry is judged first: a trigger held overnight past its maximum age expires when
    its hold ends rather than going out late.
    """
    age = now_ms - fired_at_ms
    if age > max_age_ms:
        return Expired(age)
    if window is None:
        return Send()
    zone = zone_of(timezone, default_timezone)
    local = _local(now_ms, zone)
    clock = local.time().replace(tzinfo=None)
    if not window.contains(clock):
        return Send()
    day = local.date() if clock < window.end else local.date() + timedelta(days=1)
    until = _first_at_or_after(day, window.end, zone, now_ms)
    if until <= now_ms:  # the end's wall time never comes that day (a gap): the day after
        until = _first_at_or_after(day + timedelta(days=1), window.end, zone, now_ms)
    return Hold(until)


def window_of(quiet: QuietHours | None) -> tuple[QuietWindow | None, str | None]:
    """The quiet window a trigger carries (its ``quiet_hours``), and its fallback zone.

    ``(None, None)`` for a v1/v2 trigger or one fired without a window: no window is
    known, so the sink sends. An unreadable window raises ValueError (the caller
    decides; the processor validated the rules, so it means a hand-made trigger).
    """
    if quiet is None:
        return None, None
    return QuietWindow.parse(quiet.start, quiet.end), quiet.fallback_timezone or None
