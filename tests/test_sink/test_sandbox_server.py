"""The sandbox over HTTP: the adapters' requests delivered, recorded, deduplicated; the
control API; a stop that looks like an outage and a restart on the same port."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from connectors.errors import SandboxError
from devstack.esp_sandbox import Sandbox, SandboxClient, SandboxConfig
from tests.test_sink.conftest import Deliver, build_adapter, build_send
from tests.test_sink.triggers import make_trigger

pytestmark = pytest.mark.unit

ALL = ["sendgrid", "braze", "customerio", "webhook"]


@pytest.mark.parametrize("provider", ALL)
def test_each_provider_delivers_once_and_the_adapter_reads_the_answer(
    provider: str, sandbox: Sandbox, control: SandboxClient, deliver: Deliver
) -> None:
    trigger = make_trigger()
    answer = deliver(provider, trigger)
    assert answer.status_code == {"sendgrid": 202, "braze": 201}.get(provider, 200)
    assert answer.headers["Content-Length"] == str(len(answer.content))
    [message] = control.messages(provider=provider)
    assert message["trigger_id"] == trigger["trigger_id"]
    assert message["email"] == trigger["email"]
    assert message["template_data"]["first_name"] == "Alice"
    assert message["attempt"] == 1
    adapter = build_adapter(sandbox, provider)
    read = adapter.message_id(answer.status_code, answer.headers, answer.content)
    if provider in ("sendgrid", "braze"):
        assert read == message["message_id"]
    assert control.triggers() == {trigger["trigger_id"]: {
        "delivered": 1, "deduplicated": 0, "attempts": 1, "received": 1, "rejected": 0,
        "faulted": 0,
    }}  # fmt: skip
    assert control.stats()["accepted"] == 1
    [request] = control.requests()
    assert (request["provider"], request["trigger_ids"], request["outcome"]) == (
        provider, [trigger["trigger_id"]], "accepted")
    assert request["status"] == answer.status_code and request["fault"] is None


@pytest.mark.parametrize("provider", ["customerio", "webhook"])
def test_a_repeated_dedupe_id_is_answered_ok_but_not_delivered_again(
    provider: str, control: SandboxClient, deliver: Deliver
) -> None:
    trigger = make_trigger()
    first, again = deliver(provider, trigger), deliver(provider, trigger)
    assert first.status_code == again.status_code == 200
    assert len(control.messages(trigger_id=trigger["trigger_id"])) == 1
    assert control.triggers()[trigger["trigger_id"]] == {
        "delivered": 1, "deduplicated": 1, "attempts": 2, "received": 2, "rejected": 0,
        "faulted": 0,
    }
    stats = control.stats()
    assert (stats["accepted"], stats["deduplicated"], stats["messages"]) == (2, 1, 1)
    # The repeat is logged as received: a resend is visible though the ESP dropped it.
    requests_ = control.requests(trigger_id=trigger["trigger_id"])
    assert [r["outcome"] for r in requests_] == ["accepted", "duplicate"]
    assert requests_[0]["dedupe_id"] == requests_[1]["dedupe_id"] is not None
    assert stats["providers"] == {provider: {"received": 2, "accepted": 1, "duplicate": 1,
                                             "rejected": 0, "faulted": 0}}  # fmt: skip


@pytest.mark.parametrize("provider", ["sendgrid", "braze"])
def test_a_resend_without_dedupe_is_a_second_delivery(
    provider: str, control: SandboxClient, deliver: Deliver
) -> None:
    trigger = make_trigger()
    deliver(provider, trigger)
    deliver(provider, trigger)
    messages = control.messages(trigger_id=trigger["trigger_id"])
    assert [m["attempt"] for m in messages] == [1, 2]
    assert control.triggers()[trigger["trigger_id"]]["delivered"] == 2
    assert control.stats()["triggers_delivered_more_than_once"] == 1


@pytest.mark.parametrize("provider", ALL)
def test_a_wrong_credential_is_401_in_the_providers_style_and_not_recorded(
    provider: str, sandbox: Sandbox, control: SandboxClient, http: requests.Session
) -> None:
    other = Sandbox(SandboxConfig(port=sandbox.port, api_key="k2", webhook_secret="s2"))
    send = build_send(other, provider, make_trigger())
    answer = http.post(send.url, headers=dict(send.headers), data=send.body, timeout=10)
    assert answer.status_code == 401
    body = answer.json()
    assert {"sendgrid": "errors", "braze": "message", "customerio": "meta",
            "webhook": "error"}[provider] in body  # fmt: skip
    assert control.messages() == []
    assert control.stats()["rejected"] == {"401": 1}


def test_messages_filter_and_redact(control: SandboxClient, deliver: Deliver) -> None:
    a, b = make_trigger(), make_trigger()
    deliver("sendgrid", a)
    deliver("webhook", b)
    assert [m["trigger_id"] for m in control.messages(provider="webhook")] == [b["trigger_id"]]
    assert [m["provider"] for m in control.messages(trigger_id=a["trigger_id"])] == ["sendgrid"]
    redacted = json.dumps(control.messages(redact=True))
    assert "@example.com" not in redacted
    assert "a***@e***.com" in redacted  # the address and the webhook's data.email, masked
    assert control.messages(provider="braze") == []


def test_reset_forgets_messages_counts_and_faults(control: SandboxClient, deliver: Deliver) -> None:
    deliver("braze", make_trigger())
    control.faults(status_burst={"status": 500, "count": 3})
    control.reset()
    assert control.messages() == []
    assert control.stats()["received"] == 0
    assert control.faults()["status_burst"]["count"] == 0


def test_the_control_api_refuses_unknown_routes_methods_and_bad_fault_specs(
    sandbox: Sandbox, control: SandboxClient, http: requests.Session
) -> None:
    assert http.get(sandbox.url + "/_sandbox/nothing", timeout=5).status_code == 404
    assert http.post(sandbox.url + "/_sandbox/stats", timeout=5).status_code == 405
    assert http.get(sandbox.url + "/v3/mail/send", timeout=5).status_code == 405
    assert http.post(sandbox.url + "/v3/mail/sendx", timeout=5).status_code == 404
    bad = http.post(sandbox.url + "/_sandbox/faults", data=b"{", timeout=5)
    assert bad.status_code == 400
    bad_specs: list[dict[str, object]] = [
        {"latency": 5},
        {"status_burst": {"status": 404, "count": 1}},
        {"rate_limit": {"count": -1}},
        {"timeouts": {"count": 1, "delay_s": "x"}},
    ]
    for spec in bad_specs:
        with pytest.raises(SandboxError, match="HTTP 400"):
            control.faults(**spec)
    assert control.stats()["received"] == 0  # none of that was a provider request


def test_a_body_over_the_limit_is_413_and_closes_the_connection(http: requests.Session) -> None:
    with Sandbox(SandboxConfig(port=0, max_body_bytes=100)) as small:
        answer = http.post(small.url + "/v3/mail/send", data=b"x" * 101, timeout=5)
        assert answer.status_code == 413
        assert answer.headers["Connection"] == "close"
        assert small.stats()["rejected"] == {"413": 1}


def test_the_inbox_page_is_served_with_a_strict_content_security_policy(
    sandbox: Sandbox, http: requests.Session
) -> None:
    for path in ("/", "/inbox"):
        page = http.get(sandbox.url + path, timeout=5)
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert "script-src 'sha256-" in page.headers["Content-Security-Policy"]
        assert "innerHTML" not in page.text
        assert "/_sandbox/messages?redact=1" in page.text


def test_stop_drops_kept_alive_connections_and_a_restart_serves_the_same_port(
    sandbox: Sandbox, http: requests.Session, deliver: Deliver, control: SandboxClient
) -> None:
    before = make_trigger()
    deliver("sendgrid", before)
    port = sandbox.port
    sandbox.stop()
    # The session's kept-alive connection was shut down: the ESP is gone, not half there.
    with pytest.raises(requests.ConnectionError):
        deliver("sendgrid", make_trigger(), timeout=2)
    assert sandbox.start() == port
    after = make_trigger()
    assert deliver("sendgrid", after).status_code == 202
    assert {m["trigger_id"] for m in control.messages()} == {
        before["trigger_id"], after["trigger_id"]
    }


def test_a_new_sandbox_can_take_the_port_of_a_stopped_one(http: requests.Session) -> None:
    first = Sandbox(SandboxConfig(port=0))
    port = first.start()
    http.get(first.url + "/_sandbox/health", timeout=5)
    first.stop()
    first.stop()  # idempotent
    with Sandbox(SandboxConfig(port=port)) as second:
        assert http.get(second.url + "/_sandbox/health", timeout=5).json()["port"] == port


def test_a_port_in_use_is_a_sandbox_error_naming_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(SandboxError, match=f"127.0.0.1:{port}: the port is in use"):
            Sandbox(SandboxConfig(port=port)).start()


def test_the_client_names_an_unreachable_sandbox() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with SandboxClient(f"http://127.0.0.1:{port}", timeout_s=1) as client:
        with pytest.raises(SandboxError, match=f"127.0.0.1:{port}"):
            client.stats()
        with pytest.raises(SandboxError):
            client.wait_ready(timeout_s=0.2)


def test_every_request_is_logged_as_it_arrived_even_when_refused(
    control: SandboxClient, deliver: Deliver
) -> None:
    address = "zoe.pemberton@mail.invalid"
    refused, good = make_trigger(email=address), make_trigger()
    before = time.time()
    answer = deliver("sendgrid", refused)
    assert deliver("sendgrid", good).status_code == 202
    after = time.time()
    # The ESP's 400 names the address, as real ESPs do: the sink has to mask it.
    assert answer.status_code == 400 and address in answer.text
    first, second = control.requests(provider="sendgrid")
    assert (first["trigger_ids"], first["status"], first["outcome"]) == (
        [refused["trigger_id"]], 400, "rejected")
    assert second["trigger_ids"] == [good["trigger_id"]] and second["outcome"] == "accepted"
    assert before <= first["received_at"] <= second["received_at"] <= after
    assert address not in json.dumps(control.requests())  # the log holds no address
    assert control.requests(trigger_id=good["trigger_id"]) == [second]
    assert control.requests(provider="braze") == []
    assert control.triggers()[refused["trigger_id"]] == {
        "delivered": 0, "deduplicated": 0, "attempts": 0, "received": 1, "rejected": 1,
        "faulted": 0,
    }
    control.reset()
    assert control.requests() == [] and control.stats()["providers"] == {}


def test_the_request_log_keeps_the_newest_but_counts_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from devstack.esp_sandbox import store as store_module
    from devstack.esp_sandbox.validate import Identity

    monkeypatch.setattr(store_module, "REQUEST_LOG", 3)
    kept = store_module.Store()
    for n in range(5):
        kept.log("webhook", Identity(("t",), f"d{n}"), received_at=float(n), status=200,
                 outcome="accepted" if n == 0 else "duplicate")  # fmt: skip
    assert [r.seq for r in kept.requests()] == [3, 4, 5]
    assert kept.triggers()["t"]["received"] == 5
    assert kept.stats()["providers"]["webhook"]["duplicate"] == 4
