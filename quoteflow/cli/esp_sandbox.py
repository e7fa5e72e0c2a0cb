"""`quoteflow esp-sandbox`: a local stand-in for the ESPs, for the demo, tests and benchmarks."""

from __future__ import annotations

import click

from quoteflow.cli.common import CliContext, console, pass_ctx


@click.command("esp-sandbox")
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
def esp_sandbox(obj: CliContext, host: str, port: int, latency_ms: float, api_key: str | None,
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
