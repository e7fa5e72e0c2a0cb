"""The topic catalogue: every topic of the pipeline, declared once."""

from quoteflow.topics.catalog import CATALOGUE, TopicSpec, by_name

__all__ = ["CATALOGUE", "TopicSpec", "by_name"]
