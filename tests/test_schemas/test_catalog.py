"""The catalogue: loading, lookups, fingerprints and layout rules."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas.catalog import (
    SchemaCatalog,
    SchemaVersion,
    content_sha256,
    default_catalog,
    fingerprint64,
)
from schemas.errors import SchemaCatalogError, SchemaNotFound, SerdeError

from .evolve import AddVersion, latest_raw

pytestmark = pytest.mark.unit

EXPECTED_NAMES = (
    "abandonment_decision",
    "abandonment_trigger",
    "cdc_watermark",
    "crm_customer_envelope",
    "crm_customer_key",
    "dead_letter",
    "esp_delivery_receipt",
    "qms_quote_envelope",
    "qms_quote_key",
)

# From Apache Avro's share/test/data/schema-tests.txt: (schema, fingerprint as a
# signed Java long). The first is the vector the Avro spec's text relies on.
AVRO_VECTORS = [
    ('"null"', 7195948357588979594),
    ('{"type":"null"}', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('"string"', -8142146995180207161),
    ('{"type":"fixed","name":"foo","size":15}', 1756455273707447556),
    (
        '{"type":"record","name":"foo","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    (
        '{"name":"PigValue","type":"record",'
        '"fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]

_RABIN_EMPTY = 0xC15D213AA4D7A795


def _rabin_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_RABIN_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_RABIN_TABLE = _rabin_table()


def reference_fingerprint64(data: bytes) -> int:
    """CRC-64-AVRO transcribed from the Avro spec's Java sample, independent of fastavro."""
    fp = _RABIN_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _RABIN_TABLE[(fp ^ byte) & 0xFF]
    return fp


def test_null_vector_matches_the_avro_spec() -> None:
    fp = fingerprint64(to_parsing_canonical_form("null"))
    assert fp == 0x63DD24E7CC258F8A == 7195948357588979594
    # Single-object encoding writes it little-endian: least significant byte first.
    assert fp.to_bytes(8, "little") == bytes.fromhex("8a8f25cce724dd63")


@pytest.mark.parametrize(("schema", "signed"), AVRO_VECTORS)
def test_fingerprint_matches_apache_avro_vectors(schema: str, signed: int) -> None:
    canonical = to_parsing_canonical_form(json.loads(schema))
    expected = signed % 2**64
    assert fingerprint64(canonical) == expected
    assert reference_fingerprint64(canonical.encode()) == expected


def test_names_are_the_shipped_schemas(catalog: SchemaCatalog) -> None:
    assert catalog.names() == EXPECTED_NAMES


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_every_version_is_consistent(catalog: SchemaCatalog, name: str) -> None:
    versions = catalog.versions(name)
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert catalog.latest(name) is versions[-1]
    for version in versions:
        assert version.name == name
        assert version.canonical == to_parsing_canonical_form(version.raw)
        assert version.fingerprint == reference_fingerprint64(version.canonical.encode())
        assert version.fingerprint_bytes == version.fingerprint.to_bytes(8, "little")
        assert int(version.fingerprint_hex, 16) == version.fingerprint
        assert catalog.by_fingerprint(version.fingerprint).name == name
        assert catalog.get(name, version.version) is version
        normalised = json.dumps(version.raw, sort_keys=True, separators=(",", ":"))
        assert version.sha256 == hashlib.sha256(normalised.encode()).hexdigest()


def test_content_hash_ignores_formatting_but_not_content() -> None:
    raw = latest_raw("qms_quote_key")
    reordered = json.loads(json.dumps(dict(reversed(list(raw.items()))), indent=5))
    assert content_sha256(reordered) == content_sha256(raw)
    raw["fields"][0]["doc"] = "reworded"
    assert content_sha256(raw) != content_sha256(reordered)


def test_canonical_form_keeps_only_what_parsing_needs(catalog: SchemaCatalog) -> None:
    canonical = catalog.latest("abandonment_trigger").canonical
    assert '"doc"' not in canonical
    assert "logicalType" not in canonical
    assert "default" not in canonical
    assert '"name":"quoteflow.v1.AbandonmentTrigger"' in canonical


def test_full_names(catalog: SchemaCatalog) -> None:
    assert catalog.latest("qms_quote_envelope").full_name == "qms.public.quotes.Envelope"
    assert catalog.latest("crm_customer_key").full_name == "crm.public.customers.Key"
    assert catalog.latest("dead_letter").full_name == "quoteflow.v1.DeadLetter"


def test_debezium_source_block_is_identical_in_both_envelopes(catalog: SchemaCatalog) -> None:
    def source_of(name: str) -> object:
        return next(f for f in catalog.latest(name).raw["fields"] if f["name"] == "source")

    assert source_of("qms_quote_envelope") == source_of("crm_customer_envelope")


def test_unknown_name_names_the_known_ones(catalog: SchemaCatalog) -> None:
    with pytest.raises(SchemaNotFound) as info:
        catalog.latest("abandonment_triger")
    message = str(info.value)
    assert "'abandonment_triger'" in message
    assert "abandonment_trigger" in message
    assert "dead_letter" in message
    assert isinstance(info.value, SerdeError)


def test_unknown_version_and_fingerprint(catalog: SchemaCatalog) -> None:
    with pytest.raises(SchemaNotFound, match="no version 99"):
        catalog.get("dead_letter", 99)
    with pytest.raises(SchemaNotFound, match="0000000000000001"):
        catalog.by_fingerprint(1)


def test_schema_versions_are_hashable_values(catalog: SchemaCatalog) -> None:
    version = catalog.latest("dead_letter")
    same = SchemaVersion(
        name=version.name,
        version=version.version,
        raw={},
        parsed={},
        canonical="",
        fingerprint=version.fingerprint,
    )
    assert version == same
    assert len({version, same}) == 1
    assert version.label == "dead_letter v1"


def test_default_catalog_is_loaded_once() -> None:
    assert default_catalog() is default_catalog()


def test_importing_schemas_loads_nothing_heavy() -> None:
    code = (
        "import sys, schemas; "
        "print(sorted(m for m in ('confluent_kafka.schema_registry', 'avro', 'httpx') "
        "if m in sys.modules)); "
        "print(schemas.default_catalog.cache_info().currsize)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    assert out == ["[]", "0"]


def test_a_new_version_becomes_latest(catalog_dir: Path, add_version: AddVersion) -> None:
    raw = latest_raw("dead_letter")
    raw["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    add_version("dead_letter", raw)
    loaded = SchemaCatalog(catalog_dir)
    assert loaded.latest("dead_letter").version == 2
    assert loaded.by_fingerprint(loaded.get("dead_letter", 1).fingerprint).version == 1


def test_doc_only_versions_share_a_fingerprint(catalog_dir: Path, add_version: AddVersion) -> None:
    raw = latest_raw("dead_letter")
    raw["doc"] = "reworded"
    add_version("dead_letter", raw)
    loaded = SchemaCatalog(catalog_dir)
    v1, v2 = loaded.versions("dead_letter")
    assert v1.fingerprint == v2.fingerprint
    assert loaded.by_fingerprint(v2.fingerprint) is v1


class TestLayoutErrors:
    """Broken catalogue directories fail at load time, naming the file."""

    def test_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaCatalogError, match="does not exist"):
            SchemaCatalog(tmp_path / "nope")

    def test_empty_directory(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaCatalogError, match="holds no schemas"):
            SchemaCatalog(tmp_path)

    def test_invalid_json(self, catalog_dir: Path) -> None:
        path = catalog_dir / "dead_letter" / "v2.avsc"
        path.write_text('{"type": "record",\n "name": }', encoding="utf-8")
        with pytest.raises(SchemaCatalogError, match=r"v2\.avsc: not valid JSON \(line 2"):
            SchemaCatalog(catalog_dir)

    def test_invalid_avro(self, add_version: AddVersion, catalog_dir: Path) -> None:
        raw = latest_raw("dead_letter")
        raw["fields"].append({"name": "x", "type": "no.such.Type"})
        add_version("dead_letter", raw)
        with pytest.raises(SchemaCatalogError, match=r"dead_letter/v2\.avsc: not a valid Avro"):
            SchemaCatalog(catalog_dir)

    def test_top_level_must_be_a_record(self, catalog_dir: Path) -> None:
        (catalog_dir / "dead_letter" / "v2.avsc").write_text('"string"', encoding="utf-8")
        with pytest.raises(SchemaCatalogError, match="named Avro record"):
            SchemaCatalog(catalog_dir)

    def test_gap_in_versions(self, catalog_dir: Path) -> None:
        v1_text = (catalog_dir / "dead_letter" / "v1.avsc").read_text(encoding="utf-8")
        (catalog_dir / "dead_letter" / "v3.avsc").write_text(v1_text, encoding="utf-8")
        with pytest.raises(SchemaCatalogError, match=r"without gaps \(found: v1, v3\)"):
            SchemaCatalog(catalog_dir)

    def test_stray_file(self, catalog_dir: Path) -> None:
        (catalog_dir / "dead_letter" / "v2.avsc.bak").write_text("{}", encoding="utf-8")
        with pytest.raises(SchemaCatalogError, match=r"v2\.avsc\.bak"):
            SchemaCatalog(catalog_dir)

    def test_bad_schema_directory_name(self, catalog_dir: Path) -> None:
        (catalog_dir / "Dead-Letter").mkdir()
        with pytest.raises(SchemaCatalogError, match="Dead-Letter"):
            SchemaCatalog(catalog_dir)

    def test_renamed_record(self, add_version: AddVersion, catalog_dir: Path) -> None:
        raw = latest_raw("dead_letter")
        raw["name"] = "DeadMessage"
        add_version("dead_letter", raw)
        with pytest.raises(SchemaCatalogError, match="same record"):
            SchemaCatalog(catalog_dir)

    def test_two_schemas_with_one_canonical_form(
        self, add_version: AddVersion, catalog_dir: Path
    ) -> None:
        add_version("dead_letter_copy", latest_raw("dead_letter"))
        with pytest.raises(SchemaCatalogError, match="same canonical form"):
            SchemaCatalog(catalog_dir)
