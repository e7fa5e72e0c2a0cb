"""Errors of the ``connectors`` package, under quoteflow's one exception root."""

from __future__ import annotations

from quoteflow.errors import QuoteflowError


class CdcError(QuoteflowError):
    """The CDC source cannot start or must stop: the message says why and what to do."""


class SinkError(QuoteflowError):
    """The ESP sink cannot start or must stop: the message says why and what to do."""


class SinkConfigError(SinkError):
    """The ESP refused the sink's configuration (key, endpoint): the sink stopped sending.

    Exit code 2, as for any setting quoteflow cannot use: restarting without a fix
    only meets the same refusal."""

    exit_code = 2


class SandboxError(QuoteflowError):
    """The ESP sandbox cannot start, or its control API refused a request: the message says why."""
