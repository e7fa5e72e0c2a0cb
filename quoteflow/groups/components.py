"""Which consumer group each component reads in, and which topics: from the settings alone.

The kernel may not import the processor or the sink, so the names are derived
here from the same settings they use, following their conventions: the faust
app's group is ``streams.app_id`` (faust's ``conf.id``); the router reads the
change topics in ``<app_id>-router`` (:mod:`streams.router`); the processor's
faust agent reads ``<app_id>-by-customer`` (:mod:`streams.processor`); the sink
reads the triggers in ``sink.group_id``. A unit test
(tests/test_quoteflow/test_groups_components.py) builds the real router and
processor and holds these names to theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from quoteflow.settings import Settings
from quoteflow.topics import CUSTOMERS, QUOTES, TRIGGERS, prefixed

#: The components with a consumer group, in the data's order (the CDC has a slot instead).
COMPONENTS = ("router", "processor", "sink")


@dataclass(frozen=True)
class ComponentGroup:
    """One component's consumer group and the topics it reads there."""

    component: str
    group: str
    topics: tuple[str, ...]
    #: What a reset of this group means for the component, said before it is applied.
    caution: str
    #: The command that runs the component (what to start after a reset).
    command: str


def router_group(app_id: str) -> str:
    return f"{app_id}-router"


def by_customer_topic(app_id: str) -> str:
    return f"{app_id}-by-customer"


def component_groups(settings: Settings) -> dict[str, ComponentGroup]:
    """Every component's group, by component name (:data:`COMPONENTS` order)."""
    app_id, prefix = settings.streams.app_id, settings.topics.prefix
    return {
        "router": ComponentGroup(
            "router",
            router_group(app_id),
            (prefixed(prefix, QUOTES), prefixed(prefix, CUSTOMERS)),
            "the router forwards the change topics to the processor again from the new"
            " offsets: moving back re-applies changes on top of the processor's state (the"
            " sink's ledger keeps a re-fired trigger from e-mailing twice); moving forward"
            " means those changes never reach the processor",
            "quoteflow process",
        ),
        "processor": ComponentGroup(
            "processor",
            app_id,
            (by_customer_topic(app_id),),
            "the processor's faust state (RocksDB and its changelog topics) is not rewound:"
            " records read again are applied on top of the state that already holds them,"
            " and records skipped are lost to it; to recompute from history, reset the"
            " router instead or replay (quoteflow replay)",
            "quoteflow process",
        ),
        "sink": ComponentGroup(
            "sink",
            settings.sink.group_id,
            (prefixed(prefix, TRIGGERS),),
            "moving back re-reads triggers: the ledger skips those already sent, so nobody"
            " is e-mailed twice; moving forward skips triggers: those customers get no"
            " e-mail",
            "quoteflow sink",
        ),
    }
