"""The sender pool: ``sink.concurrency`` threads sending jobs and queueing their results.

No future per send, as an executor would make: the dispatcher hands jobs to one
queue and reads outcomes from another (:mod:`.delivery` does each one's attempts).
"""

from __future__ import annotations

import queue
import threading

import requests
from requests.adapters import HTTPAdapter

from connectors.errors import SinkError
from connectors.sink.delivery import Job, Result
from connectors.sink.recording import Recording


def http_session(concurrency: int, endpoint: str) -> requests.Session:
    """One session for every sender: one connection pool, as many connections as senders.

    The environment is read once, here: with ``trust_env`` requests would look up
    proxy variables (iterating the whole environment) and ``~/.netrc`` on every
    request, a fifth of the sender threads' CPU in a profile. Proxies for
    ``endpoint`` are resolved now instead; credentials are explicit headers, and the
    CA bundle is ``sink.ca_bundle``.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(endpoint))
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=concurrency, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "quoteflow-esp-sink"
    return session


class Senders(Recording):
    """Jobs out to the pool, results back to the dispatcher's outcome recording."""

    def _start_senders(self) -> None:
        """``concurrency`` threads taking jobs from one queue: no future per send, as an
        executor would make (the dispatcher reads outcomes from its own queue)."""
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.senders = [threading.Thread(target=self._sender_loop, name=f"esp-send-{i}",
                                         daemon=True) for i in range(self.cfg.concurrency)]
        for thread in self.senders:
            thread.start()

    def _stop_senders(self) -> None:
        for _ in self.senders:
            self.jobs.put(None)
        for thread in self.senders:
            thread.join()

    def _submit(self, job: Job) -> None:
        self.running += 1
        self.jobs.put(job)

    def _sender_loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.results.put(self.sender.deliver(job))
            except Exception as exc:  # noqa: BLE001 - a bug: stop the sink, do not lose track
                self.results.put(exc)

    def _wait_result(self, timeout: float) -> None:
        try:
            item = self.results.get(timeout=timeout)
        except queue.Empty:
            return
        self._handle(item)

    def _collect(self) -> None:
        while True:
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return
            self._handle(item)

    def _handle(self, item: Result | BaseException) -> None:
        if isinstance(item, BaseException):
            raise SinkError(f"a sender failed: {item!r}") from item
        self._on_result(item, submitted=True)
