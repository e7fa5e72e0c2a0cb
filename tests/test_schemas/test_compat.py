"""BACKWARD compatibility checks and the fingerprint lock.

These are the tests that fail when a schema change breaks BACKWARD
compatibility or a released version is edited in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import SchemaCatalog
from schemas.compat import backward_incompatibilities, check_catalog, main
from schemas.errors import SchemaCatalogError, SchemaLockError
from schemas.lock import (
    PACKAGE_LOCK_PATH,
    LockEntry,
    build_lock,
    lock_problems,
    read_lock,
    render_lock,
    write_lock,
)

from .evolve import AddVersion, field, fields, latest_raw

pytestmark = pytest.mark.unit


def test_shipped_catalogue_is_backward_compatible(catalog: SchemaCatalog) -> None:
    assert check_catalog(catalog) == []
    assert check_catalog(catalog, transitive=False) == []


def test_shipped_lock_matches_the_catalogue(catalog: SchemaCatalog) -> None:
    assert lock_problems(catalog, read_lock()) == []
    # ... and is exactly what --update-lock would write, so it never churns.
    assert PACKAGE_LOCK_PATH.read_text(encoding="utf-8") == render_lock(build_lock(catalog))


class TestBackwardIncompatibilities:
    """backward_incompatibilities(reader, writer) on single changes."""

    def test_identical_schemas(self) -> None:
        raw = latest_raw("qms_quote_envelope")
        assert backward_incompatibilities(raw, raw) == []

    def test_new_field_with_default_is_compatible(self) -> None:
        writer = latest_raw("abandonment_trigger")
        reader = latest_raw("abandonment_trigger")
        reader["fields"].append({"name": "locale", "type": "string", "default": "en-GB"})
        assert backward_incompatibilities(reader, writer) == []

    def test_new_field_without_default(self) -> None:
        writer = latest_raw("abandonment_trigger")
        reader = latest_raw("abandonment_trigger")
        reader["fields"].append({"name": "locale", "type": "string"})
        assert backward_incompatibilities(reader, writer) == [
            "locale: new field without a default; data written before it existed has no "
            "value for it"
        ]

    def test_new_column_without_default_inside_the_envelope(self) -> None:
        writer = latest_raw("qms_quote_envelope")
        reader = latest_raw("qms_quote_envelope")
        fields(reader, "before").append({"name": "broker_id", "type": "long"})
        problems = backward_incompatibilities(reader, writer)
        assert [p.split(":")[0] for p in problems] == ["before.broker_id", "after.broker_id"]

    def test_long_narrowed_to_int(self) -> None:
        writer = latest_raw("qms_quote_envelope")
        reader = latest_raw("qms_quote_envelope")
        field(fields(reader, "before"), "customer_id")["type"] = "int"
        assert backward_incompatibilities(reader, writer) == [
            "before.customer_id: values written as long cannot be read as int",
            "after.customer_id: values written as long cannot be read as int",
        ]

    def test_int_widened_to_long_is_compatible(self) -> None:
        writer = latest_raw("esp_delivery_receipt")
        reader = latest_raw("esp_delivery_receipt")
        field(reader["fields"], "attempts")["type"] = "long"
        assert backward_incompatibilities(reader, writer) == []

    def test_enum_symbol_removed_without_default(self) -> None:
        writer = latest_raw("abandonment_decision")
        reader = latest_raw("abandonment_decision")
        outcome = field(reader["fields"], "outcome")["type"]
        outcome["symbols"].remove("CONVERTED")
        del outcome["default"]
        outcome["symbols"].remove("UNKNOWN")
        assert backward_incompatibilities(reader, writer) == [
            "outcome: enum quoteflow.v1.DecisionOutcome lost symbol(s) CONVERTED, UNKNOWN "
            "and has no default to read them as"
        ]

    def test_enum_symbol_removed_with_default_is_compatible(self) -> None:
        writer = latest_raw("abandonment_decision")
        reader = latest_raw("abandonment_decision")
        field(reader["fields"], "outcome")["type"]["symbols"].remove("CONVERTED")
        assert backward_incompatibilities(reader, writer) == []

    def test_optional_field_made_required(self) -> None:
        writer = latest_raw("esp_delivery_receipt")
        reader = latest_raw("esp_delivery_receipt")
        error = field(reader["fields"], "error")
        error["type"], error["default"] = "string", ""
        assert backward_incompatibilities(reader, writer) == [
            "error: values written as null cannot be read as string"
        ]

    def test_nested_record_field_type_change(self) -> None:
        writer = latest_raw("abandonment_trigger")
        reader = latest_raw("abandonment_trigger")
        field(fields(reader, "offer"), "discount_pct")["type"] = ["null", "string"]
        assert backward_incompatibilities(reader, writer) == [
            "offer.discount_pct: the union lost its double branch, so values written as "
            "double cannot be read"
        ]

    def test_array_item_change(self) -> None:
        writer = latest_raw("dead_letter")
        reader = latest_raw("dead_letter")
        header = field(reader["fields"], "headers")["type"]["items"]
        field(header["fields"], "key")["type"] = "int"
        assert backward_incompatibilities(reader, writer) == [
            "headers[].key: values written as string cannot be read as int"
        ]

    def test_renamed_record(self) -> None:
        writer = latest_raw("dead_letter")
        reader = latest_raw("dead_letter")
        reader["name"] = "DeadMessage"
        assert backward_incompatibilities(reader, writer) == [
            "<root>: record quoteflow.v1.DeadLetter became quoteflow.v1.DeadMessage without "
            "an alias for the old name"
        ]
        reader["aliases"] = ["quoteflow.v1.DeadLetter"]
        assert backward_incompatibilities(reader, writer) == []

    def test_removed_field_is_compatible(self) -> None:
        writer = latest_raw("crm_customer_envelope")
        reader = latest_raw("crm_customer_envelope")
        value_fields = fields(reader, "before")
        value_fields.remove(field(value_fields, "phone"))
        assert backward_incompatibilities(reader, writer) == []

    def test_invalid_schema(self) -> None:
        with pytest.raises(SchemaCatalogError, match="reader schema is not valid Avro"):
            backward_incompatibilities({"type": "record"}, latest_raw("dead_letter"))


class TestCheckCatalog:
    """check_catalog on catalogues with a new version added."""

    def test_compatible_v2(self, catalog_dir: Path, add_version: AddVersion) -> None:
        raw = latest_raw("crm_customer_envelope")
        fields(raw, "before").append(
            {"name": "locale", "type": ["null", "string"], "default": None}
        )
        add_version("crm_customer_envelope", raw)
        assert check_catalog(SchemaCatalog(catalog_dir)) == []

    def test_incompatible_v2(self, catalog_dir: Path, add_version: AddVersion) -> None:
        raw = latest_raw("qms_quote_key")
        raw["fields"][0]["type"] = "int"
        add_version("qms_quote_key", raw)
        assert check_catalog(SchemaCatalog(catalog_dir)) == [
            "qms_quote_key: v2 cannot read data written with v1: quote_id: values written as "
            "long cannot be read as int"
        ]

    def test_only_transitive_catches_a_default_dropped_later(
        self, catalog_dir: Path, add_version: AddVersion
    ) -> None:
        v2 = latest_raw("dead_letter")
        v2["fields"].append({"name": "owner", "type": "string", "default": "unknown"})
        add_version("dead_letter", v2)
        v3 = json.loads(json.dumps(v2))
        del field(v3["fields"], "owner")["default"]
        add_version("dead_letter", v3)
        loaded = SchemaCatalog(catalog_dir)
        # v3 reads v2 data, so plain BACKWARD passes; but v1 data has no owner,
        # and the embedded serde reads v1 data with v3.
        assert check_catalog(loaded, transitive=False) == []
        assert check_catalog(loaded) == [
            "dead_letter: v3 cannot read data written with v1: owner: new field without a "
            "default; data written before it existed has no value for it"
        ]


class TestLock:
    """fingerprints.lock against the catalogue."""

    def test_in_place_edit_is_detected(self, catalog_dir: Path, catalog: SchemaCatalog) -> None:
        path = catalog_dir / "esp_delivery_receipt" / "v1.avsc"
        raw = json.loads(path.read_text(encoding="utf-8"))
        field(raw["fields"], "attempts")["type"] = "long"
        path.write_text(json.dumps(raw), encoding="utf-8")
        problems = lock_problems(SchemaCatalog(catalog_dir), build_lock(catalog))
        assert len(problems) == 1
        assert problems[0].startswith("esp_delivery_receipt v1: edited in place")
        assert "put the change in v4.avsc" in problems[0]

    def test_doc_only_edits_are_detected(self, catalog_dir: Path, catalog: SchemaCatalog) -> None:
        # The fingerprint covers the canonical form only; the content hash catches the rest.
        path = catalog_dir / "esp_delivery_receipt" / "v1.avsc"
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["doc"] = "reworded"
        path.write_text(json.dumps(raw), encoding="utf-8")
        edited = SchemaCatalog(catalog_dir)
        assert (
            edited.latest("esp_delivery_receipt").fingerprint
            == catalog.latest("esp_delivery_receipt").fingerprint
        )
        problems = lock_problems(edited, build_lock(catalog))
        assert len(problems) == 1
        assert problems[0].startswith(
            "esp_delivery_receipt v1: edited in place (same fingerprint 36fe17e6e2b27172 but "
            "the content changed"
        )
        assert "put the change in v4.avsc" in problems[0]

    def test_decimal_scale_edit_is_detected(
        self, catalog_dir: Path, catalog: SchemaCatalog
    ) -> None:
        # The case that matters: same bytes, different numbers (612.37 would read as 61.237).
        path = catalog_dir / "qms_quote_envelope" / "v1.avsc"
        raw = json.loads(path.read_text(encoding="utf-8"))
        field(fields(raw, "before"), "premium")["type"]["scale"] = 3
        path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
        edited = SchemaCatalog(catalog_dir)
        assert (
            edited.latest("qms_quote_envelope").fingerprint
            == catalog.latest("qms_quote_envelope").fingerprint
        )
        assert check_catalog(edited) == []  # the compatibility checker ignores logical types
        problems = lock_problems(edited, build_lock(catalog))
        assert len(problems) == 1
        assert problems[0].startswith("qms_quote_envelope v1: edited in place (same fingerprint")
        assert "a decimal's scale" in problems[0]

    def test_formatting_only_changes_are_not_edits(
        self, catalog_dir: Path, catalog: SchemaCatalog
    ) -> None:
        path = catalog_dir / "dead_letter" / "v1.avsc"
        raw = json.loads(path.read_text(encoding="utf-8"))
        reordered = dict(reversed(list(raw.items())))
        path.write_text(json.dumps(reordered, indent=7) + "\n\n", encoding="utf-8")
        assert lock_problems(SchemaCatalog(catalog_dir), build_lock(catalog)) == []

    def test_new_version_not_in_the_lock(
        self, catalog_dir: Path, add_version: AddVersion, catalog: SchemaCatalog
    ) -> None:
        raw = latest_raw("dead_letter")
        raw["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
        add_version("dead_letter", raw)
        problems = lock_problems(SchemaCatalog(catalog_dir), build_lock(catalog))
        assert problems == [
            "dead_letter v2: not in the lock; if it is ready to release, run "
            "python -m schemas.compat --update-lock"
        ]

    def test_released_version_deleted(self, catalog: SchemaCatalog) -> None:
        lock = build_lock(catalog)
        lock["dead_letter"]["v2"] = LockEntry("0123456789abcdef", "0" * 64)
        lock["gone"] = {"v1": LockEntry("0123456789abcdef", "1" * 64)}
        assert lock_problems(catalog, lock) == [
            "dead_letter v2: released but its file is gone; data written with it can no "
            "longer be decoded: restore it",
            "gone v1: released but its file is gone; data written with it can no longer be "
            "decoded: restore it",
        ]

    def test_versions_are_ordered_numerically(self) -> None:
        entry = LockEntry("0" * 16, "0" * 64)
        text = render_lock({"b": {"v10": entry, "v2": entry}, "a": {"v1": entry}})
        assert list(json.loads(text)) == ["a", "b"]
        assert list(json.loads(text)["b"]) == ["v2", "v10"]

    def test_format(self, tmp_path: Path, catalog: SchemaCatalog) -> None:
        path = tmp_path / "fingerprints.lock"
        lock = write_lock(catalog, path)
        version = catalog.latest("qms_quote_key")
        assert json.loads(path.read_text(encoding="utf-8"))["qms_quote_key"] == {
            "v1": {"fingerprint": version.fingerprint_hex, "sha256": version.sha256}
        }
        assert read_lock(path) == lock

    @pytest.mark.parametrize(
        "content",
        [
            "not json",
            "[]",
            '{"a": []}',
            '{"a": {"one": {"fingerprint": "0123456789abcdef", "sha256": "%s"}}}' % ("0" * 64),
            '{"a": {"v1": {"fingerprint": "XYZ", "sha256": "%s"}}}' % ("0" * 64),
            '{"a": {"v1": {"fingerprint": "0123456789abcdef", "sha256": "%s"}}}' % ("A" * 64),
            '{"a": {"v1": {"fingerprint": "0123456789abcdef"}}}',
            '{"a": {"v1": {"fingerprint": "0123456789abcdef", "sha256": "%s", "x": 1}}}'
            % ("0" * 64),
        ],
    )
    def test_malformed_lock(self, tmp_path: Path, content: str) -> None:
        path = tmp_path / "fingerprints.lock"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(SchemaLockError):
            read_lock(path)

    def test_old_format_says_how_to_upgrade(self, tmp_path: Path) -> None:
        path = tmp_path / "fingerprints.lock"
        path.write_text('{"a": {"v1": "0123456789abcdef"}}', encoding="utf-8")
        with pytest.raises(SchemaLockError, match=r"old format.*--update-lock"):
            read_lock(path)

    def test_missing_lock(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaLockError, match="--update-lock"):
            read_lock(tmp_path / "fingerprints.lock")


class TestMain:
    """The ``python -m schemas.compat`` entry point."""

    def run(self, catalog_dir: Path, lock: Path, *flags: str) -> int:
        return main(["--schema-dir", str(catalog_dir), "--lock", str(lock), *flags])

    def test_update_then_check(
        self, catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        lock = tmp_path / "fingerprints.lock"
        assert self.run(catalog_dir, lock) == 1
        assert "does not exist" in capsys.readouterr().err

        assert self.run(catalog_dir, lock, "--update-lock") == 0
        assert "added dead_letter v1" in capsys.readouterr().out
        assert lock.read_text(encoding="utf-8") == PACKAGE_LOCK_PATH.read_text(encoding="utf-8")

        assert self.run(catalog_dir, lock) == 0
        shipped = SchemaCatalog(catalog_dir)
        versions = sum(len(shipped.versions(name)) for name in shipped.names())
        assert capsys.readouterr().out.startswith(
            f"ok: {len(shipped.names())} schemas, {versions} versions,"
            " BACKWARD_TRANSITIVE compatible"
        )

    def test_check_lists_every_problem(
        self,
        catalog_dir: Path,
        add_version: AddVersion,
        tmp_path: Path,
        catalog: SchemaCatalog,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        lock = tmp_path / "fingerprints.lock"
        write_lock(catalog, lock)
        raw = latest_raw("qms_quote_key")
        raw["fields"].append({"name": "tenant", "type": "string"})
        add_version("qms_quote_key", raw)
        assert self.run(catalog_dir, lock) == 1
        err = capsys.readouterr().err.splitlines()
        assert err == [
            "qms_quote_key: v2 cannot read data written with v1: tenant: new field without a "
            "default; data written before it existed has no value for it",
            "qms_quote_key v2: not in the lock; if it is ready to release, run "
            "python -m schemas.compat --update-lock",
        ]

    def test_update_refused_while_incompatible(
        self,
        catalog_dir: Path,
        add_version: AddVersion,
        tmp_path: Path,
        catalog: SchemaCatalog,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        lock = tmp_path / "fingerprints.lock"
        before = render_lock(write_lock(catalog, lock))
        raw = latest_raw("qms_quote_key")
        raw["fields"][0]["type"] = "string"
        add_version("qms_quote_key", raw)
        assert self.run(catalog_dir, lock, "--update-lock") == 1
        assert "not updating" in capsys.readouterr().err
        assert lock.read_text(encoding="utf-8") == before

    def test_update_reports_in_place_edits(
        self,
        catalog_dir: Path,
        tmp_path: Path,
        catalog: SchemaCatalog,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        lock = _lock_then_edit_key_v1(
            catalog,
            catalog_dir,
            tmp_path,
            lambda raw: raw["fields"].append({"name": "tenant", "type": "string", "default": ""}),
        )
        assert self.run(catalog_dir, lock, "--update-lock") == 0
        assert "CHANGED qms_quote_key v1: released fingerprint" in capsys.readouterr().out

    def test_update_reports_doc_only_edits(
        self,
        catalog_dir: Path,
        tmp_path: Path,
        catalog: SchemaCatalog,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        lock = _lock_then_edit_key_v1(
            catalog, catalog_dir, tmp_path, lambda raw: raw.update(doc="reworded")
        )
        assert self.run(catalog_dir, lock) == 1
        assert "qms_quote_key v1: edited in place" in capsys.readouterr().err
        assert self.run(catalog_dir, lock, "--update-lock") == 0
        assert "CHANGED qms_quote_key v1: same fingerprint" in capsys.readouterr().out

    def test_transitive_by_default(
        self,
        catalog_dir: Path,
        add_version: AddVersion,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        v2 = latest_raw("dead_letter")
        v2["fields"].append({"name": "owner", "type": "string", "default": "unknown"})
        add_version("dead_letter", v2)
        v3 = json.loads(json.dumps(v2))
        del field(v3["fields"], "owner")["default"]
        add_version("dead_letter", v3)
        lock = tmp_path / "fingerprints.lock"

        assert self.run(catalog_dir, lock, "--update-lock") == 1
        assert "v3 cannot read data written with v1" in capsys.readouterr().err

        assert self.run(catalog_dir, lock, "--update-lock", "--non-transitive") == 0
        capsys.readouterr()
        assert self.run(catalog_dir, lock, "--non-transitive") == 0
        assert ", BACKWARD compatible" in capsys.readouterr().out
        assert self.run(catalog_dir, lock) == 1

    def test_broken_catalogue_exits_with_the_error(
        self, catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (catalog_dir / "dead_letter" / "v1.avsc").write_text("{", encoding="utf-8")
        assert self.run(catalog_dir, tmp_path / "lock") == 1
        assert "dead_letter/v1.avsc: not valid JSON" in capsys.readouterr().err


def _lock_then_edit_key_v1(
    catalog: SchemaCatalog, catalog_dir: Path, tmp_path: Path, edit: Callable[[Any], object]
) -> Path:
    """Lock the released catalogue, then edit qms_quote_key v1 in place; return the lock."""
    lock = tmp_path / "fingerprints.lock"
    write_lock(catalog, lock)
    path = catalog_dir / "qms_quote_key" / "v1.avsc"
    raw = json.loads(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(json.dumps(raw), encoding="utf-8")
    return lock
