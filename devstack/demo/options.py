"""What a demo run is asked to do (DemoOptions), its fixed settings, and how it ends early."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.demo.attach import Attach
from quoteflow.errors import QuoteflowError

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
