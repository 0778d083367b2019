"""write_dataset -> load_dataset gives back an equal Dataset; random tables round-trip in every
supported file format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusionrec.data.export import write_dataset
from fusionrec.data.load import load_dataset
from fusionrec.data.schema import (Attributes, Dataset, Interactions, ItemAttributes, ItemText,
                                   KnowledgeGraph, Reviews, Social, Tags, Vocabulary)
from fusionrec.data.spec_yaml import spec_from_dict


def _same_array(a, b, where):
    if a is None or b is None:
        assert a is None and b is None, where
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, where
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)  # NaN == NaN here
    else:
        assert a.tolist() == b.tolist(), where


def assert_same_dataset(a: Dataset, b: Dataset) -> None:
    assert a.name == b.name and a.users == b.users and a.items == b.items
    assert a.sources == b.sources
    for col in ("user", "item", "rating", "weight", "timestamp"):
        _same_array(getattr(a.interactions, col), getattr(b.interactions, col), f"inter.{col}")
    for name in ("user_attributes",):
        if getattr(a, name) is not None:
            _same_attrs(getattr(a, name), getattr(b, name))
    if a.item_attributes is not None:
        if a.item_attributes.attributes is not None:
            _same_attrs(a.item_attributes.attributes, b.item_attributes.attributes)
        ta, tb = a.item_attributes.tags, b.item_attributes.tags
        if ta is not None:
            assert ta.vocabulary == tb.vocabulary
            for col in ("item", "tag", "user", "weight", "timestamp"):
                _same_array(getattr(ta, col), getattr(tb, col), f"tags.{col}")
    if a.item_text is not None:
        assert dict(a.item_text.fields) == dict(b.item_text.fields)
    if a.social is not None:
        assert a.social.directed == b.social.directed
        for col in ("source", "target", "weight"):
            _same_array(getattr(a.social, col), getattr(b.social, col), f"social.{col}")
    if a.kg is not None:
        assert a.kg.entities == b.kg.entities and a.kg.relations == b.kg.relations
        assert a.kg.entity_names == b.kg.entity_names
        for col in ("head", "relation", "tail", "link_item", "link_entity"):
            _same_array(getattr(a.kg, col), getattr(b.kg, col), f"kg.{col}")
    if a.reviews is not None:
        assert a.reviews.text == b.reviews.text
        for col in ("user", "item", "rating", "timestamp"):
            _same_array(getattr(a.reviews, col), getattr(b.reviews, col), f"reviews.{col}")


def _same_attrs(a: Attributes, b: Attributes) -> None:
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        _same_array(a.columns[name], b.columns[name], f"attribute {name}")


def tiny_dataset() -> Dataset:
    """Every source, with the awkward cases: a user without interactions, missing attribute
    values, a tag without its user, text with commas, quotes and newlines, unnamed entities."""
    users = Vocabulary(("u1", "u2", "u3", "lonely"))
    items = Vocabulary(("i1", "i2", "i3"))
    inter = Interactions([0, 0, 1, 2, 2], [0, 1, 1, 0, 2], rating=[5, 3.5, 1, 4, 2],
                         timestamp=[100, 200, 300, 400, 1_700_000_000])
    user_attrs = Attributes({"age": np.array([31.0, np.nan, 22.0, 40.0]),
                             "city": np.array(["Oslo", "", "Bergen", "Oslo"], dtype=object)})
    tag_vocab = Vocabulary(("rock", "café", "has,comma"))
    tags = Tags([0, 0, 2], [0, 1, 2], tag_vocab, user=[0, -1, 2], timestamp=[5, 6, 7])
    item_attrs = ItemAttributes(
        Attributes({"genres": np.array(["rock|pop", "", "jazz"], dtype=object),
                    "year": np.array([1999.0, 2001.0, np.nan])}), tags)
    text = ItemText({"title": ("One, two", 'The "quoted"', "multi\nline"),
                     "blurb": ("", "b", "c")})
    social = Social([0, 1], [1, 3], directed=False, weight=[0.5, 2.0])
    kg = KnowledgeGraph(head=[0, 1, 3], relation=[0, 0, 1], tail=[2, 2, 0],
                        entities=Vocabulary(("e1", "e2", "e3", "e4")),
                        relations=Vocabulary(("genre", "similar")),
                        link_item=[0, 1], link_entity=[0, 1],
                        entity_names=("One, two", 'The "quoted"', "", "orphan"))
    reviews = Reviews([0, 2], [1, 2], ("loved it,\n really", ""), rating=[3.5, 2],
                      timestamp=[201, 401])
    return Dataset("tiny", users, items, inter, user_attrs, item_attrs, text, social, kg, reviews)


def test_write_then_load_gives_an_equal_dataset(tmp_path):
    original = tiny_dataset()
    spec_path = write_dataset(original, tmp_path / "out")
    assert spec_path.name == "spec.yaml" and (tmp_path / "out" / "interactions.csv").is_file()
    loaded, report = load_dataset(spec_path)
    assert_same_dataset(original, loaded)
    assert report.file("reviews").warnings == {"empty text (kept)": 1}
    assert_same_dataset(loaded, load_dataset(write_dataset(loaded, tmp_path / "again"))[0])


def test_synthetic_dataset_round_trips(tmp_path):
    original, _ = load_dataset("synthetic")
    loaded, report = load_dataset(write_dataset(original, tmp_path))
    assert report.usable
    assert_same_dataset(original, loaded)


# -- property test: random tiny tables in every format ---------------------------------------
_ids = st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=4)
_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
                 max_size=12)


@st.composite
def _tables(draw):
    pairs = draw(st.lists(st.tuples(_ids, _ids), min_size=1, max_size=12, unique=True))
    ratings = draw(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False),
                            min_size=len(pairs), max_size=len(pairs)))
    items = list(dict.fromkeys(item for _, item in pairs))
    titles = draw(st.lists(_texts, min_size=len(items), max_size=len(items)))
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "parquet"]))
    return pairs, ratings, items, titles, fmt


def _write_table(frame: pd.DataFrame, path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                for r in frame.to_dict("records")), encoding="utf-8")
    else:
        frame.to_csv(path, sep="," if fmt == "csv" else "\t", index=False, lineterminator="\n")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_tables())
def test_random_tables_round_trip_in_every_format(tmp_path, table):
    pairs, ratings, items, titles, fmt = table
    users = [u for u, _ in pairs]
    inter = pd.DataFrame({"user": users, "item": [i for _, i in pairs],
                          "stars": np.asarray(ratings, dtype=np.float32)})
    text = pd.DataFrame({"item": items, "title": titles})
    _write_table(inter, tmp_path / f"inter.{fmt}", fmt)
    _write_table(text, tmp_path / f"text.{fmt}", fmt)
    spec = spec_from_dict({"name": "random", "sources": {
        "interactions": {"file": f"inter.{fmt}",
                         "columns": {"user": "user", "item": "item", "rating": "stars"}},
        "item_text": {"file": f"text.{fmt}", "columns": {"item": "item"}, "fields": ["title"]}}})
    dataset, report = load_dataset(spec, tmp_path)
    assert dataset.users.ids == tuple(dict.fromkeys(users))
    assert dataset.items.ids == tuple(items)
    assert dataset.users.raw(dataset.interactions.user).tolist() == users
    assert dataset.items.raw(dataset.interactions.item).tolist() == [i for _, i in pairs]
    np.testing.assert_array_equal(dataset.interactions.rating, np.float32(ratings))
    assert dataset.item_text.fields["title"] == tuple(titles)
    assert report.file("interactions").rows_kept == len(pairs)
