"""Helpers to derive new schema versions from the shipped ones in tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog

#: Signature of the ``add_version`` fixture: (schema name, raw schema) -> new file.
AddVersion = Callable[[str, dict[str, Any]], Path]


def latest_raw(name: str) -> dict[str, Any]:
    """A deep copy of the latest shipped version of ``name``, safe to edit."""
    copied: dict[str, Any] = json.loads(json.dumps(default_catalog().latest(name).raw))
    return copied


def fields(raw: dict[str, Any], *path: str) -> list[dict[str, Any]]:
    """The field list of the record reached from ``raw`` through fields ``path``.

    Union-typed fields are entered through their record branch, so
    ``fields(envelope, "before")`` is the field list of the envelope's Value.
    """
    record = raw
    for name in path:
        field_type = field(record["fields"], name)["type"]
        if isinstance(field_type, list):
            field_type = next(b for b in field_type if isinstance(b, dict))
        record = field_type
    result: list[dict[str, Any]] = record["fields"]
    return result


def field(field_list: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The field called ``name``."""
    return next(f for f in field_list if f["name"] == name)
