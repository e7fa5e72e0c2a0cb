"""``[stack]``: the local development stack's home, versions, ports and sizes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from quoteflow.settings.base import Section
from quoteflow.settings.local_stack import (
    LOCAL_KAFKA_CONTROLLER_PORT,
    LOCAL_KAFKA_PORT,
    LOCAL_POSTGRES_PORT,
    LOCAL_REGISTRY_MANAGEMENT_PORT,
    LOCAL_REGISTRY_PORT,
    local_registry_url,
)


def _default_stack_home() -> Path:
    """Root runs the stack in /var/lib (PostgreSQL's user must reach it); others in XDG state."""
    if os.geteuid() == 0:
        return Path("/var/lib/quoteflow")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "quoteflow"


def _default_cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "quoteflow"


class StackSettings(Section):
    """The local stack: where it keeps data and logs, and the ports it listens on."""

    home: Path = Field(default_factory=_default_stack_home)
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    @field_validator("home", "cache_dir", mode="before")
    @classmethod
    def _absolute(cls, value: object) -> object:
        """Tools run with other working directories (initdb, the JVM): paths must be absolute."""
        if isinstance(value, str | Path):
            if not str(value).strip():
                raise ValueError("must not be empty")
            return Path(value).expanduser().resolve()
        return value

    kafka_version: str = Field(default="4.4.0", pattern=r"^\d+\.\d+\.\d+$")
    kafka_port: int = Field(default=LOCAL_KAFKA_PORT, ge=1024, le=65535)
    kafka_controller_port: int = Field(default=LOCAL_KAFKA_CONTROLLER_PORT, ge=1024, le=65535)
    kafka_heap_mb: int = Field(default=512, ge=128, le=512)
    postgres_port: int = Field(default=LOCAL_POSTGRES_PORT, ge=1024, le=65535)
    #: Apicurio Registry, pinned: its SQL storage upgrades the database schema on start,
    #: so every machine of a team must run the same version against the same database.
    registry_version: Literal["3.3.3"] = "3.3.3"
    registry_port: int = Field(default=LOCAL_REGISTRY_PORT, ge=1024, le=65535)
    #: Quarkus' management interface (health checks); bound to loopback like the API.
    registry_management_port: int = Field(default=LOCAL_REGISTRY_MANAGEMENT_PORT, ge=1024, le=65535)
    registry_heap_mb: int = Field(default=256, ge=128, le=1024)
    #: The database in the stack's PostgreSQL that holds the registry's schemas and ids.
    registry_database: str = Field(default="registry", pattern=r"^[a-z_][a-z0-9_]*$")
    #: A JDK or JRE for the registry (it needs Java 21+); unset: JAVA_HOME, PATH, /usr/lib/jvm.
    registry_java_home: Path | None = None
    start_timeout_s: float = Field(default=90.0, gt=0)

    @field_validator("registry_java_home", mode="before")
    @classmethod
    def _absolute_java_home(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # an empty env variable means "not set"
        if isinstance(value, str | Path):
            return Path(value).expanduser().resolve()
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackSettings:
        names = (
            "kafka_port",
            "kafka_controller_port",
            "postgres_port",
            "registry_port",
            "registry_management_port",
        )
        ports = [getattr(self, name) for name in names]
        if len(set(ports)) != len(ports):
            raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must all differ")
        return self

    @property
    def registry_url(self) -> str:
        """The local registry's Confluent-compatible API, as clients are configured with it."""
        return local_registry_url(self.registry_port)

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"
