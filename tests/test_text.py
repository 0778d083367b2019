"""Textualisers: what each source contributes, budgets, purity, leakage, and ``text show``."""

from __future__ import annotations

import numpy as np
import pytest
from test_text_fixtures import tiny_dataset

from fusionrec.cli.main import main
from fusionrec.text.budget import Section, compose, count_tokens
from fusionrec.text.common import display_name, humanise
from fusionrec.text.items import ItemTextualiser, item_texts
from fusionrec.text.options import ITEM_TEXT_VERSION, USER_TEXT_VERSION, TextOptions
from fusionrec.text.users import UserTextualiser, user_texts


@pytest.fixture(scope="module")
def tiny():
    return tiny_dataset()


def test_item_text_reads_every_source(tiny):
    text = item_texts(tiny)[0]
    lines = text.splitlines()
    assert lines[0] == "Alpha Band."
    assert "genres: Rock, Pop; release year: 1995." in lines
    assert "Tags: loud (2), dreamy." in lines
    # Named KG value by name; unnamed value described by the item that shares it.
    assert "Facts: artist origin: London; group member: shared with Beta Group." in lines
    assert any(line.startswith('Reviews: "Great record. Loved it') for line in lines)
    assert "Rated 5.0 of 5 on average by 1 reviewer." in lines


def test_item_text_scrubs_pii_from_every_field(tiny):
    texts = " ".join(item_texts(tiny) + user_texts(tiny))
    for secret in ("bob@example.com", "555 0100", "spam-shop", "a@b.com", "94110", "10001"):
        assert secret not in texts
    assert "[phone]" in texts and "[email]" in texts and "[url]" in texts


def test_unnamed_item_leads_with_its_ratings(tiny):
    text = item_texts(tiny)[3]
    assert text.splitlines()[0] == "Rated 3.0 of 5 on average by 1 reviewer."
    assert "A mystery box of cables." in text


def test_user_text_history_recent_first_with_ratings(tiny):
    text = user_texts(tiny)[0]
    lines = text.splitlines()
    assert lines[0] == "age: 30; occupation: writer."  # zip code and e-mail never textualised
    assert "Recently rated (out of 5): Beta Group: 2; Alpha Band: 5." in lines
    assert "Tags they use: loud, dreamy." in lines
    # u2 (the friend) has i2 and i3; u1 already knows i2, so only Gamma is suggested.
    assert "Has 1 friend; friends like: Gamma." in lines
    assert any("They wrote:" in line and "(5 of 5)" in line for line in lines)


def test_user_with_only_unnamed_items_gets_a_summary(tiny):
    assert "Rated 1 item, 3.0 of 5 on average." in user_texts(tiny)[2].splitlines()


def test_like_dislike_labels_for_binary_feedback(tiny):
    inter = tiny.interactions
    binary = tiny.replace(interactions=type(inter)(inter.user, inter.item,
                                                   rating=(inter.rating >= 4).astype(float)),
                          reviews=None)
    text = user_texts(binary)[0]
    assert "Liked: Alpha Band." in text and "Disliked: Beta Group." in text


def test_held_out_pairs_never_reach_text(tiny):
    """Textualising split.features-like data: a removed interaction (and its review and tag
    assignment) must vanish from the user's text."""
    keep = ~((tiny.interactions.user == 0) & (tiny.interactions.item == 0))
    tags = tiny.item_attributes.tags
    features = tiny.replace(
        interactions=tiny.interactions.take(keep),
        reviews=tiny.reviews.take(np.array([False, True])),
        item_attributes=type(tiny.item_attributes)(
            tiny.item_attributes.attributes, tags.take(~((tags.user == 0) & (tags.item == 0)))))
    text = user_texts(features)[0]
    assert "Alpha Band" not in text
    assert "Great record" not in text
    assert "loud" not in text


def test_textualisers_are_pure_and_versioned(tiny):
    assert item_texts(tiny) == item_texts(tiny_dataset())
    assert user_texts(tiny) == user_texts(tiny_dataset())
    assert ItemTextualiser.version == ITEM_TEXT_VERSION != USER_TEXT_VERSION
    assert UserTextualiser.version == USER_TEXT_VERSION
    # Subsets render the same texts as the full pass.
    assert item_texts(tiny, items=[2, 0]) == (item_texts(tiny)[2], item_texts(tiny)[0])


def test_dataset_without_side_sources_still_textualises(tiny):
    bare = tiny.without("user_attributes", "item_attributes", "item_text", "social", "kg",
                        "reviews")
    items, users = item_texts(bare), user_texts(bare)
    assert items == ("",) * 4  # nothing is known about an item but its id: no invented text
    assert users[0] == "Rated 2 items, 3.5 of 5 on average."


def test_budget_keeps_headline_and_first_part_of_each_source(tiny):
    full = item_texts(tiny)[0]
    small = item_texts(tiny, TextOptions(budget=40))[0]
    assert count_tokens(small) <= 40 < count_tokens(full)
    assert small.splitlines()[0] == "Alpha Band."
    assert "Tags: loud" in small  # every source's best part before any source's tail


def test_compose_fills_round_robin_in_priority_order():
    sections = [Section("B", ("b1", "b2", "b3"), priority=1),
                Section("", ("Head",), priority=0),
                Section("C", ("c1 c1 c1 c1", "c2"), priority=2)]
    assert compose(sections, 1000) == "Head.\nB: b1, b2, b3.\nC: c1 c1 c1 c1, c2."
    tight = compose(sections, 14)
    assert tight.startswith("Head.\nB: b1")
    assert "c1" in tight and "b3" not in tight
    assert count_tokens(tight) <= 14


def test_compose_truncates_an_overlong_first_part():
    long = " ".join(f"word{i}" for i in range(200))
    text = compose([Section("", ("Name",), 0), Section("Review", (long,), 1)], 40)
    assert text.startswith("Name.\nReview: word0 word1")
    assert text.endswith("...") and count_tokens(text) <= 40


def test_text_options_validate():
    with pytest.raises(ValueError, match="budget"):
        TextOptions(budget=4)
    with pytest.raises(ValueError, match="max_tags"):
        TextOptions(max_tags=0)
    assert TextOptions.for_max_length(128).budget < 128


def test_helpers():
    assert humanise("music.artist.origin") == "artist origin"
    assert humanise("film.film.genre") == "film genre"
    assert humanise("release_year") == "release year"
    assert display_name("Nutty Professor, The (1996)") == "The Nutty Professor (1996)"
    assert display_name("Misérables, Les (1995)") == "Les Misérables (1995)"
    assert display_name("Kolya (1996)") == "Kolya (1996)"


def test_text_show_cli_prints_the_text(capsys):
    from fusionrec.data.load import load_dataset

    dataset, _ = load_dataset("synthetic")
    raw = dataset.items.ids[5]
    assert main(["text", "show", "--preset", "synthetic", "--item", raw]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == ItemTextualiser(dataset).text(5)
    assert "tokens" in out.err
    assert main(["text", "show", "--preset", "synthetic", "--user", dataset.users.ids[0]]) == 0
    assert "rated" in capsys.readouterr().out


def test_text_show_unknown_id_is_one_line_error(capsys):
    assert main(["text", "show", "--preset", "synthetic", "--item", "no-such-item"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fusionrec: error: item id 'no-such-item' is not in dataset")
    assert err.count("\n") == 1
