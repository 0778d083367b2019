"""Property tests (hypothesis) over the loaders and textualisers.

Loaders: whatever bytes a source file holds, ``load_dataset`` returns a consistent dataset or
raises a one-line :class:`DataError` naming that file (and, where it can, the line and field),
never any other exception; ``validate_dataset`` never raises at all. Textualisers: any text in
any field gives a string with no e-mail address left in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusionrec.data.errors import DataError
from fusionrec.data.load import load_dataset, validate_dataset
from fusionrec.data.schema import Dataset
from fusionrec.data.spec import DatasetSpec, InteractionsSpec, ReviewsSpec, SocialSpec, TableSpec

FIELD_CHARS = list('ab019.-,;"\'\t\r\n #@') + ["é", "\x00", "\u2028", "𝄞"]
HEADERS = ("user,item,rating,timestamp", "user,item,rating", "usr,item,rating,timestamp", "")
FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


@st.composite
def csv_bytes(draw) -> bytes:
    """Mostly CSV-shaped text (right and wrong field counts, quotes, odd characters), now and
    then raw garbage or invalid UTF-8."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    header = draw(st.sampled_from(HEADERS))
    field = st.one_of(st.sampled_from(["u1", "u2", "i1", "i2", "4", "3.5", "", "NaN", "1e400",
                                       "1600000000", "-1"]),
                      st.text(st.sampled_from(FIELD_CHARS), max_size=6))
    rows = draw(st.lists(st.lists(field, min_size=1, max_size=5), max_size=12))
    text = "\n".join([header] + [",".join(row) for row in rows])
    data = text.encode("utf-8")
    if draw(st.booleans()) and data:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\r", b'"'])) + data[at:]
    return data


def _spec(root: Path, bad_rows: str, duplicates: str, side: str | None) -> DatasetSpec:
    columns = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
    parts = {}
    if side == "social":
        parts["social"] = SocialSpec(TableSpec("social.csv"), {"source": "user",
                                                               "target": "item"},
                                     bad_rows=bad_rows, unknown_ids="drop")
    elif side == "reviews":
        parts["reviews"] = ReviewsSpec(TableSpec("reviews.csv"), {"user": "user", "item": "item",
                                                                  "text": "rating"},
                                       bad_rows=bad_rows, unknown_ids="drop", empty_text="drop")
    return DatasetSpec("fuzz", InteractionsSpec(TableSpec("interactions.csv"), columns,
                                                bad_rows=bad_rows, duplicates=duplicates),
                       root=str(root), **parts)


def _check_outcome(spec: DatasetSpec, fuzzed: str) -> None:
    try:
        dataset, _ = load_dataset(spec)
    except DataError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(error.file)
        assert Path(error.file).name in ("interactions.csv", fuzzed), message
        return
    assert isinstance(dataset, Dataset)  # possibly empty: every row dropped by policy
    inter = dataset.interactions
    if len(inter):
        assert inter.user.max() < dataset.n_users and inter.item.max() < dataset.n_items
        assert inter.user.min() >= 0 and inter.item.min() >= 0
    for table in (dataset.social, dataset.reviews):
        if table is not None and len(table):
            users = table.user if hasattr(table, "user") else table.source
            assert 0 <= users.min() and users.max() < dataset.n_users


@FUZZ
@given(data=csv_bytes(), bad_rows=st.sampled_from(["error", "drop"]),
       duplicates=st.sampled_from(["error", "dedupe", "keep"]))
def test_any_interactions_file_loads_or_fails_with_a_located_data_error(tmp_path_factory, data,
                                                                        bad_rows, duplicates):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "interactions.csv").write_bytes(data)
    spec = _spec(root, bad_rows, duplicates, None)
    _check_outcome(spec, "interactions.csv")
    _, report = validate_dataset(spec)  # never raises: problems become report errors
    assert report.usable or report.errors


@FUZZ
@given(data=csv_bytes(), side=st.sampled_from(["social", "reviews"]),
       bad_rows=st.sampled_from(["error", "drop"]))
def test_any_side_source_file_loads_or_fails_with_a_located_data_error(tmp_path_factory, data,
                                                                      side, bad_rows):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "interactions.csv").write_text("user,item,rating,timestamp\nu1,i1,4,1600000000\n"
                                           "u2,i2,3,1600000001\nu1,i2,5,1600000002\n")
    (root / f"{side}.csv").write_bytes(data)
    _check_outcome(_spec(root, bad_rows, "error", side), f"{side}.csv")


FREE_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=80)


@FUZZ
@given(titles=st.lists(FREE_TEXT, min_size=8, max_size=8),
       reviews=st.lists(FREE_TEXT, min_size=4, max_size=4),
       tag=FREE_TEXT, email_at=st.integers(0, 7))
def test_textualisers_take_any_text_and_leave_no_email(titles, reviews, tag, email_at):
    from fusionrec.data.schema import ItemAttributes, ItemText, Reviews, Tags, Vocabulary
    from fusionrec.data.synthetic import generate
    from fusionrec.text.items import item_texts
    from fusionrec.text.scrub import scrub_pii
    from fusionrec.text.users import user_texts

    base = generate(n_users=6, n_items=8, n_interactions=20, review_fraction=0.5)
    titles = list(titles)
    titles[email_at] += " reach me: some.one+tag@mail.example.org"
    tags = base.item_attributes.tags
    names = list(tags.vocabulary.ids)
    names[0] = tag or "t"
    vocabulary = Vocabulary(tuple(dict.fromkeys(names))) if len(set(names)) == len(names) \
        else tags.vocabulary
    rev = base.reviews.take(np.arange(min(4, len(base.reviews))))
    dataset = base.replace(
        item_text=ItemText({"title": tuple(titles)}),
        reviews=Reviews(rev.user, rev.item, tuple(reviews[:len(rev)]), rev.rating,
                        rev.timestamp),
        item_attributes=ItemAttributes(base.item_attributes.attributes, Tags(
            tags.item, tags.tag, vocabulary, tags.user, tags.weight, tags.timestamp)))
    texts = item_texts(dataset) + user_texts(dataset)
    assert len(texts) == dataset.n_items + dataset.n_users
    for text in texts:
        assert isinstance(text, str) and not EMAIL.search(text), text
        assert scrub_pii(text) == text  # already scrubbed: scrubbing is idempotent
