"""The cold-start suites load into valid run configs: three seeds, the named protocol ranked
among the cold candidates, the same split settings for every row, every baseline of issue 17
present, and the fusion rows configured for cold entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrec.config import load_config
from fusionrec.experiments.peers import PEER_LIBRARIES
from fusionrec.experiments.suite import load_suite
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
SUITES = {"ml100k-cold-items": ("cold-items", "ml-100k"),
          "lastfm-cold-items": ("cold-items", "lastfm-kg"),
          "ml100k-cold-users": ("cold-users", "ml-100k")}
ROWS = ["random", "popularity", "content-knn", "content-map", "cornac-ctr", "fusion",
        "fusion-hashing"]
#: Rows of one suite beyond ROWS: the fusion model with its LM fine-tuned (issue 17, item 4),
#: its lm_mode and seeds.
LM_ROWS = {"ml100k-cold-items": {"fusion-lora": ("lora", (0, 1, 2)),
                                 "fusion-top-k": ("top_k", (0, 1, 2))}}


@pytest.mark.parametrize("name", sorted(SUITES))
def test_cold_suite_makes_valid_run_configs(name):
    protocol, preset = SUITES[name]
    suite = load_suite(REPO / "benchmarks" / f"{name}.yaml")
    lm_rows = LM_ROWS.get(name, {})
    assert [e.label for e in suite.entries] == ROWS + list(lm_rows)
    splits = set()
    for entry in suite.entries:
        assert entry.seeds == lm_rows.get(entry.label, (None, (0, 1, 2)))[1]
        for seed in entry.seeds:
            config = load_config(entry.config, entry.run_overrides(seed))
            assert (config.protocol.name, config.protocol.seed) == (protocol, seed)
            assert config.data.preset == preset
            params = dict(config.protocol.params)
            assert params["rank_among"] == "cold" and params["cold_fraction"] == 0.2
            if protocol == "cold-users":
                assert params["user_shots"] == 0
            # every row of a seed on one split: same data and protocol sections
            splits.add((seed, repr(config.to_dict()["data"]), repr(params)))
            if entry.peer:
                assert entry.peer in PEER_LIBRARIES
                continue
            assert config.model.name in MODELS
            if config.model.name == "fusion":
                fusion = FusionConfig(**config.model.params)
                assert fusion.mask_cold_ids
                assert fusion.lm_mode == lm_rows.get(entry.label, ("frozen",))[0]
                hashing = entry.label == "fusion-hashing"
                assert config.encoder.model == ("hashing:384" if hashing
                                                else "all-MiniLM-L6-v2")
            elif config.model.name in ("content-knn", "content-map"):
                assert config.encoder.model == "all-MiniLM-L6-v2"
    assert len(splits) == 3  # one split per seed, shared by all rows


def test_lastfm_cold_items_reads_no_user_made_tags():
    suite = load_suite(REPO / "benchmarks" / "lastfm-cold-items.yaml")
    for entry in suite.entries:
        config = load_config(entry.config, entry.run_overrides(0))
        assert "item_attributes" in config.data.exclude_sources
        if config.model.name == "fusion":
            assert "kg" in FusionConfig(**config.model.params).sources
