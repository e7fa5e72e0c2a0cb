"""The sandbox itself: its life cycle, what the sink needs to reach it, the control API.

The HTTP layer is :mod:`devstack.esp_sandbox.httpd`, the provider endpoints
:mod:`devstack.esp_sandbox.endpoints`, the request checks
:mod:`devstack.esp_sandbox.validate`; this module holds the state they share
(store, fault plan, port) and the control API and inbox page, never faulted.

Stopping must look like an outage to a client and leave nothing behind for a
test: the listening socket closes, every open connection is shut down (a kept-
alive connection must not go on being served by a stopped server), handlers
asleep in injected latency or a timeout wake up, and their threads are joined.
``allow_reuse_address`` lets a new server take the same port at once, which is
how tests take the ESP down and bring it back.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from connectors.errors import SandboxError
from devstack.esp_sandbox import endpoints, inbox, validate
from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.faults import Decision, FaultPlan, FaultSpecError
from devstack.esp_sandbox.httpd import Answer, SandboxServer, json_body
from devstack.esp_sandbox.store import Store

CONTROL_PREFIX = "/_sandbox/"
#: The sink settings that point a provider at a sandbox besides its URL and secret.
_SINK_EXTRAS: dict[str, dict[str, Any]] = {
    "sendgrid": {"sendgrid": {"from_email": "offers@sandbox.example"}},
    "braze": {"braze": {"campaign_id": "sandbox-campaign"}},
    "customerio": {},
    "webhook": {},
}


class Sandbox:
    """A local stand-in for the ESPs: start it, point the sink at it, read what it received.

    The messages, counters and fault plan belong to the sandbox, not to one
    server: :meth:`stop` then :meth:`start` is an outage of the same ESP, on the
    same port, with its history intact.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.store = Store()
        self.faults = FaultPlan(latency_ms=self.config.latency_ms)
        self._port = self.config.port
        self._lock = threading.Lock()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> int:
        """Listen and serve in a background thread; the bound port (a restart reuses it)."""
        with self._lock:
            if self._server is not None:
                return self._port
            host = self.config.host
            try:
                server = SandboxServer((host, self._port), self)
            except OSError as exc:
                raise SandboxError(_bind_problem(host, self._port, exc)) from None
            self._port = int(server.server_address[1])
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"esp-sandbox-{self._port}", daemon=True)  # fmt: skip
            thread.start()
            self._server, self._thread = server, thread
            return self._port

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving, drop every connection, wait for the handlers; idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections(timeout_s)
        thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self._port}"

    def base_url(self, provider: str) -> str:
        """What ``sink.base_url`` must be for ``provider`` (a webhook's is its full URL)."""
        return self.url + (validate.WEBHOOK_PATH if provider == "webhook" else "")

    def secret(self, provider: str) -> str:
        """The credential the sink needs for ``provider`` (``sink.secret``)."""
        return self.config.webhook_secret if provider == "webhook" else self.config.api_key

    def sink_overrides(self, provider: str) -> dict[str, Any]:
        """``load_settings(sink=...)`` for a sink delivering to this sandbox."""
        return {
            "provider": provider,
            "base_url": self.base_url(provider),
            "secret": self.secret(provider),
            "customerio": {"site_id": self.config.site_id},
            # A sandbox is where replays may go: it e-mails nobody.
            "accept_replays": True,
            **_SINK_EXTRAS[provider],
        }

    def reset(self) -> None:
        """Forget every message and count, and clear the faults."""
        self.store.reset()
        self.faults.reset()

    def stats(self) -> dict[str, Any]:
        return {**self.store.stats(), "faults_injected": dict(self.faults.injected)}

    # --- requests -----------------------------------------------------------------------

    def answer(
        self,
        provider: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        decision: Decision = Decision(),  # noqa: B008 - frozen, never mutated
        *,
        received_at: float | None = None,
    ) -> Answer:
        """The answer to one provider request, after the fault plan's decision
        (:func:`devstack.esp_sandbox.endpoints.answer`); logged whatever the answer."""
        return endpoints.answer(self.store, self.config, provider, path, headers, body,
                                decision, received_at=received_at)  # fmt: skip

    def control(
        self, method: str, path: str, query: Mapping[str, list[str]], body: bytes
    ) -> Answer:
        """The control API and the inbox page: never delayed or faulted."""
        if path in ("/", "/inbox") and method == "GET":
            return Answer(200, inbox.PAGE, {
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": inbox.CSP,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            })  # fmt: skip
        if not path.startswith(CONTROL_PREFIX):
            return Answer(404, json_body({"error": f"no route {path}"}))
        name = path[len(CONTROL_PREFIX) :]
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "health"): lambda: {"ok": True, "port": self._port},
            ("GET", "messages"): lambda: self._messages(query),
            ("GET", "triggers"): self.store.triggers,
            ("GET", "requests"): lambda: self._requests(query),
            ("GET", "stats"): self.stats,
            ("GET", "faults"): self.faults.describe,
            ("POST", "faults"): lambda: self._set_faults(body),
            ("DELETE", "faults"): lambda: self._clear_faults(),
            ("POST", "reset"): lambda: self._reset(),
        }
        handler = routes.get((method, name))
        if handler is None:
            known = {n for (_, n) in routes}
            status = 405 if name in known else 404
            return Answer(status, json_body({"error": f"no route {method} {path}"}))
        try:
            return Answer(200, json_body(handler()))
        except FaultSpecError as exc:
            return Answer(400, json_body({"error": str(exc)}))

    def _messages(self, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        def one(key: str) -> str | None:
            values = query.get(key)
            return values[-1] if values else None

        redact = (one("redact") or "").lower() in ("1", "true", "yes")
        found = self.store.messages(provider=one("provider"), trigger_id=one("trigger_id"))
        return [m.as_json(redact=redact) for m in found]

    def _requests(self, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        def one(key: str) -> str | None:
            values = query.get(key)
            return values[-1] if values else None

        found = self.store.requests(provider=one("provider"), trigger_id=one("trigger_id"))
        return [r.as_json() for r in found]

    def _set_faults(self, body: bytes) -> dict[str, Any]:
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            raise FaultSpecError("the body must be JSON") from None
        self.faults.configure(spec)
        return self.faults.describe()

    def _clear_faults(self) -> dict[str, Any]:
        self.faults.clear()
        return self.faults.describe()

    def _reset(self) -> dict[str, Any]:
        self.reset()
        return {"ok": True}


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use (another esp-sandbox?); choose another with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: this machine has no such address"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges)"
    if isinstance(exc, socket.gaierror):
        return f"{where}: unknown host"
    return f"{where}: {exc.strerror or exc}"
