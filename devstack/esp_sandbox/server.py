"""The sandbox's HTTP server: the four providers' routes, the control API and the inbox.

Built on the standard library's threading HTTP server because the sink
benchmark drives it at some 700 requests a second with 50 ms of injected
latency, i.e. tens of requests in flight on keep-alive connections: one thread
per connection, HTTP/1.1 with a Content-Length on every answer, a deep accept
backlog, no per-request log line, and TCP_NODELAY so a header and body written
separately are not held back by Nagle's algorithm against delayed ACKs.

Stopping must look like an outage to a client and leave nothing behind for a
test: the listening socket closes, every open connection is shut down (a kept-
alive connection must not go on being served by a stopped server), handlers
asleep in injected latency or a timeout wake up, and their threads are joined.
``allow_reuse_address`` lets a new server take the same port at once, which is
how tests take the ESP down and bring it back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.errors import SandboxError
from devstack.esp_sandbox import inbox, validate
from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.faults import Decision, FaultPlan, FaultSpecError
from devstack.esp_sandbox.store import Outcome, Store

log = logging.getLogger("devstack.esp_sandbox")

CONTROL_PREFIX = "/_sandbox/"
_JSON = {"Content-Type": "application/json"}
#: The sink settings that point a provider at a sandbox besides its URL and secret.
_SINK_EXTRAS: dict[str, dict[str, Any]] = {
    "sendgrid": {"sendgrid": {"from_email": "offers@sandbox.example"}},
    "braze": {"braze": {"campaign_id": "sandbox-campaign"}},
    "customerio": {},
    "webhook": {},
}


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _Answer:
    """One response: kept as plain values so the handler writes it in one place."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: Mapping[str, str] = _JSON):
        self.status = status
        self.body = body
        self.headers = headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the handlers itself, after closing their sockets
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        #: Set on stop: handlers sleeping in latency or a timeout wake up at once.
        self.stopping = threading.Event()
        self._handlers_lock = threading.Lock()
        self._handlers: dict[threading.Thread, socket.socket] = {}
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name="esp-sandbox-connection", daemon=True)  # fmt: skip
        with self._handlers_lock:
            self._handlers[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._handlers_lock:
                self._handlers.pop(threading.current_thread(), None)

    def close_connections(self, timeout_s: float) -> None:
        """Shut every open connection down (handlers see EOF) and wait for their threads."""
        with self._handlers_lock:
            handlers = dict(self._handlers)
        for sock in handlers.values():
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout_s
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is normal (timeouts are injected on purpose): no traceback."""
        log.debug("esp sandbox: connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "quoteflow-esp-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a line per request to stderr costs more CPU than the request at 700/s."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._sent = False
        try:
            self._route()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # a sandbox bug answers 500 instead of hanging the client
            log.exception("esp sandbox: error handling %s %s", self.command,
                          urlsplit(self.path).path)  # fmt: skip
            if not self._sent:
                self._send(_Answer(500, _json({"error": "sandbox: internal error"})), close=True)
            self.close_connection = True

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        provider = validate.route(path)
        sandbox = self.server.sandbox
        if provider is not None:
            if self.command != "POST":
                if self._read_body() is not None:
                    self._send(_Answer(405, _json({"error": "method not allowed"})))
                return
            with sandbox.store.request():
                self._provider(provider, path)
            return
        body = self._read_body()
        if body is None:
            return
        self._send(sandbox.control(self.command, path, parse_qs(parts.query), body))

    def _read_body(self) -> bytes | None:
        """The request body; None when an error answer was already sent (the length is bad)."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("POST", "PUT") and self.headers.get("Transfer-Encoding"):
                self._send(_Answer(411, _json({"error": "Content-Length required"})), close=True)
                return None
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self._send(_Answer(400, _json({"error": "bad Content-Length"})), close=True)
            return None
        if size > self.server.sandbox.config.max_body_bytes:
            self._send(_Answer(413, _json({"error": "request body too large"})), close=True)
            return None
        return self.rfile.read(size) if size else b""

    def _provider(self, provider: str, path: str) -> None:
        sandbox = self.server.sandbox
        body = self._read_body()
        if body is None:
            status = 411 if self.headers.get("Transfer-Encoding") else 413
            sandbox.store.reject(status)
            sandbox.store.log(provider, validate.Identity(), received_at=time.time(),
                              status=status, outcome="rejected")  # fmt: skip
            return
        received_at = time.time()
        decision = sandbox.faults.take()
        if decision.latency_s:
            self.server.stopping.wait(decision.latency_s)
        answer = sandbox.answer(provider, path, dict(self.headers.items()), body, decision,
                                received_at=received_at)  # fmt: skip
        if decision.kind == "timeout":
            # Accepted and recorded: the answer comes after the client stopped waiting.
            self.server.stopping.wait(decision.delay_s)
        if sandbox.config.log_requests:
            log.info("%s %s -> %d (%s)", self.command, path, answer.status, provider)
        self._send(answer)

    def _send(self, answer: _Answer, *, close: bool = False) -> None:
        self._sent = True
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)


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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> int:
        """Listen and serve in a background thread; the bound port (a restart reuses it)."""
        with self._lock:
            if self._server is not None:
                return self._port
            host = self.config.host
            try:
                server = _Server((host, self._port), self)
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
    ) -> _Answer:
        """The answer to one provider request, after the fault plan's decision; the request
        is logged (:meth:`Store.log`) whatever the answer, faults and refusals included."""
        error = validate.ERROR_STYLES[provider]
        identity = validate.identify(provider, headers, body)
        arrived = time.time() if received_at is None else received_at

        def log(status: int, outcome: Outcome) -> None:
            self.store.log(provider, identity, received_at=arrived, status=status,
                           outcome=outcome, fault=decision.kind)  # fmt: skip

        if decision.kind in ("down", "status"):
            self.store.reject(decision.status)
            log(decision.status, "faulted")
            failed = error(decision.status, f"sandbox: injected {decision.status}")
            return _Answer(decision.status, _json(failed.body))
        if decision.kind == "rate_limit":
            self.store.reject(429)
            log(429, "faulted")
            limited = error(429, "Too many requests")
            return _Answer(429, _json(limited.body), {
                **_JSON,
                "Retry-After": str(decision.retry_after_s),
                "X-RateLimit-Limit": str(decision.rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + decision.retry_after_s),
            })  # fmt: skip
        now = time.time()
        try:
            accepted = validate.validate(provider, self.config, path, headers, body, now_s=now)
        except validate.Invalid as invalid:
            self.store.reject(invalid.status)
            log(invalid.status, "rejected")
            return _Answer(invalid.status, _json(invalid.body))
        message_id = _message_id(provider)
        new = self.store.accept(accepted, message_id=message_id, now_s=now)
        log(accepted.status, "accepted" if new else "duplicate")
        if provider == "sendgrid":
            return _Answer(202, b"", {"X-Message-Id": message_id})
        if provider == "braze":
            return _Answer(201, _json({"dispatch_id": message_id, "message": "success"}))
        if provider == "customerio":
            return _Answer(200, b"{}")
        return _Answer(200, _json({"ok": True}))

    def control(
        self, method: str, path: str, query: Mapping[str, list[str]], body: bytes
    ) -> _Answer:
        """The control API and the inbox page: never delayed or faulted."""
        if path in ("/", "/inbox") and method == "GET":
            return _Answer(200, inbox.PAGE, {
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": inbox.CSP,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            })  # fmt: skip
        if not path.startswith(CONTROL_PREFIX):
            return _Answer(404, _json({"error": f"no route {path}"}))
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
            return _Answer(status, _json({"error": f"no route {method} {path}"}))
        try:
            return _Answer(200, _json(handler()))
        except FaultSpecError as exc:
            return _Answer(400, _json({"error": str(exc)}))

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


def _message_id(provider: str) -> str:
    """A fresh id in roughly the provider's format (SendGrid's are url-safe base64)."""
    if provider == "sendgrid":
        return secrets.token_urlsafe(16)
    return uuid.uuid4().hex


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
