"""The group tools' decisions without a broker: lag, the reset plan, and who may be reset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quoteflow.errors import GroupError, GroupOptionError
from quoteflow.groups.plan import (
    GroupInfo,
    Member,
    Position,
    ToDatetime,
    ToEarliest,
    ToLatest,
    ToOffsets,
    by_topic,
    choose_target,
    parse_datetime,
    parse_offsets,
    plan_reset,
    refuse_if_active,
)

pytestmark = pytest.mark.unit

T = "qms.public.quotes"


def pos(partition: int, committed: int | None, start: int = 0, end: int = 100,
        topic: str = T) -> Position:  # fmt: skip
    return Position(topic, partition, committed, start, end)


@st.composite
def positions(draw: st.DrawFn) -> list[Position]:
    """Partitions of one or two topics, each with a log [start, end) and maybe a commit."""
    found = []
    for topic in draw(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2, unique=True)):
        for partition in range(draw(st.integers(1, 4))):
            start = draw(st.integers(0, 1000))
            end = draw(st.integers(start, start + 1000))
            committed = draw(st.none() | st.integers(0, end + 50))
            found.append(Position(topic, partition, committed, start, end))
    return found


# -- lag ---------------------------------------------------------------------------


def test_lag_is_what_is_left_to_read() -> None:
    assert pos(0, 40).lag == 60
    assert pos(0, 100).lag == 0
    assert pos(0, None).lag is None


def test_a_commit_below_the_log_start_counts_only_what_is_still_there() -> None:
    expired = pos(0, 5, start=30, end=100)
    assert expired.expired
    assert expired.lag == 70


def test_totals_per_topic_leave_out_partitions_without_a_commit() -> None:
    lags = by_topic([pos(1, 90), pos(0, 80), pos(2, None), pos(0, None, topic="b")])
    assert [t.topic for t in lags] == ["b", T]
    b, quotes = lags
    assert b.total is None and b.uncommitted == 1
    assert quotes.total == 30 and quotes.uncommitted == 1
    assert [p.partition for p in quotes.positions] == [0, 1, 2]


@given(positions())
def test_lag_is_never_negative_nor_more_than_the_log(found: list[Position]) -> None:
    for p in found:
        assert p.lag is None or 0 <= p.lag <= p.end - p.start


# -- who may be reset -----------------------------------------------------------------


@pytest.mark.parametrize("state", ["Empty", "Dead"])
def test_a_group_without_members_may_be_reset(state: str) -> None:
    refuse_if_active(GroupInfo("g", state))


def test_a_group_with_members_is_refused_naming_them() -> None:
    members = tuple(Member(f"c{n}", "/10.0.0.1") for n in range(5))
    with pytest.raises(GroupError, match=r"group g has 5 active member\(s\) \(c0@/10.0.0.1, "
                       r"c1@/10.0.0.1, c2@/10.0.0.1 and 2 more\)"):  # fmt: skip
        refuse_if_active(GroupInfo("g", "Stable", members))


def test_a_rebalancing_group_is_refused_even_before_its_members_show() -> None:
    with pytest.raises(GroupError, match="is PreparingRebalance, not Empty"):
        refuse_if_active(GroupInfo("g", "PreparingRebalance"))


# -- targets ---------------------------------------------------------------------------


def test_offsets_parse_per_partition_and_per_topic() -> None:
    assert parse_offsets("0=120, 1=98").offsets == {(None, 0): 120, (None, 1): 98}
    assert parse_offsets(f"{T}:3=7").offsets == {(T, 3): 7}


@pytest.mark.parametrize("text", ["", "0", "0=", "a=1", "0=-1", "0=1,,1=2", "0:1"])
def test_malformed_offsets_are_an_option_error(text: str) -> None:
    with pytest.raises(GroupOptionError, match="is not PARTITION=OFFSET"):
        parse_offsets(text)


def test_a_partition_named_twice_is_an_option_error() -> None:
    with pytest.raises(GroupOptionError, match="twice"):
        parse_offsets("0=1,0=2")


def test_a_time_with_its_zone_is_epoch_ms() -> None:
    moment = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    assert parse_datetime("2026-12-06T18:00:00Z").at_ms == int(moment.timestamp() * 1000)
    assert parse_datetime("2026-12-06T19:00:00+01:00").at_ms == int(moment.timestamp() * 1000)


def test_a_time_without_a_zone_is_refused_not_guessed() -> None:
    with pytest.raises(GroupOptionError, match="give the time zone"):
        parse_datetime("2026-12-06T18:00:00")
    with pytest.raises(GroupOptionError, match="not an ISO 8601 time"):
        parse_datetime("yesterday")


def test_exactly_one_target() -> None:
    none = {"to_datetime": None, "to_offset": None, "to_earliest": False, "to_latest": False}
    with pytest.raises(GroupOptionError, match=r"\(got none\)"):
        choose_target(**none)  # type: ignore[arg-type]
    with pytest.raises(GroupOptionError, match=r"got --to-offset and --to-latest"):
        choose_target(**{**none, "to_offset": "0=1", "to_latest": True})  # type: ignore[arg-type]
    assert choose_target(**{**none, "to_earliest": True}) == ToEarliest()  # type: ignore[arg-type]
    assert choose_target(**{**none, "to_latest": True}) == ToLatest()  # type: ignore[arg-type]


# -- the plan ----------------------------------------------------------------------------


def test_earliest_and_latest_move_every_partition_to_the_log_bounds() -> None:
    found = [pos(0, 50, start=10), pos(1, None, end=70)]
    early = plan_reset("g", found, ToEarliest())
    assert [(r.current, r.new, r.change) for r in early.rows] == [(50, 10, -40), (None, 0, None)]
    assert early.reread == 40 and early.skipped == 0
    late = plan_reset("g", found, ToLatest())
    assert [(r.new, r.change) for r in late.rows] == [(100, 50), (70, None)]
    assert late.skipped == 50


def test_named_offsets_move_only_those_partitions() -> None:
    plan = plan_reset("g", [pos(0, 50), pos(1, 50), pos(2, 50)], parse_offsets("0=20,2=60"))
    assert [(r.partition, r.new) for r in plan.rows] == [(0, 20), (2, 60)]
    assert (plan.reread, plan.skipped) == (30, 10)


def test_an_offset_outside_the_log_is_clamped_and_said() -> None:
    plan = plan_reset("g", [pos(0, 50, start=10), pos(1, 50)], parse_offsets("0=3,1=500"))
    assert [(r.new, r.note) for r in plan.rows] == [
        (10, "3 is below the log start: its start"), (100, "500 is past the end: its end")]


def test_bare_partitions_need_a_topic_when_the_group_reads_several() -> None:
    two = [pos(0, 1), pos(0, 1, topic="crm.public.customers")]
    with pytest.raises(GroupOptionError, match=r"reads 2 topics .*write TOPIC:0=5"):
        plan_reset("g", two, parse_offsets("0=5"))
    plan = plan_reset("g", two, parse_offsets("crm.public.customers:0=5"))
    assert [(r.topic, r.new) for r in plan.rows] == [("crm.public.customers", 5)]


def test_unknown_topics_and_partitions_are_option_errors() -> None:
    with pytest.raises(GroupOptionError, match=r"has no partition 9 \(partitions 0-1\)"):
        plan_reset("g", [pos(0, 1), pos(1, 1)], parse_offsets("9=5"))
    with pytest.raises(GroupOptionError, match="does not read topic other"):
        plan_reset("g", [pos(0, 1)], parse_offsets("other:0=5"))


def test_a_time_after_the_last_record_means_the_end() -> None:
    found = [pos(0, 50), pos(1, 50)]
    plan = plan_reset("g", found, ToDatetime(1), {(T, 0): 30, (T, 1): None})
    end = "no record that recent: the end"
    assert [(r.new, r.note) for r in plan.rows] == [(30, ""), (100, end)]


def test_a_time_needs_every_partitions_offset() -> None:
    with pytest.raises(ValueError, match="needs each partition"):
        plan_reset("g", [pos(0, 1), pos(1, 1)], ToDatetime(1), {(T, 0): 1})


def test_a_group_without_partitions_has_nothing_to_reset() -> None:
    with pytest.raises(GroupError, match="no partition to reset"):
        plan_reset("g", [], ToEarliest())


def test_a_plan_already_in_place_changes_nothing() -> None:
    assert not plan_reset("g", [pos(0, 100)], ToLatest()).changes_anything
    assert plan_reset("g", [pos(0, None, end=0)], ToLatest()).changes_anything


@given(positions(), st.sampled_from(["earliest", "latest", "offsets", "time"]), st.data())
def test_every_plan_stays_inside_the_log_and_adds_up(
    found: list[Position], kind: str, data: st.DataObject
) -> None:
    if kind == "earliest":
        target: ToEarliest | ToLatest | ToOffsets | ToDatetime = ToEarliest()
    elif kind == "latest":
        target = ToLatest()
    elif kind == "offsets":
        chosen = data.draw(st.lists(st.sampled_from(found), min_size=1, unique=True))
        target = ToOffsets({(p.topic, p.partition): data.draw(st.integers(0, 3000))
                            for p in chosen})  # fmt: skip
    else:
        target = ToDatetime(0)
    by_time = {
        (p.topic, p.partition): data.draw(st.none() | st.integers(p.start, p.end))
        for p in found
    }
    plan = plan_reset("g", found, target, by_time)
    bounds = {(p.topic, p.partition): p for p in found}
    for row in plan.rows:
        p = bounds[(row.topic, row.partition)]
        assert p.start <= row.new <= p.end
        assert row.current == p.committed
    moves = [r.change for r in plan.rows if r.change is not None]
    assert plan.skipped - plan.reread == sum(moves)
    if not isinstance(target, ToOffsets):
        assert len(plan.rows) == len(found)
