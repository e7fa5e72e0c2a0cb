"""The base of every settings section: unknown keys rejected, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A section of :class:`~quoteflow.settings.Settings` (a TOML table, an env prefix).

    ``extra="forbid"``: a typo in a key fails at start instead of being ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
