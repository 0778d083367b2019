"""benchmarks/valid_table.py on a tiny synthetic suite: finished runs get their valid metrics,
failed ones (which leave a record.json but no model) are skipped, not an error."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

from fusionrec.cli.main import main
from fusionrec.evaluation.runs import evaluate_run

REPO = Path(__file__).resolve().parents[1]


def _valid_table():
    spec = importlib.util.spec_from_file_location("valid_table",
                                                  REPO / "benchmarks" / "valid_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_hold_valid_and_test_of_finished_runs_only(tmp_path, capsys):
    quick = str(REPO / "configs" / "quickstart-popularity.yaml")
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "tiny", "seeds": [0], "metrics": ["ndcg@10"],
        "entries": [{"name": "popularity", "config": quick},
                    {"name": "broken", "config": quick,
                     "set": {"model.params.no_such_param": 1}}]}))
    out = tmp_path / "out"
    assert main(["benchmark", "-c", str(suite), "--out", str(out), "--no-progress"]) == 1
    assert (out / "runs" / "broken" / "seed-0" / "record.json").exists()

    table = _valid_table()
    rows = table.run_rows(out, None)
    assert [(r["entry"], r["seed"]) for r in rows] == [("popularity", 0)]
    run = out / "runs" / "popularity" / "seed-0"
    expected = evaluate_run(run, part="valid")["metrics"]
    assert rows[0]["valid"] == expected
    record = json.loads((run / "record.json").read_text())
    assert rows[0]["test"] == record["metrics"]
    assert rows[0]["valid"] != rows[0]["test"]  # two parts, two answers

    capsys.readouterr()
    assert table.main([str(out), "--json", str(tmp_path / "valid.json")]) == 0
    printed = capsys.readouterr().out
    assert f"| popularity | 0 | {expected['ndcg@10']:.4f} |" in printed
    assert json.loads((tmp_path / "valid.json").read_text())[0]["entry"] == "popularity"
