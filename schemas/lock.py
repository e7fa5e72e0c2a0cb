"""``fingerprints.lock``: what every released schema version looked like.

A released version is immutable: messages written with it sit in topics and
are found again by its fingerprint, and read with the meaning its file gave
them. Editing its file in place changes how that data is read (or, for a
changed fingerprint, makes it undecodable); deleting it makes its data
undecodable. The lock, reviewed in pull requests like code, turns both into a
failing check, and makes "add v2" an explicit step.

Format: JSON, schema names sorted, versions in numeric order::

    {"<name>": {"v1": {"fingerprint": "<16 hex digits>", "sha256": "<64 hex digits>"}}}

``fingerprint`` is the 64-bit CRC-64-AVRO fingerprint written most significant
digit first (``0x63dd24e7cc258f8a`` for ``"null"``), i.e. the *reverse* of the
byte order on the wire. It covers the Parsing Canonical Form only, which leaves
out docs, defaults and logical types, so ``sha256`` (of the file's normalised
JSON, see :func:`schemas.catalog.content_sha256`) is recorded as well: together
they catch every in-place edit, including a decimal's precision or scale, while
re-indenting a file or reordering its keys changes neither.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.catalog import SchemaCatalog, SchemaVersion
from schemas.errors import SchemaLockError

#: The lock shipped next to the catalogue.
PACKAGE_LOCK_PATH = Path(__file__).resolve().parent / "fingerprints.lock"

_VERSION_KEY = re.compile(r"v([1-9][0-9]*)")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class LockEntry:
    """What one released version looked like: its fingerprint and content hash."""

    fingerprint: str
    sha256: str

    @classmethod
    def of(cls, version: SchemaVersion) -> LockEntry:
        """The entry describing ``version`` as it is now."""
        return cls(fingerprint=version.fingerprint_hex, sha256=version.sha256)

    def as_json(self) -> dict[str, str]:
        return {"fingerprint": self.fingerprint, "sha256": self.sha256}


#: Schema name -> ``"v<N>"`` -> entry.
Lock = dict[str, dict[str, LockEntry]]


def build_lock(catalog: SchemaCatalog) -> Lock:
    """The lock describing ``catalog`` as it is now."""
    return {
        name: {f"v{v.version}": LockEntry.of(v) for v in catalog.versions(name)}
        for name in sorted(catalog.names())
    }


def render_lock(lock: Lock) -> str:
    """Deterministic text of ``lock``: names sorted, versions numeric (v2 before v10)."""
    ordered = {
        name: {
            key: entry.as_json()
            for key, entry in sorted(lock[name].items(), key=lambda item: _version_number(item[0]))
        }
        for name in sorted(lock)
    }
    return json.dumps(ordered, indent=2) + "\n"


def read_lock(path: Path = PACKAGE_LOCK_PATH) -> Lock:
    """Load and shape-check a lock file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaLockError(
            f"{path} does not exist; create it with python -m schemas.compat --update-lock"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaLockError(f"{path}: cannot read the lock: {exc}") from exc
    if not isinstance(data, dict):
        raise SchemaLockError(f"{path}: expected a JSON object of schema names")
    lock: Lock = {}
    for name, versions in data.items():
        if not isinstance(versions, dict) or not all(
            isinstance(key, str) and _VERSION_KEY.fullmatch(key) for key in versions
        ):
            raise SchemaLockError(f"{path}: entry {name!r} must map 'v<N>' to version entries")
        lock[name] = {key: _parse_entry(path, name, key, raw) for key, raw in versions.items()}
    return lock


def write_lock(catalog: SchemaCatalog, path: Path = PACKAGE_LOCK_PATH) -> Lock:
    """Record ``catalog`` in ``path`` and return what was written."""
    lock = build_lock(catalog)
    path.write_text(render_lock(lock), encoding="utf-8")
    return lock


def lock_problems(catalog: SchemaCatalog, lock: Lock) -> list[str]:
    """Differences between the catalogue and the lock, one readable line each.

    Reports (a) released versions edited in place, whether the edit changed
    the fingerprint or only the content hash (docs, defaults, logical types),
    (b) version files not in the lock yet, and (c) released versions whose
    file has disappeared.
    """
    problems: list[str] = []
    for version in catalog:
        released = lock.get(version.name, {}).get(f"v{version.version}")
        if released is None:
            problems.append(
                f"{version.label}: not in the lock; if it is ready to release, "
                "run python -m schemas.compat --update-lock"
            )
            continue
        what = edit_description(released, LockEntry.of(version))
        if what is not None:
            problems.append(
                f"{version.label}: edited in place ({what}); released versions are immutable: "
                "restore the file and put the change in "
                f"v{len(catalog.versions(version.name)) + 1}.avsc"
            )
    present = {(v.name, f"v{v.version}") for v in catalog}
    for name in sorted(lock):
        for key in sorted(lock[name], key=_version_number):
            if (name, key) not in present:
                problems.append(
                    f"{name} {key}: released but its file is gone; data written with it can "
                    "no longer be decoded: restore it"
                )
    return problems


def edit_description(released: LockEntry, now: LockEntry) -> str | None:
    """How ``now`` differs from ``released`` in words; None when it does not."""
    if released.fingerprint != now.fingerprint:
        return f"released fingerprint {released.fingerprint}, file now {now.fingerprint}"
    if released.sha256 != now.sha256:
        return (
            f"same fingerprint {now.fingerprint} but the content changed (sha256 "
            f"{released.sha256[:12]}... -> {now.sha256[:12]}...): a doc, default, alias "
            "or logical type such as a decimal's scale was edited"
        )
    return None


def _parse_entry(path: Path, name: str, key: str, raw: Any) -> LockEntry:
    if (
        isinstance(raw, dict)
        and set(raw) == {"fingerprint", "sha256"}
        and isinstance(raw["fingerprint"], str)
        and _FINGERPRINT.fullmatch(raw["fingerprint"])
        and isinstance(raw["sha256"], str)
        and _SHA256.fullmatch(raw["sha256"])
    ):
        return LockEntry(fingerprint=raw["fingerprint"], sha256=raw["sha256"])
    hint = (
        " (the old format, a bare fingerprint; rewrite it with "
        "python -m schemas.compat --update-lock)"
        if isinstance(raw, str)
        else ""
    )
    raise SchemaLockError(
        f"{path}: {name} {key} must be {{\"fingerprint\": <16 lower-case hex digits>, "
        f"\"sha256\": <64 lower-case hex digits>}}{hint}"
    )


def _version_number(key: str) -> int:
    match = _VERSION_KEY.fullmatch(key)
    return int(match.group(1)) if match else 0
