"""Consumer groups of the pipeline's components: their lag, and resetting their offsets.

:mod:`.components` says which group each component consumes in and which topics
it reads (from the settings alone); :mod:`.plan` holds the decisions as pure
functions (lag, the reset plan, the refusal of a group with members);
:mod:`.admin` is the thin edge that asks Kafka's admin API and applies a plan.
"""
