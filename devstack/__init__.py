"""Development and demo tooling: the local stack, the ESP sandbox, the Debezium harness, the demo.

Never imported by the product (connectors, streams, schemas, the kernel): an
import contract in pyproject.toml enforces it.
"""
