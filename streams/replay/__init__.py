"""Replay and what-if: the pure core driven over a recorded range of the change topics.

The live worker forwards a few thousand events a second through faust; a month
of history needs a driver with nothing of faust in its path. This one reads
the change topics and the CDC's watermark records in confluent-kafka batches,
orders them in event time (:mod:`streams.replay.sequencer`), and steps the
same core the processor steps (:class:`streams.core.event_time.EventTimeRun`),
so a replay decides what the live pipeline decided.
"""
