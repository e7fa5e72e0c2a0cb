"""Injected faults: the plan's bookkeeping without a server, then each fault over HTTP,
and many concurrent keep-alive requests under injected latency."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devstack.esp_sandbox import Sandbox, SandboxClient
from devstack.esp_sandbox.faults import FaultPlan, FaultSpecError
from tests.test_sink.conftest import Deliver, build_send
from tests.test_sink.triggers import make_trigger

pytestmark = pytest.mark.unit


# --- the plan ---------------------------------------------------------------------------------


def test_counted_faults_play_out_in_order_then_requests_pass() -> None:
    plan = FaultPlan(latency_ms=10)
    plan.configure({
        "status_burst": {"status": 502, "count": 2},
        "rate_limit": {"count": 1, "retry_after_s": 3},
        "timeouts": {"count": 1},
    })  # fmt: skip
    kinds = [plan.take() for _ in range(5)]
    assert [d.kind for d in kinds] == ["status", "status", "rate_limit", "timeout", None]
    assert kinds[0].status == 502 and kinds[2].retry_after_s == 3 and kinds[3].delay_s == 5.0
    assert all(d.latency_s == 0.01 for d in kinds)
    assert dict(plan.injected) == {"status": 2, "rate_limit": 1, "timeout": 1}


def test_a_partial_update_keeps_the_other_faults_and_a_bad_one_changes_nothing() -> None:
    plan = FaultPlan()
    plan.configure({"latency_ms": 50, "status_burst": {"count": 4}})
    plan.configure({"timeouts": {"count": 1, "delay_s": 2}})
    with pytest.raises(FaultSpecError):
        plan.configure({"latency_ms": 0, "rate_limit": {"count": 1, "retry_after_s": 1.5}})
    shown = plan.describe()
    assert shown["latency_ms"] == 50
    assert shown["status_burst"] == {"status": 503, "count": 4}
    assert shown["timeouts"] == {"count": 1, "delay_s": 2.0}
    assert shown["rate_limit"]["count"] == 0


def test_jitter_stays_within_its_bound() -> None:
    plan = FaultPlan(seed=7)
    plan.configure({"latency_ms": 20, "latency_jitter_ms": 10})
    assert all(0.02 <= plan.take().latency_s <= 0.03 for _ in range(200))


def test_down_for_lasts_its_time_and_clear_ends_everything() -> None:
    plan = FaultPlan(latency_ms=5)
    plan.configure({"down_for_s": 60, "latency_ms": 100})
    assert plan.take().kind == "down"
    plan.clear()
    decision = plan.take()
    assert decision.kind is None and decision.latency_s == 0.005  # the configured latency
    plan.configure({"down_for_s": 0.001})
    time.sleep(0.01)
    assert plan.take().kind is None


@pytest.mark.parametrize(
    "spec",
    [{"unknown": 1}, {"latency_ms": -1}, {"latency_ms": True}, {"status_burst": 3},
     {"status_burst": {"status": 503, "count": 1, "extra": 1}},
     {"status_burst": {"status": 200, "count": 1}}, {"timeouts": {"count": 1.5}},
     {"rate_limit": {"count": 1, "limit": 0}}],
)  # fmt: skip
def test_malformed_fault_specs_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(FaultSpecError):
        FaultPlan().configure(spec)


# --- over HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_status_burst_answers_that_status_without_recording(
    status: int, control: SandboxClient, deliver: Deliver
) -> None:
    control.faults(status_burst={"status": status, "count": 2})
    trigger = make_trigger()
    answers = [deliver("braze", trigger).status_code for _ in range(3)]
    assert answers == [status, status, 201]
    assert len(control.messages()) == 1
    stats = control.stats()
    assert stats["rejected"] == {str(status): 2}
    assert stats["faults_injected"] == {"status": 2}
    assert stats["received"] == 3
    # Counted per trigger and provider though never acted on: the burst is seen to happen.
    counts = control.triggers()[trigger["trigger_id"]]
    assert (counts["received"], counts["faulted"], counts["delivered"]) == (3, 2, 1)
    assert stats["providers"]["braze"] == {"received": 3, "accepted": 1, "duplicate": 0,
                                           "rejected": 0, "faulted": 2}  # fmt: skip
    assert [(r["status"], r["outcome"], r["fault"]) for r in control.requests()] == [
        (status, "faulted", "status"), (status, "faulted", "status"), (201, "accepted", None)]


def test_a_rate_limit_is_429_with_retry_after_and_rate_limit_headers(
    control: SandboxClient, deliver: Deliver
) -> None:
    control.faults(rate_limit={"count": 1, "retry_after_s": 2, "limit": 100})
    before = int(time.time())
    limited = deliver("sendgrid", make_trigger())
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.headers["X-RateLimit-Limit"] == "100"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert before + 2 <= int(limited.headers["X-RateLimit-Reset"]) <= int(time.time()) + 2
    assert "errors" in limited.json()
    assert deliver("sendgrid", make_trigger()).status_code == 202
    assert control.stats()["rejected"] == {"429": 1}
    assert [(r["outcome"], r["fault"]) for r in control.requests()] == [
        ("faulted", "rate_limit"), ("accepted", None)]


def test_down_answers_503_until_cleared(control: SandboxClient, deliver: Deliver) -> None:
    control.faults(down_for_s=60)
    trigger = make_trigger()
    assert deliver("customerio", trigger).status_code == 503
    control.clear_faults()
    assert deliver("customerio", trigger).status_code == 200
    assert [(r["outcome"], r["fault"]) for r in control.requests()] == [
        ("faulted", "down"), ("accepted", None)]
    assert control.triggers()[trigger["trigger_id"]]["faulted"] == 1
    assert control.stats()["faults_injected"] == {"down": 1}


@pytest.mark.parametrize("provider", ["customerio", "webhook"])
def test_a_timeout_delivers_then_the_retry_is_deduplicated(
    provider: str, control: SandboxClient, deliver: Deliver
) -> None:
    control.faults(timeouts={"count": 1, "delay_s": 2})
    trigger = make_trigger()
    with pytest.raises(requests.ReadTimeout):
        deliver(provider, trigger, timeout=0.3)
    # The answer never came, but the e-mail went out: the worst case for duplicates.
    assert [m["trigger_id"] for m in control.messages()] == [trigger["trigger_id"]]
    assert deliver(provider, trigger).status_code == 200
    assert control.triggers()[trigger["trigger_id"]] == {
        "delivered": 1, "deduplicated": 1, "attempts": 2, "received": 2, "rejected": 0,
        "faulted": 0,
    }
    late, again = control.requests(trigger_id=trigger["trigger_id"])
    assert (late["outcome"], late["fault"]) == ("accepted", "timeout")
    assert (again["outcome"], again["fault"]) == ("duplicate", None)
    assert control.stats()["faults_injected"] == {"timeout": 1}


def test_a_timeout_then_a_resend_without_dedupe_is_a_duplicate(
    control: SandboxClient, deliver: Deliver
) -> None:
    control.faults(timeouts={"count": 1, "delay_s": 2})
    trigger = make_trigger()
    with pytest.raises(requests.ReadTimeout):
        deliver("sendgrid", trigger, timeout=0.3)
    assert deliver("sendgrid", trigger).status_code == 202
    assert control.triggers()[trigger["trigger_id"]]["delivered"] == 2


def test_latency_delays_provider_requests_but_never_the_control_api(
    sandbox: Sandbox, control: SandboxClient, deliver: Deliver, http: requests.Session
) -> None:
    control.faults(latency_ms=200, status_burst={"status": 503, "count": 100})
    start = time.monotonic()
    assert deliver("braze", make_trigger()).status_code == 503
    assert time.monotonic() - start >= 0.2  # a lower bound only: sleeping guarantees it
    # Neither latency nor the burst touch the control API or the inbox.
    assert http.get(sandbox.url + "/", timeout=5).status_code == 200
    assert control.stats()["faults_injected"] == {"status": 1}


def test_many_concurrent_keep_alive_requests_are_served_in_parallel(
    sandbox: Sandbox, control: SandboxClient
) -> None:
    control.faults(latency_ms=50)
    triggers = [make_trigger() for _ in range(200)]
    sends = [build_send(sandbox, "sendgrid", t) for t in triggers]
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=32)
    with requests.Session() as session, ThreadPoolExecutor(max_workers=32) as pool:
        session.mount("http://", adapter)
        statuses = list(pool.map(
            lambda s: session.post(s.url, headers=dict(s.headers), data=s.body,
                                   timeout=30).status_code, sends))  # fmt: skip
    assert statuses == [202] * 200
    stats = control.stats()
    assert stats["messages"] == 200
    assert stats["triggers_delivered_more_than_once"] == 0
    assert stats["max_in_flight"] > 1
    assert all(v == {"delivered": 1, "deduplicated": 0, "attempts": 1, "received": 1,
                     "rejected": 0, "faulted": 0}
               for v in control.triggers().values())  # fmt: skip
    assert len(control.requests()) == 200
