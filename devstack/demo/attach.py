"""``quoteflow demo --attach``: the demo's workload against a pipeline that is already running.

docker-compose's ``demo`` profile runs it against compose's own ``cdc``,
``process``, ``sink`` and ``esp-sandbox``; anyone can point it at theirs. The
demo then starts nothing and removes nothing: no stack, no slots, no topics of
its own, no children. It writes the same workload, plans it with the rules the
pipeline uses (``streams.rules_file``: the demo's file must be the processor's,
or the expected outcomes are someone else's), reads the pipeline's triggers and
decisions topics (``read_committed``, only its own quote ids) and asks the ESP
sandbox the pipeline's sink delivers to what it received.

What can go wrong is the pipeline not being there, so each check names the
component to look at: topics missing (the ``topics`` one-shot, or a wrong
``--topic-prefix``), the sandbox not answering, and, when outcomes do not come
in time, the first stage where this run's quotes stopped (:func:`suspect`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devstack.demo.observe import SCHEMAS, SandboxView, Seen
from devstack.demo.plan import PlannedQuote
from devstack.demo.summary import delivered_quotes
from quoteflow.errors import QuoteflowError
from quoteflow.settings import Settings
from quoteflow.topics import QUOTES

#: How long the sandbox may take to answer the first time (a container just healthy).
SANDBOX_WAIT_S = 15.0


class PipelineMissing(QuoteflowError):
    """The pipeline to attach to is not there (topics, sandbox): the message says which part."""


@dataclass(frozen=True)
class Attach:
    """Where the running pipeline is: its sink's ESP sandbox and its topics' prefix."""

    sandbox_url: str
    #: The pipeline's ``topics.prefix``.
    topic_prefix: str = ""


def missing_topics(existing: Sequence[str] | set[str], prefix: str) -> list[str]:
    """The topics the demo reads (changes, triggers, decisions) that do not exist."""
    return [prefix + name for name in SCHEMAS if prefix + name not in existing]


def check_topics(settings: Settings, attach: Attach) -> None:
    """Fail with one line naming what to check when the pipeline's topics are not there."""
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise PipelineMissing(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}"
                              f" ({exc.args[0]}): is the pipeline's broker up?") from None
    missing = missing_topics(existing, attach.topic_prefix)
    if missing:
        raise PipelineMissing(
            f"the pipeline's topics are missing: {', '.join(missing)} - is the pipeline"
            f" running with topic prefix {attach.topic_prefix!r} (--topic-prefix)? Its topics"
            " come from `quoteflow topics create` (compose's `topics` service)")  # fmt: skip


def connect_sandbox(attach: Attach) -> SandboxView:
    """The sandbox the pipeline's sink delivers to, answering, or one line saying it is not."""
    sandbox = SandboxView(attach.sandbox_url)
    try:
        sandbox.wait_ready(SANDBOX_WAIT_S)
    except QuoteflowError:
        sandbox.close()
        raise PipelineMissing(
            f"the ESP sandbox at {attach.sandbox_url} did not answer in {SANDBOX_WAIT_S:.0f}s"
            " - check the esp-sandbox service, and that --sandbox is the URL the pipeline's"
            " sink delivers to") from None  # fmt: skip
    return sandbox


def suspect(missing: Sequence[PlannedQuote], seen: Seen, delivered: Mapping[str, int],
            prefix: str) -> str:  # fmt: skip
    """Which component to check when expected outcomes did not come: the first stage where
    this run's quotes stopped (changes never captured: the CDC; captured but never decided:
    the processor; decided, triggered but never at the sandbox: the sink)."""
    if not missing:
        return ""
    captured = set(seen.status)
    if not captured:
        return (f"check cdc: none of this run's changes reached {prefix}{QUOTES}"
                " (is it running, on this database and topic prefix?)")  # fmt: skip
    triggered = {t.quote_id for t in seen.triggers}
    sent = delivered_quotes(seen, delivered)
    stuck_in_sink = [q for q in missing if q.quote_id in triggered and q.quote_id not in sent]
    if stuck_in_sink:
        return (f"check sink: {len(stuck_in_sink)} offer(s) on the triggers topic never reached"
                " the sandbox (does the sink deliver to this sandbox, on this topic prefix?)")
    uncaptured = [q for q in missing if q.quote_id not in captured]
    if len(uncaptured) == len(missing):
        return f"check cdc: {len(uncaptured)} of the missing quotes were never captured"
    return ("check process: this run's changes were captured but not decided (is it running,"
            " on this topic prefix, with the rules the demo planned with: streams.rules_file?)")
