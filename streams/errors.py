"""Errors of the stream processor, one line each on the command line."""

from __future__ import annotations

from quoteflow.errors import QuoteflowError, TopicError


class TopicLayoutError(TopicError):
    """A topic the processor reads is missing or has a partition count it cannot work with."""


class ReplayError(QuoteflowError):
    """A replay cannot start or go on: a bad range, missing topics, output already there."""

    exit_code = 2
