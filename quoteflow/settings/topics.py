"""``[topics]``: what differs between environments in the topics quoteflow creates."""

from __future__ import annotations

from pydantic import Field

from quoteflow.settings.base import Section


class TopicsSettings(Section):
    """What differs between environments; the topics themselves are in quoteflow.topics."""

    #: Prepended to every topic quoteflow reads or writes, for every component (the
    #: change topics, the watermarks, the outputs, the dead letters): a staging
    #: namespace or a test's own topics; "" in production.
    prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9._-]*$")
    replication_factor: int = Field(default=1, ge=1, le=7)
    #: Overrides every topic's partition count (small local clusters); None keeps the
    #: catalogue's own counts, which size production.
    partitions: int | None = Field(default=None, ge=1, le=1024)
    request_timeout_s: float = Field(default=30.0, gt=0)
