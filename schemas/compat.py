"""BACKWARD compatibility of schema versions, and the ``python -m schemas.compat`` check.

BACKWARD, as Confluent defines it: the new version (reader) can read data
written with the previous one (writer). That is what lets consumers upgrade
first. The embedded serde reads a message written with *any* older version
with the latest one, so what it needs is BACKWARD_TRANSITIVE (each version
reads every older one), and that is what is checked by default; BACKWARD
alone (each version against its predecessor only) is a flag away.

The verdict comes from the Apache ``avro`` package's
``ReaderWriterCompatibilityChecker`` (a port of Java's SchemaCompatibility,
which Confluent's registry uses); this module only walks the schemas to say
*where* and *what* in words, because the checker's own report loses the pairing
between its messages and their locations and restarts locations inside unions.

The checker, like Java's, ignores logical types: changing a decimal's scale
between versions passes here although it changes the numbers read. Review
those by hand. (Editing a *released* file that way is caught by the lock,
whose content hash covers logical types.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    lookup_writer_field,
    schema_name_equals,
)

from schemas.catalog import PACKAGE_AVRO_DIR, SchemaCatalog
from schemas.errors import SchemaCatalogError, SchemaLockError, SerdeError
from schemas.lock import (
    PACKAGE_LOCK_PATH,
    Lock,
    edit_description,
    lock_problems,
    read_lock,
    write_lock,
)

_ROOT = "<root>"


def backward_incompatibilities(
    reader_raw: Mapping[str, Any], writer_raw: Mapping[str, Any]
) -> list[str]:
    """Why ``reader_raw`` cannot read data written with ``writer_raw``; empty if it can.

    Each entry reads ``<field path>: <what>``, e.g.
    ``after.segment_code: new field without a default; ...``.
    """
    reader = _parse(reader_raw, "reader")
    writer = _parse(writer_raw, "writer")
    return _explain(reader, writer, "")


def check_catalog(catalog: SchemaCatalog, *, transitive: bool = True) -> list[str]:
    """BACKWARD_TRANSITIVE problems of every schema in ``catalog``, one line each.

    Every version is checked against *all* older ones (Confluent's
    BACKWARD_TRANSITIVE), which is what reading any old message with the latest
    version needs. With ``transitive=False`` version N+1 is checked against
    version N only (plain BACKWARD): v3 may then drop a default that v1 data
    needed, and the check would not notice.
    """
    problems: list[str] = []
    for name in catalog.names():
        versions = catalog.versions(name)
        for index in range(1, len(versions)):
            reader = versions[index]
            writers = versions[:index] if transitive else versions[index - 1 : index]
            for writer in writers:
                problems.extend(
                    f"{name}: v{reader.version} cannot read data written with "
                    f"v{writer.version}: {problem}"
                    for problem in backward_incompatibilities(reader.raw, writer.raw)
                )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Check compatibility and the lock (exit 1 on problems), or rewrite the lock."""
    args = _parser().parse_args(argv)
    try:
        catalog = SchemaCatalog(args.schema_dir)
        problems = check_catalog(catalog, transitive=not args.non_transitive)
        if args.update_lock:
            return _update_lock(catalog, problems, args.lock)
        problems += lock_problems(catalog, read_lock(args.lock))
    except SerdeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    count = sum(1 for _ in catalog)
    mode = "BACKWARD" if args.non_transitive else "BACKWARD_TRANSITIVE"
    print(
        f"ok: {len(catalog.names())} schemas, {count} versions, {mode} compatible "
        f"and matching {args.lock}"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.compat",
        description="Check that every schema version can read the data of all older "
        "versions and that released versions match fingerprints.lock.",
    )
    parser.add_argument(
        "--update-lock",
        action="store_true",
        help="record the current fingerprints and content hashes in the lock (refused "
        "while versions are incompatible)",
    )
    parser.add_argument(
        "--non-transitive",
        action="store_true",
        help="check each version against the previous one only (BACKWARD), not against "
        "all older ones (BACKWARD_TRANSITIVE, the default, which the embedded serde needs)",
    )
    parser.add_argument("--schema-dir", type=Path, default=PACKAGE_AVRO_DIR)
    parser.add_argument("--lock", type=Path, default=PACKAGE_LOCK_PATH)
    return parser


def _update_lock(catalog: SchemaCatalog, problems: list[str], path: Path) -> int:
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"not updating {path}: fix the incompatibilities first", file=sys.stderr)
        return 1
    try:
        old: Lock = read_lock(path)
    except SchemaLockError as exc:
        print(f"note: {exc}; recording every version afresh", file=sys.stderr)
        old = {}
    new = write_lock(catalog, path)
    for line in _lock_changes(old, new):
        print(line)
    print(f"wrote {path}")
    return 0


def _lock_changes(old: Lock, new: Lock) -> list[str]:
    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, {}), new.get(name, {})
        for key in sorted(set(before) | set(after)):
            if key not in before:
                lines.append(f"added {name} {key} {after[key].fingerprint}")
            elif key not in after:
                lines.append(f"removed {name} {key} (was {before[key].fingerprint})")
            else:
                what = edit_description(before[key], after[key])
                if what is not None:
                    lines.append(
                        f"CHANGED {name} {key}: {what} (a released version was edited in place)"
                    )
    return lines


def _parse(raw: Mapping[str, Any], role: str) -> avro.schema.Schema:
    try:
        return avro.schema.parse(json.dumps(raw))
    except (avro.errors.AvroException, ValueError, TypeError) as exc:
        raise SchemaCatalogError(f"{role} schema is not valid Avro: {exc}") from exc


def _compatibility(
    reader: avro.schema.Schema, writer: avro.schema.Schema
) -> SchemaCompatibilityResult:
    # A fresh checker each time: it memoises pairs, and partial results of an
    # earlier walk must not leak into this one.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    return checker.get_compatibility(reader, writer)


def _explain(reader: avro.schema.Schema, writer: avro.schema.Schema, path: str) -> list[str]:
    result = _compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return _explain_parts(reader, writer, path) or _checker_messages(result, path)


def _explain_parts(reader: avro.schema.Schema, writer: avro.schema.Schema, path: str) -> list[str]:
    """Descend to the smallest incompatible parts; [] means "report at this level"."""
    if isinstance(writer, avro.schema.UnionSchema):
        if isinstance(reader, avro.schema.UnionSchema):
            return [p for branch in writer.schemas for p in _explain_branch(reader, branch, path)]
        return [p for branch in writer.schemas for p in _explain(reader, branch, path)]
    if isinstance(reader, avro.schema.UnionSchema):
        return _explain_branch(reader, writer, path)
    if isinstance(reader, avro.schema.RecordSchema) and isinstance(
        writer, avro.schema.RecordSchema
    ):
        return _explain_record(reader, writer, path)
    if isinstance(reader, avro.schema.EnumSchema) and isinstance(writer, avro.schema.EnumSchema):
        missing = [s for s in writer.symbols if s not in reader.symbols]
        if schema_name_equals(reader, writer) and missing:
            return [
                f"{path or _ROOT}: enum {reader.fullname} lost symbol(s) {', '.join(missing)} "
                "and has no default to read them as"
            ]
        return []
    if isinstance(reader, avro.schema.ArraySchema) and isinstance(writer, avro.schema.ArraySchema):
        return _explain(reader.items, writer.items, f"{path}[]")
    if isinstance(reader, avro.schema.MapSchema) and isinstance(writer, avro.schema.MapSchema):
        return _explain(reader.values, writer.values, f"{path}{{}}")
    if isinstance(reader, avro.schema.PrimitiveSchema) and isinstance(
        writer, avro.schema.PrimitiveSchema
    ):
        return [f"{path or _ROOT}: values written as {writer.type} cannot be read as {reader.type}"]
    return []


def _explain_record(
    reader: avro.schema.RecordSchema, writer: avro.schema.RecordSchema, path: str
) -> list[str]:
    if not schema_name_equals(reader, writer):
        return [
            f"{path or _ROOT}: record {writer.fullname} became {reader.fullname} "
            "without an alias for the old name"
        ]
    problems: list[str] = []
    for field in reader.fields:
        field_path = f"{path}.{field.name}" if path else field.name
        writer_field = lookup_writer_field(writer_schema=writer, reader_field=field)
        if writer_field is None:
            if not field.has_default:
                problems.append(
                    f"{field_path}: new field without a default; data written before it "
                    "existed has no value for it"
                )
        else:
            problems.extend(_explain(field.type, writer_field.type, field_path))
    return problems


def _explain_branch(
    reader: avro.schema.UnionSchema, branch: avro.schema.Schema, path: str
) -> list[str]:
    compatible = SchemaCompatibilityType.compatible
    if any(_compatibility(r, branch).compatibility is compatible for r in reader.schemas):
        return []
    for candidate in reader.schemas:
        if candidate.type == branch.type and (
            not isinstance(branch, avro.schema.NamedSchema)
            or getattr(candidate, "fullname", None) == branch.fullname
        ):
            return _explain(candidate, branch, path)
    label = branch.fullname if isinstance(branch, avro.schema.NamedSchema) else branch.type
    return [
        f"{path or _ROOT}: the union lost its {label} branch, so values written as "
        f"{label} cannot be read"
    ]


def _checker_messages(result: SchemaCompatibilityResult, path: str) -> list[str]:
    kinds = ", ".join(sorted({kind.value.replace("_", " ") for kind in result.incompatibilities}))
    details = "; ".join(sorted(result.messages))
    where = ", ".join(sorted(result.locations))
    return [f"{path or _ROOT}: {kinds}: {details} (checker location {where})"]


if __name__ == "__main__":
    raise SystemExit(main())
