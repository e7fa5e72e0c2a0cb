"""Register the repository's schemas in the Schema Registry and compare the two: the I/O.

The decisions are :mod:`schemas.subjects.plan`'s; this module reads each
subject's versions and compatibility level through confluent-kafka's registry
client and carries the plan out. Registry errors become
:class:`~schemas.errors.RegistryError` naming the subject.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

# confluent-kafka 2.16 talks HTTP through httpx2 (httpx before); see schemas.registry.
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError

from quoteflow.errors import ConfigError
from quoteflow.reporting import Reporter, silent
from quoteflow.settings import Settings
from schemas.catalog import SchemaCatalog, SchemaVersion, default_catalog
from schemas.errors import RegistryError
from schemas.serde import registry_client
from schemas.subjects.plan import COMPATIBILITY, Comparison, Registered, Subject, subjects

_HTTP_NOT_FOUND = 404
_HTTP_CONFLICT = 409


@dataclass(frozen=True)
class Registration:
    """What ``register`` did for one subject, and the subject afterwards."""

    after: Comparison
    registered: tuple[tuple[SchemaVersion, int], ...]  # (version, schema id) registered now
    compatibility_set: bool
    refused: bool  # the registry's latest is foreign: left alone

    @property
    def changed(self) -> bool:
        return bool(self.registered) or self.compatibility_set


class SubjectAdmin:
    """The catalogue's subjects in the configured registry."""

    def __init__(
        self,
        settings: Settings,
        *,
        catalog: SchemaCatalog | None = None,
        subject_list: Sequence[Subject] | None = None,
        client: SchemaRegistryClient | None = None,
    ) -> None:
        registry = settings.schema_registry
        if registry.url is None:
            raise ConfigError(
                "schema_registry.mode is embedded: there is no registry to register schemas"
                " with (set schema_registry.mode = \"registry\")"
            )
        self.url = registry.url
        self._client = client or registry_client(
            registry.url, basic_auth=registry.basic_auth(), timeout_s=registry.request_timeout_s
        )
        self._catalog = catalog or default_catalog()
        self._subjects = list(subject_list) if subject_list is not None else subjects()

    def close(self) -> None:
        """Close the registry client's connections."""
        self._client.close()

    def __enter__(self) -> SubjectAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def compare(self) -> list[Comparison]:
        """Every subject as the registry has it, against the repository."""
        return [self._compare(subject) for subject in self._subjects]

    def register(self, report: Reporter = silent) -> list[Registration]:
        """Register what is missing, oldest first, after setting each subject's level.

        The level is set first, so the registry checks each new version against
        every earlier one (BACKWARD_TRANSITIVE), not only against the latest.
        Idempotent: a second run changes nothing.
        """
        results = []
        for subject in self._subjects:
            before = self._compare(subject)
            if before.foreign:
                report(f"{subject.name}: left alone, {before.problems()[0]}")
                results.append(Registration(before, (), False, True))
                continue
            set_level = before.compatibility != COMPATIBILITY
            if set_level:
                with self._errors(subject, "setting its compatibility level"):
                    self._client.set_compatibility(subject.name, COMPATIBILITY)
                report(f"{subject.name}: compatibility {COMPATIBILITY}")
            registered = []
            for version in before.to_register():
                with self._errors(subject, f"registering {version.label}"):
                    schema_id = self._client.register_schema(
                        subject.name, Schema(version.registry_text, "AVRO")
                    )
                registered.append((version, schema_id))
                report(f"{subject.name}: registered {version.label} as schema id {schema_id}")
            after = self._compare(subject) if set_level or registered else before
            results.append(Registration(after, tuple(registered), set_level, False))
        return results

    # -- reading ----------------------------------------------------------------
    def _compare(self, subject: Subject) -> Comparison:
        return Comparison(
            subject,
            self._catalog.versions(subject.schema),
            tuple(self._registered(subject)),
            self._compatibility(subject),
        )

    def _registered(self, subject: Subject) -> Iterator[Registered]:
        versions: list[int] = []
        with self._errors(subject, "listing its versions", missing_ok=True):
            versions = self._client.get_versions(subject.name)
        for number in sorted(versions):
            with self._errors(subject, f"reading its version {number}"):
                found = self._client.get_version(subject.name, number)
            yield Registered(number, int(found.schema_id or 0), found.schema.schema_str or "")

    def _compatibility(self, subject: Subject) -> str | None:
        level: str | None = None
        with self._errors(subject, "reading its compatibility level", missing_ok=True):
            level = self._client.get_compatibility(subject.name)
        return level

    @contextmanager
    def _errors(self, subject: Subject, what: str, *, missing_ok: bool = False) -> Iterator[None]:
        """Translate the client's errors; with ``missing_ok`` a 404 is "nothing there"."""
        try:
            yield
        except SchemaRegistryError as exc:
            if missing_ok and exc.http_status_code == _HTTP_NOT_FOUND:
                return
            if exc.http_status_code == _HTTP_CONFLICT:
                raise RegistryError(
                    f"subject {subject.name!r}: {what} refused, incompatible with the versions"
                    f" the registry holds ({COMPATIBILITY}): {exc.error_message}"
                ) from exc
            raise RegistryError(
                f"subject {subject.name!r}: {what} failed: HTTP {exc.http_status_code},"
                f" error code {exc.error_code}: {exc.error_message}"
            ) from exc
        except httpx.TransportError as exc:
            raise RegistryError(
                f"cannot reach the schema registry at {self.url} ({type(exc).__name__}):"
                " is it running? (`quoteflow stack status`)"
            ) from exc


def delete_subjects(settings: Settings, prefix: str) -> list[str]:
    """Delete for good (soft, then permanent) every subject whose name starts with ``prefix``.

    For scratch subjects only: a test's or a benchmark's topics. Best effort per
    subject (one already gone is not an error); the names deleted are returned.
    """
    url = settings.schema_registry.url
    if url is None:
        return []
    client = registry_client(url)
    deleted = []
    try:
        for subject in client.get_subjects():
            if subject.startswith(prefix):
                for permanent in (False, True):
                    with suppress(SchemaRegistryError):
                        client.delete_subject(subject, permanent=permanent)
                deleted.append(subject)
    finally:
        client.close()
    return deleted
