"""``[schema_registry]``: Confluent wire format through a registry, or embedded schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from quoteflow.settings.base import Section


class SchemaRegistrySettings(Section):
    """How records are framed: Confluent wire format through a registry, or embedded.

    ``mode = "registry"`` (the default) writes what Debezium, Kafka Connect and
    every Kafka tool read; with no ``url`` it is the local stack's registry.
    ``mode = "embedded"`` is for deployments without a registry (Avro
    single-object encoding against the shipped schemas); it is chosen
    explicitly, never fallen back to, so a missing registry is an error rather
    than a silent change of wire format.
    """

    mode: Literal["registry", "embedded"] = "registry"
    #: Empty: the local stack's registry (filled in by Settings); always None when embedded.
    url: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretStr | None = None
    #: Off: a schema reaches the registry only through `quoteflow schemas register`
    #: (or CI), never as a side effect of a producer writing its first record.
    auto_register: bool = False
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check(self) -> SchemaRegistrySettings:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if (self.basic_auth_user is None) != (self.basic_auth_password is None):
            raise ValueError("basic_auth_user and basic_auth_password go together")
        if self.mode == "embedded" and (self.url is not None or self.basic_auth_user is not None):
            raise ValueError("url and basic auth are registry settings, but mode is embedded")
        return self

    def basic_auth(self) -> tuple[str, str] | None:
        if self.basic_auth_user is None or self.basic_auth_password is None:
            return None
        return (self.basic_auth_user, self.basic_auth_password.get_secret_value())
