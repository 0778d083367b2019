"""``fusionrec benchmark``: the smoke suite end to end, overrides, failing entries, resume,
suite validation and the markdown report."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fusionrec.cli.main import main
from fusionrec.config import ConfigError
from fusionrec.experiments.benchmark import RECORD_FIELDS, run_suite
from fusionrec.experiments.report import mean_std, render_report
from fusionrec.experiments.suite import Published, Suite, load_suite
from fusionrec.locks import try_exclusive

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "benchmarks" / "smoke.yaml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The shipped smoke suite, run once with a command-line override for every entry."""
    root = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSIONREC_CACHE", str(root / "embeddings"))
        code = main(["benchmark", "-c", str(SMOKE), "--out", str(root / "out"),
                     "--set", "trainer.epochs=1", "--set", "trainer.num_threads=1",
                     "--no-progress"])
    return code, root / "out"


def test_smoke_suite_writes_records_with_exactly_the_fields(smoke):
    code, out = smoke
    assert code == 0
    records = json.loads((out / "results.json").read_text())
    suite = load_suite(SMOKE)
    assert len(records) == sum(len(e.seeds) for e in suite.entries) == 6
    for record in records:
        # top-K records add the sparse-user breakdown after the fixed fields
        assert tuple(record) == RECORD_FIELDS + ("by_activity",)
        buckets = record["by_activity"]
        assert sum(b["n_users"] for b in buckets.values()) == \
            record["metrics"]["n_users_evaluated"]
        assert record["dataset"] == "synthetic" and record["protocol"] == "topk-random"
        assert record["shots"] is None and record["seed"] in (0, 1)
        assert 0 <= record["metrics"]["ndcg@10"] <= 1 and record["wall_seconds"] > 0
    by_model = {r["model"]: r for r in records}
    assert set(by_model) == {"popularity", "bpr-mf", "lm-zero-shot"}
    assert by_model["bpr-mf"]["sources"] == ["interactions"]  # what BPR-MF reads
    assert by_model["lm-zero-shot"]["sources"] == ["interactions", "user_attributes",
                                                   "item_attributes", "item_text", "social",
                                                   "kg", "reviews"]
    # each record is the test metrics the run folder's manifest holds
    run = out / "runs" / "bpr-mf" / "seed-1"
    manifest = json.loads((run / "manifest.json").read_text())
    assert by_model["bpr-mf"]["metrics"] == pytest.approx(manifest["metrics"]["test"])


def test_overrides_reach_every_run(smoke):
    _, out = smoke
    for run in sorted((out / "runs").glob("*/seed-*")):
        config = yaml.safe_load((run / "config.yaml").read_text())
        seed = int(run.name.split("-")[1])
        assert config["trainer"]["epochs"] == 1  # --set on the command line
        assert config["protocol"]["seed"] == seed and config["trainer"]["seed"] == seed
    bpr = yaml.safe_load((out / "runs" / "bpr-mf" / "seed-0" / "config.yaml").read_text())
    assert bpr["model"]["params"]["embedding_dim"] == 8  # the entry's own override
    zero = yaml.safe_load((out / "runs" / "lm-zero-shot" / "seed-0" / "config.yaml").read_text())
    assert zero["model"]["name"] == "lm-zero-shot" and zero["encoder"]["model"] == "hashing"
    history = (out / "runs" / "bpr-mf" / "seed-0" / "metrics.jsonl").read_text().splitlines()
    assert len(history) == 1


def test_report_shows_mean_and_std_per_model(smoke):
    _, out = smoke
    report = (out / "report.md").read_text()
    records = json.loads((out / "results.json").read_text())
    assert "## synthetic — protocol `topk-random`" in report
    values = [r["metrics"]["ndcg@10"] for r in records if r["model"] == "popularity"]
    row = next(line for line in report.splitlines() if line.startswith("| popularity |"))
    assert f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}" in row
    assert "| interactions | – | 2 |" in row  # sources, shots, number of seeds
    assert "Gain over the untrained LM" in report


def _suite(tmp_path, entries, **extra) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "seeds": [0], "entries": entries, **extra},
                                   sort_keys=False))
    return path


def test_failing_entry_is_recorded_and_the_suite_goes_on(tmp_path, capsys):
    quick = str(REPO / "configs" / "quickstart-bprmf.yaml")
    suite = _suite(tmp_path, [
        {"name": "broken", "config": quick, "set": {"model.params.no_such_param": 1}},
        {"name": "missing", "config": "configs/not-written-yet.yaml"},
        {"name": "popularity", "config": str(REPO / "configs" / "quickstart-popularity.yaml")},
    ])
    assert main(["benchmark", "-c", str(suite), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 1
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["model"] for r in records] == ["broken", "missing", "popularity"]
    assert "no_such_param" in records[0]["error"] and records[0]["metrics"] == {}
    assert "not found" in records[1]["error"]
    assert records[1]["dataset"] is None and records[0]["dataset"] == "synthetic"
    assert "error" not in records[2] and records[2]["metrics"]["ndcg@10"] > 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failed runs" in report and "- broken (synthetic, topk-random), seed 0:" in report
    assert "- missing, seed 0: ConfigError: config file not found" in report
    assert "failed: broken" in capsys.readouterr().out


def test_resume_keeps_finished_runs(tmp_path):
    suite = _suite(tmp_path, [{"name": "pop", "config": str(REPO / "configs"
                                                             / "quickstart-popularity.yaml")}],
                   published=[{"model": "Ref", "metrics": {"ndcg@10": 0.5}, "source": "a paper"}])
    out = tmp_path / "out"
    assert main(["benchmark", "-c", str(suite), "--out", str(out), "--no-progress"]) == 0
    first = json.loads((out / "results.json").read_text())
    assert main(["benchmark", "-c", str(suite), "--out", str(out), "--no-progress"]) == 2
    assert main(["benchmark", "-c", str(suite), "--out", str(out), "--no-progress",
                 "--resume", "--seeds", "0,3"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again[0] == first[0] and again[1]["seed"] == 3
    report = (out / "report.md").read_text()
    assert "| *Ref (published)* |" in report and "a paper" in report


def _wait_for(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_run_another_process_holds_is_waited_for_and_its_record_taken_over(tmp_path):
    """Two processes on one --out: the second must neither delete nor retrain the run the
    first is training (it used to rmtree it), and must end with the whole suite's records."""
    popularity = str(REPO / "configs" / "quickstart-popularity.yaml")
    suite = load_suite(_suite(tmp_path, [{"name": "first", "config": popularity},
                                         {"name": "held", "config": popularity},
                                         {"name": "last", "config": popularity}]))
    out = tmp_path / "out"
    held_run = out / "runs" / "held" / "seed-0"
    held_run.mkdir(parents=True)
    (held_run / "model.safetensors.partial").write_text("the other process is writing this")
    outcome = {}
    with try_exclusive(out / "runs" / "held" / ".seed-0.lock") as locked:
        assert locked
        worker = threading.Thread(target=lambda: outcome.update(
            result=run_suite(suite, out, resume=True, progress=False)))
        worker.start()
        _wait_for(lambda: (out / "results.json").is_file()
                  and len(json.loads((out / "results.json").read_text())) == 2,
                  "the two free runs")
        assert [r["model"] for r in json.loads((out / "results.json").read_text())] == \
            ["first", "last"]
        assert worker.is_alive()  # waiting for the held run, not running it
        assert (held_run / "model.safetensors.partial").is_file()
        theirs = {**json.loads((out / "runs" / "first" / "seed-0" / "record.json").read_text()),
                  "model": "held", "wall_seconds": 123.0}
        (held_run / "record.json").write_text(json.dumps(theirs))
    worker.join(timeout=60)
    assert not worker.is_alive()
    records = outcome["result"].records
    assert [r["model"] for r in records] == ["first", "held", "last"]
    assert records[1] == theirs  # taken over, not retrained
    assert (held_run / "model.safetensors.partial").is_file()
    assert json.loads((out / "results.json").read_text()) == records


def test_resume_retries_earlier_failures_and_runs_a_dead_processs_leftovers(tmp_path):
    popularity = str(REPO / "configs" / "quickstart-popularity.yaml")
    suite = load_suite(_suite(tmp_path, [{"name": "failed", "config": popularity},
                                         {"name": "orphan", "config": popularity}]))
    out = tmp_path / "out"
    failed, orphan = out / "runs" / "failed" / "seed-0", out / "runs" / "orphan" / "seed-0"
    failed.mkdir(parents=True)
    orphan.mkdir(parents=True)
    (failed / "record.json").write_text(json.dumps({"model": "failed", "seed": 0,
                                                     "metrics": {}, "error": "OOM"}))
    (orphan / "half-written").write_text("its process died, releasing the lock")
    records = run_suite(suite, out, resume=True, progress=False).records
    assert all("error" not in r and r["metrics"]["ndcg@10"] > 0 for r in records)
    assert not (orphan / "half-written").exists() and (orphan / "record.json").is_file()


@pytest.mark.parametrize("entries, extra, message", [
    ([], {}, "non-empty 'entries'"),
    ([{"config": "a.yaml"}, {"config": "b/a.yaml"}], {}, "unique"),
    ([{"config": "a.yaml", "bogus": 1}], {}, "unknown key"),
    ([{"config": "a.yaml", "sources": ["kg"]}], {}, "must include interactions"),
    ([{"config": "a.yaml", "seeds": ["x"]}], {}, "seeds"),
    ([{"config": "a.yaml"}], {"published": [{"model": "m", "metrics": {"auc": "hi"},
                                             "source": "s"}]}, "must be a number"),
])
def test_invalid_suites_name_the_problem(tmp_path, entries, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(_suite(tmp_path, entries, **extra))


def test_entry_options_become_overrides(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "x.yaml").write_text("model: {name: popularity}\n")
    (tmp_path / "bench").mkdir()
    suite = load_suite(_suite(tmp_path / "bench", [
        {"config": "configs/x.yaml", "shots": 16, "sources": ["interactions", "kg"],
         "set": {"trainer.lr": 0.1, "encoder.model": "yes"}}]))
    entry = suite.entries[0]
    assert entry.config == tmp_path / "configs" / "x.yaml"  # beside the suite's folder
    assert entry.name is None and entry.folder == "x"
    overrides = entry.run_overrides(4, ("trainer.epochs=1",))
    assert overrides[:2] == ["trainer.lr=0.1", 'encoder.model="yes"']
    assert "protocol.params.shots=16" in overrides
    assert ("data.exclude_sources=[user_attributes, item_attributes, item_text, social, "
            "reviews]") in overrides
    assert overrides[-3:] == ["trainer.epochs=1", "protocol.seed=4", "trainer.seed=4"]


def test_report_statistics_and_published_filter():
    assert mean_std([0.2, 0.4]) == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    assert mean_std([0.25]) == (0.25, None)
    records = [{"dataset": "d", "protocol": "p", "model": m, "sources": ["interactions"],
                "shots": None, "seed": s, "metrics": {"auc": v, "n_rows": 9.0},
                "wall_seconds": 1.0}
               for m, s, v in (("a", 0, 0.7), ("a", 1, 0.8), ("lm-zero-shot", 0, 0.55))]
    suite = Suite("s", (), (Published("P", {"auc": 0.9}, "src", protocol="p"),
                            Published("Q", {"auc": 0.1}, "other", protocol="elsewhere")))
    report = render_report(records, suite)
    assert "| a | interactions | – | 2 | 0.7500 ± 0.0707 |" in report
    assert "| lm-zero-shot | interactions | – | 1 | 0.5500 |" in report
    assert "| *P (published)* | – | – | – | 0.9000 |" in report and "Q (published)" not in report
    assert "a: +0.2000" in report and "n_rows" not in report


def test_ctr_tables_show_the_popularity_free_aucs_beside_auc():
    records = [{"dataset": "d", "protocol": "p", "model": "a", "sources": ["interactions"],
                "shots": None, "seed": 0, "wall_seconds": 1.0,
                "metrics": {"auc": 0.8, "f1": 0.7, "warm_item_auc": 0.85,
                            "within_item_auc": 0.6}}]
    listed = render_report(records, Suite("s", (), (), metrics=("auc", "f1")))
    assert "| model | sources | shots | seeds | auc | warm_item_auc | within_item_auc | f1 |" \
        in listed
    assert "| a | interactions | – | 1 | 0.8000 | 0.8500 | 0.6000 | 0.7000 |" in listed
    without_auc = render_report(records, Suite("s", (), (), metrics=("f1",)))
    assert "within_item_auc" not in without_auc  # only beside an auc column


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_suite_runs_what_its_entries_say(path):
    """Each entry of each shipped suite, at each of its seeds, resolves to a valid run config
    (model params included) that trains and splits at that seed, sees exactly the sources the
    entry lists and the shots it asks for; no two entries share a run folder."""
    from fusionrec.config import load_config
    from fusionrec.data.schema import SOURCE_NAMES
    from fusionrec.experiments.suite import load_suite

    suite = load_suite(path)
    folders = [entry.folder for entry in suite.entries]
    assert len(set(folders)) == len(folders), f"entries share a run folder: {folders}"
    for entry in suite.entries:
        for seed in entry.seeds:
            config = load_config(entry.config, entry.run_overrides(seed))
            assert (config.protocol.seed, config.trainer.seed) == (seed, seed)
            if entry.sources is not None:
                used = set(SOURCE_NAMES) - set(config.data.exclude_sources)
                assert used == set(entry.sources), entry.folder
            if entry.shots is not None:
                assert config.protocol.params["shots"] == entry.shots, entry.folder


def test_include_brings_in_another_suites_entries_and_published_figures(tmp_path):
    quick = str(REPO / "configs" / "quickstart-popularity.yaml")
    (tmp_path / "cold.yaml").write_text(yaml.safe_dump({
        "name": "cold", "seeds": [0, 1], "entries": [{"name": "pop", "config": quick}],
        "published": [{"model": "P", "metrics": {"auc": 0.5}, "source": "paper"}]}))
    path = _suite(tmp_path, [{"name": "pop", "config": quick}], include=["cold.yaml"])
    suite = load_suite(path)
    # same label, own run folder (prefixed with the included suite's name), own seeds
    assert [(e.label, e.folder, e.seeds) for e in suite.entries] == [
        ("pop", "pop", (0,)), ("pop", "cold-pop", (0, 1))]
    assert [p.model for p in suite.published] == ["P"]


@pytest.mark.parametrize("include, message", [
    ("cold.yaml", "include must be a list"), (["suite.yaml"], "cannot include itself"),
    (["missing.yaml"], "missing.yaml")])
def test_a_bad_include_names_the_problem(tmp_path, include, message):
    quick = str(REPO / "configs" / "quickstart-popularity.yaml")
    path = _suite(tmp_path, [{"name": "pop", "config": quick}], include=include)
    with pytest.raises(ConfigError, match=message):
        load_suite(path)


def test_entry_table_names_the_dataset_and_protocol_its_records_carry(tmp_path):
    from fusionrec.experiments.benchmark import entry_table

    suite = load_suite(REPO / "benchmarks" / "amazon-ecommerce.yaml")
    tables = {entry_table(e) for e in suite.entries}
    assert tables == {("amazon-instruments-items", "loo-temporal")}
    shipped = json.loads((REPO / "benchmarks/results/amazon-ecommerce/results.json").read_text())
    assert {(r["dataset"], r["protocol"]) for r in shipped} == tables
