"""The providers' request shapes, checked without a server: every rejection path.

Good requests are the real adapters' (so the sandbox and the sink agree on the
shape); each malformed one changes one thing and must be refused with the
status and the error body style the real API uses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from connectors.sink.providers import Send
from connectors.sink.providers.customerio import trigger_ulid
from connectors.sink.providers.webhook import signature
from devstack.esp_sandbox import Sandbox, SandboxConfig
from devstack.esp_sandbox.validate import (
    Identity,
    Invalid,
    identify,
    is_email,
    is_ulid,
    is_undeliverable,
    route,
    validate,
)
from tests.test_sink.conftest import build_send
from tests.test_sink.triggers import make_trigger

pytestmark = pytest.mark.unit

CONFIG = SandboxConfig(port=0)
NOW = 1_790_000_000.0
#: Not started: only its URLs and credentials are used to build requests.
SANDBOX = Sandbox(CONFIG)


def good(provider: str, **trigger: Any) -> Send:
    return build_send(SANDBOX, provider, make_trigger(**trigger), now_s=NOW)


def check(provider: str, send: Send, *, body: bytes | None = None,
          headers: dict[str, str] | None = None, now_s: float = NOW) -> Any:  # fmt: skip
    path = send.url.removeprefix(SANDBOX.url)
    return validate(provider, CONFIG, path, headers if headers is not None else dict(send.headers),
                    send.body if body is None else body, now_s=now_s)  # fmt: skip


def resign(headers: dict[str, str], body: bytes, secret: str = CONFIG.webhook_secret) -> None:
    """Sign ``body`` anew, as a sender of that body would have."""
    stamp = int(headers["webhook-timestamp"])
    headers["webhook-signature"] = signature(secret, headers["webhook-id"], stamp, body)


def mutated(
    provider: str, change: Callable[[dict[str, Any]], None]
) -> tuple[Send, bytes, dict[str, str]]:
    """The good request with ``change`` applied to its JSON (a webhook re-signed)."""
    send = good(provider)
    payload = json.loads(send.body)
    change(payload)
    body = json.dumps(payload).encode()
    headers = dict(send.headers)
    if provider == "webhook":
        resign(headers, body)
    return send, body, headers


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["sendgrid", "braze", "customerio", "webhook"])
def test_the_adapters_requests_are_accepted_with_trigger_address_and_data(provider: str) -> None:
    trigger = make_trigger()
    send = build_send(SANDBOX, provider, trigger, now_s=NOW)
    accepted = check(provider, send)
    assert accepted.provider == provider
    assert route(send.url.removeprefix(SANDBOX.url)) == provider
    [delivery] = accepted.deliveries
    assert delivery.trigger_id == trigger["trigger_id"]
    assert delivery.email == trigger["email"]
    assert delivery.template_data["subject"] == trigger["subject"]
    assert delivery.template_data["premium"] == "412.50"
    assert accepted.status == {"sendgrid": 202, "braze": 201}.get(provider, 200)
    expected_dedupe = {
        "customerio": trigger_ulid(trigger["trigger_id"],
                                   int(trigger["deadline_at"].timestamp() * 1000)),
        "webhook": trigger["trigger_id"],
    }.get(provider)  # fmt: skip
    assert accepted.dedupe_id == expected_dedupe


def test_sendgrid_records_one_delivery_per_personalization() -> None:
    def two(p: dict[str, Any]) -> None:
        second = json.loads(json.dumps(p["personalizations"][0]))
        second["to"][0]["email"] = "bob@example.com"
        second["custom_args"]["trigger_id"] = "other-trigger"
        p["personalizations"].append(second)

    send, body, headers = mutated("sendgrid", two)
    accepted = check("sendgrid", send, body=body, headers=headers)
    assert [d.trigger_id for d in accepted.deliveries][1] == "other-trigger"
    assert accepted.deliveries[1].email == "bob@example.com"


def test_sendgrid_takes_the_trigger_id_from_template_data_without_custom_args() -> None:
    send, body, headers = mutated("sendgrid", lambda p: p["personalizations"][0].pop("custom_args"))
    accepted = check("sendgrid", send, body=body, headers=headers)
    assert accepted.deliveries[0].trigger_id == json.loads(send.body)["personalizations"][0][
        "dynamic_template_data"]["trigger_id"]  # fmt: skip


# --- authentication --------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("provider", "authorization"),
    [
        ("sendgrid", None),
        ("sendgrid", "Bearer wrong-key"),
        ("sendgrid", "Basic c2FuZGJveC1rZXk="),
        ("braze", None),
        ("braze", "Bearer wrong-key"),
        ("customerio", None),
        ("customerio", "Bearer sandbox-key"),
        ("customerio", _basic("sandbox-site", "wrong-key")),
        ("customerio", _basic("other-site", "sandbox-key")),
        ("customerio", "Basic not*base64"),
    ],
)
def test_a_missing_or_wrong_credential_is_401(provider: str, authorization: str | None) -> None:
    send = good(provider)
    headers = {k: v for k, v in send.headers.items() if k != "Authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with pytest.raises(Invalid) as caught:
        check(provider, send, headers=headers)
    assert caught.value.status == 401


def test_auth_is_checked_before_the_body() -> None:
    send = good("sendgrid")
    with pytest.raises(Invalid) as caught:
        check("sendgrid", send, body=b"not json", headers={"Authorization": "Bearer nope"})
    assert caught.value.status == 401
    assert caught.value.body == {"errors": [{"message": caught.value.reason, "field": None,
                                             "help": None}]}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h: h.pop("webhook-signature"), "missing"),
        (lambda h: h.update({"webhook-timestamp": "soon"}), "not an integer"),
        (lambda h: h.update({"webhook-timestamp": str(int(NOW) - 301)}), "replay window"),
        (lambda h: h.update({"webhook-signature": "v1,AAAA"}), "no valid signature"),
        (lambda h: h.update({"webhook-id": "someone-else"}), "no valid signature"),
    ],
)
def test_a_webhook_without_a_valid_signature_is_401(
    change: Callable[[dict[str, str]], None], why: str
) -> None:
    send = good("webhook")
    headers = dict(send.headers)
    change(headers)
    with pytest.raises(Invalid) as caught:
        check("webhook", send, headers=headers)
    assert caught.value.status == 401
    assert why in caught.value.body["error"]


def test_a_webhook_signed_with_another_secret_is_401() -> None:
    send = good("webhook")
    headers = dict(send.headers)
    resign(headers, send.body, "other-secret")
    with pytest.raises(Invalid):
        check("webhook", send, headers=headers)


def test_a_webhook_older_than_the_replay_window_is_401() -> None:
    send = good("webhook")
    with pytest.raises(Invalid) as caught:
        check("webhook", send, now_s=NOW + 301)
    assert caught.value.status == 401


# --- malformed bodies ------------------------------------------------------------------------


def _p0(p: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = p["personalizations"][0]
    return first


SENDGRID_BAD: list[tuple[Callable[[dict[str, Any]], Any], str | None]] = [
    (lambda p: p.pop("personalizations"), "personalizations"),
    (lambda p: p.update(personalizations=[]), "personalizations"),
    (lambda p: p.update(personalizations=["x"]), "personalizations.0"),
    (lambda p: p.update(personalizations=[_p0(p)] * 1001), "personalizations"),
    (lambda p: _p0(p).pop("to"), "personalizations.0.to"),
    (lambda p: _p0(p).update(to=[]), "personalizations.0.to"),
    (lambda p: _p0(p).update(to=[{"email": "not-an-address"}]), "personalizations.0.to.0.email"),
    (lambda p: _p0(p).update(to=[{"email": "a b@example.com"}]), "personalizations.0.to.0.email"),
    (lambda p: _p0(p).update(to=[{"name": "x"}]), "personalizations.0.to.0.email"),
    (lambda p: _p0(p)["to"][0].update(name=7), "personalizations.0.to.0.name"),
    (lambda p: _p0(p).update(dynamic_template_data=[]), "personalizations.0.dynamic_template_data"),
    (lambda p: _p0(p).update(custom_args={"trigger_id": 7}), "personalizations.0.custom_args"),
    (lambda p: _p0(p).update(custom_args="x"), "personalizations.0.custom_args"),
    (lambda p: (_p0(p).pop("custom_args"), _p0(p)["dynamic_template_data"].pop("trigger_id")),
     "personalizations.0.custom_args.trigger_id"),
    (lambda p: p.pop("from"), "from.email"),
    (lambda p: p.update({"from": {"email": "nobody"}}), "from.email"),
    (lambda p: p.pop("template_id"), "template_id"),
    (lambda p: p.update(template_id="0123-legacy"), "template_id"),
    (lambda p: p.update(categories="quoteflow"), "categories"),
    (lambda p: p.update(categories=["a"] * 2), "categories"),
    (lambda p: p.update(categories=[str(i) for i in range(11)]), "categories"),
    (lambda p: p.update(categories=["x" * 256]), "categories"),
]


@pytest.mark.parametrize(("change", "field"), SENDGRID_BAD)
def test_sendgrid_refuses_malformed_mail_with_400_naming_the_field(
    change: Callable[[dict[str, Any]], Any], field: str | None
) -> None:
    send, body, headers = mutated("sendgrid", change)
    with pytest.raises(Invalid) as caught:
        check("sendgrid", send, body=body, headers=headers)
    assert caught.value.status == 400
    [error] = caught.value.body["errors"]
    assert error["field"] == field
    assert error["message"] and error["help"] is None


def _r0(p: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = p["recipients"][0]
    return first


BRAZE_BAD: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda p: p.pop("campaign_id"), "campaign_id"),
    (lambda p: p.update(campaign_id=""), "campaign_id"),
    (lambda p: p.update(campaign_id=12), "campaign_id"),
    (lambda p: p.update(broadcast="no"), "broadcast"),
    (lambda p: p.update(broadcast=True), "broadcast"),
    (lambda p: p.pop("recipients"), "recipients"),
    (lambda p: p.update(recipients=[]), "recipients"),
    (lambda p: p.update(recipients=[_r0(p)] * 51), "at most 50"),
    (lambda p: p.update(recipients=["x"]), "recipients[0]"),
    (lambda p: _r0(p).pop("external_user_id"), "external_user_id"),
    (lambda p: _r0(p).update(external_user_id=5001), "external_user_id"),
    (lambda p: _r0(p).update(trigger_properties=[]), "trigger_properties"),
    (lambda p: _r0(p).update(attributes="x"), "attributes"),
    (lambda p: _r0(p).update(send_to_existing_only="false"), "send_to_existing_only"),
    (lambda p: _r0(p).pop("attributes"), "attributes are required"),
    (lambda p: _r0(p)["attributes"].update(email="nobody"), "attributes.email"),
    (lambda p: _r0(p)["trigger_properties"].pop("trigger_id"), "trigger_id"),
]


@pytest.mark.parametrize(("change", "fragment"), BRAZE_BAD)
def test_braze_refuses_malformed_sends_with_400(
    change: Callable[[dict[str, Any]], Any], fragment: str
) -> None:
    send, body, headers = mutated("braze", change)
    with pytest.raises(Invalid) as caught:
        check("braze", send, body=body, headers=headers)
    assert caught.value.status == 400
    assert set(caught.value.body) == {"message"}
    assert fragment in caught.value.body["message"]


CUSTOMERIO_BAD: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda p: p.pop("name"), "name"),
    (lambda p: p.update(name=" "), "name"),
    (lambda p: p.update(name="x" * 101), "100 characters"),
    (lambda p: p.update(id="not-a-ulid"), "ULID"),
    (lambda p: p.update(id="8" + p["id"][1:]), "ULID"),  # overflows 128 bits
    (lambda p: p.update(id=p["id"][:-1] + "U"), "ULID"),  # not Crockford
    (lambda p: p.update(id=p["id"][:-1]), "ULID"),
    (lambda p: p.update(timestamp="1790000000"), "timestamp"),
    (lambda p: p.update(timestamp=1.5), "timestamp"),
    (lambda p: p.update(timestamp=True), "timestamp"),
    (lambda p: p.update(data="x"), "data"),
    (lambda p: p["data"].update(recipient="nobody"), "recipient"),
    (lambda p: p["data"].pop("trigger_id"), "trigger_id"),
]


@pytest.mark.parametrize(("change", "fragment"), CUSTOMERIO_BAD)
def test_customerio_refuses_malformed_events_with_400(
    change: Callable[[dict[str, Any]], Any], fragment: str
) -> None:
    send, body, headers = mutated("customerio", change)
    with pytest.raises(Invalid) as caught:
        check("customerio", send, body=body, headers=headers)
    assert caught.value.status == 400
    assert fragment in caught.value.body["meta"]["error"]


def test_customerio_needs_a_customer_id_in_the_path() -> None:
    send = good("customerio")
    with pytest.raises(Invalid) as caught:
        validate("customerio", CONFIG, "/api/v1/customers/%20/events", dict(send.headers),
                 send.body, now_s=NOW)  # fmt: skip
    assert caught.value.body == {"meta": {"error": "customer id is required"}}


WEBHOOK_BAD: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda p: p.update(type="quote.accepted"), "type"),
    (lambda p: p.pop("type"), "type"),
    (lambda p: p.update(data=[]), "data"),
    (lambda p: p["data"].update(email="nobody"), "email"),
    (lambda p: p["data"].pop("trigger_id"), "trigger_id"),
]


@pytest.mark.parametrize(("change", "fragment"), WEBHOOK_BAD)
def test_webhook_refuses_malformed_events_with_400(
    change: Callable[[dict[str, Any]], Any], fragment: str
) -> None:
    send, body, headers = mutated("webhook", change)
    with pytest.raises(Invalid) as caught:
        check("webhook", send, body=body, headers=headers)
    assert caught.value.status == 400
    assert fragment in caught.value.body["error"]


@pytest.mark.parametrize("provider", ["sendgrid", "braze", "customerio", "webhook"])
@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_400(provider: str, body: bytes) -> None:
    send = good(provider)
    headers = dict(send.headers)
    if provider == "webhook":
        resign(headers, body)
    with pytest.raises(Invalid) as caught:
        check(provider, send, body=body, headers=headers)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("value", "ok"),
    [("a@example.com", True), ("a.b+c@mail.example.co.uk", True), ("a@b", False),
     ("@example.com", False), ("a@@example.com", False), ("a @example.com", False),
     ("a@example.", False), (None, False), ("x" * 250 + "@example.com", False)],
)  # fmt: skip
def test_is_email(value: object, ok: bool) -> None:
    assert is_email(value) is ok


def test_is_ulid_matches_the_adapters_ids() -> None:
    ulid = trigger_ulid("t-1", 1_790_000_000_000)
    assert is_ulid(ulid) and is_ulid(ulid.lower())
    assert not is_ulid("8" + ulid[1:])
    assert not is_ulid(ulid.replace(ulid[5], "I"))


# --- a recipient refused by name -------------------------------------------------------------


@pytest.mark.parametrize("provider", ["sendgrid", "braze", "customerio", "webhook"])
def test_an_undeliverable_recipient_is_400_naming_the_address(provider: str) -> None:
    # Real ESPs echo the address they refuse ("The to email address is invalid: ..."): the
    # sink must mask it, so the sandbox must echo it for a test of that masking to fail.
    address = "zoe.pemberton@mail.invalid"
    with pytest.raises(Invalid) as refused:
        check(provider, good(provider, email=address))
    assert refused.value.status == 400
    assert address in json.dumps(refused.value.body)
    assert is_undeliverable(address) and is_undeliverable("X@Y.INVALID")
    assert not is_undeliverable("zoe@invalid.example.com") and not is_undeliverable(None)


# --- identify: whom any request is about ------------------------------------------------------


@pytest.mark.parametrize("provider", ["sendgrid", "braze", "customerio", "webhook"])
def test_identify_reads_the_trigger_and_dedupe_id_of_valid_and_invalid_requests(
    provider: str,
) -> None:
    trigger = make_trigger()
    send = build_send(SANDBOX, provider, trigger, now_s=NOW)
    expected = Identity((trigger["trigger_id"],), check(provider, send).dedupe_id)
    assert identify(provider, dict(send.headers), send.body) == expected
    # A request the provider refuses (here: unauthenticated, undeliverable) is still named.
    refused = build_send(SANDBOX, provider, make_trigger(trigger_id=trigger["trigger_id"],
                                                         email="a@b.invalid"), now_s=NOW)
    assert identify(provider, {}, refused.body).trigger_ids == (trigger["trigger_id"],)


@pytest.mark.parametrize("provider", ["sendgrid", "braze", "customerio", "webhook"])
@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"data": 7}',
                                  b'{"personalizations": [7], "recipients": {"a": 1}}'])
def test_identify_names_nobody_in_a_body_it_cannot_read(provider: str, body: bytes) -> None:
    assert identify(provider, {}, body).trigger_ids == ()


def test_identify_reads_every_sendgrid_personalization_and_braze_recipient() -> None:
    body = json.dumps({"personalizations": [
        {"custom_args": {"trigger_id": "t1"}},
        {"dynamic_template_data": {"trigger_id": "t2"}},
        {"to": []},
    ]}).encode()  # fmt: skip
    assert identify("sendgrid", {}, body) == Identity(("t1", "t2"))
    body = json.dumps({"recipients": [{"trigger_properties": {"trigger_id": "b1"}},
                                      {"trigger_properties": {}}]}).encode()  # fmt: skip
    assert identify("braze", {}, body) == Identity(("b1",))
