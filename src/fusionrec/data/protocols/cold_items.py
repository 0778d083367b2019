"""``cold-items``: a seeded ``cold_fraction`` of items is held out entirely.

Every pair of a cold item goes to valid or test -- by item, so one cold item's pairs are all in
valid or all in test (``valid_share`` of the cold items validate) -- and none to train. A cold
item's features keep only content that exists before anyone interacts with it (name, text
fields, attributes, KG edges): every tag and review on it is removed, whoever wrote it.
``rank_among: cold`` ranks each part among its own cold items; ``all`` over every item. See
``docs/cold-start.md``.
"""

from __future__ import annotations

from fusionrec.data.protocols.cold import cold_features, cold_start, make_cold_split
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Split

NAME = "cold-items"
TASK = "topk"
KIND = "items"


def split(dataset: Dataset, seed: int = 0, *, cold_fraction: float = 0.2,
          valid_share: float = 0.5, rank_among: str = "cold") -> Split:
    params = {"cold_fraction": float(cold_fraction), "valid_share": float(valid_share),
              "rank_among": rank_among}
    return make_cold_split(dataset, seed, NAME, TASK, KIND, params)


def features(dataset: Dataset, train, valid, test) -> Dataset:
    return cold_features(KIND, dataset, train, valid, test)


def cold(train, valid, test, params: dict):
    return cold_start(KIND, valid, test, params.get("rank_among", "cold"))
