"""The control API from another process: the benchmark runs the sandbox as a subprocess.

A thin wrapper so callers say ``client.faults(latency_ms=50)`` rather than
building URLs; any failure is a :class:`~connectors.errors.SandboxError` naming
the call, so a benchmark stops with one line when its sandbox went away.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import requests

from connectors.errors import SandboxError


class SandboxClient:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, name: str, **kwargs: Any) -> Any:
        url = f"{self.url}/_sandbox/{name}"
        try:
            answer = self._session.request(method, url, timeout=self._timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise SandboxError(f"ESP sandbox at {self.url}: {method} {name}: {exc}") from None
        if answer.status_code != 200:
            try:
                reason = answer.json().get("error", answer.text)
            except ValueError:
                reason = answer.text
            raise SandboxError(
                f"ESP sandbox at {self.url}: {method} {name}: HTTP {answer.status_code}: {reason}"
            )
        return answer.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def wait_ready(self, timeout_s: float = 15.0) -> None:
        """Wait until the sandbox answers (a subprocess that just started)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.health()
                return
            except SandboxError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def faults(self, **spec: Any) -> dict[str, Any]:
        """Set faults (keys as in :mod:`devstack.esp_sandbox.faults`); others stay as set."""
        result: dict[str, Any] = self._call("POST", "faults", json=spec)
        return result

    def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", "faults")
        return result

    def messages(
        self, *, provider: str | None = None, trigger_id: str | None = None, redact: bool = False
    ) -> list[dict[str, Any]]:
        params = {"provider": provider, "trigger_id": trigger_id, "redact": "1" if redact else None}
        result: list[dict[str, Any]] = self._call(
            "GET", "messages", params={k: v for k, v in params.items() if v is not None}
        )
        return result

    def requests(self, *, provider: str | None = None, trigger_id: str | None = None
                 ) -> list[dict[str, Any]]:  # fmt: skip
        """Every provider request as it arrived, oldest first: ``trigger_ids``, ``dedupe_id``,
        ``received_at`` (epoch s), ``status``, ``outcome`` (accepted, duplicate, rejected,
        faulted) and ``fault`` (the injected fault, if any)."""
        params = {"provider": provider, "trigger_id": trigger_id}
        result: list[dict[str, Any]] = self._call(
            "GET", "requests", params={k: v for k, v in params.items() if v is not None}
        )
        return result

    def triggers(self) -> dict[str, dict[str, int]]:
        """Per trigger id: ``delivered`` (exactly once means 1), ``deduplicated``, ``attempts``
        (accepted requests), ``received`` (every request naming it), ``rejected``, ``faulted``."""
        result: dict[str, dict[str, int]] = self._call("GET", "triggers")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def reset(self) -> None:
        self._call("POST", "reset")
