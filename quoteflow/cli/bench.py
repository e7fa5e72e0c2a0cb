"""`quoteflow bench`: the CDC, processor, replay and sink benchmarks against the local stack."""

from __future__ import annotations

import click

from quoteflow.cli.common import CliContext, pass_ctx, reporter


@click.group()
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
def bench_cdc(obj: CliContext, changes: int, rate: int, seconds: float) -> None:
    """Commit-to-Kafka throughput and latency of the CDC connector, with its baseline."""
    import json

    from bench.cdc import run_cdc_bench

    result = run_cdc_bench(
        obj.settings, changes=changes, rate=rate, seconds=seconds, report=reporter()
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
def bench_streams(obj: CliContext, events: int, open_quotes: int, latency_quotes: int,
                  memory_quotes: int, heartbeat_ms: int) -> None:  # fmt: skip
    """The processor's events/s against faust's ceiling, Kafka's and its own core; latency and
    memory with many open quotes."""
    import json

    from bench.processor import run_streams_bench

    result = run_streams_bench(
        obj.settings, config_file=obj.config_file, events=events, open_quotes=open_quotes,
        memory_quotes=memory_quotes, latency_quotes=latency_quotes, heartbeat_ms=heartbeat_ms,
        report=reporter(),
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
def bench_sink(obj: CliContext, sends: int, latency_ms: float, concurrency: int, rate: int,
               seconds: float, provider: str) -> None:  # fmt: skip
    """Sends/s of one sink process (and two) against a bare requests pool; produce-to-ESP
    latency at a steady rate. All against the ESP sandbox."""
    import json

    from bench.sink import run_sink_bench

    result = run_sink_bench(
        obj.settings, sends=sends, latency_ms=latency_ms, concurrency=concurrency, rate=rate,
        seconds=seconds, provider=provider, report=reporter(),
    )  # fmt: skip
    print(json.dumps(result.as_json()))


@bench.command("replay")
@click.option("--events", default=1_000_000, show_default=True, type=click.IntRange(min=1_000),
              help="Quote change events in the seeded history (plus one customer per 10).")
@click.option("--lanes", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Replay lanes (processes sharing the customers), as `quoteflow replay --lanes`.")
@click.option("--sample", default=50_000, show_default=True, type=click.IntRange(min=100),
              help="Quote changes the in-process decode and core rates are measured on.")
@click.option("--keep", is_flag=True,
              help="Leave the run's topics (bench.replay.<id>.*) to look at; printed at the end.")
@pass_ctx
def bench_replay(obj: CliContext, events: int, lanes: int, sample: int, keep: bool) -> None:
    """Events/s of `quoteflow replay` over a seeded history (decoding and output included)
    against a raw confluent-kafka consume loop over the same messages."""
    from bench.replay import run_replay_bench
    from bench.report import json_line

    report = reporter()
    try:
        result = run_replay_bench(obj.settings, events=events, lanes=lanes, sample=sample,
                                  keep=keep, report=report)  # fmt: skip
    except KeyboardInterrupt:
        left = "left as they were (--keep)" if keep else "deleted"
        report(f"stopped: the run's topics are {left}; a benchmark does not resume: "
               "run it again")  # fmt: skip
        raise SystemExit(130) from None
    report(f"replay {result.events_per_s:,.0f} change records/s in {result.lanes} lane(s), "
           f"{result.ratio:.0%} of the raw consume loop ({result.baseline_per_s:,.0f}/s); "
           f"{result.triggers:,} triggers, {result.decisions:,} decisions written")
    if keep:
        report(f"kept: topics {result.prefix}*")
    print(json_line(result))
