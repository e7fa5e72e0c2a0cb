"""When the sink may send a trigger: quiet hours in the customer's zone, and a maximum age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sink.timing import (
    Expired,
    Hold,
    QuietWindow,
    Send,
    decide,
    parse_clock,
    window_of,
)
from schemas.wire import AbandonmentTrigger, QuietHours

pytestmark = pytest.mark.unit

DAY_MS = 86_400_000
NIGHT = QuietWindow.parse("21:00", "08:00")
ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
         "Pacific/Chatham", "America/Sao_Paulo"]  # fmt: skip


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def local(year: int, month: int, day: int, hour: int, minute: int = 0, *,
          zone: str = "Europe/London", fold: int = 0) -> int:  # fmt: skip
    return ms(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold))


def at(now_ms: int, window: QuietWindow | None = NIGHT, zone: str = "Europe/London",
       fired_ms: int | None = None, max_age_ms: int = DAY_MS) -> Send | Hold | Expired:  # fmt: skip
    return decide(now_ms, fired_at_ms=now_ms if fired_ms is None else fired_ms, timezone=zone,
                  window=window, max_age_ms=max_age_ms)  # fmt: skip


class TestClock:
    def test_minutes_and_seconds(self) -> None:
        assert parse_clock("08:00").isoformat() == "08:00:00"
        assert parse_clock("21:05:30").isoformat() == "21:05:30"

    @pytest.mark.parametrize("text", ["8", "24:00", "08:60", "ab:cd", "", "08:00:00:00"])
    def test_rejects_what_is_not_a_clock(self, text: str) -> None:
        with pytest.raises(ValueError, match="HH:MM"):
            parse_clock(text)


class TestDecide:
    def test_daytime_sends(self) -> None:
        assert at(local(2026, 12, 7, 14)) == Send()

    def test_02_30_holds_until_08_00_local(self) -> None:
        assert at(local(2026, 12, 7, 2, 30)) == Hold(local(2026, 12, 7, 8))

    def test_evening_holds_until_next_morning(self) -> None:
        assert at(local(2026, 12, 7, 22)) == Hold(local(2026, 12, 8, 8))

    def test_the_window_is_judged_in_the_customers_zone(self) -> None:
        # 14:00 in London is 01:00 next day in Auckland: quiet there.
        now = local(2026, 12, 7, 14)
        assert at(now, zone="Pacific/Auckland") == Hold(
            local(2026, 12, 8, 8, zone="Pacific/Auckland"))

    def test_an_invalid_zone_falls_back_to_the_default(self) -> None:
        now = local(2026, 12, 7, 2, 30, zone="UTC")
        assert decide(now, fired_at_ms=now, timezone="Mars/Olympus", window=NIGHT,
                      max_age_ms=DAY_MS, default_timezone="UTC") == Hold(
            local(2026, 12, 7, 8, zone="UTC"))  # fmt: skip

    def test_no_window_known_sends(self) -> None:
        assert at(local(2026, 12, 7, 2, 30), window=None) == Send()

    def test_an_empty_window_sends(self) -> None:
        assert at(local(2026, 12, 7, 2, 30), window=QuietWindow.parse("08:00", "08:00")) == Send()

    def test_a_daytime_window_with_seconds(self) -> None:
        window = QuietWindow.parse("12:00:00", "12:00:15")
        assert at(local(2026, 12, 7, 12), window=window) == Hold(
            local(2026, 12, 7, 12) + 15_000)
        assert at(local(2026, 12, 7, 12) + 15_000, window=window) == Send()

    def test_older_than_the_maximum_age_expires_even_in_daytime(self) -> None:
        now = local(2026, 12, 7, 14)
        assert at(now, fired_ms=now - DAY_MS - 1) == Expired(DAY_MS + 1)
        assert at(now, fired_ms=now - DAY_MS) == Send()

    def test_expiry_wins_over_a_hold(self) -> None:
        now = local(2026, 12, 7, 2, 30)
        assert at(now, fired_ms=now - 25 * 3_600_000) == Expired(25 * 3_600_000)

    def test_spring_forward_end_in_the_gap_ends_at_the_transition(self) -> None:
        # Europe/London 2026-03-29: 01:00 GMT -> 02:00 BST; a window ending 01:30 local
        # ends when the clocks jump (01:00 UTC), not an hour later.
        window = QuietWindow.parse("21:00", "01:30")
        now = local(2026, 3, 29, 0, 45)
        transition = ms(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
        assert at(now, window=window) == Hold(transition)

    def test_fall_back_second_pass_is_still_quiet(self) -> None:
        # Europe/London 2026-10-25: 02:00 BST -> 01:00 GMT; 01:10 happens twice.
        window = QuietWindow.parse("21:00", "01:30")
        second = local(2026, 10, 25, 1, 10, fold=1)
        assert at(second, window=window) == Hold(local(2026, 10, 25, 1, 30, fold=1))


def _quiet(now_ms: int, window: QuietWindow, zone: str) -> bool:
    clock = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(ZoneInfo(zone)).time()
    return window.contains(clock)


clocks = st.times().map(lambda t: t.replace(microsecond=0))
instants = st.integers(ms(datetime(2025, 1, 1, tzinfo=UTC)), ms(datetime(2028, 1, 1, tzinfo=UTC)))


@settings(max_examples=400, deadline=None)
@given(now=instants, start=clocks, end=clocks, zone=st.sampled_from(ZONES))
def test_never_sends_inside_the_window_and_a_hold_ends_at_its_end(
    now: int, start: object, end: object, zone: str
) -> None:
    window = QuietWindow(start, end)  # type: ignore[arg-type]
    verdict = at(now, window=window, zone=zone)
    if isinstance(verdict, Send):
        assert not _quiet(now, window, zone)
        return
    assert isinstance(verdict, Hold)
    assert _quiet(now, window, zone)
    assert verdict.until_ms > now
    assert verdict.until_ms - now <= DAY_MS + 3_600_000  # at most a day (and a DST hour)
    assert not _quiet(verdict.until_ms, window, zone)  # the hold ends when the window does
    assert _quiet(verdict.until_ms - 1, window, zone)  # ... and not a moment later
    assert at(verdict.until_ms, window=window, zone=zone) == Send()


@settings(max_examples=100, deadline=None)
@given(now=instants, age=st.integers(0, 3 * DAY_MS), zone=st.sampled_from(ZONES))
def test_expired_exactly_when_older_than_the_maximum(now: int, age: int, zone: str) -> None:
    verdict = at(now, fired_ms=now - age, zone=zone)
    assert isinstance(verdict, Expired) == (age > DAY_MS)


def test_hold_durations_are_timedeltas_of_the_same_day_or_next() -> None:
    verdict = at(local(2026, 12, 7, 23, 59))
    assert isinstance(verdict, Hold)
    assert timedelta(milliseconds=verdict.until_ms - local(2026, 12, 7, 23, 59)) == timedelta(
        hours=8, minutes=1)


class TestTheTriggersWindow:
    def test_the_window_the_processor_writes_is_the_one_the_sink_reads(self) -> None:
        from schemas.embedded import EmbeddedSerde
        from streams.core.records import trigger_record
        from tests.test_streams.core_helpers import MINUTE, T0, Clock, customer, quote
        from tests.test_streams.test_detector import run

        c = Clock()
        (trigger,) = run([c.customer(customer()), c.quote(quote()), T0 + 31 * MINUTE])
        serde, topic = EmbeddedSerde(), "quoteflow.abandonment.triggers"
        with_window = trigger_record(trigger, fired_at_ms=T0, replay=False,  # type: ignore[arg-type]
                                     quiet_hours=("21:00", "08:00", "Europe/Paris"))
        back = serde.decode("abandonment_trigger", serde.encode(
            "abandonment_trigger", with_window, topic=topic), topic=topic)  # fmt: skip
        assert window_of(AbandonmentTrigger.from_record(back).quiet_hours) == (
            QuietWindow.parse("21:00", "08:00"), "Europe/Paris")
        without = trigger_record(trigger, fired_at_ms=T0, replay=False)  # type: ignore[arg-type]
        back = serde.decode("abandonment_trigger", serde.encode(
            "abandonment_trigger", without, topic=topic), topic=topic)  # fmt: skip
        assert window_of(AbandonmentTrigger.from_record(back).quiet_hours) == (None, None)

    def test_a_window_without_a_fallback_zone(self) -> None:
        assert window_of(QuietHours("22:00", "07:00:30", None)) == (
            QuietWindow.parse("22:00", "07:00:30"), None)  # fmt: skip

    def test_an_unreadable_window_is_an_error_the_sink_reports(self) -> None:
        with pytest.raises(ValueError, match="HH:MM"):
            window_of(QuietHours("9pm", "08:00"))


class TestMaxTriggerAgeSetting:
    @pytest.mark.parametrize(("value", "seconds"), [
        (None, 86_400.0), ("24h", 86_400.0), ("90m", 5_400.0), ("2d", 172_800.0),
        ("45s", 45.0), ("3600", 3_600.0), (7200, 7_200.0), ("1.5h", 5_400.0),
    ])  # fmt: skip
    def test_seconds_or_a_duration(self, value: object, seconds: float) -> None:
        from quoteflow.settings import load_settings

        sink = {} if value is None else {"max_trigger_age": value}
        assert load_settings(sink=sink).sink.max_trigger_age == seconds

    @pytest.mark.parametrize("value", ["soon", "24 hours", "-1h", 0, -5])
    def test_invalid_values_are_named_in_the_error(self, value: object) -> None:
        from quoteflow.errors import ConfigError
        from quoteflow.settings import load_settings

        with pytest.raises(ConfigError, match=r"sink\.max_trigger_age"):
            load_settings(sink={"max_trigger_age": value})
