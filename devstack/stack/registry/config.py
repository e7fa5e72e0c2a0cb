"""The registry's configuration, as a pure function of the settings.

Apicurio Registry is a Quarkus application: it reads ``application.properties``
from the file named by ``-Dquarkus.config.locations`` and any property from an
environment variable (``apicurio.datasource.password`` from
``APICURIO_DATASOURCE_PASSWORD``). The file holds everything but the password,
which goes in the environment so it is in no file and on no command line.

What we change from Apicurio's defaults, and why:

* both listeners on 127.0.0.1 — Quarkus opens its management interface
  (health, metrics) on every interface unless told otherwise;
* SQL storage in the stack's PostgreSQL instead of an in-memory H2 database,
  so schema ids survive a restart (every record in Kafka names one);
* a connection pool of 2 to 10 instead of 20 to 100, on a cluster that also serves
  the CDC sources;
* the global compatibility rule BACKWARD (Apicurio's default is none), so a
  subject without its own level still refuses a change that breaks consumers.
"""

from __future__ import annotations

from devstack.stack.java import render_properties as render
from quoteflow.settings import Settings

__all__ = ["jdbc_url", "registry_properties", "render", "storage_properties"]

#: Java version Apicurio Registry 3.3 runs on (3.0 ran on 17).
MIN_JAVA = 21
#: Environment variable that carries the database password to the registry.
PASSWORD_ENV = "APICURIO_DATASOURCE_PASSWORD"  # noqa: S105 - a variable name, not a secret
#: Global default for subjects without their own level (Confluent's default too).
GLOBAL_COMPATIBILITY = "BACKWARD"


def jdbc_url(settings: Settings) -> str:
    stack = settings.stack
    return (
        f"jdbc:postgresql://127.0.0.1:{stack.postgres_port}/{stack.registry_database}"
        "?ApplicationName=apicurio-registry"
    )


def storage_properties(settings: Settings) -> dict[str, str]:
    """What makes the registry durable and well-behaved, wherever it runs (also compose)."""
    return {
        "apicurio.storage.kind": "sql",
        "apicurio.storage.sql.kind": "postgresql",
        "apicurio.datasource.username": settings.postgres.user,
        "apicurio.datasource.jdbc.initial-size": "2",
        "apicurio.datasource.jdbc.min-size": "2",
        "apicurio.datasource.jdbc.max-size": "10",
        "apicurio.rules.global.compatibility": GLOBAL_COMPATIBILITY,
    }


def registry_properties(settings: Settings) -> dict[str, str]:
    """application.properties of the local registry (no secrets)."""
    stack = settings.stack
    return {
        "quarkus.http.host": "127.0.0.1",
        "quarkus.http.port": str(stack.registry_port),
        "quarkus.management.host": "127.0.0.1",
        "quarkus.management.port": str(stack.registry_management_port),
        "apicurio.datasource.url": jdbc_url(settings),
        **storage_properties(settings),
        # Apicurio's own pattern prints dates as "2026-11+00-23".
        "quarkus.log.console.format": "%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n",
    }
