"""The sandbox's HTTP layer: the threading server, the request handler and its routing.

Built on the standard library's threading HTTP server because the sink
benchmark drives it at some 700 requests a second with 50 ms of injected
latency, i.e. tens of requests in flight on keep-alive connections: one thread
per connection, HTTP/1.1 with a Content-Length on every answer, a deep accept
backlog, no per-request log line, and TCP_NODELAY so a header and body written
separately are not held back by Nagle's algorithm against delayed ACKs.

A provider route (:func:`devstack.esp_sandbox.validate.route`) goes to the
sandbox's provider endpoints (:mod:`devstack.esp_sandbox.endpoints`), after the
fault plan's latency; anything else to its control API. What an answer *says* is
the sandbox's; this module only reads requests and writes answers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from devstack.esp_sandbox import validate

if TYPE_CHECKING:
    from devstack.esp_sandbox.server import Sandbox

log = logging.getLogger("devstack.esp_sandbox")

JSON = {"Content-Type": "application/json"}


def json_body(value: Any) -> bytes:
    """``value`` as compact JSON bytes: an answer's body."""
    return json.dumps(value, separators=(",", ":")).encode()


class Answer:
    """One response: kept as plain values so the handler writes it in one place."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: Mapping[str, str] = JSON):
        self.status = status
        self.body = body
        self.headers = headers


class SandboxServer(ThreadingHTTPServer):
    """One thread per connection, each tracked so a stop can shut it down and join it."""

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
        super().__init__(address, Handler)

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


class Handler(BaseHTTPRequestHandler):
    """Reads one request, routes it (provider endpoint or control API), writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "quoteflow-esp-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    server: SandboxServer

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
                self._send(Answer(500, json_body({"error": "sandbox: internal error"})), close=True)
            self.close_connection = True

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        provider = validate.route(path)
        sandbox = self.server.sandbox
        if provider is not None:
            if self.command != "POST":
                if self._read_body() is not None:
                    self._send(Answer(405, json_body({"error": "method not allowed"})))
                return
            with sandbox.store.request():
                self._provider(provider, path)
            return
        body = self._read_body()
        if body is None:
            return
        self._send(sandbox.control(self.command, path, parse_qs(parts.query), body))

    def _read_body(self, refused: Callable[[int], None] | None = None) -> bytes | None:
        """The request body; None when an error answer was already sent (the length is bad).

        ``refused`` hears the refusal's status *before* the answer goes out: whoever reads
        the answer and then asks for the statistics must find the refusal counted.
        """
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("POST", "PUT") and self.headers.get("Transfer-Encoding"):
                self._refuse(Answer(411, json_body({"error": "Content-Length required"})), refused)
                return None
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self._refuse(Answer(400, json_body({"error": "bad Content-Length"})), refused)
            return None
        if size > self.server.sandbox.config.max_body_bytes:
            self._refuse(Answer(413, json_body({"error": "request body too large"})), refused)
            return None
        return self.rfile.read(size) if size else b""

    def _refuse(self, answer: Answer, refused: Callable[[int], None] | None) -> None:
        if refused is not None:
            refused(answer.status)
        self._send(answer, close=True)

    def _provider(self, provider: str, path: str) -> None:
        sandbox = self.server.sandbox

        def record(status: int) -> None:
            sandbox.store.reject(status)
            sandbox.store.log(provider, validate.Identity(), received_at=time.time(),
                              status=status, outcome="rejected")  # fmt: skip

        body = self._read_body(refused=record)
        if body is None:
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

    def _send(self, answer: Answer, *, close: bool = False) -> None:
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
