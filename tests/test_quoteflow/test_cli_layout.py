"""The command line's layout: one module per command group, the same commands as before.

Issue 18 split the one-file CLI into ``quoteflow/cli/<group>.py`` modules; these
tests keep it split (a command added to the root module, or one group spread over
two modules, fails here) and keep ``quoteflow --help`` listing exactly the
commands it listed before the split, so a user's scripts and docker-compose.yml's
services still find theirs. Importing the CLI must stay light: a command imports
what it runs when it runs, so ``quoteflow --help`` never loads Kafka or faust.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import click
import pytest

from quoteflow.cli import cli

pytestmark = pytest.mark.unit

#: Every command of the root group and the module that defines it (and its subcommands).
MODULE_OF = {
    "bench": "quoteflow.cli.bench",
    "cdc": "quoteflow.cli.cdc",
    "demo": "quoteflow.cli.demo",
    "esp-sandbox": "quoteflow.cli.esp_sandbox",
    "groups": "quoteflow.cli.groups",
    "health": "quoteflow.cli.health",
    "process": "quoteflow.cli.process",
    "replay": "quoteflow.cli.replay",
    "rules": "quoteflow.cli.process",
    "schemas": "quoteflow.cli.schemas",
    "sink": "quoteflow.cli.sink",
    "smoke": "quoteflow.cli.smoke",
    "snapshot": "quoteflow.cli.cdc",
    "stack": "quoteflow.cli.stack",
    "topics": "quoteflow.cli.topics",
    "watermarks": "quoteflow.cli.cdc",
}

#: ``quoteflow --help``'s command list before the split (issue 18), word for word, with the
#: commands added since (issue 19: replay).
HELP_COMMANDS = """\
  bench        Benchmarks against the local stack; the last line printed...
  cdc          Stream committed changes of the QMS and CRM databases into...
  demo         The whole pipeline, quote to e-mail, on a synthetic...
  esp-sandbox  Run a local ESP sandbox: SendGrid, Braze, Customer.io and...
  groups       Lag per component (CDC slots, consumer groups); reset a...
  health       Exit 0 while this container's component (cdc, process,...
  process      Run a stream processor worker: quotes and customers in,...
  replay       Replay the change topics through the decision core, in...
  rules        The marketing rules file: check one before a worker runs it.
  schemas      The repository's Avro schemas in the Schema Registry...
  sink         Deliver abandonment triggers to the ESP (sink.provider),...
  smoke        Check the sources and round-trip one record of every...
  snapshot     Ask for a new snapshot of SOURCE's table (backfill), as...
  stack        The local stack: PostgreSQL, Apache Kafka (KRaft) and the...
  topics       The topic catalogue on the broker.
  watermarks   Publish the source watermark when Debezium, not `quoteflow...
"""

#: Packages a command imports when it runs, never when the CLI is imported.
HEAVY = ("connectors", "streams", "schemas", "devstack", "bench", "faust", "confluent_kafka",
         "psycopg", "fastavro")  # fmt: skip


def walk(command: click.Command) -> list[click.Command]:
    """``command`` and every subcommand below it."""
    found = [command]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found.extend(walk(sub))
    return found


def test_every_command_of_the_root_group_is_known() -> None:
    assert sorted(cli.commands) == sorted(MODULE_OF)


@pytest.mark.parametrize("name", sorted(MODULE_OF))
def test_each_group_is_defined_in_its_own_module(name: str) -> None:
    for command in walk(cli.commands[name]):
        assert command.callback is not None
        assert command.callback.__module__ == MODULE_OF[name], (
            f"`quoteflow {name}`: {command.name} is defined in {command.callback.__module__},"
            f" not in {MODULE_OF[name]}"
        )


def test_the_root_module_defines_no_command_but_the_root_group() -> None:
    assert cli.callback is not None
    assert cli.callback.__module__ == "quoteflow.cli"
    for name, command in cli.commands.items():
        assert command.callback is not None
        assert command.callback.__module__.startswith("quoteflow.cli."), name


def test_help_lists_the_same_commands_as_before() -> None:
    """``python -m quoteflow --help`` (the console script's ``main``) on an 80-column terminal."""
    done = subprocess.run(
        [sys.executable, "-m", "quoteflow", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("Commands:\n", 1)[1] == HELP_COMMANDS
    names = [line.split()[0] for line in HELP_COMMANDS.splitlines()]
    assert names == sorted(MODULE_OF)


def test_importing_the_cli_loads_no_component() -> None:
    """Only the CDC's source list (plain dataclasses, for the source arguments' choices)."""
    probe = (
        "import sys, quoteflow.cli; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in set({HEAVY!r})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    loaded = set(ast.literal_eval(done.stdout.strip()))
    allowed = {"connectors", "connectors.cdc", "connectors.cdc.sources"}
    assert loaded <= allowed, f"`import quoteflow.cli` loads {sorted(loaded - allowed)}"
