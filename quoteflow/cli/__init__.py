"""The ``quoteflow`` command line.

Every command loads the one settings model first, so a bad value stops the
command before it touches anything. Errors of ours (QuoteflowError) become one
line on stderr and a non-zero exit code; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from connectors.cdc.sources import SOURCE_NAMES
from quoteflow.errors import QuoteflowError
from quoteflow.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def _reporter(prefix: str = "") -> Callable[[str], None]:
    start = time.monotonic()

    def report(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - start:6.1f}s[/dim] {prefix}{line}")

    return report


class _Context:
    def __init__(self, config: Path | None) -> None:
        self._config = config
        self._settings: Settings | None = None

    @property
    def config_file(self) -> Path | None:
        """The --config given, for child processes (they read QUOTEFLOW_CONFIG)."""
        return self._config

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from quoteflow.logs import configure_logging

            self._settings = load_settings(self._config)
            configure_logging(self._settings.log)
        return self._settings


pass_ctx = click.make_pass_decorator(_Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML settings file (default: $QUOTEFLOW_CONFIG, else ./quoteflow.toml if present).",
)
@click.version_option(package_name="quoteflow")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """quoteflow: unaccepted quotes to personalised offer e-mails, in minutes."""
    ctx.obj = _Context(config)


# --- stack -------------------------------------------------------------------
@cli.group()
def stack() -> None:
    """The local stack: PostgreSQL, Apache Kafka (KRaft) and the Schema Registry, run here."""


_component_arg = click.argument("components", nargs=-1)


@stack.command("install")
@_component_arg
@pass_ctx
def stack_install(obj: _Context, components: tuple[str, ...]) -> None:
    """Install what the stack needs (PostgreSQL, Java, Maven, Kafka, registry); start nothing."""
    from devstack.stack.local import LocalStack

    report = _reporter()
    for component in LocalStack(obj.settings).select(components or None):
        component.install(report)
        report(f"{component.name}: installed")


@stack.command("up")
@_component_arg
@pass_ctx
def stack_up(obj: _Context, components: tuple[str, ...]) -> None:
    """Install what is missing and start the stack (idempotent)."""
    from devstack.stack.local import LocalStack

    local = LocalStack(obj.settings)
    started = local.up(_reporter(), components or None)
    _print_status(local.status())
    if not started:
        console.print("everything was already running")


@stack.command("down")
@_component_arg
@pass_ctx
def stack_down(obj: _Context, components: tuple[str, ...]) -> None:
    """Stop what `stack up` started (never other instances)."""
    from devstack.stack.local import LocalStack

    stopped = LocalStack(obj.settings).down(_reporter(), components or None)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")


@stack.command("status")
@pass_ctx
def stack_status(obj: _Context) -> None:
    """Show each component with its address and health; exit 1 if any is unhealthy."""
    from devstack.stack.local import LocalStack

    statuses = LocalStack(obj.settings).status()
    _print_status(statuses)
    if not all(s.healthy for s in statuses):
        sys.exit(1)


@stack.command("logs")
@_component_arg
@click.option(
    "-n", "--lines", default=40, show_default=True, type=click.IntRange(min=0),
    help="Lines per component.",
)
@click.option("--path", "path_only", is_flag=True, help="Print the log file paths only.")
@pass_ctx
def stack_logs(obj: _Context, components: tuple[str, ...], lines: int, path_only: bool) -> None:
    """Show the end of each component's log."""
    from devstack.stack.base import read_tail
    from devstack.stack.local import LocalStack

    for component in LocalStack(obj.settings).select(components or None):
        log = component.log_file()
        if path_only:
            console.print(str(log))
            continue
        console.rule(f"{component.name}: {log}")
        if not log.is_file():
            console.print("[dim](no log yet)[/dim]")
            continue
        for line in read_tail(log, lines):
            console.print(line, markup=False, highlight=False)


# --- topics ------------------------------------------------------------------
@cli.group()
def topics() -> None:
    """The topic catalogue on the broker."""


@topics.command("create")
@pass_ctx
def topics_create(obj: _Context) -> None:
    """Create every catalogue topic that is missing (idempotent), then check for drift."""
    from quoteflow.topics.admin import TopicAdmin

    admin = TopicAdmin(obj.settings)
    created = admin.create()
    for name in created:
        console.print(f"created {name}")
    if not created:
        console.print("all topics already existed")
    _print_topics(admin.report())


@topics.command("list")
@pass_ctx
def topics_list(obj: _Context) -> None:
    """Show the catalogue with each topic's state; exit 1 on a missing topic or drift."""
    from quoteflow.topics.admin import TopicAdmin

    reports = TopicAdmin(obj.settings).report()
    _print_topics(reports)
    if any(r.state != "ok" for r in reports):
        sys.exit(1)


def _print_topics(reports: list[Any]) -> None:
    table = Table("topic", "partitions", "rf", "cleanup", "retention", "key / value", "state")
    for r in reports:
        spec = r.spec
        days = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000}d"
        state = {"ok": "[green]ok[/green]", "missing": "[yellow]missing[/yellow]"}.get(
            r.state, "[red]drift: " + "; ".join(r.problems) + "[/red]"
        )
        schemas = f"{spec.key_schema or 'string'} / {spec.value_schema}"
        table.add_row(
            spec.name, str(spec.partitions), str(spec.replication_factor),
            spec.cleanup_policy, days, schemas, state,
        )
    console.print(table)


# --- schemas -----------------------------------------------------------------
@cli.group()
def schemas() -> None:
    """The repository's Avro schemas in the Schema Registry (TopicNameStrategy subjects)."""


@schemas.command("register")
@pass_ctx
def schemas_register(obj: _Context) -> None:
    """Register every schema version under its subject, with BACKWARD_TRANSITIVE (idempotent).

    Producers never register schemas themselves (schema_registry.auto_register
    is off by default): this command, run by a person or CI, is the way in.
    """
    from schemas.subjects.admin import SubjectAdmin

    with SubjectAdmin(obj.settings) as admin:
        console.print(f"schema registry: {admin.url}")
        results = admin.register(_reporter())
    _print_subjects([r.after for r in results])
    changed = sum(1 for r in results if r.changed)
    console.print(
        f"{changed} subject(s) changed, {len(results) - changed} already up to date"
        if changed
        else "every subject was already registered"
    )
    if any(r.refused or r.after.state != "ok" for r in results):
        sys.exit(1)


@schemas.command("check")
@pass_ctx
def schemas_check(obj: _Context) -> None:
    """Compare the registry's latest version of each subject with the repository's.

    Exit 1 on drift: a subject missing or behind, a version the repository does
    not have, or a compatibility level other than BACKWARD_TRANSITIVE.
    """
    from schemas.subjects.admin import SubjectAdmin

    with SubjectAdmin(obj.settings) as admin:
        console.print(f"schema registry: {admin.url}")
        comparisons = admin.compare()
    _print_subjects(comparisons)
    if any(c.state != "ok" for c in comparisons):
        sys.exit(1)


def _print_subjects(comparisons: list[Any]) -> None:
    """One row per subject (never truncated), then each problem on a line of its own."""
    table = Table("subject", "schema", "registry", "state")
    table.columns[0].no_wrap = True
    table.columns[1].overflow = "fold"
    colour = {"ok": "green", "missing": "yellow", "behind": "yellow", "drift": "red"}
    for c in comparisons:
        table.add_row(
            c.subject.name, c.repository[-1].label, c.describe_registry(),
            f"[{colour[c.state]}]{c.state}[/{colour[c.state]}]",
        )  # fmt: skip
    console.print(table)
    for c in comparisons:
        for problem in c.problems():
            console.print(f"{c.subject.name}: {problem}", markup=False, highlight=False)


# --- cdc ---------------------------------------------------------------------
@cli.command()
@click.argument("sources", nargs=-1, type=click.Choice(SOURCE_NAMES))
@pass_ctx
def cdc(obj: _Context, sources: tuple[str, ...]) -> None:
    """Stream committed changes of the QMS and CRM databases into their topics.

    SOURCES default to cdc.sources (both). Runs until Ctrl-C or SIGTERM, then
    waits for Kafka to acknowledge what was sent and confirms it to the slot.
    """
    from connectors.cdc.runner import run_sources

    run_sources(obj.settings, sources or obj.settings.cdc.sources, _reporter())


@cli.command()
@pass_ctx
def watermarks(obj: _Context) -> None:
    """Publish the source watermark when Debezium, not `quoteflow cdc`, writes the changes.

    Reads the quoteflow heartbeats Debezium publishes (its heartbeat.action.query)
    and Kafka Connect's committed offsets (watermarks.connect_offsets_topic), and
    writes quoteflow.cdc.watermarks. Runs until Ctrl-C or SIGTERM.
    """
    from devstack.debezium.publisher import run_watermarks

    run_watermarks(obj.settings, _reporter())


@cli.command()
@click.argument("source", type=click.Choice(SOURCE_NAMES))
@pass_ctx
def snapshot(obj: _Context, source: str) -> None:
    """Ask for a new snapshot of SOURCE's table (backfill), as `r` events into its topic.

    The request is a message in the source's WAL: the running `quoteflow cdc`
    meets it in order with the changes, or the next one to start does.
    """
    from connectors.cdc.snapshot import request_snapshot
    from connectors.cdc.sources import CDC_SOURCES

    target = next(s for s in CDC_SOURCES if s.server_name == source)
    database = target.database(obj.settings.postgres)
    lsn = request_snapshot(obj.settings.postgres.conninfo(database), target.qualified_table)
    console.print(
        f"snapshot of {database}.{target.qualified_table} requested at LSN {lsn};"
        f" `quoteflow cdc {source}` runs it"
    )


@cli.group()
def rules() -> None:
    """The marketing rules file: check one before a worker runs it."""


@rules.command("check")
@click.argument("rules_file", type=click.Path(path_type=Path), required=False)
@pass_ctx
def rules_check(obj: _Context, rules_file: Path | None) -> None:
    """Read RULES_FILE as a worker would (default: streams.rules_file, else the shipped one).

    A mistake is one line per bad key and exit code 1; a good file prints what it
    decides, so a reviewer sees the change before the workers roll.
    """
    from streams.core.rules import load_rules

    loaded = load_rules(rules_file or obj.settings.streams.rules_file)
    table = Table(title=f"rules {loaded.version}", show_header=False)
    for name, value in loaded.describe():
        table.add_row(name, value)
    console.print(table)


@cli.command()
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), default=None,
              help="The marketing rules file (default: streams.rules_file, else the shipped one).")
@pass_ctx
def process(obj: _Context, rules_file: Path | None) -> None:
    """Run a stream processor worker: quotes and customers in, triggers and decisions out.

    Start more workers with the same streams.app_id to share the partitions.
    Runs until Ctrl-C or SIGTERM.
    """
    from streams.core.rules import load_rules
    from streams.processor import run_worker

    rules = load_rules(rules_file or obj.settings.streams.rules_file)
    console.print(f"rules {rules.version}: {len(rules.offers)} offer(s)")
    run_worker(obj.settings, rules)


# --- sink --------------------------------------------------------------------
@cli.group(invoke_without_command=True)
@click.pass_context
def sink(ctx: click.Context) -> None:
    """Deliver abandonment triggers to the ESP (sink.provider), each exactly once in effect.

    Without a subcommand, runs the sink until Ctrl-C or SIGTERM. Start more with
    the same sink.group_id to share the partitions.
    """
    if ctx.invoked_subcommand is not None:
        return
    from connectors.sink.runner import run_sink

    obj: _Context = ctx.obj
    run_sink(obj.settings, _reporter())


@sink.command("ambiguous")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@pass_ctx
def sink_ambiguous(obj: _Context, limit: int) -> None:
    """Deliveries whose outcome is unknown, held for a person to resolve (oldest first)."""
    from connectors.sink.ledger import Ledger

    with Ledger(obj.settings.postgres.ops_conninfo()) as ledger:
        entries = ledger.open_entries("ambiguous", limit)
    table = Table("trigger", "provider", "customer", "request id", "attempts", "claimed", "why")
    for e in entries:
        table.add_row(e.trigger_id, e.provider, str(e.customer_id), str(e.request_id),
                      str(e.attempts), f"{e.claimed_at:%Y-%m-%d %H:%M:%S}", e.error or "")
    console.print(table)
    console.print(f"{len(entries)} ambiguous deliver{'y' if len(entries) == 1 else 'ies'}")


@sink.command("resolve")
@click.argument("trigger_id")
@click.option("--sent", "resolution", flag_value="sent",
              help="The ESP has it (checked in its dashboard or logs): count it as sent.")
@click.option("--resend", "resolution", flag_value="resend",
              help="The ESP never got it: forget the attempt so the next read delivers it.")
@click.option("--by", default=None, help="Who decided (default: $USER).")
@pass_ctx
def sink_resolve(obj: _Context, trigger_id: str, resolution: str | None, by: str | None) -> None:
    """Decide an ambiguous delivery: --sent or --resend."""
    import getpass

    from connectors.sink.ledger import Ledger

    if resolution not in ("sent", "resend"):
        raise click.UsageError("say --sent or --resend")
    who = by or getpass.getuser()
    with Ledger(obj.settings.postgres.ops_conninfo()) as ledger:
        entry = ledger.resolve(trigger_id, "sent" if resolution == "sent" else "resend", who)
    if resolution == "sent":
        console.print(f"{trigger_id}: recorded as sent (decided by {who})")
    else:
        console.print(
            f"{trigger_id}: attempt forgotten; it is delivered when the sink reads it again:"
            f" replay {entry.topic}[{entry.partition}] from offset {entry.offset}"
        )


@sink.command("reoffer")
@click.argument("quote_id", type=int)
@click.option("--reason", required=True,
              help="Why this quote may be offered again (kept in the ledger).")
@click.option("--by", default=None, help="Who decided (default: $USER).")
@pass_ctx
def sink_reoffer(obj: _Context, quote_id: int, reason: str, by: str | None) -> None:
    """Allow ONE more offer for a quote that already had one (the only way to re-offer).

    The sink keeps one offer per quote, ever: a later trigger for it (another rules
    version, another processor app) is a DUPLICATE. This sets the quote's offer aside,
    with who and why, so exactly the next trigger read for the quote is sent once.
    """
    import getpass

    from connectors.sink.ledger import Ledger

    who = by or getpass.getuser()
    with Ledger(obj.settings.postgres.ops_conninfo()) as ledger:
        moved = ledger.reoffer(quote_id, reason, who)
    offer = next(e for e in moved if e.state != "duplicate")
    dups = len(moved) - 1
    console.print(
        f"quote {quote_id}: its offer (trigger {offer.trigger_id}, {offer.state}) and"
        f" {dups} duplicate(s) set aside by {who}; the next trigger for it is sent once."
        " Replay the sink's group to a trigger of it, or wait for a new one."
    )


# --- esp-sandbox -------------------------------------------------------------
@cli.command("esp-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback unless --allow-remote.")
@click.option("--port", default=18090, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Latency added to every provider request.")
@click.option("--api-key", default=None,
              help="The SendGrid/Braze bearer key and Customer.io API key accepted "
                   "[default: sandbox-key].")
@click.option("--site-id", default=None,
              help="The Customer.io site id accepted [default: sandbox-site].")
@click.option("--webhook-secret", default=None,
              help="The webhook signing secret [default: sandbox-webhook-secret].")
@click.option("--allow-remote", is_flag=True,
              help="Listen on a non-loopback --host (anyone reaching it can send).")
@click.option("--log-requests", is_flag=True, help="Log one line per provider request.")
@pass_ctx
def esp_sandbox(obj: _Context, host: str, port: int, latency_ms: float, api_key: str | None,
                site_id: str | None, webhook_secret: str | None, allow_remote: bool,
                log_requests: bool) -> None:  # fmt: skip
    """Run a local ESP sandbox: SendGrid, Braze, Customer.io and webhook look-alikes.

    It validates requests as the real APIs do, records what it accepts (the
    inbox page at / shows the offers as e-mails) and injects faults on command
    (POST /_sandbox/faults), so the sink can be tried without e-mailing anyone.
    Runs until Ctrl-C or SIGTERM.
    """
    from devstack.esp_sandbox.config import SandboxConfig, is_loopback_host
    from devstack.esp_sandbox.run import run_sandbox
    from quoteflow.errors import ConfigError

    obj.settings  # noqa: B018 - loads and checks the settings, configures logging
    if not allow_remote and not is_loopback_host(host):
        raise ConfigError(
            f"--host {host} is not a loopback address: the sandbox accepts a well-known key,"
            " so it listens on loopback only; add --allow-remote to listen there anyway"
        )
    defaults = SandboxConfig()
    config = SandboxConfig(
        host=host,
        port=port,
        latency_ms=latency_ms,
        api_key=api_key or defaults.api_key,
        site_id=site_id or defaults.site_id,
        webhook_secret=webhook_secret or defaults.webhook_secret,
        log_requests=log_requests,
    )
    run_sandbox(config, lambda line: console.print(line, markup=False, highlight=False))


# --- bench -------------------------------------------------------------------
@cli.group()
def bench() -> None:
    """Benchmarks against the local stack; the last line printed is one JSON object."""


@bench.command("cdc")
@click.option("--changes", default=500_000, show_default=True, type=click.IntRange(min=1_000),
              help="Bulk workload: inserts committed before the connector streams them.")
@click.option("--rate", default=1_000, show_default=True, type=click.IntRange(min=10),
              help="Steady changes per second for the latency measurement.")
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(min=1),
              help="How long the steady workload runs.")
@pass_ctx
def bench_cdc(obj: _Context, changes: int, rate: int, seconds: float) -> None:
    """Commit-to-Kafka throughput and latency of the CDC connector, with its baseline."""
    import json

    from bench.cdc import run_cdc_bench

    result = run_cdc_bench(
        obj.settings, changes=changes, rate=rate, seconds=seconds, report=_reporter()
    )
    print(json.dumps(result.as_json()))


@bench.command("streams")
@click.option("--events", default=20_000, show_default=True, type=click.IntRange(min=1_000),
              help="Quote change events every rate is measured over.")
@click.option("--open-quotes", default=100_000, show_default=True,
              type=click.IntRange(min=100), help="Open quotes while latency is measured.")
@click.option("--latency-quotes", default=1_000, show_default=True,
              type=click.IntRange(min=10), help="New quotes (100/s) whose triggers are timed.")
@click.option("--memory-quotes", default=1_000_000, show_default=True,
              type=click.IntRange(min=100), help="Open quotes while memory is measured.")
@click.option("--heartbeat-ms", default=100, show_default=True, type=click.IntRange(min=10),
              help="How often the source watermark is published (cdc.heartbeat_interval_s).")
@pass_ctx
def bench_streams(obj: _Context, events: int, open_quotes: int, latency_quotes: int,
                  memory_quotes: int, heartbeat_ms: int) -> None:  # fmt: skip
    """The processor's events/s against faust's ceiling, Kafka's and its own core; latency and
    memory with many open quotes."""
    import json

    from bench.processor import run_streams_bench

    result = run_streams_bench(
        obj.settings, config_file=obj.config_file, events=events, open_quotes=open_quotes,
        memory_quotes=memory_quotes, latency_quotes=latency_quotes, heartbeat_ms=heartbeat_ms,
        report=_reporter(),
    )  # fmt: skip
    print(json.dumps(result.as_json()))


@bench.command("sink")
@click.option("--sends", default=5_000, show_default=True, type=click.IntRange(min=100),
              help="Triggers each throughput phase delivers.")
@click.option("--latency-ms", default=50.0, show_default=True, type=click.FloatRange(min=0),
              help="Latency the sandbox ESP adds to every request.")
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 512),
              help="Requests in flight: the baseline's threads and each sink's senders.")
@click.option("--rate", default=100, show_default=True, type=click.IntRange(min=1),
              help="Steady triggers per second for the latency measurement.")
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(min=1),
              help="How long the steady workload runs.")
@click.option("--provider", default="customerio", show_default=True,
              type=click.Choice(["sendgrid", "braze", "customerio", "webhook"]))
@pass_ctx
def bench_sink(obj: _Context, sends: int, latency_ms: float, concurrency: int, rate: int,
               seconds: float, provider: str) -> None:  # fmt: skip
    """Sends/s of one sink process (and two) against a bare requests pool; produce-to-ESP
    latency at a steady rate. All against the ESP sandbox."""
    import json

    from bench.sink import run_sink_bench

    result = run_sink_bench(
        obj.settings, sends=sends, latency_ms=latency_ms, concurrency=concurrency, rate=rate,
        seconds=seconds, provider=provider, report=_reporter(),
    )  # fmt: skip
    print(json.dumps(result.as_json()))


# --- health ------------------------------------------------------------------
@cli.command()
@click.option("--max-age", "max_age_s", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Seconds a heartbeat stays good [default: health.max_age_s].")
@pass_ctx
def health(obj: _Context, max_age_s: float | None) -> None:
    """Exit 0 while this container's component (cdc, process, sink) beats, 1 when stuck.

    The component touches health.file from the loop that does its work; this is
    the check a container orchestrator runs (docker-compose.yml's healthcheck).
    """
    from quoteflow.errors import ConfigError
    from quoteflow.liveness import judge

    settings = obj.settings.health
    if settings.file is None:
        raise ConfigError("health.file is not set (QUOTEFLOW_HEALTH__FILE): the component"
                          " writes no heartbeat to check")  # fmt: skip
    verdict = judge(settings.file, max_age_s or settings.max_age_s)
    if not verdict.alive:
        err_console.print(f"unhealthy: {verdict.message}", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(1)
    console.print(verdict.message, markup=False, highlight=False)


# --- demo --------------------------------------------------------------------
@cli.command()
@click.option("--quick", is_flag=True,
              help="The short version: every lifecycle case once (under 3 minutes warm).")
@click.option("--keep", is_flag=True,
              help="Leave the pipeline running after the summary, for a look at the ESP"
                   " sandbox's inbox; Ctrl-C stops it.")
@click.option("--resume", "resume", metavar="RUN", default=None,
              help="Carry on with an interrupted run (Ctrl-C prints its id).")
@click.option("--attach", is_flag=True,
              help="Drive the workload against a pipeline that is already running (e.g."
                   " docker compose's) instead of starting one; needs --sandbox.")
@click.option("--sandbox", "sandbox_url", metavar="URL", default=None,
              help="With --attach: the ESP sandbox the running pipeline's sink delivers to.")
@click.option("--topic-prefix", "topic_prefix", metavar="PREFIX", default=None,
              help="With --attach: the running pipeline's topic prefix"
                   " [default: streams.topic_prefix].")
@pass_ctx
def demo(obj: _Context, quick: bool, keep: bool, resume: str | None, attach: bool,
         sandbox_url: str | None, topic_prefix: str | None) -> None:  # fmt: skip
    """The whole pipeline, quote to e-mail, on a synthetic workload, live.

    Brings the local stack up, starts the CDC, the processor, the sink and an ESP
    sandbox as supervised child processes, writes quotes and customers into the
    QMS and CRM databases and shows what happens to them. The last line printed is
    the summary as one JSON object.

    With --attach it starts nothing: it writes the workload to the databases of a
    pipeline that is already running, planned with that pipeline's rules
    (streams.rules_file, which must be the processor's), and reads what it decided
    and what its ESP sandbox received.
    """
    from devstack.demo.attach import Attach
    from devstack.demo.run import DemoOptions, run_demo

    attached = _attach_options(obj.settings, attach, keep, resume, sandbox_url, topic_prefix)

    start = time.monotonic()

    def say(line: str) -> None:  # one line each, even where stdout is not a terminal
        console.print(f"[dim]{time.monotonic() - start:6.1f}s[/dim] {line}", soft_wrap=True)

    options = DemoOptions(quick=quick, keep=keep, config_file=obj.config_file, resume=resume,
                          attach=Attach(*attached) if attached else None)  # fmt: skip
    code = run_demo(obj.settings, options, console, err_console, say)
    if code:
        sys.exit(code)


def _attach_options(settings: Settings, attach: bool, keep: bool, resume: str | None,
                    sandbox_url: str | None, topic_prefix: str | None,
                    ) -> tuple[str, str] | None:  # fmt: skip
    """(sandbox URL, topic prefix) for --attach, None without it; usage errors at once."""
    if not attach:
        given = [o for o, v in (("--sandbox", sandbox_url), ("--topic-prefix", topic_prefix))
                 if v is not None]  # fmt: skip
        if given:
            raise click.UsageError(f"{' and '.join(given)} only go with --attach")
        return None
    if keep or resume:
        raise click.UsageError("--attach does not go with --keep or --resume: the pipeline"
                               " is not the demo's to keep or resume")  # fmt: skip
    if not sandbox_url:
        raise click.UsageError("--attach needs --sandbox URL: the ESP sandbox the running"
                               " pipeline's sink delivers to (what was e-mailed is its count)")
    if not sandbox_url.startswith(("http://", "https://")):
        raise click.UsageError(f"--sandbox {sandbox_url}: expected an http:// or https:// URL")
    prefix = settings.streams.topic_prefix if topic_prefix is None else topic_prefix
    if not re.fullmatch(r"[a-zA-Z0-9._-]*", prefix):
        raise click.UsageError(f"--topic-prefix {prefix!r}: letters, digits, '.', '_' and '-'"
                               " only (as the pipeline's topic_prefix settings)")  # fmt: skip
    return sandbox_url.rstrip("/"), prefix


# --- smoke -------------------------------------------------------------------
@cli.command()
@pass_ctx
def smoke(obj: _Context) -> None:
    """Check the sources and round-trip one record of every schema through Kafka."""
    from devstack.smoke import run_smoke

    checks = run_smoke(obj.settings, _reporter())
    table = Table("check", "result", "time", "detail")
    for c in checks:
        result = "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        table.add_row(c.name, result, f"{c.seconds:.2f}s", c.detail)
    console.print(table)
    if not all(c.ok for c in checks):
        sys.exit(1)


def _print_status(statuses: list[Any]) -> None:
    table = Table("component", "address", "running", "healthy", "pid", "detail")
    for s in statuses:
        ok = "[green]yes[/green]" if s.healthy else "[red]no[/red]"
        run = "yes" if s.running else "no"
        table.add_row(s.name, s.address, run, ok, str(s.pid or "-"), s.detail)
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: our errors become one line and an exit code, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="quoteflow", standalone_mode=False)
    except QuoteflowError as exc:
        # soft_wrap: one line even where stderr is not a terminal (rich would wrap at 80).
        err_console.print(f"quoteflow: error: {exc}", markup=False, highlight=False,
                          soft_wrap=True)  # fmt: skip
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("quoteflow: aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(code, int):  # --help, --version and ctx.exit() hand back their code
        sys.exit(code)
