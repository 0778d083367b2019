"""docs/datasets.md says true things: its worked example loads with the counts it states, its
error messages are the ones a user gets, and every spec fragment in it is a valid spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fusionrec.data.errors import DataError
from fusionrec.data.load import load_dataset, validate_dataset
from fusionrec.data.spec_yaml import spec_from_dict

REPO = Path(__file__).resolve().parents[1]

DOC = (REPO / "docs" / "datasets.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end >= 0 else None]


def _worked_example(folder):
    """Write the worked example's files (each a fenced block after a `NAME`: line)."""
    section = _section("A worked example: ratings plus a trust network")
    files = re.findall(r"^`([\w.]+)`[^\n]*:\n\n```\w+\n(.*?)^```", section, re.S | re.M)
    assert [name for name, _ in files] == ["ratings.csv", "trust.csv", "spec.yaml"]
    for name, text in files:
        (folder / name).write_text(text)
    return folder / "spec.yaml"


def test_worked_example_loads_as_the_doc_says(tmp_path):
    dataset, report = load_dataset(_worked_example(tmp_path))
    assert dataset.users.ids == ("alice", "bob", "carol")
    assert dataset.items.ids == ("book1", "book2", "book3")
    # duplicates: dedupe kept alice's first rating of book1 (5 stars), not the later 1.
    inter = dataset.interactions
    alice_book1 = (inter.user == 0) & (inter.item == 0)
    assert inter.rating[alice_book1].tolist() == [5.0]
    assert len(inter) == 6
    # directed: both directions of alice<->bob stay; carol's self-loop and dave are dropped.
    social = dataset.social
    edges = {(dataset.users.ids[s], dataset.users.ids[t]) for s, t in
             zip(social.source, social.target)}
    assert social.directed and edges == {("alice", "bob"), ("bob", "alice"), ("carol", "alice")}
    files = {file.source: file for file in report.files}
    assert (files["interactions"].rows_read, files["interactions"].rows_kept) == (7, 6)
    assert files["interactions"].dropped == {"duplicate (user, item) pair": 1}
    assert (files["social"].rows_read, files["social"].rows_kept) == (5, 3)
    assert files["social"].dropped == {"self-loop": 1, "unknown user": 1}


def _quoted_errors() -> list[str]:
    section = _section("A worked example: ratings plus a trust network")
    tail = section[section.index("A mistake is one line"):]
    return [" ".join(m.split()) for m in re.findall(r"`([^`]*(?:not found|unknown key)[^`]*)`",
                                                     tail, re.S)]


@pytest.mark.parametrize("old, new, which", [
    ("rating: stars,", "rating: star,", 0),
    ("duplicates: dedupe ", "duplicate: dedupe ", 1),
])
def test_quoted_error_messages_are_what_the_user_gets(tmp_path, old, new, which):
    spec = _worked_example(tmp_path)
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new, 1))
    with pytest.raises(DataError) as caught:
        load_dataset(spec)
    assert _quoted_errors()[which] in " ".join(str(caught.value).split())


def _fragments() -> list[str]:
    return [b for b in re.findall(r"^```yaml\n(.*?)^```", DOC, re.S | re.M)
            if re.search(r"^sources:", b, re.M) and "{...}" not in b]  # not the outline


def test_every_spec_fragment_in_the_doc_is_a_valid_spec():
    fragments = _fragments()
    kinds = set()
    for text in fragments:
        data = yaml.safe_load(text)
        data.setdefault("name", "doc-example")
        data["sources"].setdefault("interactions", {"file": "r.csv",
                                                    "columns": {"user": "u", "item": "i"}})
        spec = spec_from_dict(data)  # raises on any unknown key, role or value
        kinds.update(k for k in data["sources"] if getattr(spec, k) is not None)
    assert kinds == {"interactions", "user_attributes", "item_attributes", "item_text", "social",
                     "kg", "reviews"}


def test_vocabulary_example_is_valid():
    block = next(b for b in re.findall(r"^```yaml\n(.*?)^```", DOC, re.S | re.M)
                 if b.startswith("vocabulary:"))
    data = yaml.safe_load(block)
    spec = spec_from_dict({"name": "v", **data, "sources": {
        "interactions": {"file": "r.csv", "columns": {"user": "u", "item": "i"}},
        "item_text": {"file": "t.csv", "columns": {"item": "i"}, "fields": ["title"]}}})
    assert spec.vocabulary.items_from == ("interactions", "item_text")


def test_validate_reports_the_worked_example_as_usable(tmp_path):
    dataset, report = validate_dataset(_worked_example(tmp_path))
    assert dataset is not None and not report.errors
