"""The local development stack's address: the defaults every client section falls back to.

quoteflow's clients (Kafka, PostgreSQL, the schema registry) default to the
stack that ``quoteflow stack up`` (or ``docker-compose.yml``) runs on this
machine, so a newcomer's ``make demo`` needs no configuration. These are plain
constants, in this one place: ``stack.*`` takes its port defaults from here, and
``postgres.host`` defaults to :data:`LOCAL_HOST`, and a client setting left unset
(``kafka.bootstrap_servers``, ``postgres.port``, ``schema_registry.url``) means
"the local stack at ``stack.*``'s ports" (``Settings._fill_from_stack``), so
moving a port of the stack moves its clients with it.
Production sets those sections and never reaches these values.
"""

from __future__ import annotations

#: The stack listens on loopback only.
LOCAL_HOST = "127.0.0.1"
#: Kafka's client listener (not 9092, so a broker of the machine's own can run beside it).
LOCAL_KAFKA_PORT = 19092
#: Kafka's KRaft controller listener.
LOCAL_KAFKA_CONTROLLER_PORT = 19093
#: PostgreSQL (not 5432, likewise).
LOCAL_POSTGRES_PORT = 55432
#: Apicurio Registry's API (not 8081, the usual registry port).
LOCAL_REGISTRY_PORT = 18081
#: Apicurio Registry's management interface (health checks).
LOCAL_REGISTRY_MANAGEMENT_PORT = 18082
#: Where a Confluent-compatible registry API lives on Apicurio Registry (the local stack's).
APICURIO_CCOMPAT_PATH = "/apis/ccompat/v7"


def local_kafka_bootstrap(port: int = LOCAL_KAFKA_PORT) -> str:
    """The local stack's Kafka bootstrap address (``127.0.0.1:19092`` by default)."""
    return f"{LOCAL_HOST}:{port}"


def local_registry_url(port: int = LOCAL_REGISTRY_PORT) -> str:
    """The local registry's Confluent-compatible API, as clients are configured with it."""
    return f"http://{LOCAL_HOST}:{port}{APICURIO_CCOMPAT_PATH}"
