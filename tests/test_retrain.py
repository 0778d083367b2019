"""``fusionrec retrain``: warm start on recorded events, forgetting check, promotion gate.

The parent is the serving tests' small synthetic fusion run. The simulated new events are a
taste shift: the 20 users with the fewest jazz items start liking 8 jazz items each (the
parent recommends them no jazz at all), plus a brand-new user and a brand-new item.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from serving_support import API_KEY, trained_run

from fusionrec.cli.main import main
from fusionrec.cli.retrain_cmd import GATE_REFUSED
from fusionrec.continual.promotion import promotion_gate
from fusionrec.data.events import Event, ItemRecord, UserRecord, WriteBatch, open_store

TOPIC = "jazz"


@dataclass(frozen=True)
class World:
    parent: Path
    events: Path
    shifted: tuple[str, ...]   # users who turned to jazz
    jazz: frozenset[str]       # item ids whose category is jazz
    friend: str                # the new user's friend


def _jazz_shift(dataset, rng) -> tuple[list[Event], tuple[str, ...], np.ndarray]:
    cat = np.asarray(dataset.item_attributes.attributes.columns["category"])
    jazz = np.flatnonzero(cat == TOPIC)
    inter = dataset.interactions
    counts = np.bincount(inter.user[np.isin(inter.item, jazz)], minlength=dataset.n_users)
    users = np.argsort(counts, kind="stable")[:20]
    seen = set(zip(inter.user.tolist(), inter.item.tolist()))
    events = [Event(dataset.users.ids[u], dataset.items.ids[i], "like")
              for u in users
              for i in rng.choice([i for i in jazz if (u, i) not in seen], 8, replace=False)]
    return events, tuple(dataset.users.ids[u] for u in users), jazz


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from fusionrec.data.load import load_dataset

    parent = trained_run(tmp_path_factory.getbasetemp())
    dataset, _ = load_dataset("synthetic")
    events, shifted, jazz = _jazz_shift(dataset, np.random.default_rng(3))
    friend = dataset.users.ids[0]
    # The new user likes eight jazz items; the new item is jazz-worded and liked by 5 users.
    newbie = [Event("newbie", dataset.items.ids[i], "like") for i in jazz[:8]]
    path = tmp_path_factory.mktemp("retrain") / "events.sqlite3"
    store = open_store(str(path))
    store.write(WriteBatch(tuple(events + newbie), (UserRecord("newbie", friends=(friend,)),),
                           (ItemRecord("new-item", text="saxophone swing bebop smooth",
                                       tags=("smooth", "brand-new-tag")),)))
    store.write(WriteBatch(tuple(Event(u, "new-item", "like") for u in shifted[:5])))
    store.close()
    return World(parent, path, shifted, frozenset(dataset.items.ids[i] for i in jazz), friend)


def _cli(world: World, out: Path, *extra: str) -> int:
    return main(["retrain", str(world.parent), "--events", str(world.events), "--out", str(out),
                 "--no-progress", *extra])


@pytest.fixture(scope="module")
def retrained(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("retrained") / "run"
    assert _cli(world, out) == 0
    return out


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "retrain.json").read_text())


def test_retrain_learns_the_new_events_and_keeps_the_old(world, retrained):
    report = _report(retrained)
    metric = report["monitor"]
    assert metric == "ndcg@10"
    # the parent recommends no jazz to users who never liked any; the retrained model does
    assert report["new_metrics_after"][metric] > report["new_metrics_before"][metric] + 0.05
    old_before, old_after = (report[f"old_metrics_{w}"][metric] for w in ("before", "after"))
    assert old_after >= old_before - 0.01
    assert report["gate"]["passed"] and report["promoted"] and report["reload"] is None
    # 20 users x 8 + newbie's 8 + 5 likes of the new item, all new pairs
    assert report["events"]["new_positive_pairs"] == 173
    parts = report["new_pairs"]
    assert report["events_used"] == parts["train"] + parts["valid"] + parts["test"] == 173
    assert parts["sampled_negatives"] == 0  # top-K: no negatives
    parent_train = json.loads((world.parent / "split.json").read_text())["rows"]["train"]
    assert report["replay_size"] == round(0.5 * parent_train)
    assert report["train_rows"] == report["replay_size"] + report["new_pairs"]["train"]
    assert report["training"]["epochs_run"] <= 3 and report["wall_seconds"] > 0


def test_new_user_and_item_grow_the_vocabularies_and_get_rows(world, retrained):
    from fusionrec.training.artifacts import load_vocabularies, open_run

    old_users, old_items = load_vocabularies(world.parent)
    users, items = load_vocabularies(retrained)
    assert users.ids == old_users.ids + ("newbie",)
    assert items.ids == old_items.ids + ("new-item",)
    rows = _report(retrained)["warm_start"]
    # fresh rows: ID and social embeddings (newbie + new-item each: 2 + 2), the new item's
    # own KG entity (1), the new tag's attribute feature (1), the new item's bias (1)
    assert rows["fresh_rows"] == 7 and rows["weights"] == "best"
    _, _, model = open_run(retrained)
    top, _ = model.recommend(np.array([users.index("newbie")]), k=10)
    # newbie's training likes are jazz: most of the list is jazz (1 in 8 items is)
    assert sum(items.ids[i] in world.jazz for i in top[0]) >= 5
    from fusionrec.data.load import load_dataset

    grown, _ = load_dataset(str(retrained / "data" / "spec.yaml"))
    new_item = grown.items.index("new-item")
    assert grown.item_text.fields["title"][new_item] == "saxophone swing bebop smooth"
    assert "brand-new-tag" in grown.item_attributes.tags.vocabulary
    social = grown.social
    newbie, friend = grown.users.index("newbie"), grown.users.index(world.friend)
    assert {(friend, newbie), (newbie, friend)} & set(zip(social.source.tolist(),
                                                         social.target.tolist()))


def test_new_run_folder_is_complete_checksummed_and_servable(retrained, tmp_path):
    from fusionrec.serving.engine import Engine, load_run
    from fusionrec.training.artifacts import RunError, file_sha256, verify_run
    from fusionrec.evaluation.runs import evaluate_run

    manifest = verify_run(retrained)
    for name, digest in manifest["files"].items():
        assert file_sha256(retrained / name) == digest
    assert {"model.safetensors", "users.json", "items.json", "split.parquet"} <= set(
        manifest["files"])
    assert manifest["data"]["files"]  # the exported dataset's files are checksummed too
    result = evaluate_run(retrained)
    assert result["metrics"]["ndcg@10"] == pytest.approx(manifest["metrics"]["test"]["ndcg@10"])
    engine = Engine(load_run(retrained))
    items, _ = engine.recommend(engine.user_index("newbie"), 5, True)
    assert len(items) == 5
    tampered = tmp_path / "tampered"
    shutil.copytree(retrained, tampered)
    with (tampered / "model.safetensors").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\0\1\2\3")
    with pytest.raises(RunError, match="modified after training"):
        verify_run(tampered)


def test_retrained_run_folder_holds_no_absolute_path_and_loads_after_a_move(retrained,
                                                                            tmp_path):
    """Before: config.yaml named the data spec by its absolute path, so a moved or copied
    run read (or missed) the data at the old place."""
    from fusionrec.serving.engine import Engine, load_run
    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import load_run_split

    here = str(retrained.resolve())
    for path in retrained.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".jsonl", ".csv", ".txt"):
            assert here not in path.read_text(encoding="utf-8", errors="replace"), path
    moved = tmp_path / "elsewhere" / "moved-run"
    shutil.copytree(retrained, tmp_path / "copy")
    shutil.move(str(tmp_path / "copy"), moved)
    config, manifest, _ = open_run(moved)
    assert Path(config.data.spec).is_relative_to(moved.resolve())
    dataset, split = load_run_split(moved, config, manifest)
    assert "newbie" in dataset.users.ids and len(split.test)
    engine = Engine(load_run(moved))
    assert len(engine.recommend(engine.user_index("newbie"), 5)[0]) == 5


def test_warm_start_reproduces_the_parent_and_refuses_a_foreign_checkpoint(world, retrained):
    import torch

    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import build_model, load_run_split
    from fusionrec.continual.warm_start import WarmStart, WarmStartError, read_warm_weights

    config, manifest, parent = open_run(world.parent)
    _, split = load_run_split(world.parent, config, manifest)
    warm = read_warm_weights(world.parent, parent, split.features)
    trainable = WarmStart(build_model(config), warm, split.train)
    module = trainable.build(split, config.trainer)
    with torch.no_grad():
        module.eval()
        tables = module.tables()
    assert torch.equal(tables.user, parent.tables_.user)
    assert torch.equal(tables.item, parent.tables_.item)
    assert trainable.rows_["fresh_rows"] == 0
    _, _, other = open_run(retrained)
    with pytest.raises(WarmStartError, match="does not belong"):
        read_warm_weights(world.parent, other, split.features)


@pytest.fixture(scope="module")
def server(world):
    """A real uvicorn server over the parent run and the same event store."""
    import uvicorn

    from fusionrec.serving.app import create_app
    from fusionrec.serving.settings import ServeSettings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ServeSettings(run_dir=str(world.parent), database_url=str(world.events),
                             api_key=API_KEY, port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _served(url: str) -> str:
    import httpx

    return httpx.get(f"{url}/readyz", timeout=10).json()["run_dir"]


def test_gate_blocks_a_bad_model_and_promote_swaps_a_good_one(world, server, tmp_path, capsys):
    bad = tmp_path / "bad"
    # a huge learning rate and no replay wreck what the parent knew
    code = _cli(world, bad, "--lr", "0.5", "--replay", "0", "--epochs", "4",
                "--promote", server, "--api-key", API_KEY)
    assert code == GATE_REFUSED == 3
    assert "promotion gate refused" in capsys.readouterr().err
    report = _report(bad)
    assert not report["promoted"] and not report["gate"]["passed"] and report["reload"] is None
    assert report["gate"]["before"] - report["gate"]["after"] > report["gate"]["tolerance"]
    assert _served(server) == str(world.parent)  # never asked to reload
    import httpx

    asked = httpx.post(f"{server}/v1/admin/reload", json={"run_dir": str(bad)}, timeout=60,
                       headers={"Authorization": f"Bearer {API_KEY}"})
    assert asked.status_code == 409 and '"promoted": false' in asked.json()["detail"]
    assert _served(server) == str(world.parent)  # the refused run was never loaded
    good = tmp_path / "good"
    assert _cli(world, good, "--promote", server, "--api-key", API_KEY) == 0
    assert _served(server) == str(good.resolve())
    reload = _report(good)["reload"]
    assert reload["status"] == 200 and reload["response"]["run_dir"] == str(good.resolve())


def test_promotion_gate_rule():
    ok = promotion_gate({"ndcg@10": 0.20}, {"ndcg@10": 0.19}, "ndcg@10", 0.01)
    assert ok.passed and ok.change == pytest.approx(-0.01)
    assert not promotion_gate({"ndcg@10": 0.20}, {"ndcg@10": 0.185}, "ndcg@10", 0.01).passed
    # a loss is better lower: a rise beyond the tolerance fails
    assert not promotion_gate({"logloss": 0.50}, {"logloss": 0.52}, "logloss", 0.01).passed
    assert promotion_gate({"logloss": 0.50}, {"logloss": 0.40}, "logloss", 0.01).passed
    assert not promotion_gate({"auc": 0.8}, {"auc": math.nan}, "auc", 0.01).passed
    assert not promotion_gate({"auc": 0.8}, {}, "auc", 0.01).passed
    with pytest.raises(ValueError):
        promotion_gate({}, {}, "auc", -1)


def test_nothing_new_and_bad_settings_fail_with_one_line(world, retrained, tmp_path, capsys):
    from fusionrec.continual.retrain import RetrainConfig

    # the retrained run remembers the last event it used: the same store has nothing newer
    code = main(["retrain", str(retrained), "--events", str(world.events),
                 "--out", str(tmp_path / "again"), "--no-progress"])
    upto = _report(retrained)["events"]["upto_id"]
    assert code == 2
    assert f"no new positive events after event {upto}" in capsys.readouterr().err
    assert _cli(world, retrained) == 2  # an occupied output folder
    assert "already holds files" in capsys.readouterr().err
    for bad in ({"replay": 1.5}, {"valid": 0.5, "holdout": 0.5}, {"epochs": 0}):
        with pytest.raises(ValueError, match="retrain:"):
            RetrainConfig(**bad)


def test_ctr_run_gets_sampled_negatives_and_gates_on_auc(world, tmp_path_factory, tmp_path):
    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import load_run_split

    parent = trained_run(tmp_path_factory.getbasetemp(), "ctr-kgcn")
    out = tmp_path / "ctr"
    code = main(["retrain", str(parent), "--events", str(world.events), "--out", str(out),
                 "--no-progress"])
    report = _report(out)
    assert report["monitor"] == "auc" and code == 0 and report["gate"]["passed"]
    assert report["new_metrics_after"]["auc"] > report["new_metrics_before"]["auc"] + 0.1
    # new likes of pairs the parent's split holds as (sampled) negatives are dropped, not
    # relabelled; sampled negatives are no events
    used = 173 - report["events"]["dropped_heldout_overlap"]
    assert report["events_used"] == used < 173
    parts = report["new_pairs"]
    assert parts["sampled_negatives"] == parts["train"] + parts["valid"] + parts["test"] - used
    config, manifest, _ = open_run(out)
    _, split = load_run_split(out, config, manifest)
    n_parent = json.loads((parent / "split.json").read_text())["rows"]
    for part in ("train", "valid", "test"):
        new = split.part(part).take(np.arange(n_parent[part], len(split.part(part))))
        # every new positive comes with one sampled negative of the same user
        assert (new.label == 0).sum() == (new.label == 1).sum() > 0


def test_a_parent_that_chose_its_sources_on_valid_is_continued_on_them():
    # a warm start needs the parent's modules: sources auto must not select again (its
    # candidates would train from scratch, and a different choice would not fit the weights)
    from fusionrec.config import RunConfig
    from fusionrec.continual.retrain import RetrainConfig, _run_config

    parent = RunConfig.from_dict({"data": {"preset": "synthetic"},
                                  "model": {"name": "fusion", "params": {"sources": "auto"}}})
    child = _run_config(parent, RetrainConfig(), ("interactions", "item_text"))
    assert child.model.params["sources"] == ["interactions", "item_text"]
    fixed = RunConfig.from_dict({"data": {"preset": "synthetic"},
                                 "model": {"name": "fusion", "params": {"sources": "all"}}})
    assert _run_config(fixed, RetrainConfig(), ("interactions",)).model.params["sources"] == "all"
