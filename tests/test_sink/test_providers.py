"""Each ESP adapter's request shape, and the sink's start-up checks of its settings."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from connectors.sink.config import build_provider
from connectors.sink.providers.customerio import trigger_ulid
from connectors.sink.providers.webhook import signature, verify
from quoteflow.errors import ConfigError
from quoteflow.settings import load_settings
from tests.test_sink.triggers import make_trigger, wire

pytestmark = pytest.mark.unit

ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def provider(clean_env: pytest.MonkeyPatch, **sink: Any) -> Any:
    return build_provider(load_settings(sink={"secret": "key-1", **sink}).sink)


def test_sendgrid_dynamic_template(clean_env: pytest.MonkeyPatch) -> None:
    p = provider(clean_env, provider="sendgrid", sendgrid={"from_email": "offers@example.com",
                                                          "from_name": "Offers"})  # fmt: skip
    trigger = make_trigger()
    send = p.request(wire(trigger), now_s=0)
    assert (send.method, send.url) == ("POST", "https://api.sendgrid.com/v3/mail/send")
    assert send.headers["Authorization"] == "Bearer key-1"
    body = json.loads(send.body)
    person = body["personalizations"][0]
    assert person["to"] == [{"email": trigger["email"], "name": "Alice"}]
    assert person["custom_args"] == {"trigger_id": trigger["trigger_id"]}
    data = person["dynamic_template_data"]
    assert data["premium"] == "412.50" and data["offer_code"] == "SAVE10"
    assert data["subject"] == trigger["subject"] and "email" not in data
    assert body["template_id"] == trigger["template_id"]
    assert body["from"] == {"email": "offers@example.com", "name": "Offers"}
    assert send.dedupe_id is None and not p.dedupes
    assert p.message_id(202, {"X-Message-Id": "abc"}, b"") == "abc"
    assert "key-1" not in repr(send) and trigger["email"] not in repr(send)


def test_braze_campaign_trigger(clean_env: pytest.MonkeyPatch) -> None:
    p = provider(clean_env, provider="braze", base_url="https://rest.iad-01.braze.com",
                 braze={"campaign_id": "camp-1"})  # fmt: skip
    trigger = make_trigger()
    send = p.request(wire(trigger), now_s=0)
    assert send.url == "https://rest.iad-01.braze.com/campaigns/trigger/send"
    body = json.loads(send.body)
    assert body["campaign_id"] == "camp-1"
    recipient = body["recipients"][0]
    assert recipient["external_user_id"] == str(trigger["customer_id"])
    assert recipient["attributes"]["email"] == trigger["email"]
    assert recipient["trigger_properties"]["trigger_id"] == trigger["trigger_id"]
    assert p.message_id(201, {}, b'{"dispatch_id":"d-9","message":"success"}') == "d-9"
    assert p.message_id(201, {}, b"not json") is None


def test_customerio_event_with_deterministic_ulid(clean_env: pytest.MonkeyPatch) -> None:
    p = provider(clean_env, provider="customerio", customerio={"site_id": "site-1"})
    trigger = make_trigger()
    first, again = p.request(wire(trigger), now_s=0), p.request(wire(trigger), now_s=99)
    assert first.url == f"https://track.customer.io/api/v1/customers/{trigger['customer_id']}/events"
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"site-1:key-1").decode()
    body = json.loads(first.body)
    assert body["name"] == "quote_abandoned" and body["data"]["recipient"] == trigger["email"]
    assert ULID.match(body["id"]) and first.dedupe_id == body["id"] == again.dedupe_id
    assert p.dedupes and p.dedupe_id(wire(trigger)) == body["id"]
    other = make_trigger(deadline_at=trigger["deadline_at"])
    assert p.dedupe_id(wire(other)) != body["id"]


def test_ulid_time_part_sorts_with_time() -> None:
    assert trigger_ulid("a", 1) < trigger_ulid("a", 2) < trigger_ulid("a", 2**47)
    with pytest.raises(ValueError, match="ULID"):
        trigger_ulid("a", 2**48)


def test_webhook_standard_signature(clean_env: pytest.MonkeyPatch) -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()
    p = provider(clean_env, provider="webhook", base_url="https://hooks.example.com/q",
                 secret=secret)  # fmt: skip
    trigger = make_trigger()
    send = p.request(wire(trigger), now_s=1_800_000_000)
    assert send.url == "https://hooks.example.com/q"
    assert send.headers["webhook-id"] == trigger["trigger_id"] == send.dedupe_id
    assert verify(secret, send.headers, send.body, now_s=1_800_000_100) is None
    assert verify(secret, send.headers, send.body + b" ", now_s=1_800_000_000) == (
        "no valid signature")
    assert "replay window" in (verify(secret, send.headers, send.body, now_s=1_800_000_301) or "")
    assert verify("other", send.headers, send.body, now_s=1_800_000_000) == "no valid signature"
    # Standard Webhooks' published example: the key is the base64 after whsec_.
    example = signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                        1614265330, b'{"test": 2432232314}')  # fmt: skip
    assert example == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("sink", "message"),
    [({"provider": "sendgrid", "secret": "k"}, "sink.sendgrid.from_email"),
     ({"provider": "braze", "secret": "k", "braze": {"campaign_id": "c"}}, "sink.base_url"),
     ({"provider": "braze", "secret": "k", "base_url": "https://b.example"},
      "sink.braze.campaign_id"),
     ({"provider": "customerio", "secret": "k"}, "sink.customerio.site_id"),
     ({"provider": "webhook", "secret": "k"}, "sink.base_url"),
     ({"provider": "customerio", "customerio": {"site_id": "s"}}, "QUOTEFLOW_SINK__SECRET")],
)  # fmt: skip
def test_missing_settings_are_named(clean_env: pytest.MonkeyPatch, sink: dict[str, Any],
                                    message: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_provider(load_settings(sink=sink).sink)


def test_secret_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    p = build_provider(load_settings(sink={
        "provider": "customerio", "secret_file": str(secret), "customerio": {"site_id": "s"},
    }).sink)  # fmt: skip
    assert p.request(wire(make_trigger()), now_s=0).headers["Authorization"].endswith(
        base64.b64encode(b"s:from-file").decode())
    with pytest.raises(ConfigError, match=r"sink.secret_file .*cannot read"):
        build_provider(load_settings(sink={"provider": "customerio", "customerio": {
            "site_id": "s"}, "secret_file": str(tmp_path / "missing")}).sink)  # fmt: skip
    secret.write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        build_provider(load_settings(sink={"provider": "customerio", "customerio": {
            "site_id": "s"}, "secret_file": str(secret)}).sink)  # fmt: skip


@pytest.mark.parametrize(
    ("sink", "message"),
    [({"base_url": "http://esp.example.com"}, "sink.base_url"),
     ({"base_url": "http://esp.example.com"}, "https:// unless it is on loopback"),
     ({"base_url": "ftp://x"}, "must start with"),
     ({"secret": "a", "secret_file": "/x"}, "alternatives"),
     ({"retry_initial_s": 10, "retry_max_s": 1}, "retry_max_s"),
     ({"ambiguous": "drop"}, "sink.ambiguous")],
)  # fmt: skip
def test_settings_validation(clean_env: pytest.MonkeyPatch, sink: dict[str, Any],
                             message: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(sink=sink)


def test_loopback_http_is_allowed_for_the_sandbox(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(sink={"base_url": "http://127.0.0.1:18090"})
    assert settings.sink.endpoint == "http://127.0.0.1:18090"
    assert load_settings().sink.endpoint == "https://api.sendgrid.com"
    for url in ("http://localhost:1", "http://[::1]:1/webhook", "http://127.0.0.2:1"):
        assert load_settings(sink={"base_url": url}).sink.base_url == url


def test_what_a_refusal_message_shows_of_the_request(clean_env: pytest.MonkeyPatch) -> None:
    """A configuration failure names the endpoint: never the credential or a customer."""
    cio = provider(clean_env, provider="customerio", customerio={"site_id": "site"},
                   base_url="https://user:pw@track-eu.customer.io/")  # fmt: skip
    send = cio.request(wire(make_trigger(customer_id=987654)), now_s=0)
    assert "987654" in send.url
    assert cio.display_url(send.url + "?x=1") == (
        "https://track-eu.customer.io/api/v1/customers/{id}/events")
    grid = provider(clean_env, provider="sendgrid", sendgrid={"from_email": "o@example.com"})
    assert grid.display_url("http://[::1]:8080/v3/mail/send?key=1") == (
        "http://[::1]:8080/v3/mail/send")
    assert grid.redact('{"error": "bad key key-1"}') == '{"error": "bad key [secret]"}'
