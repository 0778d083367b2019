"""Why review-built item text hurt the fusion model on Amazon Instruments (loo-temporal).

Measures, on the split of configs/scenario-ecommerce.yaml, with the frozen MiniLM vectors the
model reads (no training involved):

- leakage: held-out (valid/test) pairs whose review reaches the features' reviews (must be 0);
- how often an item's text quotes the scored user's own review (train vs test pairs);
- text-only ranking: the share of positives in the top 10 by (a) the user's own-text vector
  (``text_user: lm``/``both``) and (b) the user's text profile (mean of their training items'
  vectors, ``text_user: profile``), with the scored item inside the profile (what training
  sees under ``hide_batch_edges: false``) and left out (``true``), against valid and test.

    python benchmarks/ecommerce_text_diagnosis.py --data-dir /work/shared/data \
        --out benchmarks/results/amazon-ecommerce/diagnosis.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fusionrec.config import load_config
from fusionrec.encoders.config import EncoderConfig
from fusionrec.encoders.features import text_features
from fusionrec.text.options import TextOptions
from fusionrec.text.reviews import ReviewText
from fusionrec.training.run import load_data, make_split

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "scenario-ecommerce.yaml"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _share_in_top10(user_vectors: np.ndarray, items: np.ndarray, item_vectors: np.ndarray
                    ) -> float:
    scores = user_vectors @ item_vectors.T  # (n_pairs, n_items)
    positive = scores[np.arange(len(items)), items]
    return float(np.mean((scores > positive[:, None]).sum(1) < 10))


def _quoted_pairs(features, max_reviews: int) -> set[tuple[int, int]]:
    """(user, item) pairs whose review is among the item text's quoted reviews."""
    reviews = features.reviews
    text = ReviewText(reviews, features.n_items, features.n_users, 5.0, max_reviews)
    quoted = set()
    for item in range(features.n_items):
        rows = text._recent_first(text.by_item.rows(item))[:max_reviews]
        quoted.update((int(reviews.user[r]), item) for r in rows)
    return quoted


def diagnose(data_dir: str | None) -> dict:
    config = load_config(CONFIG)
    dataset = load_data(config.data, data_dir).dataset
    split = make_split(dataset, config.protocol)
    f = split.features
    encoder = EncoderConfig.from_dict(config.to_dict()["encoder"])
    lm = text_features(f, encoder)
    items, users = _unit(lm.item), _unit(lm.user)
    train = f.interactions
    parts = {"train": (train.user, train.item), "valid": (split.valid.user, split.valid.item),
             "test": (split.test.user, split.test.item)}
    held_out = {(int(u), int(i)) for part in ("valid", "test")
                for u, i in zip(*parts[part][:2])}
    review_pairs = set(zip(f.reviews.user.tolist(), f.reviews.item.tolist()))
    quoted = _quoted_pairs(f, TextOptions.for_max_length(encoder.max_length).max_reviews)

    profile_sum = np.zeros((f.n_users, items.shape[1]))  # (n_users, d)
    np.add.at(profile_sum, train.user, items[train.item])
    counts = np.bincount(train.user, minlength=f.n_users).astype(np.float64)

    def profile(u, i, leave_out: bool) -> np.ndarray:
        total = profile_sum[u] - (items[i] if leave_out else 0.0)
        return total / np.maximum(counts[u] - (1 if leave_out else 0), 1)[:, None]

    out = {"held_out_pairs_in_feature_reviews": len(held_out & review_pairs),
           "item_text_quotes_the_users_own_review": {
               part: float(np.mean([(int(u), int(i)) in quoted for u, i in zip(*parts[part])]))
               for part in ("train", "test")},
           "top10_by_own_user_text": {p: _share_in_top10(users[u], i, items)
                                      for p, (u, i) in parts.items()},
           "top10_by_text_profile": {
               "train_item_inside_profile": _share_in_top10(profile(*parts["train"], False),
                                                            parts["train"][1], items),
               "train_item_left_out": _share_in_top10(profile(*parts["train"], True),
                                                      parts["train"][1], items),
               "valid": _share_in_top10(profile(*parts["valid"], False), parts["valid"][1],
                                        items),
               "test": _share_in_top10(profile(*parts["test"], False), parts["test"][1],
                                       items)}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = diagnose(args.data_dir)
    print(f"held-out pairs whose review is in the features: "
          f"{result['held_out_pairs_in_feature_reviews']}")
    quotes = result["item_text_quotes_the_users_own_review"]
    print(f"item text quotes the user's own review: train {quotes['train']:.3f}, "
          f"test {quotes['test']:.3f}")
    print("share of positives in the top 10, text alone:")
    for name, values in (("own user text", result["top10_by_own_user_text"]),
                         ("text profile", result["top10_by_text_profile"])):
        print(f"  {name:14s} " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
