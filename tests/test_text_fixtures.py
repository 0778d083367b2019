"""A tiny hand-built multi-source dataset whose texts can be checked word by word.

Users u1..u3, items i1..i4 (i4 has no name). Used by test_text*.py and test_encoders*.py.
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import (Attributes, Dataset, Interactions, ItemAttributes, ItemText,
                                   KnowledgeGraph, Reviews, Social, Tags, Vocabulary)


def tiny_dataset() -> Dataset:
    users = Vocabulary(("u1", "u2", "u3"))
    items = Vocabulary(("i1", "i2", "i3", "i4"))
    interactions = Interactions(
        user=[0, 0, 1, 1, 2], item=[0, 1, 1, 2, 3],
        rating=[5, 2, 4, 5, 3], timestamp=[100, 200, 150, 300, 50])
    user_attributes = Attributes({
        "age": np.array([30.0, 41.0, np.nan]),
        "occupation": np.array(["writer", "", "artist"], dtype=object),
        "zip_code": np.array(["94110", "10001", "73301"], dtype=object),
        "email": np.array(["a@b.com", "", ""], dtype=object),
    })
    tag_vocab = Vocabulary(("loud", "dreamy", "jazz"))
    tags = Tags(item=[0, 0, 0, 1, 2], tag=[0, 0, 1, 1, 2], vocabulary=tag_vocab,
                user=[0, 1, 0, 1, -1])
    item_attributes = ItemAttributes(
        Attributes({"genres": np.array(["Rock|Pop", "Pop", "Jazz", ""], dtype=object),
                    "release_year": np.array([1995.0, 2001.0, np.nan, 1980.0])}),
        tags)
    item_text = ItemText({
        "name": ("Alpha Band", "Beta Group", "Gamma", ""),
        "description": ("Loud guitars. Call +1 415 555 0100 or write bob@example.com now.",
                        "Soft pop songs.", "", "A mystery box of cables."),
    })
    social = Social(source=[0], target=[1])
    kg = KnowledgeGraph(
        head=[0, 1, 0, 1, 2], relation=[0, 0, 1, 1, 1], tail=[3, 3, 4, 4, 5],
        entities=Vocabulary(("e0", "e1", "e2", "e3", "e4", "e5")),
        relations=Vocabulary(("music.artist.origin", "music.group.member")),
        link_item=[0, 1, 2], link_entity=[0, 1, 2],
        entity_names=("", "", "", "London", "", ""))
    reviews = Reviews(user=[0, 2], item=[0, 3],
                      text=("Great record\nLoved it, visit www.spam-shop.com today. More text.",
                            "Solid cable. Works fine."),
                      rating=[5, 3], timestamp=[100, 50])
    return Dataset("tiny", users, items, interactions, user_attributes, item_attributes,
                   item_text, social, kg, reviews)
