"""The topic catalogue: every topic of the pipeline, declared once."""

from quoteflow.topics.catalog import (
    CATALOGUE,
    CHANGE_TOPICS,
    CUSTOMERS,
    DEAD_LETTER,
    DECISIONS,
    DELIVERIES,
    QUOTES,
    TRIGGERS,
    WATERMARKS,
    TopicSpec,
    by_name,
    prefixed,
)

__all__ = [
    "CATALOGUE",
    "CHANGE_TOPICS",
    "CUSTOMERS",
    "DEAD_LETTER",
    "DECISIONS",
    "DELIVERIES",
    "QUOTES",
    "TRIGGERS",
    "WATERMARKS",
    "TopicSpec",
    "by_name",
    "prefixed",
]
