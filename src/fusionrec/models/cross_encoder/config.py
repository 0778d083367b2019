"""``CrossEncoderConfig``: every setting of the cross-encoder, validated once, JSON round-trip."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from fusionrec.devices import DEVICE_CHOICES, device_spec_error
from fusionrec.errors import FusionRecError, did_you_mean
from fusionrec.precision import CROSS_ENCODER_PRECISIONS

#: How much of the language model is trained.
MODES = ("lora", "prefix", "top_k", "full", "frozen", "none")
#: ``lm``: the LM's classification logit alone (the seed's recipe). ``hybrid``: LM logit plus a
#: linear head over cheap per-row side features, started at the history-positivity rule.
HEADS = ("lm", "hybrid")
#: What the fused prompt may mention (each can be switched off for ablations).
PROMPT_SOURCES = ("positivity", "history", "user", "social", "item", "tags", "kg", "reviews")
#: Per-row side features of the hybrid head (see ``side_features.py``).
SIDE_FEATURES = ("positivity", "recent_positivity", "similarity", "quality", "item_numeric",
                 "item_categories", "category_affinity", "shot_prior")


class CrossEncoderConfigError(FusionRecError, ValueError):
    """An invalid cross-encoder setting; the message names the key."""


def _tuple(value, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in values if v not in allowed]
    if bad:
        hint = did_you_mean(str(bad[0]), allowed) or ";"
        raise CrossEncoderConfigError(f"cross-encoder {key}: unknown {bad}{hint} known: {allowed}")
    return values


@dataclass(frozen=True)
class CrossEncoderConfig:
    """Settings of :class:`~fusionrec.models.cross_encoder.recommender.CrossEncoderRecommender`.

    - ``model``: Hugging Face model with a sequence-classification head (encoder or decoder);
      ``all-MiniLM-L6-v2`` is bundled, offline. ``feature_model``: encoder of the hybrid head's
      similarity/quality features (``None``: same as ``model``; ``hashing:64`` in tests).
    - ``mode``: ``lora`` / ``prefix`` (PEFT), ``top_k`` (unfreeze the top ``top_k_layers``
      layers), ``full``, ``frozen`` (only the classification head trains), ``none`` (no LM:
      the hybrid head's side features alone).
    - ``max_length`` tokens per prompt, of which ``item_budget`` go to the candidate.
    - ``augment``: also fit the side head on pseudo-rows read off the training rows' own
      histories (entry j = a target whose history is the entries before it; see
      ``history.history_pseudo_rows``); ``augment_lm`` feeds them to the LM too (slower).
    - ``valid_rows``: validation rows the LM is scored on after each epoch for early stopping
      (0: no validation at all, train ``epochs``; -1: the whole valid part). The side head is
      always selected on the whole valid part (its features are cheap).
    - ``l2_grid``: ridge strengths tried for the side head (next to the history-positivity
      rule and the parameter-free centroid head); the valid AUC picks one.
    """

    model: str = "all-MiniLM-L6-v2"  # Hugging Face sequence classifier (bundled: all-MiniLM-L6-v2)
    feature_model: str | None = None  # encoder of the side features (null: model)
    mode: str = "lora"
    # lm (the LM logit alone) | hybrid (LM logit + a linear head over side features)
    head: str = "hybrid"
    # what the prompt may mention (drop names for ablations)
    prompt_sources: tuple[str, ...] = PROMPT_SOURCES
    side_features: tuple[str, ...] = SIDE_FEATURES  # per-row side features of the hybrid head
    augment: bool = True
    augment_min_history: int = 1  # shortest history a pseudo-row of augment may have
    augment_lm: bool = False
    item_noun: str = "item"  # the word for an item in the prompt (movie, song, ...)
    # texts of a liked and a disliked item, for the quality side feature
    quality_probes: tuple[str, str] = ("a highly acclaimed, much loved classic",
                                       "a poorly reviewed, forgettable flop")
    max_length: int = 160  # tokens per prompt
    item_budget: int = 48  # tokens of the prompt that go to the candidate item
    history_size: int = 10  # history entries per prompt
    lr: float = 2e-4  # learning rate of the LM
    epochs: int = 8  # maximum training epochs of the LM
    batch_size: int = 16  # prompts per training step
    weight_decay: float = 0.01  # AdamW weight decay of the LM
    l2_grid: tuple[float, ...] = (0.5, 2.0, 8.0, 32.0, 128.0, 512.0, 2048.0)
    patience: int = 2  # epochs without a better valid AUC before stopping
    valid_rows: int = 256
    top_k_layers: int = 2
    lora_r: int = 8  # LoRA rank (mode lora)
    lora_alpha: int = 16  # LoRA scaling (mode lora)
    lora_dropout: float = 0.1  # LoRA dropout (mode lora)
    prefix_tokens: int = 10  # virtual tokens (mode prefix)
    precision: str = "auto"  # auto | fp32 | bf16 for the LM's training and scoring
    seed: int = 0  # seed of negatives, initialisation and shuffling (default: trainer.seed)
    num_threads: int = 0  # torch threads (0: torch's default)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (a run passes trainer.device)
    cache_dir: str | None = None  # embedding cache of the side features' encoder
    progress: bool = True  # show progress bars

    def __post_init__(self) -> None:
        def check(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise CrossEncoderConfigError(
                    f"cross-encoder {key} {message}, got {getattr(self, key)!r}")

        check(self.mode in MODES, "mode", f"must be one of {MODES}")
        check(self.head in HEADS, "head", f"must be one of {HEADS}")
        check(not (self.mode == "none" and self.head == "lm"), "head",
              "cannot be 'lm' with mode 'none' (there is no LM)")
        object.__setattr__(self, "prompt_sources",
                           _tuple(self.prompt_sources, "prompt_sources", PROMPT_SOURCES))
        object.__setattr__(self, "side_features",
                           _tuple(self.side_features, "side_features", SIDE_FEATURES))
        check(self.head == "lm" or "positivity" in self.side_features, "side_features",
              "must include 'positivity' (the hybrid head's prior)")
        probes = tuple(self.quality_probes)
        check(len(probes) == 2 and all(isinstance(p, str) and p for p in probes),
              "quality_probes", "must be two non-empty texts (liked, disliked)")
        object.__setattr__(self, "quality_probes", probes)
        for key in ("max_length", "item_budget", "history_size", "epochs", "batch_size",
                    "top_k_layers", "lora_r", "lora_alpha", "prefix_tokens"):
            value = getattr(self, key)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, key,
                  "must be a positive int")
        check(self.item_budget <= self.max_length // 2, "item_budget",
              "must be at most half of max_length")
        check(float(self.lr) > 0, "lr", "must be > 0")
        grid = tuple(float(v) for v in ((self.l2_grid,) if isinstance(
            self.l2_grid, (int, float)) else self.l2_grid))
        check(all(v > 0 for v in grid), "l2_grid", "must hold positive numbers")
        object.__setattr__(self, "l2_grid", grid)
        for key in ("weight_decay", "lora_dropout"):
            check(float(getattr(self, key)) >= 0, key, "must be >= 0")
        check(isinstance(self.patience, int) and self.patience >= 0, "patience", "must be >= 0")
        check(isinstance(self.augment_min_history, int) and self.augment_min_history >= 0,
              "augment_min_history", "must be an int >= 0")
        for key in ("augment", "augment_lm", "progress"):
            check(isinstance(getattr(self, key), bool), key, "must be true or false")
        check(isinstance(self.valid_rows, int) and self.valid_rows >= -1, "valid_rows",
              "must be -1 (all), 0 (none) or a positive int")
        check(self.precision in CROSS_ENCODER_PRECISIONS, "precision",
              f"must be one of {CROSS_ENCODER_PRECISIONS}")
        check(isinstance(self.num_threads, int) and self.num_threads >= 0, "num_threads",
              "must be an int >= 0")
        check(device_spec_error(self.device) is None, "device", f"must be {DEVICE_CHOICES}")

    @property
    def uses_lm(self) -> bool:
        return self.mode != "none"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "CrossEncoderConfig":
        values = dict(values or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            hint = did_you_mean(unknown[0], known) or ";"
            raise CrossEncoderConfigError(f"cross-encoder: unknown key(s) {unknown}{hint} "
                                          f"known: {known}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes) -> "CrossEncoderConfig":
        return dataclasses.replace(self, **changes)
