"""The sink's pure policies: failure classification, back-off, breaker, rate limit, lanes,
committable offsets."""

from __future__ import annotations

import threading

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from connectors.sink.backoff import backoff_s, retry_pause_s
from connectors.sink.breaker import CircuitBreaker
from connectors.sink.lanes import Lanes
from connectors.sink.offsets import PartitionOffsets
from connectors.sink.outcome import Kind, classify_exception, classify_status, wait_from_headers
from connectors.sink.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, Kind.SENT), (201, Kind.SENT), (202, Kind.SENT), (429, Kind.THROTTLED),
     (408, Kind.RETRY), (400, Kind.REJECTED), (422, Kind.REJECTED),
     # Configuration failures: every other message would meet the same answer.
     (401, Kind.CONFIG), (403, Kind.CONFIG), (404, Kind.CONFIG), (405, Kind.CONFIG),
     (407, Kind.CONFIG), (413, Kind.CONFIG), (402, Kind.CONFIG), (410, Kind.CONFIG),
     (415, Kind.CONFIG), (451, Kind.CONFIG), (301, Kind.CONFIG), (307, Kind.CONFIG)],
)  # fmt: skip
@pytest.mark.parametrize("dedupes", [True, False])
def test_statuses_the_same_for_every_provider(status: int, kind: Kind, dedupes: bool) -> None:
    assert classify_status(status, {}, dedupes=dedupes).kind is kind


@pytest.mark.parametrize("status", [500, 502, 503, 504, 507, 599])
def test_a_5xx_is_retried_only_where_the_provider_deduplicates(status: int) -> None:
    assert classify_status(status, {}, dedupes=True).kind is Kind.RETRY
    held = classify_status(status, {}, dedupes=False)
    assert held.kind is Kind.UNKNOWN and "may have accepted" in held.reason
    # Even a 503 asking to come back later is no proof the message was not queued.
    later = classify_status(status, {"Retry-After": "30"}, dedupes=False)
    assert later.kind is Kind.UNKNOWN and later.wait_s == 30.0


@given(st.integers(min_value=100, max_value=599), st.booleans())
def test_only_400_and_422_reject_a_message(status: int, dedupes: bool) -> None:
    """When in doubt, stop rather than reject: a rejection loses the e-mail for good."""
    kind = classify_status(status, {}, dedupes=dedupes).kind
    assert (kind is Kind.REJECTED) == (status in (400, 422))
    if 400 <= status < 500 and status not in (400, 408, 422, 429):
        assert kind is Kind.CONFIG


def test_retry_after_seconds_and_http_date() -> None:
    assert wait_from_headers({"Retry-After": "7"}, now_s=0) == 7.0
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    from email.utils import parsedate_to_datetime

    at = parsedate_to_datetime(date).timestamp()
    assert wait_from_headers({"retry-after": date}, now_s=at - 12) == pytest.approx(12.0)
    assert classify_status(429, {"Retry-After": "3"}, dedupes=False).wait_s == 3.0


def test_rate_limit_headers_epoch_and_delta() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1800000010"}
    assert wait_from_headers(headers, now_s=1_800_000_000) == 10.0
    assert wait_from_headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}) == 4.0
    # Budget left: no reason to wait.
    assert wait_from_headers({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "4"}) is None
    assert wait_from_headers({"Retry-After": "soon"}) is None


def test_exceptions_before_and_after_the_request_left() -> None:
    assert classify_exception(requests.ConnectTimeout()).kind is Kind.RETRY
    refused = requests.ConnectionError("HTTPConnectionPool: NewConnectionError: Connection refused")
    assert classify_exception(refused).kind is Kind.RETRY
    assert classify_exception(requests.ReadTimeout()).kind is Kind.UNKNOWN
    dropped = requests.ConnectionError("('Connection aborted.', RemoteDisconnected(...))")
    assert classify_exception(dropped).kind is Kind.UNKNOWN


@pytest.mark.parametrize("exc", [
    requests.exceptions.InvalidURL("Failed to parse: http://[esp"),
    requests.exceptions.MissingSchema("Invalid URL 'esp.example.com/v3/mail/send'"),
    requests.exceptions.InvalidSchema("No connection adapters were found for 'ftp://esp'"),
    requests.exceptions.InvalidHeader("Invalid leading whitespace in header value"),
    requests.exceptions.TooManyRedirects("Exceeded 30 redirects."),
])  # fmt: skip
def test_a_url_that_cannot_be_sent_to_is_a_configuration_failure(
    exc: requests.RequestException,
) -> None:
    verdict = classify_exception(exc)
    assert verdict.kind is Kind.CONFIG and type(exc).__name__ in verdict.reason


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=1))
def test_backoff_is_bounded_and_grows(attempt: int, r: float) -> None:
    pause = backoff_s(attempt, initial_s=0.5, max_s=60, rand=lambda: r)
    assert 0.05 <= pause <= 60
    assert pause <= 0.5 * 2 ** (attempt - 1) or pause == 0.05


def test_retry_after_beats_backoff_even_past_the_cap() -> None:
    assert retry_pause_s(1, 120.0, initial_s=0.5, max_s=60) == 120.0
    assert retry_pause_s(3, None, initial_s=1, max_s=60, rand=lambda: 1.0) == 4.0


def test_breaker_opens_probes_once_and_closes() -> None:
    clock, stop = Clock(), threading.Event()
    breaker = CircuitBreaker(3, 10.0, clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.closed
    breaker.failure()
    assert breaker.state == "open" and breaker.openings == 1
    stop.set()  # acquire must not block the test: it returns False while open
    assert breaker.acquire(stop) is False
    stop.clear()
    clock.now += 10
    assert breaker.acquire(stop) is True  # the probe
    assert breaker.state == "half_open"
    waiter = threading.Event()
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(breaker.acquire(waiter, poll_s=0.01)))
    thread.start()
    breaker.success()
    thread.join(5)
    assert got == [True] and breaker.closed


def test_breaker_failed_probe_reopens_and_abandoned_probe_frees_the_slot() -> None:
    clock, stop = Clock(), threading.Event()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure()
    clock.now += 5
    assert breaker.acquire(stop)
    breaker.failure()
    assert breaker.state == "open" and breaker.openings == 2
    clock.now += 5
    assert breaker.acquire(stop)
    breaker.abandon()
    assert breaker.state == "open"
    assert breaker.acquire(stop)  # another caller may probe at once


def test_failed_probes_back_off_up_to_the_cap_and_a_success_resets() -> None:
    clock, stop = Clock(), threading.Event()
    breaker = CircuitBreaker(1, 1.0, clock, max_cooldown_s=4.0)
    breaker.failure()
    waits = []
    for _ in range(5):  # each probe fails: the next comes after twice the wait, capped
        opened = clock.now
        while not breaker.probe_due():
            clock.now += 0.25
        waits.append(clock.now - opened)
        assert breaker.acquire(stop) and not breaker.probe_due()  # one probe at a time
        breaker.failure()
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]
    clock.now += 4
    assert breaker.probe_due() and breaker.acquire(stop)
    breaker.success()
    assert breaker.closed and not breaker.probe_due()
    breaker.failure()  # a new opening starts from the base cooldown again
    clock.now += 1
    assert breaker.probe_due()


def test_a_halted_breaker_never_lets_a_request_out_again() -> None:
    clock, stop = Clock(), threading.Event()
    breaker = CircuitBreaker(3, 1.0, clock)
    breaker.halt()
    assert breaker.state == "halted" and not breaker.closed and breaker.openings == 1
    breaker.success()  # an answer still on its way does not close it
    breaker.failure()
    clock.now += 3600  # nor does time: no probe
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(breaker.acquire(stop, poll_s=0.01)))
    thread.start()
    thread.join(0.3)
    assert thread.is_alive() and got == [] and not breaker.probe_due()
    stop.set()  # the sink's drain interrupts the senders waiting
    thread.join(5)
    assert got == [False] and breaker.state == "halted"
    breaker.halt()
    assert breaker.openings == 1


def test_rate_limiter_tokens_and_holds() -> None:
    clock = Clock()
    limiter = RateLimiter(100.0, clock=clock)  # burst 10
    assert limiter.try_take(50) == 10
    assert limiter.try_take(1) == 0
    assert limiter.wait_s() == pytest.approx(0.01)
    clock.now += 0.05
    assert limiter.try_take(50) == 5
    limiter.hold(2.0)
    clock.now += 1.0
    assert limiter.try_take(1) == 0
    assert limiter.wait_s() == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.try_take(1) == 1
    unlimited = RateLimiter(None, clock=clock)
    assert unlimited.try_take(1000) == 1000
    unlimited.hold(1)
    assert unlimited.try_take(5) == 0


def test_lanes_keep_each_customers_order() -> None:
    lanes: Lanes[str] = Lanes()
    for key, item in [(1, "a1"), (2, "b1"), (1, "a2"), (1, "a3"), (3, "c1")]:
        lanes.add(key, item)
    first = lanes.take_ready(10)
    assert [i for _, i in first] == ["a1", "b1", "c1"]
    assert lanes.take_ready(10) == [] and len(lanes) == 5
    lanes.done(2)
    assert lanes.take_ready(10) == []
    lanes.done(1)
    assert lanes.take_ready(10) == [(1, "a2")]
    lanes.done(1)
    got = lanes.take_ready(1)
    assert got == [(1, "a3")]
    lanes.put_back(got)
    assert lanes.take_ready(5) == [(1, "a3")]
    with pytest.raises(KeyError):
        lanes.done(2)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=60))
def test_lanes_never_run_two_of_one_customer(ops: list[tuple[int, int]]) -> None:
    lanes: Lanes[int] = Lanes()
    running: dict[int, int] = {}
    order: dict[int, list[int]] = {}
    seq = 0
    for key, action in ops:
        if action % 3:
            lanes.add(key, seq)
            order.setdefault(key, []).append(seq)
            seq += 1
        for k, item in lanes.take_ready(action):
            assert k not in running
            assert order[k][0] == item  # oldest of that customer first
            running[k] = item
        if running and action % 2:
            k = next(iter(running))
            order[k].pop(0)
            del running[k]
            lanes.done(k)


@given(st.permutations(list(range(20))), st.integers(0, 20))
def test_committable_offset_is_first_not_done(order: list[int], done_count: int) -> None:
    track = PartitionOffsets()
    for offset in range(100, 120):
        track.read(offset)
    done = {100 + i for i in order[:done_count]}
    for offset in done:
        track.done(offset)
    expected = next((o for o in range(100, 120) if o not in done), 120)
    assert track.committable() == expected
    assert track.pending == 20 - len(done)
