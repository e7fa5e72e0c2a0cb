"""Debezium deployments: the source watermark for change topics the real Debezium writes.

``quoteflow cdc`` writes its own watermarks; where Debezium produces the change
topics instead, ``quoteflow watermarks`` (:mod:`.publisher`) keeps the same
promise from what Debezium and Kafka Connect already write (:mod:`.watermarks`).
The local Debezium harness the tests run is dev tooling (``devstack/debezium``).
"""
