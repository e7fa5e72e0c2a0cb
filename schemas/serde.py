"""The serde contract, and the factory that picks an implementation from settings.

Two implementations, one contract, so connectors and the processor never know
which is in use:

* :class:`schemas.registry.RegistrySerde`: Confluent wire format through a
  Schema Registry, what Debezium, Kafka Connect and Kafka tools read. The
  default, against the local stack's registry.
* :class:`schemas.embedded.EmbeddedSerde`: Avro single-object encoding against
  the shipped catalogue, for deployments without a registry (chosen explicitly).

``schemas.registry`` is imported only when a registry is configured: importing
confluent-kafka's registry client costs about 0.3 s, which CLI commands and
unit tests that never use it should not pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from schemas.catalog import SchemaCatalog, default_catalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import RegistryConfigError
from schemas.framing import Format, detect_format
from schemas.writer_schema import WriterSchema

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from quoteflow.settings import SchemaRegistrySettings
    from schemas.registry import RegistrySerde

__all__ = [
    "Format",
    "Serde",
    "WriterSchema",
    "detect_format",
    "make_serde",
    "serde_from_settings",
]


class Serde(Protocol):
    """Turns records into Kafka message bytes and back, by schema name.

    ``topic`` and ``is_key`` say where the bytes go or came from: the registry
    implementation derives its subject from them (``<topic>-key`` /
    ``<topic>-value``), and both use them in error messages. Failures raise
    :class:`schemas.errors.SerdeError` subclasses, never library exceptions.
    """

    def encode(
        self, schema_name: str, record: Mapping[str, Any], *, topic: str, is_key: bool = False
    ) -> bytes:
        """Encode ``record`` with the current version of ``schema_name``."""
        ...

    def decode(
        self, schema_name: str, data: bytes, *, topic: str, is_key: bool = False
    ) -> dict[str, Any]:
        """Decode ``data`` into the current version of ``schema_name``."""
        ...

    def writer_of(
        self, schema_name: str, data: bytes, *, topic: str, is_key: bool = False
    ) -> WriterSchema:
        """The schema ``data`` was written with and where its Avro body starts.

        Reads the frame only, so a caller can walk the body itself
        (:mod:`schemas.peek`); raises what :meth:`decode` raises for the frame.
        """
        ...

    @property
    def catalog(self) -> SchemaCatalog:
        """The catalogue whose latest versions records are decoded into."""
        ...

    def close(self) -> None:
        """Release connections (the registry client's); the serde is unusable afterwards."""
        ...


def make_serde(
    registry_url: str | None,
    *,
    basic_auth: tuple[str, str] | None = None,
    auto_register: bool = True,
    catalog: SchemaCatalog | None = None,
    timeout_s: float = 10.0,
) -> Serde:
    """A :class:`RegistrySerde` when a registry URL is given, else an :class:`EmbeddedSerde`.

    ``registry_url`` may list several URLs separated by commas (the client fails
    over); ``mock://<name>`` gives confluent-kafka's in-memory registry, for tests.
    Credentials go in ``basic_auth``, never in the URL, so the URL can be logged.
    ``timeout_s`` bounds every registry request: confluent-kafka's default is
    no timeout, so a registry that stops answering would hang every encode.
    """
    catalog = default_catalog() if catalog is None else catalog
    if registry_url is None:
        if basic_auth is not None:
            raise RegistryConfigError("schema registry basic auth is set but no registry URL is")
        return EmbeddedSerde(catalog)
    return _registry_serde(registry_url, basic_auth, auto_register, catalog, timeout_s)


def _registry_serde(
    registry_url: str,
    basic_auth: tuple[str, str] | None,
    auto_register: bool,
    catalog: SchemaCatalog,
    timeout_s: float,
) -> RegistrySerde:
    from schemas.registry import RegistrySerde

    client = registry_client(registry_url, basic_auth=basic_auth, timeout_s=timeout_s)
    return RegistrySerde(client, catalog, auto_register=auto_register)


def registry_client(
    registry_url: str, *, basic_auth: tuple[str, str] | None = None, timeout_s: float = 10.0
) -> SchemaRegistryClient:
    """confluent-kafka's registry client, with settings checked and a request timeout."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    _check_registry_url(registry_url)
    conf: dict[str, Any] = {"url": registry_url, "timeout": timeout_s}
    if basic_auth is not None:
        user, password = basic_auth
        if not user or ":" in user:
            raise RegistryConfigError(
                "schema registry basic auth user must be non-empty and contain no ':'"
            )
        conf["basic.auth.user.info"] = f"{user}:{password}"
    try:
        return SchemaRegistryClient.new_client(conf)
    except (ValueError, TypeError) as exc:
        raise RegistryConfigError(
            f"schema registry client rejected its settings for {registry_url}: {exc}"
        ) from exc


def _check_registry_url(registry_url: str) -> None:
    """Validate before the client does, so its messages never echo credentials."""
    for url in (u.strip() for u in registry_url.split(",")):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "mock") or not parts.netloc:
            # Not echoing the URL: a malformed one may hold a password anywhere.
            raise RegistryConfigError(
                "schema registry URL must look like http(s)://host:port or mock://name "
                "(several separated by commas)"
            )
        if parts.username is not None or parts.password is not None:
            raise RegistryConfigError(
                f"schema registry URL for host {parts.hostname} carries credentials; "
                "pass them as basic auth instead so the URL can be logged"
            )


def serde_from_settings(
    registry: SchemaRegistrySettings, *, catalog: SchemaCatalog | None = None
) -> Serde:
    """The serde every quoteflow process uses: the one ``schema_registry`` settings choose."""
    return make_serde(
        registry.url,
        basic_auth=registry.basic_auth(),
        auto_register=registry.auto_register,
        catalog=catalog,
        timeout_s=registry.request_timeout_s,
    )
