"""``fusionrec text show --prompt``: the printed prompt is the one the cross-encoder builds
(compared with a fitted model's own ``prompts``), with token counts against the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from fusionrec.cli.main import main
from fusionrec.data.synthetic import generate
from fusionrec.data.split import Pairs
from training_support import RUNNER

FEWSHOT = {"name": "fewshot-tallrec", "seed": 0, "params": {"shots": 8, "n_records": 300}}


def _params(tiny_bert: Path) -> dict:
    return {"model": str(tiny_bert), "feature_model": "hashing:16", "mode": "lora",
            "max_length": 64, "item_budget": 24, "epochs": 1, "batch_size": 8,
            "valid_rows": 8, "precision": "fp32", "progress": False, "num_threads": 1,
            "item_noun": "song"}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory, tiny_bert) -> Path:
    path = tmp_path_factory.mktemp("prompt") / "ce.yaml"
    path.write_text(yaml.safe_dump({"data": {"preset": "synthetic"}, "protocol": FEWSHOT,
                                    "model": {"name": "cross-encoder",
                                              "params": _params(tiny_bert)}}))
    return path


def _show(capsys, *argv) -> tuple[int, str, str]:
    code = main(["text", "show", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _fitted_prompt(config_path: Path, user: int, item: int, row: Pairs | None = None):
    from fusionrec.config import load_config
    from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender
    from fusionrec.training.run import load_data, make_split

    config = load_config(config_path)
    split = make_split(load_data(config.data).dataset, config.protocol)
    model = CrossEncoderRecommender(**dict(config.model.params), runner=RUNNER).fit(split)
    row = row or Pairs(np.array([user]), np.array([item]), np.zeros(1, np.float32))
    return model.prompts(row)[0], split


def test_prompt_of_a_test_record_is_what_the_trained_model_reads(capsys, config_path):
    from fusionrec.config import load_config
    from fusionrec.training.run import load_data, make_split

    config = load_config(config_path)
    dataset = load_data(config.data).dataset
    split = make_split(dataset, config.protocol)
    record = split.test.take(np.array([3]))
    (user_text, item_text), _ = _fitted_prompt(config_path, 0, 0, row=record)
    user, item = dataset.users.ids[record.user[0]], dataset.items.ids[record.item[0]]
    code, out, err = _show(capsys, "--prompt", "--config", str(config_path), "--user", user,
                           "--item", item)
    assert code == 0
    assert out == f"{user_text}\n[SEP]\n{item_text}\n"
    assert "songs" in user_text                      # the config's item noun reached it
    assert "history: test row 3's own" in err        # the record's own 10 songs
    # token counts against the config's budget: 64 - 24 - 3 for the user side
    assert "/37 tokens, candidate " in err and "/24, pair " in err and "/64 with special" in err


def test_counts_are_the_tokenizers(capsys, config_path, tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    code, out, err = _show(capsys, "--prompt", "--config", str(config_path), "--user", "u5",
                           "--item", "i7")
    assert code == 0
    user_text, item_text = out.rstrip("\n").split("\n[SEP]\n")
    n_user = len(tokenizer(user_text, add_special_tokens=False)["input_ids"])
    n_pair = len(tokenizer(user_text, item_text)["input_ids"])
    assert f"user context {n_user}/37 tokens" in err and f"pair {n_pair}/64" in err
    assert n_pair <= 64


def test_preset_uses_the_full_dataset_and_default_settings(capsys):
    from fusionrec.models.cross_encoder.config import CrossEncoderConfig

    code, out, err = _show(capsys, "--prompt", "--preset", "synthetic", "--user", "u1",
                           "--item", "i3")
    assert code == 0
    user_text, item_text = out.rstrip("\n").split("\n[SEP]\n")
    world = generate()
    assert item_text.startswith("Candidate: " + world.item_text.fields["title"][3])
    assert "Liked" in user_text and "friends" in user_text   # history and social sources
    default = CrossEncoderConfig()
    assert f"/{default.max_length} with special tokens" in err
    assert "the user's most recent training items" in err


def test_run_folder_prompt_matches_the_config_prompt(capsys, config_path, tmp_path):
    assert main(["train", "-c", str(config_path), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    args = ["--user", "u2", "--item", "i11", "--prompt"]
    code, from_run, err = _show(capsys, "--run", str(tmp_path / "run"), *args)
    assert code == 0 and "the model's tokenizer" in err
    assert _show(capsys, "--config", str(config_path), *args)[1] == from_run


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "--preset", "synthetic", "--user", "u1"], "needs both --user and --item"),
    (["--prompt", "--preset", "synthetic", "--user", "nobody", "--item", "i1"],
     "user id 'nobody' is not in dataset synthetic"),
    (["--preset", "synthetic", "--user", "u1", "--item", "i1"], "exactly one of"),
    (["--config", "configs/quickstart-popularity.yaml", "--user", "u1"], "need --prompt"),
    (["--prompt", "--config", "configs/quickstart-popularity.yaml", "--user", "u1", "--item",
      "i1"], "needs a cross-encoder config"),
])
def test_mistakes_are_one_line_errors(capsys, argv, message):
    code, _, err = _show(capsys, *argv)
    assert code == 2 and message in err


def test_run_of_a_model_without_prompts_is_a_one_line_error(capsys, tmp_path):
    """``--run`` asks for the cross-encoder by class (the model contract), not by probing."""
    assert main(["train", "-c", "configs/quickstart-popularity.yaml", "--out",
                 str(tmp_path / "pop"), "--no-progress"]) == 0
    capsys.readouterr()
    code, _, err = _show(capsys, "--run", str(tmp_path / "pop"), "--user", "u1", "--item", "i1",
                         "--prompt")
    assert code == 2 and "holds model 'popularity', which builds no prompts" in err
