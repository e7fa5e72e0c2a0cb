"""`quoteflow demo --attach`: which component to check when outcomes do not come, which
topics are missing, and the command line's refusals (all before any I/O)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from devstack.demo.attach import missing_topics, suspect
from devstack.demo.observe import SCHEMAS, Seen, SeenTrigger
from devstack.demo.plan import Plan
from devstack.demo.summary import outstanding
from quoteflow.cli import cli

pytestmark = pytest.mark.unit


def _captured(plan: Plan) -> Seen:
    seen = Seen()
    for q in plan.quotes:
        seen.status[q.quote_id] = "QUOTED"
    return seen


def test_nothing_captured_points_at_the_cdc(plan: Plan) -> None:
    seen = Seen()
    missing = outstanding(plan, seen, {})
    assert missing
    assert suspect(missing, seen, {}, "p.").startswith(
        "check cdc: none of this run's changes reached p.qms.public.quotes")


def test_captured_but_undecided_points_at_the_processor(plan: Plan) -> None:
    seen = _captured(plan)
    assert suspect(outstanding(plan, seen, {}), seen, {}, "").startswith("check process:")


def test_triggered_but_never_at_the_sandbox_points_at_the_sink(plan: Plan) -> None:
    seen = _captured(plan)
    offered = [q for q in plan.quotes if q.expect.trigger]
    seen.triggers += [SeenTrigger(f"t-{q.quote_id}", q.quote_id, 0) for q in offered]
    delivered = {f"t-{offered[0].quote_id}": 1}
    why = suspect(outstanding(plan, seen, delivered), seen, delivered, "")
    assert why.startswith(f"check sink: {len(offered) - 1} offer(s) on the triggers topic")


def test_nothing_missing_suspects_nobody(plan: Plan) -> None:
    assert suspect([], _captured(plan), {}, "") == ""


def test_missing_topics_are_named_with_their_prefix() -> None:
    every = [f"x.{name}" for name in SCHEMAS]
    assert missing_topics(every, "x.") == []
    assert missing_topics(every[1:], "x.") == [every[0]]
    assert missing_topics(every, "") == list(SCHEMAS)


@pytest.mark.parametrize(("args", "message"), [
    (["--sandbox", "http://x:1"], "--sandbox only go with --attach"),
    (["--topic-prefix", "p."], "--topic-prefix only go with --attach"),
    (["--attach"], "--attach needs --sandbox URL"),
    (["--attach", "--sandbox", "x:1"], "expected an http:// or https:// URL"),
    (["--attach", "--keep", "--sandbox", "http://x:1"], "does not go with --keep or --resume"),
    (["--attach", "--resume", "1", "--sandbox", "http://x:1"], "does not go with --keep"),
    (["--attach", "--sandbox", "http://x:1", "--topic-prefix", "a b"], "--topic-prefix 'a b'"),
])  # fmt: skip
def test_attach_options_are_refused_before_anything_runs(
    args: list[str], message: str, clean_env: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(cli, ["demo", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
