"""``cold-users``: a seeded ``cold_fraction`` of users is held out entirely.

Every pair of a cold user goes to valid or test -- by user (``valid_share`` of the cold users
validate) -- except the user's first ``user_shots`` pairs (by timestamp where there is one,
else in a seeded order; at most all but one), which stay in ``split.train``: they are the
history a model may read for that user (features, fold-in training), never a test target.
A cold user keeps attributes and friends; their tags and reviews are removed except on those
shot pairs. ``rank_among: cold`` ranks each part among the items its cold users interacted
with; ``all`` over every item. See ``docs/cold-start.md``.
"""

from __future__ import annotations

from fusionrec.data.protocols.cold import cold_features, cold_start, make_cold_split
from fusionrec.data.schema import Dataset
from fusionrec.data.split import Split

NAME = "cold-users"
TASK = "topk"
KIND = "users"


def split(dataset: Dataset, seed: int = 0, *, cold_fraction: float = 0.2,
          valid_share: float = 0.5, user_shots: int = 0, rank_among: str = "cold") -> Split:
    params = {"cold_fraction": float(cold_fraction), "valid_share": float(valid_share),
              "rank_among": rank_among, "user_shots": user_shots}
    return make_cold_split(dataset, seed, NAME, TASK, KIND, params)


def features(dataset: Dataset, train, valid, test) -> Dataset:
    return cold_features(KIND, dataset, train, valid, test)


def cold(train, valid, test, params: dict):
    return cold_start(KIND, valid, test, params.get("rank_among", "cold"))
