"""The catalogue of versioned Avro schemas shipped in ``schemas/avro/``.

Layout: ``avro/<name>/v<N>.avsc``, versions numbered 1, 2, 3, ... without gaps;
the highest version is the one producers write. Older versions stay because
data written with them still sits in topics and must stay decodable: the
embedded serde finds a message's writer schema by fingerprint among *all*
versions, so a version file is never edited or deleted once released
(``schemas/fingerprints.lock`` and ``python -m schemas.compat`` enforce that).

Fingerprints are CRC-64-AVRO (Rabin) of the Parsing Canonical Form, as the Avro
spec defines them for single-object encoding. Note that the canonical form keeps
only what is needed to *parse* binary data (type, name, fields, symbols, items,
values, size): docs, defaults, aliases and logical types are stripped, so two
files differing only there share a fingerprint. :attr:`SchemaVersion.sha256`
covers everything in the file, and is what the lock uses to catch such edits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro.schema import (
    SchemaParseException,
    UnknownType,
    fingerprint,
    parse_schema,
    to_parsing_canonical_form,
)
from fastavro.types import Schema as AvroSchema

from schemas.compiled import Writer, compile_writer
from schemas.compiled_reader import Reader, compile_reader
from schemas.errors import SchemaCatalogError, SchemaNotFound
from schemas.native_writer import NativeWriter, compile_native_writer

#: The directory holding the shipped ``.avsc`` files.
PACKAGE_AVRO_DIR = Path(__file__).resolve().parent / "avro"

#: What a writer raises for a record it cannot write as is (the next writer decides).
_WRITE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_FILE_RE = re.compile(r"v([1-9][0-9]*)\.avsc")


def fingerprint64(canonical_form: str) -> int:
    """CRC-64-AVRO fingerprint of a Parsing Canonical Form, as an unsigned int.

    fastavro returns the fingerprint as hex of its 8 bytes in *little-endian*
    order (the order single-object encoding writes them), so the hex string
    must be read back little-endian to get the number the Avro spec and Java's
    ``SchemaNormalization.parsingFingerprint64`` talk about.
    """
    return int.from_bytes(bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO")), "little")


def content_sha256(raw: Any) -> str:
    """SHA-256 (hex) of a schema's JSON, normalised so formatting does not count.

    Normalised as ``json.dumps(raw, sort_keys=True, separators=(",", ":"))``:
    re-indenting a file or reordering its keys keeps the hash, while any change
    of content (a doc, a default, a decimal's scale) changes it.
    """
    normalised = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SchemaVersion:
    """One released version of one schema.

    ``raw`` is the JSON as written in the file and ``parsed`` fastavro's parsed
    form; both are shared, so treat them as read-only. Equality and hashing
    use name, version and fingerprint only.
    """

    name: str
    version: int
    raw: dict[str, Any] = field(compare=False, repr=False)
    parsed: AvroSchema = field(compare=False, repr=False)
    canonical: str = field(compare=False, repr=False)
    fingerprint: int
    #: (field, record full name) of each top-level ``["null", record]`` field: see with_branches.
    record_branches: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def label(self) -> str:
        """``name vN``, the way messages refer to a version."""
        return f"{self.name} v{self.version}"

    @property
    def full_name(self) -> str:
        """Avro full name of the top-level record, e.g. ``quoteflow.v1.DeadLetter``."""
        name = str(self.raw["name"])
        namespace = self.raw.get("namespace")
        return name if "." in name or not namespace else f"{namespace}.{name}"

    @property
    def fingerprint_bytes(self) -> bytes:
        """The 8 fingerprint bytes as single-object encoding writes them (little-endian)."""
        return self.fingerprint.to_bytes(8, "little")

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as a 16-digit hex number (most significant digit first)."""
        return f"{self.fingerprint:016x}"

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's normalised JSON (:func:`content_sha256`): all of it, docs too."""
        return content_sha256(self.raw)

    def with_branches(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """``record`` with each top-level ``["null", record]`` value naming its branch.

        fastavro's tuple notation ``(full name, value)``: without it, fastavro
        picks a union branch by validating the value against each record
        branch, which for a change event's ``before``/``after`` costs as much as
        writing them (measured: 1.6x faster envelope encoding). Same bytes.
        """
        if not self.record_branches:
            return record
        named = dict(record)
        for name, branch in self.record_branches:
            value = named.get(name)
            if isinstance(value, dict):
                named[name] = (branch, value)
        return named

    @functools.cached_property
    def writer(self) -> Writer | None:
        """This version's compiled writer (:mod:`schemas.compiled`), or None: use fastavro."""
        return compile_writer(self.parsed) if isinstance(self.parsed, dict) else None

    @functools.cached_property
    def reader(self) -> Reader | None:
        """This version's compiled reader (:mod:`schemas.compiled_reader`), for bodies
        written with this very version; None: use fastavro."""
        return compile_reader(self.parsed) if isinstance(self.parsed, dict) else None

    @functools.cached_property
    def native_writer(self) -> NativeWriter | None:
        """The compiled writer in C (:mod:`schemas.native_writer`), where it covers the schema."""
        if self.writer is None or not isinstance(self.parsed, dict):
            return None
        return compile_native_writer(self.parsed)

    def write_body(self, record: Mapping[str, Any]) -> bytes | None:
        """The Avro body of ``record`` from the compiled writer; None when it has none or
        the record is anything but plainly valid: fastavro then writes it, or explains
        exactly why it cannot, so errors read the same on either path. The C writer goes
        first where there is one; whatever it refuses, the compiled writer decides."""
        writer = self.writer
        if writer is None:
            return None
        native = self.native_writer
        if native is not None:
            try:
                return native(record)
            except _WRITE_ERRORS:
                pass
        try:
            return writer(record)
        except _WRITE_ERRORS:
            return None

    @property
    def registry_text(self) -> str:
        """The schema as sent to a Schema Registry, spelt the same way by everyone.

        A producer without auto-registration finds its schema id by looking the
        text up under the subject; `quoteflow schemas register` stores this same
        text, so the lookup never depends on how a registry normalises JSON.
        """
        return json.dumps(self.raw)


class SchemaCatalog:
    """Every version of every schema under one directory, loaded once.

    Loading validates the layout (names, contiguous versions, one record name
    per schema, no fingerprint shared between schemas) so that mistakes fail
    at start-up with the file named, not later on the first message.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._root = PACKAGE_AVRO_DIR if root is None else Path(root)
        self._versions = _load_directory(self._root)
        self._by_fingerprint = _index_fingerprints(self._versions)

    @property
    def root(self) -> Path:
        """The directory the catalogue was loaded from."""
        return self._root

    def names(self) -> tuple[str, ...]:
        """Schema names, sorted."""
        return tuple(self._versions)

    def versions(self, name: str) -> tuple[SchemaVersion, ...]:
        """All versions of ``name``, oldest first."""
        try:
            return self._versions[name]
        except KeyError:
            raise SchemaNotFound(
                f"unknown schema {name!r}; known schemas: {', '.join(self.names())}"
            ) from None

    def latest(self, name: str) -> SchemaVersion:
        """The current version of ``name``: the one producers write."""
        return self.versions(name)[-1]

    def get(self, name: str, version: int) -> SchemaVersion:
        """Version ``version`` of ``name``."""
        versions = self.versions(name)
        if not 1 <= version <= len(versions):
            raise SchemaNotFound(
                f"schema {name!r} has no version {version}; it has v1 to v{len(versions)}"
            )
        return versions[version - 1]

    def by_fingerprint(self, fp: int) -> SchemaVersion:
        """The version whose canonical form has CRC-64-AVRO fingerprint ``fp``.

        When several versions of one schema differ only in docs or defaults they
        share a fingerprint; the oldest is returned, which parses the same bytes.
        """
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise SchemaNotFound(
                f"no schema in the catalogue at {self._root} has fingerprint {fp:016x}"
            ) from None

    def __iter__(self) -> Iterator[SchemaVersion]:
        """Every version of every schema, by name then version."""
        for versions in self._versions.values():
            yield from versions

    def __repr__(self) -> str:
        return f"SchemaCatalog(root={str(self._root)!r}, names={list(self.names())!r})"


@functools.cache
def default_catalog() -> SchemaCatalog:
    """The shipped catalogue, loaded on first use and then shared.

    A function rather than a module constant so importing ``schemas`` does no I/O.
    """
    return SchemaCatalog()


def _load_directory(root: Path) -> dict[str, tuple[SchemaVersion, ...]]:
    if not root.is_dir():
        raise SchemaCatalogError(f"schema directory {root} does not exist")
    catalogue: dict[str, tuple[SchemaVersion, ...]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if not entry.is_dir() or not _NAME_RE.fullmatch(entry.name):
            raise SchemaCatalogError(
                f"{entry}: expected only directories named like 'abandonment_trigger' "
                "(lower case, digits, underscores) in the schema directory"
            )
        catalogue[entry.name] = _load_versions(entry)
    if not catalogue:
        raise SchemaCatalogError(f"schema directory {root} holds no schemas")
    return catalogue


def _load_versions(directory: Path) -> tuple[SchemaVersion, ...]:
    files: dict[int, Path] = {}
    for entry in directory.iterdir():
        if entry.name.startswith("."):
            continue
        match = _FILE_RE.fullmatch(entry.name)
        if match is None or not entry.is_file():
            raise SchemaCatalogError(
                f"{entry}: expected only files named v1.avsc, v2.avsc, ... in {directory}"
            )
        files[int(match.group(1))] = entry
    expected = list(range(1, len(files) + 1))
    if sorted(files) != expected:
        found = ", ".join(f"v{n}" for n in sorted(files)) or "none"
        raise SchemaCatalogError(
            f"{directory}: versions must be v1, v2, ... without gaps (found: {found}); "
            "a released version is never deleted because data written with it must stay readable"
        )
    versions = tuple(_load_file(directory.name, n, files[n]) for n in expected)
    full_names = {v.full_name for v in versions}
    if len(full_names) > 1:
        raise SchemaCatalogError(
            f"{directory}: all versions must define the same record, found {sorted(full_names)}; "
            "a renamed record cannot read data written under the old name"
        )
    return versions


def _load_file(name: str, version: int, path: Path) -> SchemaVersion:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaCatalogError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SchemaCatalogError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    if not isinstance(raw, dict) or raw.get("type") != "record" or "name" not in raw:
        raise SchemaCatalogError(f"{path}: the top level must be a named Avro record")
    try:
        parsed = parse_schema(raw)
        canonical = to_parsing_canonical_form(raw)
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
        raise SchemaCatalogError(f"{path}: not a valid Avro schema: {exc}") from exc
    return SchemaVersion(
        name=name,
        version=version,
        raw=raw,
        parsed=parsed,
        canonical=canonical,
        fingerprint=fingerprint64(canonical),
        record_branches=_record_branches(raw),
    )


def _record_branches(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Top-level fields typed ``["null", record]``, with the record's full name."""
    namespace = str(raw.get("namespace") or "")

    def full(name: str, space: str) -> str:
        return name if "." in name or not space else f"{space}.{name}"

    branches = []
    for spec in raw.get("fields", []):
        kind = spec.get("type")
        if not (isinstance(kind, list) and len(kind) == 2 and "null" in kind):
            continue
        other = kind[1] if kind[0] == "null" else kind[0]
        if isinstance(other, dict) and other.get("type") == "record":
            branches.append((spec["name"], full(other["name"], other.get("namespace", namespace))))
        elif isinstance(other, str) and other not in PRIMITIVES:
            branches.append((spec["name"], full(other, namespace)))
    return tuple(branches)


#: Avro's primitive type names: a union branch named otherwise refers to a named type.
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _index_fingerprints(
    catalogue: dict[str, tuple[SchemaVersion, ...]],
) -> dict[int, SchemaVersion]:
    index: dict[int, SchemaVersion] = {}
    for versions in catalogue.values():
        for version in versions:
            seen = index.setdefault(version.fingerprint, version)
            if seen.name != version.name:
                raise SchemaCatalogError(
                    f"{seen.label} and {version.label} have the same canonical form "
                    f"(fingerprint {version.fingerprint:016x}), so a reader could not tell "
                    "their data apart; give each record its own name or namespace"
                )
    return index
