"""The plan behind `quoteflow schemas register|check`: subjects, and registry against repository.

A registry appends versions, so a wrong decision is permanent: registering an
old version on top of a newer one makes it the subject's latest, and
overwriting a version registered from elsewhere hides someone else's change.
These tests pin the per-subject rules (what to register, what to skip, when to
refuse) and the states ``check`` reports, with real catalogue versions (a
second and third version of ``dead_letter`` are added to a writable copy) and
registry entries built by hand. Everything is pure: no registry runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from quoteflow.topics.catalog import CATALOGUE
from schemas.catalog import PACKAGE_AVRO_DIR, SchemaCatalog, SchemaVersion
from schemas.subjects.plan import (
    COMPATIBILITY,
    Comparison,
    Registered,
    Subject,
    subjects,
    summary,
)
from tests.test_schemas.evolve import latest_raw

pytestmark = pytest.mark.unit

SCHEMA = "dead_letter"
SUBJECT = Subject(f"quoteflow.test.{SCHEMA}-value", "quoteflow.test", False, SCHEMA)


@pytest.fixture
def versions(tmp_path: Path) -> tuple[SchemaVersion, ...]:
    """v1 (shipped), v2 and v3 of dead_letter, each adding a field with a default."""
    catalog_dir = tmp_path / "avro"
    shutil.copytree(PACKAGE_AVRO_DIR, catalog_dir)
    raw = latest_raw(SCHEMA)
    for number, name in ((2, "owner"), (3, "ticket")):
        raw["fields"].append({"name": name, "type": "string", "default": "unknown"})
        path = catalog_dir / SCHEMA / f"v{number}.avsc"
        path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    loaded = SchemaCatalog(catalog_dir).versions(SCHEMA)
    assert [v.version for v in loaded] == [1, 2, 3]
    return loaded


def registered(*entries: SchemaVersion | str) -> tuple[Registered, ...]:
    """Registry entries, oldest first, numbered 1, 2, ... with ids 100, 101, ..."""
    return tuple(
        Registered(n, 100 + n, e if isinstance(e, str) else e.registry_text)
        for n, e in enumerate(entries, start=1)
    )


def compare(
    repository: tuple[SchemaVersion, ...],
    entries: tuple[Registered, ...],
    compatibility: str | None = COMPATIBILITY,
) -> Comparison:
    return Comparison(SUBJECT, repository, entries, compatibility)


def foreign_text(version: SchemaVersion) -> str:
    """A schema of the same name that is no version in the repository."""
    raw = json.loads(version.registry_text)
    raw["fields"].append({"name": "hand_added", "type": "int", "default": 0})
    return json.dumps(raw)


# -- matching -----------------------------------------------------------------------


def test_the_registry_text_matches_its_version(versions: tuple[SchemaVersion, ...]) -> None:
    comparison = compare(versions, ())
    for version in versions:
        assert comparison.match(Registered(1, 1, version.registry_text)) == version


def test_whitespace_and_key_order_do_not_matter(versions: tuple[SchemaVersion, ...]) -> None:
    """Registries may return the schema re-serialised; it is still the same schema."""
    v2 = versions[1]
    reformatted = json.dumps(v2.raw, indent=4, sort_keys=True)
    assert reformatted != v2.registry_text
    assert compare(versions, ()).match(Registered(7, 107, reformatted)) == v2


@pytest.mark.parametrize("text", ["", "not json", "{", "null", '"string"', "[]"])
def test_non_json_or_foreign_text_matches_nothing(
    versions: tuple[SchemaVersion, ...], text: str
) -> None:
    comparison = compare(versions, registered(text))
    assert comparison.match(comparison.registered[0]) is None
    assert comparison.foreign
    assert comparison.state == "drift"
    assert comparison.to_register() == []


# -- the rules per subject ------------------------------------------------------------


def test_an_unknown_subject_is_missing_and_gets_every_version(
    versions: tuple[SchemaVersion, ...],
) -> None:
    comparison = compare(versions[:2], (), compatibility=None)
    assert comparison.state == "missing"
    assert comparison.to_register() == list(versions[:2])
    assert comparison.skipped() == []
    assert not comparison.foreign
    assert comparison.problems() == ["not registered: run `quoteflow schemas register`"]
    assert comparison.describe_registry() == "-"


def test_a_subject_with_an_older_version_is_behind_and_gets_the_newer_ones(
    versions: tuple[SchemaVersion, ...],
) -> None:
    v1, v2, _ = versions
    comparison = compare((v1, v2), registered(v1))
    assert comparison.state == "behind"
    assert comparison.to_register() == [v2]
    assert comparison.skipped() == []
    assert comparison.problems() == [
        "the registry's latest is v1, the repository's v2: run `quoteflow schemas register`"
    ]
    assert comparison.describe_registry() == "v1 (id 101)"


def test_an_older_version_is_never_registered_on_top_of_a_newer_one(
    versions: tuple[SchemaVersion, ...],
) -> None:
    """v1 registered after v2 would become the subject's latest: it is reported instead."""
    v1, v2, _ = versions
    comparison = compare((v1, v2), registered(v2))
    assert comparison.to_register() == []
    assert comparison.skipped() == [v1]
    assert comparison.state == "ok"


def test_only_versions_newer_than_the_newest_registered_are_registered(
    versions: tuple[SchemaVersion, ...],
) -> None:
    v1, v2, v3 = versions
    comparison = compare(versions, registered(v2))
    assert comparison.state == "behind"
    assert comparison.to_register() == [v3]
    assert comparison.skipped() == [v1]

    gap = compare(versions, registered(v1, v3))
    assert gap.to_register() == []
    assert gap.skipped() == [v2]


def test_a_foreign_latest_version_is_drift_and_nothing_is_registered(
    versions: tuple[SchemaVersion, ...],
) -> None:
    v1, v2, _ = versions
    comparison = compare((v1, v2), registered(v1, foreign_text(v1)))
    assert comparison.foreign
    assert comparison.state == "drift"
    assert comparison.to_register() == []  # v2 would go on top of someone else's version
    problems = comparison.problems()
    assert len(problems) == 1
    assert "registered from elsewhere" in problems[0]
    assert "latest version 2 (id 102)" in problems[0]
    assert comparison.describe_registry() == "version 2? (id 102)"


def test_an_older_version_registered_again_on_top_is_drift_not_behind(
    versions: tuple[SchemaVersion, ...],
) -> None:
    """`register` cannot fix this (it never registers an older version), so it is no "behind"."""
    v1, v2, v3 = versions
    comparison = compare(versions, registered(v1, v3, v2))
    assert comparison.to_register() == []
    assert comparison.state == "drift"
    assert comparison.problems() == [
        "the registry's latest is v2 (id 103), registered again on top of a newer version:"
        " a person must decide"
    ]


@pytest.mark.parametrize("level", [None, "BACKWARD", "NONE", "FULL_TRANSITIVE"])
def test_up_to_date_with_another_compatibility_level_is_drift(
    versions: tuple[SchemaVersion, ...], level: str | None
) -> None:
    comparison = compare(versions, registered(*versions), compatibility=level)
    assert comparison.state == "drift"
    assert comparison.to_register() == []
    (problem,) = comparison.problems()
    assert "BACKWARD_TRANSITIVE" in problem
    assert (level or "not set") in problem


def test_up_to_date_with_backward_transitive_is_ok(
    versions: tuple[SchemaVersion, ...],
) -> None:
    assert COMPATIBILITY == "BACKWARD_TRANSITIVE"  # what `python -m schemas.compat` checks
    comparison = compare(versions, registered(*versions), compatibility="BACKWARD_TRANSITIVE")
    assert comparison.state == "ok"
    assert comparison.problems() == []
    assert comparison.to_register() == []
    assert comparison.skipped() == []
    assert comparison.describe_registry() == "v3 (id 103)"


def test_behind_with_no_level_reports_both_problems(
    versions: tuple[SchemaVersion, ...],
) -> None:
    v1, v2, _ = versions
    problems = compare((v1, v2), registered(v1), compatibility=None).problems()
    assert len(problems) == 2
    assert "latest is v1" in problems[0]
    assert "not set" in problems[1] and COMPATIBILITY in problems[1]


def test_summary_counts_each_state(versions: tuple[SchemaVersion, ...]) -> None:
    v1, v2, v3 = versions
    comparisons = [
        compare(versions, ()),
        compare(versions, registered(v1)),
        compare(versions, registered(v1, v2, v3)),
        compare(versions, registered(v1, v2, v3), compatibility=None),
        compare(versions, registered("not json")),
    ]
    assert summary(comparisons) == {"ok": 1, "missing": 1, "behind": 1, "drift": 2}


# -- subjects() -----------------------------------------------------------------------


def test_every_topic_has_a_value_subject_and_avro_keyed_topics_a_key_subject() -> None:
    expected: dict[str, tuple[str, bool, str]] = {}
    for spec in CATALOGUE:
        expected[f"{spec.name}-value"] = (spec.name, False, spec.value_schema)
        if spec.key_format == "avro":
            assert spec.key_schema is not None
            expected[f"{spec.name}-key"] = (spec.name, True, spec.key_schema)

    found = subjects()

    assert {s.name: (s.topic, s.is_key, s.schema) for s in found} == expected
    assert len(found) == len(expected)  # no subject twice


def test_string_keyed_topics_have_no_key_subject() -> None:
    names = {s.name for s in subjects()}
    string_keyed = [spec for spec in CATALOGUE if spec.key_schema is None]
    assert string_keyed  # the catalogue has some, or this test proves nothing
    for spec in string_keyed:
        assert f"{spec.name}-key" not in names


def test_every_subject_names_a_schema_of_the_shipped_catalogue() -> None:
    shipped = set(SchemaCatalog().names())
    assert {s.schema for s in subjects()} <= shipped


def test_subjects_of_a_given_catalogue_keep_its_order() -> None:
    specs = list(reversed(CATALOGUE))
    names = [s.name for s in subjects(specs)]
    first = specs[0]
    expected_first = [f"{first.name}-key"] if first.key_schema else []
    expected_first.append(f"{first.name}-value")
    assert names[: len(expected_first)] == expected_first
    assert subjects([]) == []
