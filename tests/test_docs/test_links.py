"""The README stays a page a newcomer reads top to bottom, and every guide is reachable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 150, f"README.md has {lines} lines: move reference material to docs/"


@pytest.mark.parametrize("page", [README, *GUIDES], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target in _LINK.findall(page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_guide_is_linked_from_the_readme() -> None:
    linked = {(ROOT / target).resolve() for target in _LINK.findall(README.read_text())}
    orphans = [g.name for g in GUIDES if g.resolve() not in linked]
    assert not orphans, f"docs/ pages the README does not link: {orphans}"
