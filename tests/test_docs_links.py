"""Every relative Markdown link in README.md, docs/*.md and the lab notes points to a file or
folder that exists, and every #anchor to a heading of its target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         REPO / "benchmarks" / "results" / "NOTES.md"]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_pages_exist():
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"README.md", "docs/README.md", "docs/commands.md", "docs/datasets.md",
            "docs/privacy.md", "docs/results.md", "docs/architecture.md",
            "benchmarks/results/NOTES.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(target)
            continue
        if anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_anchor_rule_matches_github_on_a_known_heading():
    assert "choosing-sources" in _anchors(REPO / "docs" / "datasets.md")
    assert "a-worked-example-ratings-plus-a-trust-network" in _anchors(REPO / "docs" / "datasets.md")
