"""Edges of the pipeline: CDC sources (PostgreSQL logical decoding -> Kafka) and the ESP sink."""
