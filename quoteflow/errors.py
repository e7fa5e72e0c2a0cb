"""The one exception root of quoteflow.

Library errors (psycopg, confluent-kafka, fastavro, subprocess) are translated
into these where we call them, so the CLI can print one line that says what to
fix instead of a traceback, and callers can catch *our* errors without knowing
which library sits underneath.
"""

from __future__ import annotations


class QuoteflowError(Exception):
    """Root of every error quoteflow raises on purpose."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code: int = 1


class ConfigError(QuoteflowError):
    """A setting is missing or has a value we cannot use."""

    exit_code = 2


class StackError(QuoteflowError):
    """The local Kafka/PostgreSQL stack could not be installed, started or reached."""


class TopicError(QuoteflowError):
    """A topic could not be created or differs from the catalogue."""


class GroupError(QuoteflowError):
    """A consumer group could not be read or reset (``quoteflow groups``)."""


class GroupOptionError(GroupError):
    """A ``quoteflow groups reset`` option names an offset, partition or time we cannot use."""

    exit_code = 2
