"""``fingerprints.lock``: the fingerprint of every released schema version.

A released version is immutable: messages written with it sit in topics and
are found again by its fingerprint. Editing its file in place changes (or, for
doc-only edits, keeps) the fingerprint; deleting it makes its data
undecodable. The lock, reviewed in pull requests like code, turns both into a
failing check, and makes "add v2" an explicit step.

Format: JSON, schema names sorted, versions in numeric order,
``{"<name>": {"v1": "<16 hex digits>"}}``. The hex is the 64-bit fingerprint
written most significant digit first (``0x63dd24e7cc258f8a`` for ``"null"``),
i.e. the *reverse* of the byte order on the wire.

Limitation: the fingerprint covers the Parsing Canonical Form only, so an
in-place edit of docs, defaults or logical types (decimal precision/scale!)
does not change it and is not detected here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from schemas.catalog import SchemaCatalog
from schemas.errors import SchemaLockError

#: The lock shipped next to the catalogue.
PACKAGE_LOCK_PATH = Path(__file__).resolve().parent / "fingerprints.lock"

Lock = dict[str, dict[str, str]]

_VERSION_KEY = re.compile(r"v([1-9][0-9]*)")
_HEX = re.compile(r"[0-9a-f]{16}")


def build_lock(catalog: SchemaCatalog) -> Lock:
    """The lock describing ``catalog`` as it is now."""
    return {
        name: {f"v{v.version}": v.fingerprint_hex for v in catalog.versions(name)}
        for name in sorted(catalog.names())
    }


def render_lock(lock: Lock) -> str:
    """Deterministic text of ``lock``: names sorted, versions numeric (v2 before v10)."""
    ordered = {
        name: dict(sorted(lock[name].items(), key=lambda item: _version_number(item[0])))
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
    for name, versions in data.items():
        if not isinstance(versions, dict) or not all(
            isinstance(k, str)
            and _VERSION_KEY.fullmatch(k)
            and isinstance(v, str)
            and _HEX.fullmatch(v)
            for k, v in versions.items()
        ):
            raise SchemaLockError(
                f"{path}: entry {name!r} must map 'v<N>' to 16 lower-case hex digits"
            )
    return data


def write_lock(catalog: SchemaCatalog, path: Path = PACKAGE_LOCK_PATH) -> Lock:
    """Record ``catalog`` in ``path`` and return what was written."""
    lock = build_lock(catalog)
    path.write_text(render_lock(lock), encoding="utf-8")
    return lock


def lock_problems(catalog: SchemaCatalog, lock: Lock) -> list[str]:
    """Differences between the catalogue and the lock, one readable line each.

    Reports (a) released versions edited in place, (b) version files not in
    the lock yet, and (c) released versions whose file has disappeared.
    """
    problems: list[str] = []
    for version in catalog:
        released = lock.get(version.name, {}).get(f"v{version.version}")
        if released is None:
            problems.append(
                f"{version.label}: not in the lock; if it is ready to release, "
                "run python -m schemas.compat --update-lock"
            )
        elif released != version.fingerprint_hex:
            problems.append(
                f"{version.label}: edited in place (released fingerprint {released}, file now "
                f"{version.fingerprint_hex}); released versions are immutable: restore the file "
                f"and put the change in v{len(catalog.versions(version.name)) + 1}.avsc"
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


def _version_number(key: str) -> int:
    match = _VERSION_KEY.fullmatch(key)
    return int(match.group(1)) if match else 0
