"""Errors of the stream processor's tools, one line each on the command line."""

from __future__ import annotations

from quoteflow.errors import QuoteflowError, TopicError


class BenchError(QuoteflowError):
    """A benchmark could not run to the end (a worker died, or never caught up)."""


class TopicLayoutError(TopicError):
    """A topic the processor reads is missing or has a partition count it cannot work with."""
