"""Fixtures for the schemas tests: catalogues, serdes and a writable catalogue copy."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import PACKAGE_AVRO_DIR, SchemaCatalog, default_catalog
from schemas.embedded import EmbeddedSerde

from .evolve import AddVersion


@pytest.fixture(scope="session")
def catalog() -> SchemaCatalog:
    """The shipped catalogue."""
    return default_catalog()


@pytest.fixture(scope="session")
def embedded(catalog: SchemaCatalog) -> EmbeddedSerde:
    """An embedded serde over the shipped catalogue."""
    return EmbeddedSerde(catalog)


@pytest.fixture
def registry_url() -> str:
    """A fresh in-memory registry per test (confluent-kafka's mock:// client)."""
    return f"mock://{uuid.uuid4().hex}"


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped ``avro/`` directory."""
    target = tmp_path / "avro"
    shutil.copytree(PACKAGE_AVRO_DIR, target)
    return target


@pytest.fixture
def add_version(catalog_dir: Path) -> AddVersion:
    """Add the next version of a schema to ``catalog_dir``; returns the new file."""

    def add(name: str, raw: dict[str, Any]) -> Path:
        directory = catalog_dir / name
        directory.mkdir(exist_ok=True)
        number = len(list(directory.glob("v*.avsc"))) + 1
        path = directory / f"v{number}.avsc"
        path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
        return path

    return add
