"""``quoteflow demo``: the whole pipeline on a synthetic workload, from quote to e-mail.

The order is the one an operator follows: the stack up, the topics and schemas
in place, then the ESP sandbox, the CDC (its slots must exist before the first
write, or the write is never captured), the processor and the sink, each a
supervised child process; then the workload, while the view shows what the
pipeline does. The demo ends when every outcome the plan expects is visible
(offers delivered, decisions recorded), then reads its topics to their end
for the summary. Anything that goes wrong (a child dying, the deadline
passing) ends it at once with a non-zero exit, and the children are always
stopped and the run's state removed on the way out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import time
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psycopg
from rich.console import Console
from rich.live import Live

from connectors.cdc.sources import CDC_SOURCES
from devstack.children import sink_env
from devstack.demo.attach import Attach, check_topics, connect_sandbox, suspect
from devstack.demo.driver import Driver
from devstack.demo.observe import Observer, SandboxView
from devstack.demo.plan import Plan, build_plan, first_id_for
from devstack.demo.runs import (
    Resume,
    RunNames,
    clean_stale_runs,
    load_resume,
    remove_run_state,
    runs_dir,
    write_record,
)
from devstack.demo.summary import Summary, outstanding, run_deliveries, summarize
from devstack.demo.supervisor import Child, Supervisor
from devstack.demo.view import live_view, progress_line, summary_table
from devstack.esp_sandbox import Sandbox, SandboxConfig
from quoteflow.errors import QuoteflowError
from quoteflow.settings import Settings, load_settings
from streams.core.detector import trigger_id
from streams.core.rules import DEFAULT_RULES, load_rules

#: The demo's rules: the shipped ones with a 1-minute delay.
DEMO_RULES = Path(__file__).with_name("rules.toml")
SEED = 17
#: From the first workload write to the last expected outcome, at most (then: exit 1).
DEADLINE_S = {True: 240.0, False: 480.0}
#: Once every expected outcome is visible: how long stragglers (an offer nobody
#: planned, a delivery in flight) may take before the final read.
SETTLE_S = 3.0


class DemoError(QuoteflowError):
    """The demo could not finish: a component died, or outcomes did not come in time."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop cleanly."""


@dataclass(frozen=True)
class DemoOptions:
    quick: bool
    keep: bool
    config_file: Path | None
    #: Carry on with this interrupted run (its id) instead of starting a new one.
    resume: str | None = None
    #: Drive the workload against this running pipeline instead of starting one.
    attach: Attach | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise :class:`Interrupted` in the main loop: one clean path out."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Demo:
    """One run: its names, children, workload and observers."""

    def __init__(self, settings: Settings, options: DemoOptions, console: Console,
                 say: Callable[[str], None]) -> None:  # fmt: skip
        self.settings, self.console, self.say = settings, console, say
        self.resumed: Resume | None = None
        if options.resume is not None:
            self.resumed = load_resume(settings, options.resume)
            if self.resumed is None:
                raise DemoError(f"no interrupted demo run {options.resume} to resume (the"
                                " newest interrupted run stays resumable for an hour)")
            options = dataclasses.replace(options, quick=self.resumed.quick)
        self.options = options
        # A resumed run rebuilds the same plan: same start, ids, zones.
        self.started = self.resumed.started if self.resumed else datetime.now(UTC)
        self.t0 = time.monotonic()
        self.names = RunNames(self.resumed.run) if self.resumed else RunNames.new(self.started)
        self.dir = runs_dir(settings) / self.names.run
        self.logs = self.dir / "logs"
        self.supervisor = Supervisor()
        self.attached = options.attach
        # Attached, the plan must expect what the running processor decides: its rules.
        self.rules_file = (settings.streams.rules_file or DEFAULT_RULES) if self.attached \
            else DEMO_RULES  # fmt: skip
        self.rules = load_rules(self.rules_file)
        self.plan: Plan = build_plan(seed=SEED, quick=options.quick,
                                     first_id=first_id_for(self.started), now=self.started,
                                     rules=self.rules)  # fmt: skip
        self.trigger_ids = {trigger_id(q.quote_id, self.rules.version) for q in self.plan.quotes}
        self.sandbox_url = ""
        self.observer: Observer | None = None
        self.sandbox: SandboxView | None = None
        self.driver: Driver | None = None
        #: Set once the workload started: from then on an interrupted run can be resumed.
        self.resumable = False

    @property
    def topic_prefix(self) -> str:
        """The topics the pipeline works on: the run's own, or the attached pipeline's."""
        return self.attached.topic_prefix if self.attached else self.names.topic_prefix

    @property
    def logs_hint(self) -> str:
        """Where a person finds the components' logs."""
        return "the pipeline's own (e.g. docker compose logs)" if self.attached else str(self.logs)

    # --- set-up ---------------------------------------------------------------------------

    def attach(self) -> None:
        """--attach: the pipeline is someone else's; only check that it is there."""
        assert self.attached is not None
        check_topics(self.settings, self.attached)
        self.sandbox = connect_sandbox(self.attached)
        self.sandbox_url = self.sandbox.url.rstrip("/")
        self.say(f"attached: topics {self.topic_prefix or '(no prefix)'}*, ESP sandbox"
                 f" {self.sandbox_url}, rules {self.rules_file} (version {self.rules.version})")

    def prepare(self) -> None:
        """Stack, topics, schemas: idempotent, as `make demo` did before the demo existed."""
        from devstack.stack.local import LocalStack
        from quoteflow.topics.admin import TopicAdmin
        from schemas.subjects.admin import SubjectAdmin

        self.dir.mkdir(parents=True, exist_ok=True)
        write_record(self.dir, {})
        cleaned = clean_stale_runs(self.settings, self.names.run)
        if cleaned:
            self.say(f"removed what {len(cleaned)} interrupted earlier run(s) left behind")
        self.say("stack: bringing up PostgreSQL, Kafka and the Schema Registry (idempotent)")
        # Its progress matters on a fresh clone (installing takes minutes): pass it on.
        started = LocalStack(self.settings).up(lambda line: self.say(f"stack: {line}"))
        self.say(f"stack: {'started ' + ', '.join(started) if started else 'already running'}")
        admin = TopicAdmin(self.settings)
        created = admin.create()
        run_topics = [dataclasses.replace(spec, name=self.names.topic_prefix + spec.name)
                      for spec in admin.catalogue]  # fmt: skip
        admin.create(run_topics)
        self.say(f"topics: catalogue in place ({len(created)} created); this run's under"
                 f" {self.names.topic_prefix}*")  # fmt: skip
        with SubjectAdmin(self.settings) as subjects:
            results = subjects.register()
        refused = [r for r in results if r.refused or r.after.state != "ok"]
        if refused:
            raise DemoError(f"schemas: {len(refused)} subject(s) could not be registered;"
                            " see `quoteflow schemas check`")  # fmt: skip
        self.say(f"schemas: {len(results)} subjects registered (BACKWARD_TRANSITIVE)")

    def _env(self, **values: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("QUOTEFLOW_CDC__", "QUOTEFLOW_STREAMS__"))}  # fmt: skip
        if self.options.config_file is not None:
            env["QUOTEFLOW_CONFIG"] = str(self.options.config_file)
        # The run's own topics get their subjects from the first record written.
        env["QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER"] = "true"
        env.update(values)
        return env

    def start_components(self) -> None:
        names, logs = self.names, self.logs
        port = _free_port()
        sandbox = Sandbox(SandboxConfig(port=port))  # never started: it knows the URLs
        self.sandbox_url = sandbox.url
        self.supervisor.start(Child("esp-sandbox", ["esp-sandbox", "--port", str(port)],
                                    self._env(), logs / "esp-sandbox.log"))  # fmt: skip
        self.sandbox = SandboxView(sandbox.url)
        self._wait("the ESP sandbox", lambda: self._answers(), 30)
        self.supervisor.start(Child("cdc", ["cdc"], self._env(
            QUOTEFLOW_CDC__SLOT_PREFIX=names.slot_prefix,
            QUOTEFLOW_CDC__TOPIC_PREFIX=names.topic_prefix,
            QUOTEFLOW_CDC__STATE_DIR=str(self.dir / "cdc"),
            QUOTEFLOW_CDC__SNAPSHOT="never",  # only this run's writes, not the tables' history
            QUOTEFLOW_CDC__HEARTBEAT_INTERVAL_S="1",
        ), logs / "cdc.log"))  # fmt: skip
        self._record()
        self._wait("the CDC's replication slots", self._slots_active, 60)
        self.supervisor.start(Child("process", ["process"], self._env(
            QUOTEFLOW_STREAMS__APP_ID=names.app_id,
            QUOTEFLOW_STREAMS__TOPIC_PREFIX=names.topic_prefix,
            QUOTEFLOW_STREAMS__DATA_DIR=str(self.dir / "streams"),
            QUOTEFLOW_STREAMS__RULES_FILE=str(DEMO_RULES),
            QUOTEFLOW_STREAMS__TICK_INTERVAL_S="1",
        ), logs / "process.log"))  # fmt: skip
        sink = load_settings(self.options.config_file, sink={
            **sandbox.sink_overrides("customerio"), "group_id": names.sink_group,
            "topic_prefix": names.topic_prefix, "commit_interval_s": 0.5,
        }).sink  # fmt: skip
        # No QUOTEFLOW_SINK__ value of the caller's survives, and the provider, URL and key
        # override the config file's: the demo can only e-mail its own sandbox.
        env = {k: v for k, v in self._env().items() if not k.startswith("QUOTEFLOW_SINK__")}
        self.supervisor.start(Child("sink", ["sink"], {**env, **sink_env(sink)},
                                    logs / "sink.log"))  # fmt: skip
        self._record()
        for child in self.supervisor.children:
            self.say(f"{child.name}: pid {child.pid}, log {child.log}")
        self.say(f"ESP sandbox inbox: {self.sandbox_url}/")

    def _record(self) -> None:
        write_record(self.dir, {c.name: c.pid for c in self.supervisor.children if c.pid})

    def _answers(self) -> bool:
        assert self.sandbox is not None
        try:
            self.sandbox.delivered()
        except QuoteflowError:
            return False
        return True

    def _slots_active(self) -> bool:
        """Both sources' slots held by the CDC (pg_replication_slots is cluster-wide)."""
        pg = self.settings.postgres
        with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name"
                               " LIKE %s AND active",
                               (f"{self.names.slot_prefix}\\_%",)).fetchone()  # fmt: skip
        return row is not None and row[0] >= len(CDC_SOURCES)

    def _wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            self.supervisor.check()
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}"
                                f" (logs: {self.logs})")  # fmt: skip
            time.sleep(0.25)

    # --- the run --------------------------------------------------------------------------

    def drive(self) -> Summary:
        """The workload and the live view, until every expected outcome is visible."""
        self.observer = Observer(
            self.settings, self.topic_prefix,
            quote_ids={q.quote_id for q in self.plan.quotes},
            customer_ids={c.customer_id for c in self.plan.customers},
            from_end=self.attached is not None,
        )  # fmt: skip
        self.observer.start()
        sandbox = self.sandbox
        assert sandbox is not None
        delivered: dict[str, int] = {}
        seen = self.observer.seen
        sent: dict[int, bool] = {}

        def offered(quote_id: int) -> bool:
            return sent.get(quote_id, False)

        earlier = self.resumed.delivered if self.resumed else {}
        self.driver = driver = Driver(self.settings, self.plan, offered,
                                      done=self.resumed.done if self.resumed else frozenset())
        quoted = ", ".join(self.plan.awake_zones[:6])
        self.say(f"workload: {len(self.plan.quotes)} quotes, {len(self.plan.customers)}"
                 f" customers (awake zones: {quoted}"
                 f"{'; night in ' + ', '.join(self.plan.asleep_zones[:3]) if self.plan.asleep_zones else ''})")  # noqa: E501
        if self.resumed:
            self.say(f"resuming run {self.names.run} at {self.resumed.elapsed_s:.0f}s of its"
                     f" workload, {driver.done} of {driver.total} steps already written")
        driver.start(self.resumed.elapsed_s if self.resumed else 0.0)
        self.resumable = True
        deadline = time.monotonic() + DEADLINE_S[self.options.quick]
        settle_until: float | None = None
        last_line = 0.0
        live = Live(console=self.console, refresh_per_second=4, transient=False) \
            if self.console.is_terminal else None  # fmt: skip
        with live if live is not None else contextlib.nullcontext():
            while True:
                self.supervisor.check()
                driver.due()
                self.observer.poll(0.2)
                delivered = self._ours(sandbox.delivered(), earlier)
                for t in seen.triggers:
                    if delivered.get(t.trigger_id, 0):
                        sent[t.quote_id] = True
                missing = outstanding(self.plan, seen, delivered)
                phase = "writing the workload" if not driver.finished else (
                    "waiting for deadlines" if missing else "finishing")  # fmt: skip
                elapsed = time.monotonic() - self.t0
                n_delivered = sum(delivered.values())
                if live is not None:
                    live.update(live_view(
                        phase=phase, elapsed_s=elapsed, steps_done=driver.done,
                        steps_total=driver.total, seen=seen, delivered=n_delivered,
                        outstanding=len(missing), health=self.supervisor.health()))  # fmt: skip
                elif time.monotonic() - last_line >= 10:
                    last_line = time.monotonic()
                    self.console.print(progress_line(
                        phase=phase, elapsed_s=elapsed, seen=seen, delivered=n_delivered,
                        outstanding=len(missing), health=self.supervisor.health()),
                        markup=False, highlight=False, soft_wrap=True)  # fmt: skip
                if driver.finished and not missing:
                    settle_until = settle_until or time.monotonic() + SETTLE_S
                    if time.monotonic() >= settle_until and n_delivered >= len(seen.triggers):
                        break
                if time.monotonic() > deadline:
                    lines = "; ".join(f"{q.quote_id} ({q.case.value})" for q in missing[:8])
                    raise DemoError(
                        f"{len(missing)} expected outcome(s) missing after"
                        f" {DEADLINE_S[self.options.quick]:.0f}s: {lines}"
                        f"{'' if driver.finished else '; workload not finished'};"
                        f" {suspect(missing, seen, delivered, self.topic_prefix)}"
                        f" (logs: {self.logs_hint})")  # fmt: skip
                time.sleep(0.25)
        self.observer.catch_up()
        delivered = self._ours(sandbox.delivered(), earlier)
        return summarize(run=self.names.run, plan=self.plan, seen=seen, delivered=delivered,
                         received_ms=sandbox.received_ms(),
                         seconds=time.monotonic() - self.t0, logs=self.logs_hint)  # fmt: skip

    def _ours(self, delivered: dict[str, int],
              earlier: dict[str, int] | None = None) -> dict[str, int]:  # fmt: skip
        """The sandbox's counts for this run's quotes (the sink also delivers what other
        writers' rows triggered; see :mod:`devstack.demo.observe`), plus what the sandbox
        of the run's interrupted part counted."""
        return run_deliveries(delivered, earlier or {}, self.trigger_ids)

    def keep_running(self, note: Callable[[str], None]) -> None:
        """--keep: the pipeline stays up for a look at the inbox until Ctrl-C. ``note`` goes
        to stderr: the summary's JSON stays the last line of stdout."""
        url = f"{self.sandbox_url}/"
        opened = False
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            with contextlib.suppress(webbrowser.Error):
                opened = webbrowser.open(url)
        note(f"the pipeline keeps running; inbox: {url}"
                 f"{' (opened in your browser)' if opened else ''} - Ctrl-C stops it")  # fmt: skip
        while True:
            self.supervisor.check()
            time.sleep(0.5)

    def extras(self) -> dict[str, object]:
        """For the JSON line: where the inbox was and which pids ran (a test checks they are
        gone and nothing listens there any more)."""
        return {"inbox": f"{self.sandbox_url}/",
                "components": {c.name: c.pid for c in self.supervisor.children}}

    # --- the way out ----------------------------------------------------------------------

    def stop(self, *, keep_state: bool = False) -> list[str]:
        """Children stopped (sink first); what had to be killed. The run's state (slots,
        topics, processor state) is removed, unless ``keep_state``: then what a resume
        needs is recorded instead, with the sandbox's counts (that process goes now)."""
        if self.attached:  # nothing of the pipeline is the demo's to stop or remove
            for closing in (self.driver, self.observer, self.sandbox):
                if closing is not None:
                    with contextlib.suppress(Exception):
                        closing.close()
            return []
        resume = None
        if keep_state and self.driver is not None:
            earlier = self.resumed.delivered if self.resumed else {}
            try:
                delivered = self._ours(self.sandbox.delivered() if self.sandbox else {},
                                       earlier)  # fmt: skip
            except QuoteflowError:
                delivered = earlier  # the sandbox went first: its last counts are lost
            resume = Resume(self.names.run, self.started, self.options.quick,
                            self.driver.elapsed_s, frozenset(self.driver.written), delivered,
                            time.time())  # fmt: skip
        for closing in (self.driver, self.observer, self.sandbox):
            if closing is not None:
                with contextlib.suppress(Exception):
                    closing.close()
        killed = self.supervisor.stop()
        if resume is not None:
            write_record(self.dir, {}, resume)
            return killed
        remove_run_state(self.settings, self.names)
        for state in ("cdc", "streams"):
            shutil.rmtree(self.dir / state, ignore_errors=True)
        (self.dir / "run.json").unlink(missing_ok=True)
        return killed


def run_demo(settings: Settings, options: DemoOptions, console: Console,
             err: Console, say: Callable[[str], None]) -> int:  # fmt: skip
    """Run the demo; the exit code. The summary's JSON is the last line of stdout."""
    demo = Demo(settings, options, console, say)
    options = demo.options  # a resumed run's own (--quick as it was)
    summary: Summary | None = None
    code = 0
    try:
        with _signals_interrupt():
            try:
                if demo.attached:
                    demo.attach()
                else:
                    demo.prepare()
                    demo.start_components()
                summary = demo.drive()
                if options.keep:
                    _print_summary(console, summary, demo.extras())
                    demo.keep_running(lambda line: err.print(line, markup=False,
                                                             soft_wrap=True))
            except Interrupted as why:
                if summary is None:  # before the end: the demo did not finish
                    what = "the workload" if demo.attached else "every component"
                    err.print(f"quoteflow demo: interrupted ({why}); stopping {what}",
                              markup=False, highlight=False)  # fmt: skip
                    code = 130
                else:  # --keep: Ctrl-C is how it ends
                    err.print("quoteflow demo: stopping the pipeline", markup=False)
    finally:
        # A second Ctrl-C must not cut the clean-up short (it is bounded: see GRACE_S).
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            keep_state = code == 130 and demo.resumable and not demo.attached
            killed = demo.stop(keep_state=keep_state)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        out = err if options.keep or summary is None else console
        names = ", ".join(c.name for c in demo.supervisor.children) or "nothing"
        forced = f" (killed after the grace period: {', '.join(killed)})" if killed else ""
        state = ("the run's topics, slots and state kept for a resume" if keep_state
                 else "the run's topics, slots and state removed")  # fmt: skip
        if demo.attached:
            if demo.driver is not None:  # something was written: say where it stays
                out.print("detached: the pipeline keeps running (this run's rows stay in the"
                          " QMS and CRM)", markup=False, highlight=False,
                          soft_wrap=True)  # fmt: skip
        else:
            out.print(f"stopped: {names}{forced}; {state}; logs kept in {demo.logs}",
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    again = " ".join(["quoteflow demo", *(["--quick"] if options.quick else []),
                      *(["--keep"] if options.keep else []), *_attach_args(options.attach)])
    if code == 130:
        if keep_state:
            err.print(f"to resume it: quoteflow demo --resume {demo.names.run}"
                      f"{' --keep' if options.keep else ''}", markup=False)  # fmt: skip
        else:
            err.print(f"to run it again: {again}", markup=False)
        return code
    if options.keep:
        err.print(f"to see it again: {again}", markup=False)
    assert summary is not None
    if not options.keep:
        _print_summary(console, summary, demo.extras())
    return 0 if summary.ok else 1


def _attach_args(attach: Attach | None) -> list[str]:
    if attach is None:
        return []
    prefix = ["--topic-prefix", attach.topic_prefix] if attach.topic_prefix else []
    return ["--attach", "--sandbox", attach.sandbox_url, *prefix]


def _print_summary(console: Console, summary: Summary, extras: dict[str, object]) -> None:
    console.print(summary_table(summary))
    for line in summary.surprises:
        console.print(f"not as planned: {line}", markup=False, highlight=False)
    if not summary.ok:
        console.print(f"[red]FAILED[/red]: delivered {summary.delivered} of {summary.triggered}"
                      f" triggered (abandoned {summary.abandoned})")  # fmt: skip
    # Plain print: one line however wide the terminal (rich would wrap it).
    print(json.dumps({**summary.as_json(), **extras}), flush=True)
