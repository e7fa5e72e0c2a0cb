"""``quoteflow demo``: the whole pipeline on a synthetic workload, from quote to e-mail.

This module is the order of it all: a run's names and plan, its pipeline
started (:mod:`.launch`: the stack up, topics and schemas in place, then the
ESP sandbox, the CDC, the processor and the sink, each a supervised child
process), the workload and the live view (:mod:`.live`), then the way out and
the summary (:mod:`.finish`). The demo ends when every outcome the plan
expects is visible (offers delivered, decisions recorded), then reads its
topics to their end for the summary. Anything that goes wrong (a child dying,
the deadline passing) ends it at once with a non-zero exit, and the children
are always stopped and the run's state removed on the way out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import FrameType

from rich.console import Console

from devstack.demo.attach import check_topics, connect_sandbox
from devstack.demo.driver import Driver
from devstack.demo.finish import again_command, print_summary, stopped_line
from devstack.demo.launch import Launch
from devstack.demo.live import LiveRun, keep_running
from devstack.demo.observe import Observer, SandboxView
from devstack.demo.options import DEMO_RULES, SEED, DemoError, DemoOptions, Interrupted
from devstack.demo.plan import Plan, build_plan, first_id_for
from devstack.demo.runs import (
    Resume,
    RunNames,
    load_resume,
    remove_run_state,
    runs_dir,
    write_record,
)
from devstack.demo.summary import Summary, run_deliveries, summarize
from devstack.demo.supervisor import Supervisor
from quoteflow.errors import QuoteflowError
from quoteflow.settings import Settings
from streams.core.detector import trigger_id
from streams.core.rules import DEFAULT_RULES, load_rules


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

    def _launch(self) -> Launch:
        return Launch(self.settings, self.options.config_file, self.names, self.dir,
                      self.supervisor, self.say)  # fmt: skip

    def prepare(self) -> None:
        """Stack, topics, schemas (:meth:`.launch.Launch.prepare`)."""
        self._launch().prepare()

    def start_components(self) -> None:
        """The ESP sandbox, then the CDC, the processor and the sink, each waited for."""
        launch = self._launch()
        sandbox = launch.start_sandbox()
        self.sandbox_url = sandbox.url
        self.sandbox = SandboxView(sandbox.url)
        launch.start_pipeline(sandbox, self.sandbox)

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
        LiveRun(self.plan, driver, self.observer, sandbox, self.supervisor, self.console,
                self.options.quick, self.t0, lambda counts: self._ours(counts, earlier),
                self.topic_prefix, self.logs_hint).watch(sent)  # fmt: skip
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
        """--keep: up until Ctrl-C (:func:`.live.keep_running`)."""
        keep_running(self.supervisor, self.sandbox_url, note)

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
                    print_summary(console, summary, demo.extras())
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
        stopped_line(err if options.keep or summary is None else console,
                     attached=demo.attached is not None, wrote=demo.driver is not None,
                     names=", ".join(c.name for c in demo.supervisor.children) or "nothing",
                     killed=killed, keep_state=keep_state, logs=str(demo.logs))  # fmt: skip
    again = again_command(options)
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
        print_summary(console, summary, demo.extras())
    return 0 if summary.ok else 1


__all__ = ["DEMO_RULES", "Demo", "DemoError", "DemoOptions", "run_demo"]
