"""The real Debezium PostgreSQL connector, configured to produce quoteflow's change topics.

``qms.properties`` / ``crm.properties`` and ``worker.properties`` are the Kafka
Connect configuration; :mod:`devstack.debezium.connect` resolves the jars
from Maven Central and runs Connect standalone with them (the interop test).
"""
