"""Cross-encoder on a tiny hand-built dataset with a tiny *randomly initialised* BERT.

The LM here is built from a 2-layer, 32-wide ``BertConfig`` in the test (random weights, so
its scores mean nothing); the tokenizer is the bundled MiniLM one (offline). The side features
use the hashing encoder. What is checked is behaviour: budgets, PII, history handling, every
training mode actually changing the trained weights, and save/load giving identical scores.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fusionrec.data.schema import (Attributes, Dataset, Interactions, ItemAttributes, ItemText,
                                   Social, Vocabulary)
from fusionrec.data.split import Pairs, Split
from fusionrec.models.cross_encoder.config import CrossEncoderConfig, CrossEncoderConfigError
from fusionrec.models.common.history import (history_pseudo_rows, row_history,
                                                    user_histories)
from fusionrec.models.cross_encoder.prompts import PromptBuilder, PromptPieces, tokenizer_counter
from fusionrec.models.cross_encoder.recommender import CrossEncoderRecommender
from fusionrec.models.cross_encoder.side_features import (SideTables, build_tables,
                                                          own_shot_labels, shot_pairs,
                                                          side_matrix)
from training_support import RUNNER

N_USERS, N_ITEMS, H = 6, 12, 4


def tiny_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(N_USERS), 6)
    item = np.concatenate([rng.choice(N_ITEMS, 6, replace=False) for _ in range(N_USERS)])
    rating = rng.integers(1, 6, user.size).astype(float)
    titles = [f"Movie number {i} ({1980 + i})" for i in range(N_ITEMS)]
    titles[3] = "Contact me at someone@example.com (1997)"  # PII inside a title
    genres = np.array(["Drama|Comedy", "Horror", "Drama", "Sci-Fi|Action"] * 3, dtype=object)
    return Dataset(
        name="tiny",
        users=Vocabulary.from_values(f"u{u}" for u in range(N_USERS)),
        items=Vocabulary.from_values(f"i{i}" for i in range(N_ITEMS)),
        interactions=Interactions(user, item, rating=rating,
                                  timestamp=np.arange(user.size) * 10),
        user_attributes=Attributes({
            "age": np.array([24., 31, 45, 19, 52, 38]),
            "occupation": np.array(["technician", "writer", "other", "student", "doctor",
                                    "artist"], dtype=object),
            "zip_code": np.array(["55105", "94043", "32067", "15213", "98101", "10003"],
                                 dtype=object)}),
        item_attributes=ItemAttributes(attributes=Attributes({
            "release_year": np.arange(1980., 1980 + N_ITEMS), "genres": genres})),
        item_text=ItemText({"title": tuple(titles)}),
        social=Social([0, 1, 2], [1, 2, 3]),
    )


def tiny_pairs(rng: np.random.Generator, n: int) -> Pairs:
    user = rng.integers(0, N_USERS, n)
    item = rng.integers(0, N_ITEMS, n)
    hist = np.stack([rng.choice(N_ITEMS, H, replace=False) for _ in range(n)])
    hist_labels = (rng.random((n, H)) < 0.5).astype(np.float32)
    # labels follow history positivity, so there is something to learn
    label = (hist_labels.mean(1) + 0.3 * rng.standard_normal(n) > 0.5).astype(np.float32)
    return Pairs(user, item, label, hist, hist_labels)


@pytest.fixture(scope="module")
def split() -> Split:
    ds = tiny_dataset()
    rng = np.random.default_rng(1)
    return Split("fewshot-tallrec", "ctr", 0, tiny_pairs(rng, 24), tiny_pairs(rng, 16),
                 tiny_pairs(rng, 16), ds)


@pytest.fixture(scope="module")
def tiny_lm(tiny_bert):
    """The session's random-weight tiny BERT (see conftest)."""
    return tiny_bert


def _params(tiny_lm, **extra) -> dict:
    # one thread: for a model this small (and on a shared CPU) thread hand-offs cost more
    # than they save -- measured 6x faster than two threads here
    return {"model": str(tiny_lm), "feature_model": "hashing:16", "max_length": 64,
            "item_budget": 24, "epochs": 2, "batch_size": 8, "valid_rows": 0,
            "precision": "fp32", "progress": False, "lr": 5e-3, "num_threads": 1, **extra}


# ---------------------------------------------------------------- prompts


def test_prompts_respect_the_budget_and_hold_no_pii(split, tiny_lm):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lm))
    count = tokenizer_counter(tokenizer)
    cfg = CrossEncoderConfig()
    pieces = PromptPieces.from_dataset(split.features, cfg.prompt_sources, 24, count)
    builder = PromptBuilder(pieces, cfg.prompt_sources, 64, 24, "movie", count)
    pairs = split.test
    history = row_history(pairs, None, None, H)
    prompts = builder.build(pairs.user, pairs.item, history)
    assert len(prompts) == len(pairs)
    for user_text, item_text in prompts:
        n = len(tokenizer(user_text, item_text)["input_ids"])  # no truncation asked for
        assert n <= 64
        assert len(tokenizer(item_text)["input_ids"]) <= 24 + 2
        joined = user_text + item_text
        assert "@" not in joined
        for zip_code in split.features.user_attributes.columns["zip_code"]:
            assert zip_code not in joined
    # the e-mail in item 3's title is scrubbed, the rest of the title survives
    assert "[email]" in builder.item_text(3) and "1997" in builder.item_text(3)
    # positivity sentence and like / dislike lists match the row's history
    row = 0
    liked = int(history.labels[row].sum())
    text = builder.user_text(int(pairs.user[row]), history.items[row], history.labels[row])
    assert f"Liked {liked} of {H} recent movies" in text
    if liked:
        assert "Liked:" in text
    if liked < H:
        assert "Disliked:" in text


def test_prompt_sources_can_be_switched_off(split):
    pieces = PromptPieces.from_dataset(split.features, ("history",), 24)
    builder = PromptBuilder(pieces, ("history",), 64, 24)
    history = row_history(split.test, None, None, H)
    text = builder.user_text(0, history.items[0], history.labels[0])
    assert "recent" not in text and "age" not in text and "friend" not in text
    assert builder.item_text(0) == "Candidate: Movie number 0 (1980)."
    full = PromptPieces.from_dataset(split.features, CrossEncoderConfig().prompt_sources, 40)
    assert "genres: Drama, Comedy" in full.item_texts[0]
    assert full.social_parts[0] and "friend" in full.social_labels[0]


def test_prompt_pieces_json_round_trip(split):
    pieces = PromptPieces.from_dataset(split.features, CrossEncoderConfig().prompt_sources, 24)
    assert PromptPieces.from_json(json.loads(json.dumps(pieces.to_json()))) == pieces


# ---------------------------------------------------------------- histories and side features


def test_row_history_drops_the_candidate_without_shortening():
    ds = tiny_dataset()
    items, labels = user_histories(ds, 4)
    assert items.shape == (N_USERS, 4)
    user0 = ds.interactions.item[ds.interactions.user == 0]
    assert list(items[0]) == list(user0[-4:])  # most recent last, in time order
    pairs = Pairs(np.array([0, 0]), np.array([user0[-1], 99]), np.array([1.0, 0.0]))
    hist = row_history(pairs, items, labels, 3)
    assert user0[-1] not in hist.items[0]          # the candidate never answers itself ...
    assert hist.mask.sum(1).tolist() == [3, 3]     # ... and its row is as long as the others
    assert list(hist.items[0]) == list(user0[-4:-1])
    assert list(hist.items[1]) == list(user0[-3:])


def test_side_features_positivity_and_leave_one_out_shot_prior():
    n_items = 5
    # two records of user 0: record 1's history repeats record 0's target (item 0, liked)
    train = Pairs(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 0.0]),
                  np.array([[2, 3, 4], [3, 4, 0]]), np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]))
    hist = row_history(train, None, None, 3)
    keys, labels = shot_pairs(train.user, train.item, train.label, hist, n_items)
    assert sorted(keys.tolist()) == [0, 1, 2, 3, 4]    # (user 0, item 0) counted once
    pos = np.bincount(keys % n_items, labels, minlength=n_items).astype(np.float32)
    cnt = np.bincount(keys % n_items, minlength=n_items).astype(np.float32)
    tables = SideTables(np.zeros((n_items, 0), np.float32), np.zeros(n_items, np.float32),
                        np.zeros((n_items, 0), np.float32), np.zeros((n_items, 0), np.float32),
                        pos, cnt)
    x = side_matrix(("positivity", "shot_prior"), tables, train.item, hist)
    np.testing.assert_allclose(x[:, 0], [np.log(3 / 2), np.log(3 / 2)], rtol=1e-6)
    own = own_shot_labels(train.user, train.item, keys, labels, n_items)
    assert own.tolist() == [1.0, 0.0]
    loo = side_matrix(("positivity", "shot_prior"), tables, train.item, hist, own)
    # without its own (user, item), item 0 has no evidence left: the base rate, as for item 1
    np.testing.assert_allclose(loo[0, 1], loo[1, 1], rtol=1e-6)
    assert x[0, 1] > loo[0, 1] and x[1, 1] < loo[1, 1]
    # a user who never met item 0 is not affected by the leave-one-out
    assert np.isnan(own_shot_labels(np.array([1]), np.array([0]), keys, labels, n_items)[0])


def test_history_pseudo_rows_read_only_the_past():
    pairs = Pairs(np.array([7]), np.array([9]), np.array([1.0]),
                  np.array([[1, 2, 3, 4]]), np.array([[1.0, 0.0, 1.0, 0.0]]))
    pseudo = history_pseudo_rows(pairs, min_history=1)
    assert pseudo.item.tolist() == [2, 3, 4] and pseudo.label.tolist() == [0.0, 1.0, 0.0]
    assert pseudo.user.tolist() == [7, 7, 7]
    assert pseudo.history_items.tolist() == [[-1, -1, -1, 1], [-1, -1, 1, 2], [-1, 1, 2, 3]]
    assert pseudo.history_labels[2].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert 9 not in pseudo.item  # the record's own target is never a pseudo-row
    assert len(history_pseudo_rows(pairs, min_history=3)) == 1


def test_category_features(split):
    tables, names, _ = build_tables(split.features, ["x"] * N_ITEMS, CrossEncoderConfig(
        side_features=("positivity", "item_categories", "category_affinity")),
        np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert names == ["genres=Action", "genres=Comedy", "genres=Drama", "genres=Horror",
                     "genres=Sci-Fi"]
    assert tables.categories[0].tolist() == [0, 1, 1, 0, 0]  # "Drama|Comedy"
    hist = row_history(Pairs(np.array([0]), np.array([2]), np.array([1.0]),
                             np.array([[0, 1, 4]]), np.array([[1.0, 1.0, 0.0]])), None, None, 3)
    x = side_matrix(("category_affinity",), tables, np.array([2]), hist)  # item 2: Drama
    # history sharing a genre with Drama: items 0 (liked) and 4 (Drama|Comedy, disliked)
    np.testing.assert_allclose(x[0, 0], np.log(1.5 / 1.5))


# ---------------------------------------------------------------- training modes and persistence


@pytest.mark.parametrize("mode", ["lora", "prefix", "top_k", "full", "frozen", "none"])
def test_each_mode_trains_and_round_trips(split, tiny_lm, tmp_path, mode):
    import torch

    model = CrossEncoderRecommender(**_params(tiny_lm, mode=mode, top_k_layers=1), runner=RUNNER)
    model.fit(split)
    lm_names = [n for n, p in model.net_.named_parameters() if p.requires_grad]
    assert all(n.startswith("lm.") for n in lm_names)  # the side head is fitted, then fixed
    assert bool(lm_names) == (mode != "none")
    # stage 1 moved the side head off its prior (1 on positivity, 0 elsewhere)
    assert not torch.equal(model.net_.side.weight[0], model.net_.prior)
    if mode == "top_k":
        assert all(".layer.0." not in n for n in lm_names)   # the bottom layer stays frozen
    if mode in ("lora", "prefix"):
        assert all(("lora_" in n or "prompt_encoder" in n or "modules_to_save" in n)
                   for n in lm_names)
    if mode != "none":  # stage 2 moved the LM's trainable weights away from their start
        from fusionrec.models.cross_encoder.backbone import load_lm

        start = dict(load_lm(model.config, zero_head=True).model.named_parameters())
        trained = dict(model.net_.named_parameters())
        assert any(not torch.equal(trained[n].detach(), start[n[len("lm."):]].detach())
                   for n in lm_names)
    scores = model.score_pairs(split.test)
    assert scores.shape == (len(split.test),) and np.all(np.isfinite(scores))

    model.save(tmp_path)
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"model.json", "model.safetensors", "prompts.json"} <= files
    if mode in ("lora", "prefix"):
        assert "lm/adapter_model.safetensors" in files and "lm/adapter_config.json" in files
    elif mode != "none":
        from safetensors.numpy import load_file

        saved = load_file(str(tmp_path / "lm" / "trained.safetensors"))
        assert set(saved) == {n[len("lm."):] for n in lm_names}  # only what was trained
    assert not any(f.endswith(".bin") or f.endswith(".pkl") for f in files)
    loaded = CrossEncoderRecommender.load(tmp_path)
    np.testing.assert_allclose(loaded.score_pairs(split.test), scores, rtol=1e-5, atol=1e-6)
    assert loaded.prompts(split.test.take(np.arange(2))) == model.prompts(
        split.test.take(np.arange(2)))


def test_decoder_with_classification_head_trains_with_lora(split, tiny_lm, tmp_path_factory):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    for f in tiny_lm.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            shutil.copy(f, folder / f.name)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=30522, n_embd=32, n_layer=2, n_head=2, n_positions=128,
                        num_labels=1, pad_token_id=0)
    GPT2ForSequenceClassification(config).save_pretrained(str(folder))
    model = CrossEncoderRecommender(**_params(folder, mode="lora", head="lm"), runner=RUNNER)
    model.fit(split)
    assert model.lm_info_["is_decoder"]
    assert np.all(np.isfinite(model.score_pairs(split.test)))


def test_untrained_hybrid_is_the_history_positivity_rule(tiny_lm):
    """With its head at zero, the LM adds exactly 0 and the net's logit is the standardised
    history positivity (the prior's only weight)."""
    import torch

    from fusionrec.models.cross_encoder.backbone import load_lm
    from fusionrec.models.cross_encoder.net import CrossEncoderNet

    lm = load_lm(CrossEncoderConfig(**{k: v for k, v in _params(tiny_lm).items()
                                       if k not in ("progress",)}), zero_head=True)
    positivity = np.array([[1.2], [-0.4], [0.0], [2.0]], dtype=np.float32)
    net = CrossEncoderNet(lm.model, 1, np.array([1.0]))
    net.set_side_scale(positivity)
    tokens = lm.tokenizer(["a b c", "d", "e f", "g h i j"], padding=True, return_tensors="pt")
    net.eval()
    with torch.no_grad():
        logits = net({**tokens, "side": torch.as_tensor(positivity)}).numpy()
    expected = (positivity[:, 0] - positivity.mean()) / positivity.std()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_side_head_is_picked_on_valid(split, tiny_lm):
    model = CrossEncoderRecommender(**_params(tiny_lm, mode="none", valid_rows=-1,
                                              l2_grid=[0.5, 8.0, 128.0]), runner=RUNNER).fit(split)
    side = model.summary_["side"]
    assert [(c["choice"], c["l2"]) for c in side["candidates"]] == [
        ("rule", None), ("centroid", None), ("ridge", 0.5), ("ridge", 8.0), ("ridge", 128.0)]
    assert side["side_valid_auc"] == max(c["valid_auc"] for c in side["candidates"])
    from fusionrec.metrics import auc_score

    assert auc_score(split.valid.label, model.score_pairs(split.valid)) == pytest.approx(
        side["side_valid_auc"])
    # without validation rows nothing can be compared: the parameter-free centroid head
    blind = CrossEncoderRecommender(**_params(tiny_lm, mode="none"), runner=RUNNER).fit(split)
    assert blind.summary_["side"]["choice"] == "centroid"


def test_centroid_head_is_the_label_correlation_direction(split, tiny_lm):
    import torch

    model = CrossEncoderRecommender(**_params(tiny_lm, mode="none", augment=False),
                                    runner=RUNNER).fit(split)
    net = model.net_
    model._build_side(split)
    rows = model._encode(split.train, training=True, prompts=False)
    z = (rows.side - net.side_mean.numpy()) / net.side_std.numpy()
    direction = z.T @ (rows.labels - rows.labels.mean()) / len(rows.labels)
    weight = net.side.weight.detach().numpy()[0]
    cosine = weight @ direction / np.linalg.norm(weight) / np.linalg.norm(direction)
    assert cosine == pytest.approx(1.0, abs=1e-5) and not torch.isnan(net.side.bias)


def test_training_is_deterministic_by_seed(split, tiny_lm):
    a = CrossEncoderRecommender(**_params(tiny_lm, mode="lora", seed=3), runner=RUNNER).fit(split)
    b = CrossEncoderRecommender(**_params(tiny_lm, mode="lora", seed=3), runner=RUNNER).fit(split)
    np.testing.assert_array_equal(a.score_pairs(split.test), b.score_pairs(split.test))


def test_auto_precision_is_decided_by_agreement(split, tiny_lm):
    model = CrossEncoderRecommender(**_params(tiny_lm, mode="lora", precision="auto",
                                              epochs=1), runner=RUNNER).fit(split)
    choice = model.precision_
    assert choice["precision"] in ("fp32", "bf16")
    if choice["precision"] == "bf16":
        assert choice["agreement"]["min_cosine"] >= 0.999


def test_auc_is_computed_from_probabilities(split, tiny_lm):
    """The seed took ``logits.argmax(dim=2)`` of a 2-D tensor; we rank sigmoid probabilities."""
    from sklearn.metrics import roc_auc_score

    from fusionrec.metrics import ctr_metrics, sigmoid

    model = CrossEncoderRecommender(**_params(tiny_lm, mode="lora"), runner=RUNNER).fit(split)
    probs = sigmoid(model.score_pairs(split.test))
    assert np.all((probs > 0) & (probs < 1)) and len(np.unique(probs)) > 2
    metrics = ctr_metrics(split.test.label, probs)
    assert metrics["auc"] == pytest.approx(roc_auc_score(split.test.label, probs))


def test_config_validation():
    with pytest.raises(CrossEncoderConfigError, match="mode"):
        CrossEncoderConfig(mode="adapter")
    with pytest.raises(CrossEncoderConfigError, match="prompt_sources"):
        CrossEncoderConfig(prompt_sources=("history", "gossip"))
    with pytest.raises(CrossEncoderConfigError, match="positivity"):
        CrossEncoderConfig(side_features=("similarity",))
    with pytest.raises(CrossEncoderConfigError, match="item_budget"):
        CrossEncoderConfig(max_length=64, item_budget=40)
    with pytest.raises(CrossEncoderConfigError, match="unknown key"):
        CrossEncoderConfig.from_dict({"learning_rate": 1})
    cfg = CrossEncoderConfig(mode="top_k", side_features=["positivity"])
    assert CrossEncoderConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_zero_shot_scores(split, tmp_path):
    from fusionrec.models.cross_encoder.zero_shot import zero_shot_scores

    cfg = CrossEncoderConfig(feature_model="hashing:16", max_length=64, item_budget=24,
                             progress=False)
    sim = zero_shot_scores(split.features, split.test, "history-similarity", cfg)
    assert sim.shape == (len(split.test),) and np.all(np.abs(sim) <= 1 + 1e-6)
    # a history holding only the candidate itself is blanked (a row never answers itself)
    own = Pairs(np.array([0]), np.array([0]), np.array([1.0]), np.array([[0, -1, -1, -1]]),
                np.array([[1.0, 0, 0, 0]]))
    assert zero_shot_scores(split.features, own, "history-similarity", cfg)[0] == 0.0
    cosine = zero_shot_scores(split.features, split.test, "prompt-cosine",
                              cfg.replace(cache_dir=str(tmp_path)))
    assert cosine.shape == (len(split.test),) and np.all(np.abs(cosine) <= 1 + 1e-6)
    with pytest.raises(ValueError, match="zero-shot method"):
        zero_shot_scores(split.features, split.test, "nli", cfg)


def test_history_positivity_baseline(split, tmp_path):
    from fusionrec.models.baselines.history_positivity import HistoryPositivity

    model = HistoryPositivity(history_size=H).fit(split)
    pairs = split.test
    keep = pairs.history_items != pairs.item[:, None]  # a row's own item never counts
    expected = (pairs.history_labels * keep).sum(1) / keep.sum(1)
    np.testing.assert_allclose(model.score_pairs(pairs), expected)
    # rows without their own history read the user's most recent training ratings (> 3 liked)
    ds = split.features
    inter = ds.interactions
    user0 = np.flatnonzero(inter.user == 0)[-H:]
    liked = float(np.mean(inter.rating[user0] > 3))
    unrated = np.setdiff1d(np.arange(N_ITEMS), inter.item[inter.user == 0])[0]
    assert model.score(np.array([0]), np.array([unrated]))[0] == pytest.approx(liked)
    model.save(tmp_path)
    loaded = HistoryPositivity.load(tmp_path)
    np.testing.assert_array_equal(loaded.score_pairs(pairs), model.score_pairs(pairs))


def test_recommend_ranks_unseen_items_by_lm_score(split, tiny_lm):
    model = CrossEncoderRecommender(**_params(tiny_lm, mode="lora", head="lm"),
                                    runner=RUNNER).fit(split)
    items, scores = model.recommend(np.array([0, 1]), k=3)
    assert items.shape == scores.shape == (2, 3)
    inter = split.features.interactions
    for row, user in enumerate([0, 1]):
        assert not set(items[row]) & set(inter.item[inter.user == user].tolist())
        np.testing.assert_allclose(model.score(np.full(3, user), items[row]), scores[row],
                                   rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
