"""What a group's lag is and where a reset moves it: pure decisions over offsets Kafka reported.

The admin edge (:mod:`quoteflow.groups.admin`) asks the broker for a group's
committed offsets, each partition's log start and end, and, for a reset to a
time, the first offset at or after it; everything decided from those numbers
is here, so it is tested without a broker. The rules follow Kafka's own
``kafka-consumer-groups.sh``: a reset is refused while the group has members
(their next commit would overwrite it), an offset outside the log is clamped to
its start or end and the plan says so, and a time after the last record means
the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from quoteflow.errors import GroupError, GroupOptionError

#: Group states a reset may touch: nobody consumes, nobody commits.
RESETTABLE_STATES = frozenset({"Empty", "Dead"})


@dataclass(frozen=True)
class Position:
    """One partition a group reads: its committed offset and the log's bounds now.

    ``end`` is the last stable offset (read_committed): records of transactions
    still open are not there yet for the pipeline's consumers, which all read
    committed. A caught-up reader of a transactional topic commits past the
    last record, and the commit marker after it takes one more offset, so such
    a group may show a lag of 1 per partition that is only that marker.
    """

    topic: str
    partition: int
    committed: int | None  # None: the group has committed nothing for this partition
    start: int  # the log start offset (older records were deleted or compacted away)
    end: int

    @property
    def lag(self) -> int | None:
        """Records the group has still to read (None: it has committed nothing here)."""
        if self.committed is None:
            return None
        return max(0, self.end - max(self.committed, self.start))

    @property
    def expired(self) -> bool:
        """The committed offset is below the log start: those records are gone."""
        return self.committed is not None and self.committed < self.start


@dataclass(frozen=True)
class TopicLag:
    """A topic's partitions for one group, and their total."""

    topic: str
    positions: tuple[Position, ...]

    @property
    def total(self) -> int | None:
        """The sum over partitions with a commit (None: no partition has one)."""
        lags = [p.lag for p in self.positions if p.lag is not None]
        return sum(lags) if lags else None

    @property
    def uncommitted(self) -> int:
        return sum(1 for p in self.positions if p.committed is None)


def by_topic(positions: Iterable[Position]) -> tuple[TopicLag, ...]:
    """Positions grouped by topic, topics and partitions in order."""
    topics: dict[str, list[Position]] = {}
    for position in sorted(positions, key=lambda p: (p.topic, p.partition)):
        topics.setdefault(position.topic, []).append(position)
    return tuple(TopicLag(topic, tuple(found)) for topic, found in topics.items())


# -- members ------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One member of a group as the coordinator describes it."""

    client_id: str
    host: str


@dataclass(frozen=True)
class GroupInfo:
    """A group's state (Kafka's name: Empty, Stable, PreparingRebalance, ...) and members."""

    group: str
    state: str
    members: tuple[Member, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.members) or self.state not in RESETTABLE_STATES


def refuse_if_active(info: GroupInfo) -> None:
    """Raise unless nobody consumes in the group: a member's next commit would undo a reset,
    and the broker refuses offsets from outside a group with members anyway."""
    if not info.active:
        return
    if info.members:
        shown = ", ".join(f"{m.client_id}@{m.host}" for m in info.members[:3])
        more = f" and {len(info.members) - 3} more" if len(info.members) > 3 else ""
        raise GroupError(
            f"group {info.group} has {len(info.members)} active member(s) ({shown}{more}):"
            " stop its consumers first, then reset (nothing was changed)"
        )
    raise GroupError(
        f"group {info.group} is {info.state}, not Empty: wait until its consumers have left"
        " (their session timeout), then reset (nothing was changed)"
    )


# -- reset targets ------------------------------------------------------------------


@dataclass(frozen=True)
class ToEarliest:
    """Every partition from its log start: everything still kept is read again."""


@dataclass(frozen=True)
class ToLatest:
    """Every partition from its end: what is there now is skipped."""


@dataclass(frozen=True)
class ToOffsets:
    """Named partitions to given offsets; ``(None, p)`` means partition p of the only topic."""

    offsets: Mapping[tuple[str | None, int], int]


@dataclass(frozen=True)
class ToDatetime:
    """Every partition from its first record stamped at or after ``at_ms`` (epoch ms)."""

    at_ms: int


Target = ToEarliest | ToLatest | ToOffsets | ToDatetime

_OFFSET_ITEM = re.compile(r"(?:(?P<topic>[a-zA-Z0-9._-]+):)?(?P<partition>\d+)=(?P<offset>\d+)")


def parse_offsets(text: str) -> ToOffsets:
    """``0=120,1=98`` or ``qms.public.quotes:0=120,...`` (a topic where a group reads several)."""
    offsets: dict[tuple[str | None, int], int] = {}
    for item in (part.strip() for part in text.split(",")):
        match = _OFFSET_ITEM.fullmatch(item)
        if match is None:
            raise GroupOptionError(
                f"--to-offset {text!r}: {item!r} is not PARTITION=OFFSET or"
                " TOPIC:PARTITION=OFFSET (e.g. 0=120,1=98)"
            )
        key = (match["topic"], int(match["partition"]))
        if key in offsets:
            raise GroupOptionError(f"--to-offset {text!r}: partition {item.split('=')[0]} twice")
        offsets[key] = int(match["offset"])
    return ToOffsets(offsets)


def parse_datetime(text: str) -> ToDatetime:
    """An ISO 8601 time with its zone (``2026-12-06T18:00:00Z``, ``...+01:00``) as epoch ms.

    A time without a zone is refused rather than guessed: at 3 a.m. a reset an
    hour off in either direction re-sends or skips an hour of data.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise GroupOptionError(
            f"--to-datetime {text!r}: not an ISO 8601 time (e.g. 2026-12-06T18:00:00Z)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise GroupOptionError(
            f"--to-datetime {text!r}: give the time zone (e.g. {text.strip()}Z for UTC, or"
            " +01:00): a time without one is ambiguous"
        )
    return ToDatetime(int(moment.timestamp() * 1000))


def choose_target(
    *, to_datetime: str | None, to_offset: str | None, to_earliest: bool, to_latest: bool
) -> Target:
    """The one target the options name; two or none is a mistake worth a clear line."""
    given = [
        name
        for name, on in (
            ("--to-datetime", to_datetime is not None),
            ("--to-offset", to_offset is not None),
            ("--to-earliest", to_earliest),
            ("--to-latest", to_latest),
        )
        if on
    ]
    if len(given) != 1:
        which = "none" if not given else " and ".join(given)
        raise GroupOptionError(
            "give exactly one of --to-datetime, --to-offset, --to-earliest, --to-latest"
            f" (got {which})"
        )
    if to_datetime is not None:
        return parse_datetime(to_datetime)
    if to_offset is not None:
        return parse_offsets(to_offset)
    return ToEarliest() if to_earliest else ToLatest()


# -- the plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One partition's move: from its committed offset (None: none) to ``new``."""

    topic: str
    partition: int
    current: int | None
    new: int
    note: str = ""

    @property
    def change(self) -> int | None:
        """Positive: records skipped; negative: records read again (None: no commit before)."""
        return None if self.current is None else self.new - self.current


@dataclass(frozen=True)
class ResetPlan:
    """Where a reset moves each partition of one group; applied in one offset commit."""

    group: str
    rows: tuple[PlanRow, ...]

    @property
    def reread(self) -> int:
        """Records the group will read again (rows moving back)."""
        return sum(-r.change for r in self.rows if r.change is not None and r.change < 0)

    @property
    def skipped(self) -> int:
        """Records the group will never read (rows moving forward)."""
        return sum(r.change for r in self.rows if r.change is not None and r.change > 0)

    @property
    def changes_anything(self) -> bool:
        return any(r.new != r.current for r in self.rows)


def plan_reset(
    group: str,
    positions: Sequence[Position],
    target: Target,
    by_time: Mapping[tuple[str, int], int | None] | None = None,
) -> ResetPlan:
    """Each partition's new offset. ``by_time`` (for :class:`ToDatetime`): the first offset
    at or after the time per partition, None where no record is that recent."""
    if not positions:
        raise GroupError(f"group {group}: no partition to reset (do its topics exist?)")
    wanted = _wanted(positions, target, by_time)
    rows = []
    for position in sorted(positions, key=lambda p: (p.topic, p.partition)):
        key = (position.topic, position.partition)
        if key not in wanted:
            continue
        offset, note = wanted[key]
        if offset < position.start:
            offset, note = position.start, f"{offset} is below the log start: its start"
        elif offset > position.end:
            offset, note = position.end, f"{offset} is past the end: its end"
        rows.append(PlanRow(position.topic, position.partition, position.committed, offset, note))
    return ResetPlan(group, tuple(rows))


def _wanted(
    positions: Sequence[Position],
    target: Target,
    by_time: Mapping[tuple[str, int], int | None] | None,
) -> dict[tuple[str, int], tuple[int, str]]:
    keys = [(p.topic, p.partition) for p in positions]
    if isinstance(target, ToEarliest):
        return {(p.topic, p.partition): (p.start, "") for p in positions}
    if isinstance(target, ToLatest):
        return {(p.topic, p.partition): (p.end, "") for p in positions}
    if isinstance(target, ToDatetime):
        if by_time is None or any(key not in by_time for key in keys):
            raise ValueError("a reset to a time needs each partition's offset for that time")
        ends = {(p.topic, p.partition): p.end for p in positions}
        wanted: dict[tuple[str, int], tuple[int, str]] = {}
        for key in keys:
            offset = by_time[key]
            wanted[key] = (
                (ends[key], "no record that recent: the end") if offset is None else (offset, "")
            )
        return wanted
    return _named(positions, target)


def _named(
    positions: Sequence[Position], target: ToOffsets
) -> dict[tuple[str, int], tuple[int, str]]:
    topics = sorted({p.topic for p in positions})
    partitions = {t: sorted(p.partition for p in positions if p.topic == t) for t in topics}
    wanted: dict[tuple[str, int], tuple[int, str]] = {}
    for (topic, partition), offset in target.offsets.items():
        if topic is None:
            if len(topics) != 1:
                raise GroupOptionError(
                    f"--to-offset: the group reads {len(topics)} topics ({', '.join(topics)}):"
                    f" write TOPIC:{partition}={offset}, or choose one with --topic"
                )
            topic = topics[0]
        if topic not in partitions:
            raise GroupOptionError(
                f"--to-offset: the group does not read topic {topic} (it reads {', '.join(topics)})"
            )
        if partition not in partitions[topic]:
            known = partitions[topic]
            raise GroupOptionError(
                f"--to-offset: topic {topic} has no partition {partition}"
                f" (partitions {known[0]}-{known[-1]})"
            )
        if (topic, partition) in wanted:
            raise GroupOptionError(f"--to-offset: partition {partition} of {topic} named twice")
        wanted[(topic, partition)] = (offset, "")
    return wanted
