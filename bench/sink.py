"""``quoteflow bench sink``: what one sink process sustains, against a bare ``requests`` pool.

All phases run against one ESP sandbox in a child process (its own CPU, as an
ESP would be), with the same injected latency and the same request payloads:

1. **baseline**: a pool of threads sharing one ``requests.Session`` posting the
   prepared payloads: no Kafka, no ledger, no receipts. The client library's
   ceiling on this machine.
2. **one sink**: a ``quoteflow sink`` child process with the same concurrency,
   over a backlog produced once it has its partitions: Kafka read, ledger claim
   and outcome, receipts and offsets in transactions included.
3. **two sinks** in one consumer group sharing the partitions.
4. **latency**: triggers produced at a steady rate into the one sink; time from
   produce to the sandbox receiving the request.

Rates come from the sandbox's own receive times (first to last request), so
start-up and group joins are not counted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import ms_figure, per_second, percentile, rate_figure, span_rate
from connectors.errors import SinkError
from connectors.sink.config import build_provider
from connectors.sink.runner import SinkTopics, http_session
from devstack.children import WorkerProcess, sink_env
from devstack.esp_sandbox import SandboxClient
from quoteflow.deadletter import dead_letter
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings, SinkSettings
from schemas.serde import Serde, serde_from_settings
from schemas.subjects.admin import delete_subjects
from schemas.wire import AbandonmentTrigger

PARTITIONS = 6
SANDBOX_KEY = "bench-key"
SANDBOX_SITE = "bench-site"


@dataclass(frozen=True)
class SinkBenchResult:
    sends_per_s: float
    baseline_per_s: float
    p50_ms: float
    p99_ms: float
    sends_per_s_two_processes: float
    sends: int
    latency_ms: float
    concurrency: int
    provider: str
    latency_sends: int
    rate_per_s: int
    #: The baseline measured before and after the sink phases: the ceiling is the better
    #: of the two (neighbours on a shared machine slow one or the other).
    baseline_runs: tuple[float, float]
    #: CPU per send of the sink process and of the bare pool: the bookkeeping's cost,
    #: steadier than the rates on a shared machine (both are bound by one core's GIL).
    sink_cpu_ms_per_send: float
    baseline_cpu_ms_per_send: float

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("sends_per_s", "baseline_per_s", "sends_per_s_two_processes"):
            out[key] = rate_figure(out[key])
        out["p50_ms"], out["p99_ms"] = ms_figure(self.p50_ms), ms_figure(self.p99_ms)
        out["ratio"] = round(self.sends_per_s / self.baseline_per_s, 2)
        out["baseline_runs"] = [rate_figure(b) for b in self.baseline_runs]
        out["sink_cpu_ms_per_send"] = round(self.sink_cpu_ms_per_send, 2)
        out["baseline_cpu_ms_per_send"] = round(self.baseline_cpu_ms_per_send, 2)
        return out


def bench_trigger(run: str, n: int) -> dict[str, Any]:
    """A trigger as the processor writes it; ids unique to the run (the ledger is shared,
    and allows one offer per quote, ever). Fired now: the sink expires triggers older than
    ``sink.max_trigger_age``."""
    deadline = datetime.now(UTC) - timedelta(seconds=1)
    quote_id = int(run, 16) * 10_000_000 + n
    return {
        "trigger_id": f"bench-{run}-{n}", "quote_id": quote_id, "quote_ref": f"QB-{n}",
        "customer_id": 10_000_000 + n, "email": f"bench.{n}@example.com", "first_name": "Sam",
        "timezone": "Europe/London", "product_code": "MOTOR", "channel": "web",
        "premium": Decimal("412.50"), "currency": "GBP",
        "offer": {"code": "SAVE10", "description": "10% off your first year",
                  "discount_pct": 10.0},
        "template_id": "d-0123456789abcdef0123456789abcdef",
        "subject": "Your quote is waiting", "quote_created_at": deadline - timedelta(hours=2),
        "deadline_at": deadline, "fired_at": deadline, "source_watermark_at": deadline,
        "rule_version": "bench", "replay": False,
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Bench:
    def __init__(self, settings: Settings, *, concurrency: int, provider: str,
                 report: Reporter, workdir: Path) -> None:  # fmt: skip
        self.run = uuid.uuid4().hex[:8]
        self.settings, self.report, self.workdir = settings, report, workdir
        self.concurrency, self.provider_name = concurrency, provider
        # The run's own topics get their subjects as the first record is written.
        registry = settings.schema_registry.model_copy(update={"auto_register": True})
        self.serde: Serde = serde_from_settings(registry)
        self.admin = AdminClient(settings.kafka.as_librdkafka_dict())
        self.producer = Producer({**settings.kafka.as_librdkafka_dict(), "linger.ms": 5,
                                  "acks": "all"})  # fmt: skip
        self.topics: list[str] = []
        self.seq = 0

    def close(self) -> None:
        self.serde.close()
        for future in (self.admin.delete_topics(self.topics).values() if self.topics else []):
            with contextlib.suppress(Exception):  # cleanup is best effort
                future.result()
        for topic in self.topics:
            with contextlib.suppress(Exception):
                delete_subjects(self.settings, f"{topic}-")
        with contextlib.suppress(psycopg.Error), psycopg.connect(
            self.settings.postgres.ops_conninfo(), autocommit=True
        ) as conn:
            conn.execute("DELETE FROM sink_deliveries WHERE trigger_id LIKE %s",
                         (f"bench-{self.run}-%",))  # fmt: skip

    # --- the sandbox ---------------------------------------------------------------
    @contextlib.contextmanager
    def sandbox(self, latency_ms: float) -> Iterator[SandboxClient]:
        port = _free_port()
        log = self.workdir / "sandbox.log"
        proc = WorkerProcess(
            ["-m", "quoteflow", "esp-sandbox", "--port", str(port), "--latency-ms",
             str(latency_ms), "--api-key", SANDBOX_KEY, "--site-id", SANDBOX_SITE,
             "--webhook-secret", SANDBOX_KEY],
            dict(os.environ), log)  # fmt: skip
        client = SandboxClient(f"http://127.0.0.1:{port}")
        try:
            client.wait_ready(30)
            yield client
        finally:
            client.close()
            proc.stop()

    def sink_settings(self, url: str, prefix: str) -> SinkSettings:
        base = url + ("/webhook" if self.provider_name == "webhook" else "")
        return SinkSettings.model_validate({
            "provider": self.provider_name, "base_url": base, "secret": SANDBOX_KEY,
            "customerio": {"site_id": SANDBOX_SITE},
            "sendgrid": {"from_email": "offers@example.com"},
            "braze": {"campaign_id": "bench-campaign"},
            "group_id": "bench-sink-" + prefix.replace(".", "-").strip("-"),
            "concurrency": self.concurrency, "accept_replays": True,
        })  # fmt: skip

    # --- phases --------------------------------------------------------------------
    def triggers(self, n: int) -> list[dict[str, Any]]:
        out = [bench_trigger(self.run, self.seq + i) for i in range(n)]
        self.seq += n
        return out

    def baseline(self, client: SandboxClient, sends: int) -> tuple[float, float]:
        """(sends/s, CPU ms per send) of the bare pool."""
        sink = self.sink_settings(client.url, "unused.")
        provider = build_provider(sink)
        prepared = [provider.request(AbandonmentTrigger.from_record(t), now_s=time.time())
                    for t in self.triggers(sends)]  # fmt: skip
        session = http_session(self.concurrency, provider.endpoint)

        def post(i: int) -> int:
            send = prepared[i]
            with session.request(send.method, send.url, data=send.body, headers=send.headers,
                                 timeout=(3, 30)) as response:  # fmt: skip
                return response.status_code

        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                start, cpu = time.perf_counter(), time.process_time()
                codes = list(pool.map(post, range(sends)))
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            session.close()
        bad = [c for c in codes if not 200 <= c < 300]
        if bad:
            raise SinkError(f"bench: the sandbox refused {len(bad)} baseline sends (HTTP {bad[0]})")
        return per_second(sends, elapsed), cpu * 1000 / sends

    def topic_set(self, label: str) -> str:
        prefix = f"bench.sink.{self.run}.{label}."
        topics = SinkTopics.with_prefix(prefix)
        names = [topics.triggers, topics.deliveries, topics.dead_letter]
        futures = self.admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
        for future in futures.values():
            future.result()
        self.topics += names
        # As a deployment does before a sink runs (`quoteflow schemas register`): the run's
        # subjects exist before the first receipt, which would otherwise wait on the
        # registry inside the timed phase.
        sample = bench_trigger(self.run, -1)
        self.serde.encode("abandonment_trigger", sample, topic=topics.triggers)
        self.serde.encode("esp_delivery_receipt", {
            "trigger_id": "warm-up", "provider": self.provider_name, "status": "SENT",
            "esp_message_id": None, "http_status": 200, "attempts": 1, "first_attempt_at": 0,
            "completed_at": 0, "error": None, "request_id": None, "customer_id": None,
            "quote_id": None, "latency_ms": None}, topic=topics.deliveries)  # fmt: skip
        self.serde.encode("dead_letter", dead_letter(
            topics.triggers, 0, 0, None, None, stage="bench", error_type="WarmUp",
            error_message="", attempts=0, now_ms=0), topic=topics.dead_letter)  # fmt: skip
        return prefix

    def produce(self, prefix: str, triggers: Sequence[dict[str, Any]]) -> None:
        topic = SinkTopics.with_prefix(prefix).triggers
        for trigger in triggers:
            value = self.serde.encode("abandonment_trigger", trigger, topic=topic)
            self.producer.produce(topic, key=str(trigger["customer_id"]).encode(), value=value)
            self.producer.poll(0)
        if self.producer.flush(60):
            raise SinkError("bench: Kafka did not take the triggers within 60 s")

    def start_sinks(self, client: SandboxClient, prefix: str, n: int) -> list[WorkerProcess]:
        sink = self.sink_settings(client.url, prefix)
        env = sink_env(sink, prefix, QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER="true",
                       QUOTEFLOW_LOG__LEVEL="WARNING")  # fmt: skip
        procs = [WorkerProcess(["-m", "quoteflow", "sink"], env,
                               self.workdir / f"sink-{prefix.split('.')[-2]}-{i}.log")
                 for i in range(n)]  # fmt: skip
        self._wait_assigned(sink.group_id, n, procs)
        return procs

    def _wait_assigned(self, group: str, members: int, procs: list[WorkerProcess]) -> None:
        """Until the group has ``members`` members sharing every partition."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for proc in procs:
                proc.check()
            with contextlib.suppress(Exception):
                (desc,) = self.admin.describe_consumer_groups([group]).values()
                group_desc = desc.result(timeout=10)
                assigned = [len(m.assignment.topic_partitions) for m in group_desc.members]
                if (len(assigned) == members and sum(assigned) == PARTITIONS
                        and str(group_desc.state).endswith("STABLE")):  # fmt: skip
                    return
            time.sleep(0.5)
        raise SinkError(f"bench: the sink group {group} did not settle with {members} members")

    def received(self, client: SandboxClient, ids: set[str], procs: list[WorkerProcess],
                 timeout_s: float) -> dict[str, float]:  # fmt: skip
        """Each trigger's first receive time at the sandbox, waiting until all arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = client.stats()
            if stats.get("accepted", 0) >= len(ids):
                times: dict[str, float] = {}
                for m in client.messages():
                    if m["trigger_id"] in ids and m["trigger_id"] not in times:
                        times[m["trigger_id"]] = m["received_at"]
                if len(times) >= len(ids):
                    return times
            for proc in procs:
                proc.check()
            if time.monotonic() > deadline:
                raise SinkError(f"bench: {len(ids) - stats.get('accepted', 0)} sends missing"
                                f" after {timeout_s:.0f} s (logs in {self.workdir})")  # fmt: skip
            time.sleep(0.2)

    def throughput(self, client: SandboxClient, sends: int, processes: int
                   ) -> tuple[float, float]:  # fmt: skip
        """(sends/s, the sinks' CPU ms per send) over a backlog."""
        client.reset()
        prefix = self.topic_set(f"p{processes}")
        procs = self.start_sinks(client, prefix, processes)
        try:
            triggers = self.triggers(sends)
            cpu = sum(_cpu_s(p.process.pid) for p in procs)
            self.produce(prefix, triggers)
            times = self.received(client, {t["trigger_id"] for t in triggers}, procs, 600)
            cpu = sum(_cpu_s(p.process.pid) for p in procs) - cpu
        finally:
            for proc in procs:
                proc.stop()
        return span_rate(list(times.values())), cpu * 1000 / sends

    def latency(self, client: SandboxClient, rate: int, seconds: float) -> list[float]:
        client.reset()
        prefix = self.topic_set("latency")
        procs = self.start_sinks(client, prefix, 1)
        topic = SinkTopics.with_prefix(prefix).triggers
        produced: dict[str, float] = {}
        try:
            triggers = self.triggers(int(rate * seconds))
            start = time.perf_counter()
            for i, trigger in enumerate(triggers):
                wait = start + i / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                value = self.serde.encode("abandonment_trigger", trigger, topic=topic)
                produced[trigger["trigger_id"]] = time.time()
                self.producer.produce(topic, key=str(trigger["customer_id"]).encode(),
                                      value=value)  # fmt: skip
                self.producer.poll(0)
            self.producer.flush(30)
            times = self.received(client, set(produced), procs, 120)
        finally:
            for proc in procs:
                proc.stop()
        return sorted((times[t] - produced[t]) * 1000 for t in produced)


def run_sink_bench(settings: Settings, *, sends: int, latency_ms: float, concurrency: int,
                   rate: int, seconds: float, provider: str,
                   report: Reporter) -> SinkBenchResult:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="quoteflow-bench-sink-") as tmp:
        bench = _Bench(settings, concurrency=concurrency, provider=provider, report=report,
                       workdir=Path(tmp))  # fmt: skip
        try:
            with bench.sandbox(latency_ms) as client:
                report(f"baseline: {sends} sends from a {concurrency}-thread requests pool"
                       f" against the sandbox ({latency_ms:g} ms latency)")  # fmt: skip
                before, base_cpu = bench.baseline(client, sends)
                report(f"baseline: {before:,.0f} sends/s, {base_cpu:.2f} ms CPU per send")
                report(f"one sink process ({provider}, {concurrency} senders): {sends} triggers")
                one, sink_cpu = bench.throughput(client, sends, 1)
                report(f"one sink: {one:,.0f} sends/s, {sink_cpu:.2f} ms CPU per send")
                report(f"two sink processes: {sends} triggers")
                two, _ = bench.throughput(client, sends, 2)
                report(f"two sinks: {two:,.0f} sends/s")
                report(f"latency: {rate}/s for {seconds:g} s into one sink")
                lat = bench.latency(client, rate, seconds)
                report(f"latency: p50 {percentile(lat, 50):.1f} ms,"
                       f" p99 {percentile(lat, 99):.1f} ms")  # fmt: skip
                client.reset()
                report("baseline again")
                after, after_cpu = bench.baseline(client, sends)
                baseline = max(before, after)
                report(f"baseline: {after:,.0f} sends/s; one sink at {one / baseline:.2f} of"
                       f" the better")  # fmt: skip
        finally:
            bench.close()
    return SinkBenchResult(
        sends_per_s=one, baseline_per_s=baseline, p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99), sends_per_s_two_processes=two, sends=sends,
        latency_ms=latency_ms, concurrency=concurrency, provider=provider,
        latency_sends=len(lat), rate_per_s=rate, baseline_runs=(before, after),
        sink_cpu_ms_per_send=sink_cpu, baseline_cpu_ms_per_send=min(base_cpu, after_cpu),
    )  # fmt: skip


__all__ = ["SinkBenchResult", "bench_trigger", "run_sink_bench", "sink_env"]
