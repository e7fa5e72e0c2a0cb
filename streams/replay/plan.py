"""From an engineer's options to a replay job: names, rules, range, target, and what is in the way.

Everything that can refuse a replay refuses here, before a record is read or
written: a bad name or range, a rules file that does not load, options that
contradict each other, a replay name whose topics already hold output (unless
``--resume``), a target that is live (the command confirms that separately).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from quoteflow.topics.catalog import (
    DECISIONS,
    REPLAY_NAME,
    TRIGGERS,
    for_environment,
    prefixed,
    replay_topics,
)
from schemas.serde import serde_from_settings
from schemas.subjects.admin import SubjectAdmin
from schemas.subjects.plan import subjects
from streams.core.rules import Rules, load_rules
from streams.errors import ReplayError
from streams.replay.driver import Job
from streams.replay.outputs import Target, written_ids
from streams.replay.range import Bound, check_range
from streams.replay.reader import Names, pin_range

Into = Literal["replay", "live"]


@dataclass(frozen=True)
class Options:
    """``quoteflow replay``'s options, as typed (bounds already parsed)."""

    start: Bound
    end: Bound
    name: str | None = None
    rules_file: Path | None = None
    compare_file: Path | None = None
    diff_out: Path | None = None
    dry_run: bool = False
    into: Into = "replay"
    resume: bool = False
    lanes: int = 1


@dataclass(frozen=True)
class Prepared:
    job: Job
    name: str
    live: bool  # the target is the live pipeline's topics: confirm first

    @property
    def what_if(self) -> bool:
        return len(self.job.rules) == 2


def default_name(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def check_options(options: Options) -> None:
    """Contradictions, refused before anything is opened."""
    if options.name is not None and not REPLAY_NAME.match(options.name):
        raise ReplayError(f"--name {options.name!r}: letters, digits, '-' and '_' only "
                          "(it becomes part of two topic names)")  # fmt: skip
    if options.lanes < 1:
        raise ReplayError(f"--lanes {options.lanes}: at least 1")
    if options.dry_run and options.into == "live":
        raise ReplayError("--dry-run writes nothing; --into live makes no sense with it")
    if options.compare_file is not None and options.into == "live":
        raise ReplayError("--compare is a what-if: it writes only the difference, never to live")
    if options.diff_out is not None and options.compare_file is None:
        raise ReplayError("--diff-out is the what-if's output: give --compare too")
    if options.resume and (options.dry_run or options.compare_file is not None):
        raise ReplayError("--resume continues a replay that writes; a dry run or a what-if "
                          "writes nothing to resume: run it again")  # fmt: skip
    check_range(options.start, options.end)


def load(path: Path | None, option: str) -> Rules:
    from quoteflow.errors import QuoteflowError

    try:
        return load_rules(path)
    except QuoteflowError as exc:
        raise ReplayError(f"{option}: {exc}") from None


def prepare(settings: Settings, options: Options,
            on_progress: Callable[[str], None] = lambda _line: None) -> Prepared:  # fmt: skip
    """The job ``options`` describe, with its range pinned and its target made ready."""
    check_options(options)
    rules = [load(options.rules_file or settings.streams.rules_file, "--rules")]
    if options.compare_file is not None:
        rules.append(load(options.compare_file, "--compare"))
        if rules[0].version == rules[1].version:
            on_progress(f"both rules files say version {rules[0].version!r}: trigger ids "
                        "will match, only the decisions can differ")  # fmt: skip
    prefix = settings.topics.prefix
    names = Names.of(prefix)
    pinned = pin_range(settings, names, options.start, options.end)
    name = options.name or default_name()
    target, skip = Target(), frozenset[str]()
    live = False
    if options.into == "live":
        target = Target(prefixed(prefix, TRIGGERS), prefixed(prefix, DECISIONS))
        live = True
    elif not options.dry_run and options.compare_file is None:
        target, skip = _replay_target(settings, name, options.resume, on_progress)
    job = Job(settings, names, pinned, tuple(rules), target, skip, options.lanes)
    return Prepared(job, name, live)


def _replay_target(settings: Settings, name: str, resume: bool,
                   on_progress: Callable[[str], None]) -> tuple[Target, frozenset[str]]:
    admin = TopicAdmin(settings)
    catalogue = for_environment(settings.topics.replication_factor, settings.topics.partitions,
                                settings.topics.prefix)  # fmt: skip
    specs = replay_topics(catalogue, settings.topics.prefix, name)
    target = Target(specs[0].name, specs[1].name)
    existing = admin.existing()
    there = [s.name for s in specs if s.name in existing]
    if resume:
        if len(there) < 2:
            raise ReplayError(f"--resume: replay {name!r} has no output topics to continue "
                              "(check --name)")  # fmt: skip
        serde = serde_from_settings(settings.schema_registry)
        try:
            skip = written_ids(settings, serde, target,
                               lambda n: on_progress(f"{n:,} outputs read back"))  # fmt: skip
        finally:
            serde.close()
        on_progress(f"resuming replay {name!r}: {len(skip):,} outputs already written are skipped")
        return target, skip
    if there:
        serde = serde_from_settings(settings.schema_registry)
        try:
            held = written_ids(settings, serde, target)
        finally:
            serde.close()
        if held:
            raise ReplayError(
                f"replay {name!r} already wrote {len(held):,} outputs to {', '.join(there)}: "
                "add --resume to finish it, or choose another --name"
            )
    admin.create(list(specs))
    if settings.schema_registry.url is not None:  # the replay's subjects, as `schemas register`
        with SubjectAdmin(settings, subject_list=subjects(specs)) as registry:
            registry.register()
    return target, frozenset()


def resume_command(options: Options, prepared: Prepared) -> str:
    """The command that finishes this replay after a stop: same range (pinned), same rules."""
    job = prepared.job
    words = ["quoteflow", "replay", "--name", prepared.name]
    start = options.start.spelled()
    if start:
        words += ["--from", start]
    words += ["--to", job.pinned.quote_ends(job.names.quotes).spelled() or "end"]
    if options.rules_file is not None:
        words += ["--rules", str(options.rules_file)]
    if options.compare_file is not None:
        words += ["--compare", str(options.compare_file)]
    if options.diff_out is not None:
        words += ["--diff-out", str(options.diff_out)]
    if options.dry_run:
        words.append("--dry-run")
    if options.into == "live":
        words += ["--into", "live"]
    if options.lanes != 1:
        words += ["--lanes", str(options.lanes)]
    if not options.dry_run and options.compare_file is None:
        words.append("--resume")
    return shlex.join(words)
