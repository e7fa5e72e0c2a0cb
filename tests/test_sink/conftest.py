"""The ESP sandbox on an ephemeral loopback port, and requests built by the real adapters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import requests

from connectors.sink.providers import PROVIDERS, Provider, Send
from devstack.esp_sandbox import Sandbox, SandboxClient, SandboxConfig
from quoteflow.settings import load_settings
from schemas.wire import AbandonmentTrigger

Deliver = Callable[..., requests.Response]


def build_adapter(sandbox: Sandbox, provider: str) -> Provider:
    """The sink's adapter for ``provider``, configured for ``sandbox``."""
    sink = load_settings(sink=sandbox.sink_overrides(provider)).sink
    assert sink.endpoint is not None
    return PROVIDERS[provider](sink, sink.endpoint, sandbox.secret(provider))


def build_send(sandbox: Sandbox, provider: str, trigger: Mapping[str, Any],
               *, now_s: float | None = None) -> Send:  # fmt: skip
    """The request the sink's adapter makes for ``trigger``, aimed at ``sandbox``."""
    adapter = build_adapter(sandbox, provider)
    return adapter.request(AbandonmentTrigger.from_record(trigger),
                           now_s=time.time() if now_s is None else now_s)  # fmt: skip


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(port=0)) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def control(sandbox: Sandbox) -> Iterator[SandboxClient]:
    with SandboxClient(sandbox.url) as client:
        yield client


@pytest.fixture
def deliver(sandbox: Sandbox, http: requests.Session) -> Deliver:
    """Send one trigger through ``provider``'s adapter: ``deliver(provider, trigger)``."""

    def send(provider: str, trigger: Mapping[str, Any], *, timeout: float = 10.0,
             send: Send | None = None) -> requests.Response:  # fmt: skip
        request = send or build_send(sandbox, provider, trigger)
        return http.request(request.method, request.url, headers=dict(request.headers),
                            data=request.body, timeout=timeout)  # fmt: skip

    return send
