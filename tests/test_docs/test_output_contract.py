"""docs/output-topics.md describes the schemas and topics as they are: a drift fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from quoteflow.topics.catalog import DAY_MS, by_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "output-topics.md"
#: Output topic -> its value schema, as the page's table lists them.
OUTPUTS = {
    "quoteflow.abandonment.triggers": "abandonment_trigger",
    "quoteflow.abandonment.decisions": "abandonment_decision",
    "quoteflow.esp.deliveries": "esp_delivery_receipt",
    "quoteflow.dead-letter": "dead_letter",
}


def _latest(schema: str) -> tuple[int, dict[str, object]]:
    versions = sorted((int(p.stem[1:]), p) for p in (ROOT / "schemas" / "avro" / schema)
                      .glob("v*.avsc"))  # fmt: skip
    number, path = versions[-1]
    return number, json.loads(path.read_text())


def _section(text: str, schema: str) -> str:
    match = re.search(rf"^## `{schema}` \(latest v(\d+)\)\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/output-topics.md has no section for {schema}"
    return match.group(1) + "\n" + match.group(2)


@pytest.mark.parametrize("schema", sorted(OUTPUTS.values()))
def test_every_field_and_symbol_of_the_latest_schema_is_described(schema: str) -> None:
    number, avsc = _latest(schema)
    version, section = _section(DOC.read_text(), schema).split("\n", 1)
    assert int(version) == number, f"{schema}: the page describes v{version}, latest is v{number}"
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    fields = avsc["fields"]
    assert isinstance(fields, list)
    assert rows == {f["name"] for f in fields}, f"{schema}: fields described vs. the schema"
    for field in fields:
        types = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for kind in types:
            if isinstance(kind, dict) and kind.get("type") == "enum":
                missing = [s for s in kind["symbols"] if f"`{s}`" not in section]
                assert not missing, f"{schema}.{field['name']}: symbols {missing} undescribed"


def test_the_topic_table_is_the_catalogue() -> None:
    text = DOC.read_text()
    for topic, schema in OUTPUTS.items():
        spec = by_name(topic)
        row = re.search(rf"^\| `{re.escape(topic)}` \|(.*)\|$", text, re.M)
        assert row, f"no row for {topic}"
        cells = [c.strip() for c in row.group(1).split("|")]
        assert cells[2] == f"`{schema}`" and spec.value_schema == schema
        assert cells[3] == str(spec.partitions), f"{topic}: partitions"
        assert cells[4] == f"{spec.retention_ms // DAY_MS} days", f"{topic}: retention"
