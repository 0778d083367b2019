"""Hand-broken input files give one-line errors naming file, line and field, or counted drops."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from fusionrec.data.errors import DataError
from fusionrec.data.load import load_dataset, validate_dataset
from fusionrec.data.spec_yaml import spec_from_dict

LISTENS = "userID\tartistID\tweight\nu1\ta1\t3\nu1\ta2\t5\nu2\ta1\t1\n"
FRIENDS = "userID\tfriendID\nu1\tu2\nu2\tu1\n"


def _write(root, name, content):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _spec(**sources):
    base = {"interactions": {"file": "listens.tsv",
                             "columns": {"user": "userID", "item": "artistID", "weight": "weight"}}}
    for key, value in sources.items():
        if key == "interactions":
            base["interactions"].update(value)
        else:
            base[key] = value
    return spec_from_dict({"name": "tiny", "sources": base})


def _load(tmp_path, listens=LISTENS, **sources):
    _write(tmp_path, "listens.tsv", listens)
    return load_dataset(_spec(**sources), tmp_path)


def _error(tmp_path, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        _load(tmp_path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_clean_file_loads_with_a_full_report(tmp_path):
    dataset, report = _load(tmp_path)
    assert dataset.users.ids == ("u1", "u2") and dataset.items.ids == ("a1", "a2")
    assert dataset.interactions.weight.tolist() == [3.0, 5.0, 1.0]
    assert report.usable and report.file("interactions").rows_kept == 3
    assert report.counts["interactions"] == 3
    json.dumps(report.to_dict())  # JSON-serialisable
    assert "listens.tsv" in report.summary() and "usable: yes" in report.summary()


def test_truncated_last_line_is_an_error_naming_the_missing_field(tmp_path):
    message = _error(tmp_path, listens=LISTENS + "u3\ta3")
    assert message.startswith("listens.tsv line 5: field 'weight' has 2 of 3 fields")
    assert "bad_rows: drop" in message


def test_truncated_last_line_is_dropped_and_counted_by_policy(tmp_path):
    dataset, report = _load(tmp_path, listens=LISTENS + "u3\ta3",
                            interactions={"bad_rows": "drop"})
    assert len(dataset.interactions) == 3
    assert dict(report.file("interactions").dropped) == {"line with too few fields": 1}
    assert report.file("interactions").rows_read == 4


def test_too_many_fields(tmp_path):
    message = _error(tmp_path, listens=LISTENS.replace("u1\ta2\t5", "u1\ta2\t5\textra"))
    assert message.startswith("listens.tsv line 3: has 4 fields, expected 3")


def test_renamed_column_names_the_column_and_suggests_the_close_one(tmp_path):
    message = _error(tmp_path, listens=LISTENS.replace("artistID", "artistId"))
    assert message.startswith("listens.tsv line 1: field 'artistID' not found")
    assert "did you mean 'artistId'" in message


def test_latin1_file_read_as_utf8(tmp_path):
    tags = "tagID\ttagValue\n" + "".join(f"{i}\ttag{i}\n" for i in range(1, 8))
    raw = tags.encode() + "8\ttropicália\n".encode("latin-1")
    _write(tmp_path, "tags.dat", raw)
    _write(tmp_path, "tagged.tsv", "userID\tartistID\ttagID\nu1\ta1\t8\n")
    tag_source = {"tags": {"file": "tagged.tsv",
                           "columns": {"user": "userID", "item": "artistID", "tag": "tagID"},
                           "vocabulary": {"file": "tags.dat", "format": "tsv",
                                          "columns": {"id": "tagID", "name": "tagValue"}}}}
    message = _error(tmp_path, item_attributes=tag_source)
    assert message == ("tags.dat line 9: field 'tagValue' is not valid UTF-8 (byte 0xe1); "
                       "set encoding: latin-1")
    tag_source["tags"]["vocabulary"]["encoding"] = "latin-1"
    dataset, _ = _load(tmp_path, item_attributes=tag_source)
    tags = dataset.item_attributes.tags
    assert tags.vocabulary.ids[tags.tag[0]] == "tropicália"
    assert tags.user.tolist() == [0]


def test_edge_to_unknown_user(tmp_path):
    _write(tmp_path, "friends.tsv", FRIENDS + "u1\tu9\n")
    social = {"file": "friends.tsv", "columns": {"source": "userID", "target": "friendID"}}
    message = _error(tmp_path, social=social)
    assert message.startswith("friends.tsv line 4: field 'friendID' refers to unknown user 'u9'")
    assert "unknown_ids: drop" in message
    dataset, report = _load(tmp_path, social={**social, "unknown_ids": "drop"})
    assert dict(report.file("social").dropped) == {
        "unknown user": 1, "reverse of an undirected edge already kept": 1}
    assert len(dataset.social) == 1 and not dataset.social.directed


def test_directed_social_keeps_both_directions(tmp_path):
    _write(tmp_path, "friends.tsv", FRIENDS + "u2\tu2\n")
    social = {"file": "friends.tsv", "columns": {"source": "userID", "target": "friendID"},
              "directed": True}
    dataset, report = _load(tmp_path, social=social)
    assert len(dataset.social) == 2
    assert dict(report.file("social").dropped) == {"self-loop": 1}


@pytest.mark.parametrize("content, expected", [
    ("", "listens.tsv: is empty (no data rows)"),
    ("userID\tartistID\tweight\n", "listens.tsv: has a header but no data rows (empty file)"),
])
def test_empty_files(tmp_path, content, expected):
    assert _error(tmp_path, listens=content) == expected


def test_missing_id_is_an_error_or_a_counted_drop(tmp_path):
    broken = LISTENS + "\ta2\t4\n"
    message = _error(tmp_path, listens=broken)
    assert message.startswith("listens.tsv line 5: field 'userID' is empty (a missing id)")
    dataset, report = _load(tmp_path, listens=broken, interactions={"bad_rows": "drop"})
    assert dict(report.file("interactions").dropped) == {"missing userID": 1}
    assert len(dataset.interactions) == 3


def test_null_ids_in_jsonl_and_parquet(tmp_path):
    import pandas as pd

    records = [{"u": "a", "i": "x"}, {"u": None, "i": "y"}]
    _write(tmp_path, "rows.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    pd.DataFrame(records).to_parquet(tmp_path / "rows.parquet")
    for name, where in (("rows.jsonl", "line 2"), ("rows.parquet", "row 2")):
        spec = spec_from_dict({"name": "t", "sources": {"interactions": {
            "file": name, "columns": {"user": "u", "item": "i"}}}})
        with pytest.raises(DataError, match=f"^{name} {where}: field 'u' is empty"):
            load_dataset(spec, tmp_path)


def test_unparsable_number(tmp_path):
    message = _error(tmp_path, listens=LISTENS.replace("\t5\n", "\tfive\n"))
    assert message.startswith("listens.tsv line 3: field 'weight' is not a number ('five')")


@pytest.mark.parametrize("policy, kept, dropped, warnings", [
    ("dedupe", 3, {"duplicate (user, item) pair": 1}, {}),
    ("keep", 4, {}, {"duplicate (user, item) pair (kept)": 1}),
])
def test_duplicate_pairs_by_policy(tmp_path, policy, kept, dropped, warnings):
    dataset, report = _load(tmp_path, listens=LISTENS + "u1\ta1\t9\n",
                            interactions={"duplicates": policy})
    assert len(dataset.interactions) == kept
    assert dict(report.file("interactions").dropped) == dropped
    assert dict(report.file("interactions").warnings) == warnings


def test_dedupe_keeps_the_first_line_in_file_order(tmp_path):
    # line 2 (weight 3, t=200) and line 5 (weight 9, t=100) repeat (u1, a1): the first line in
    # the file wins even though the later line is older and weighs more
    listens = ("userID\tartistID\tweight\tt\nu1\ta1\t3\t200\nu1\ta2\t5\t150\n"
               "u2\ta1\t1\t120\nu1\ta1\t9\t100\n")
    columns = {"user": "userID", "item": "artistID", "weight": "weight", "timestamp": "t"}
    dataset, report = _load(tmp_path, listens=listens,
                            interactions={"duplicates": "dedupe", "columns": columns})
    inter = dataset.interactions
    u1, a1 = dataset.users.index("u1"), dataset.items.index("a1")
    mine = (inter.user == u1) & (inter.item == a1)
    assert mine.sum() == 1
    assert inter.weight[mine].tolist() == [3.0] and inter.timestamp[mine].tolist() == [200]
    assert dict(report.file("interactions").dropped) == {"duplicate (user, item) pair": 1}


def test_dedupe_skips_a_first_row_that_was_dropped_as_bad(tmp_path):
    # the first (u1, a1) line has an unparsable weight and is dropped: the next one is kept
    listens = "userID\tartistID\tweight\nu1\ta1\tfive\nu2\ta1\t1\nu1\ta1\t9\n"
    dataset, report = _load(tmp_path, listens=listens,
                            interactions={"duplicates": "dedupe", "bad_rows": "drop"})
    inter = dataset.interactions
    mine = inter.user == dataset.users.index("u1")
    assert inter.weight[mine].tolist() == [9.0]
    assert "duplicate (user, item) pair" not in dict(report.file("interactions").dropped)


def test_duplicate_pair_error_names_both_lines(tmp_path):
    message = _error(tmp_path, listens=LISTENS + "u1\ta1\t9\n")
    assert message.startswith("listens.tsv line 5: field 'userID, artistID' repeats (user, item) "
                              "pair ('u1', 'a1') first seen on line 2")
    assert "duplicates: dedupe" in message


def test_line_numbers_survive_dropped_and_blank_lines(tmp_path):
    listens = "userID\tartistID\tweight\nu1\ta1\t3\nbroken\n\nu2\ta2\t1\nu1\ta1\t4\n"
    message = _error(tmp_path, listens=listens, interactions={"bad_rows": "drop"})
    assert message.startswith("listens.tsv line 6: field 'userID, artistID' repeats")
    _, report = _load(tmp_path, listens=listens,
                      interactions={"bad_rows": "drop", "duplicates": "dedupe"})
    assert dict(report.file("interactions").dropped) == {
        "line with too few fields": 1, "blank line": 1, "duplicate (user, item) pair": 1}


def test_invalid_json_line(tmp_path):
    good = json.dumps({"u": "a", "i": "x", "r": 4})
    _write(tmp_path, "rows.jsonl.gz", gzip.compress(f'{good}\n{{"u": "b", "i": "y", "r'.encode()))
    spec = spec_from_dict({"name": "t", "sources": {"interactions": {
        "file": "rows.jsonl.gz", "columns": {"user": "u", "item": "i", "rating": "r"}}}})
    with pytest.raises(DataError, match=r"^rows.jsonl.gz line 2: is not valid JSON"):
        load_dataset(spec, tmp_path)


def test_corrupt_gzip(tmp_path):
    _write(tmp_path, "rows.csv.gz", gzip.compress(b"u,i\na,b\n")[:-6])
    spec = spec_from_dict({"name": "t", "sources": {"interactions": {
        "file": "rows.csv.gz", "columns": {"user": "u", "item": "i"}}}})
    with pytest.raises(DataError, match="^rows.csv.gz: is not a complete gzip file"):
        load_dataset(spec, tmp_path)


def test_missing_file_and_optional_file(tmp_path):
    social = {"file": "friends.tsv", "columns": {"source": "userID", "target": "friendID"}}
    assert _error(tmp_path, social=social).startswith("friends.tsv: not found")
    dataset, report = _load(tmp_path, social={**social, "optional": True})
    assert dataset.social is None
    assert "optional file not found" in report.file("social").note


def test_empty_review_text_by_policy(tmp_path):
    _write(tmp_path, "reviews.csv", 'u,i,summary,text\nu1,a1,fine,"great, really"\n'
                                    'u2,a1,meh,\n')
    reviews = {"file": "reviews.csv", "columns": {"user": "u", "item": "i",
                                                  "text": ["summary", "text"]}}
    message = _error(tmp_path, reviews=reviews)
    assert message.startswith("reviews.csv line 3: field 'text' is empty")
    dataset, report = _load(tmp_path, reviews={**reviews, "empty_text": "keep"})
    assert dataset.reviews.text == ("fine\ngreat, really", "meh")
    assert dict(report.file("reviews").warnings) == {"empty text (kept)": 1}
    dataset, report = _load(tmp_path, reviews={**reviews, "empty_text": "drop"})
    assert len(dataset.reviews) == 1 and dict(report.file("reviews").dropped) == {"empty text": 1}


def test_validate_collects_errors_of_every_source(tmp_path):
    _write(tmp_path, "listens.tsv", LISTENS)
    _write(tmp_path, "friends.tsv", FRIENDS + "u1\tu9\n")
    _write(tmp_path, "titles.csv", "id,title\na1,One\na1,Again\n")
    spec = _spec(social={"file": "friends.tsv",
                         "columns": {"source": "userID", "target": "friendID"}},
                 item_text={"file": "titles.csv", "columns": {"item": "id"}, "fields": ["title"]})
    dataset, report = validate_dataset(spec, tmp_path)
    assert dataset is None and not report.usable
    assert len(report.errors) == 2
    assert report.errors[0].startswith("titles.csv line 3: field 'id' repeats item id ('a1',)")
    assert report.errors[1].startswith("friends.tsv line 4: field 'friendID' refers to unknown")
    assert "2 error(s)" in report.summary()


def test_attributes_align_with_the_vocabulary(tmp_path):
    _write(tmp_path, "items.csv", "id,year,genres,price,date\n"
                                  "a2,1999,rock;pop,3.5,01-Jan-1995\na1,,jazz,,\n")
    spec_items = {"file": "items.csv", "columns": {"item": "id"}, "attributes": [
        "year", {"name": "genres", "kind": "multi", "separator": ";"},
        {"name": "price", "kind": "numeric"},
        {"name": "released", "kind": "year", "column": "date", "format": "%d-%b-%Y"}]}
    dataset, _ = _load(tmp_path, item_attributes=spec_items)
    columns = dataset.item_attributes.attributes.columns
    assert columns["year"].tolist() == ["", "1999"]  # categorical by default, "" when missing
    assert columns["genres"].tolist() == ["jazz", "rock|pop"]
    assert np.isnan(columns["price"][0]) and columns["price"][1] == 3.5
    assert np.isnan(columns["released"][0]) and columns["released"][1] == 1995


def test_kg_restricts_items_and_names_entities_after_items(tmp_path):
    _write(tmp_path, "kg.txt", "e0\tgenre\te9\r\ne1\tgenre\te9\r\ne9\tsimilar\te8\r\n")
    _write(tmp_path, "links.txt", "a1\te0\r\nzz\te1\r\n")
    _write(tmp_path, "names.tsv", "id\tname\na1\tAlpha\na2\tBeta\nzz\tZed\n")
    no_header = {"format": "tsv", "header": False}
    kg = {"restrict_items": True, "entity_names_from_item_text": "name",
          "triples": {"file": "kg.txt", **no_header, "names": ["h", "r", "t"],
                      "columns": {"head": "h", "relation": "r", "tail": "t"}},
          "links": {"file": "links.txt", **no_header, "names": ["item", "entity"],
                    "columns": {"item": "item", "entity": "entity"}, "unknown_ids": "drop"}}
    item_text = {"file": "names.tsv", "columns": {"item": "id"}, "fields": ["name"],
                 "unknown_ids": "drop"}
    _write(tmp_path, "listens.tsv", LISTENS)
    spec = spec_from_dict({"name": "kg", "vocabulary": {"items_from": ["interactions", "kg"]},
                           "sources": {"interactions": {
                               "file": "listens.tsv", "columns": {"user": "userID",
                                                                  "item": "artistID"}},
                               "kg": kg, "item_text": item_text}})
    dataset, report = load_dataset(spec, tmp_path)
    assert dataset.items.ids == ("a1", "zz")  # a2's listen is dropped; zz comes from the links
    assert dict(report.file("interactions").dropped) == {"item not linked to the KG": 1}
    assert dict(report.file("item_text").dropped) == {"unknown item": 1}
    kg_data = dataset.kg
    assert kg_data.entities.ids == ("e0", "e1", "e9", "e8")
    assert kg_data.entity_names == ("Alpha", "Zed", "", "")
    assert kg_data.relations.ids == ("genre", "similar") and len(kg_data) == 3


def test_entity_names_need_an_item_text_field():
    with pytest.raises(ValueError, match="'title' is not a field"):
        spec_from_dict({"name": "t", "sources": {
            "interactions": {"file": "a.csv", "columns": {"user": "u", "item": "i"}},
            "kg": {"entity_names_from_item_text": "title",
                   "triples": {"file": "kg.csv", "columns": {"head": "h", "relation": "r",
                                                            "tail": "t"}},
                   "links": {"file": "l.csv", "columns": {"item": "i", "entity": "e"}}}}})


def test_wrong_separator_is_pointed_out(tmp_path):
    message = _error(tmp_path, listens=LISTENS.replace("\t", ","))
    assert message.startswith("listens.tsv line 1: field 'userID' not found; the header was read "
                              "as one column: is sep right?")


def test_jsonl_numbers_given_as_strings_or_nulls(tmp_path):
    rows = [{"u": "a", "i": "x", "r": "4.5"}, {"u": "b", "i": "x", "r": None},
            {"u": "c", "i": "y", "r": "oops"}]
    _write(tmp_path, "rows.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    spec = spec_from_dict({"name": "t", "sources": {"interactions": {
        "file": "rows.jsonl", "columns": {"user": "u", "item": "i", "rating": "r"},
        "bad_rows": "drop"}}})
    dataset, report = load_dataset(spec, tmp_path)
    assert dataset.interactions.rating.tolist() == [4.5]
    assert dict(report.file("interactions").dropped) == {"r is not a number": 1, "missing r": 1}
