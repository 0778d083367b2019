"""Every command family turns a user's mistake into one line on stderr and exit code 2.

The library raises :class:`~fusionrec.errors.FusionRecError` subclasses; ``cli.main`` catches
them once. An exception that escapes ``main`` fails these tests, so "no traceback" is checked
in process; one case also runs the real ``fusionrec`` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fusionrec.cli.main import USER_ERROR, main
from fusionrec.errors import FusionRecError

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "configs" / "quickstart.yaml")
BPRMF = str(REPO / "configs" / "quickstart-bprmf.yaml")


def _write_inputs(tmp: Path) -> None:
    """The files the cases read: a spec with a bad line, a spec without friends, configs
    pointing at them, a suite with a typo'd key."""
    (tmp / "listens.csv").write_text("user,item\nu1,a\n,b\n", encoding="utf-8")  # line 3
    (tmp / "listens-ok.csv").write_text("user,item\n" + "".join(
        f"u{u},i{(u * 7 + k) % 13}\n" for u in range(12) for k in range(4)), encoding="utf-8")
    for name, listens in (("bad-spec", "listens.csv"), ("plain", "listens-ok.csv")):
        (tmp / f"{name}.yaml").write_text(
            f"name: {name}\nroot: .\nsources:\n  interactions:\n    file: {listens}\n"
            "    columns: {user: user, item: item}\n", encoding="utf-8")
    (tmp / "suite.yaml").write_text("entries:\n  - config: not-there.yaml\n    seedz: [0]\n")
    (tmp / "bad-data.yaml").write_text(
        f"data: {{spec: '{tmp / 'bad-spec.yaml'}'}}\nmodel: {{name: popularity}}\n")
    (tmp / "wants-friends.yaml").write_text(
        f"data: {{spec: '{tmp / 'plain.yaml'}'}}\nmodel: {{name: lightgcn, params: "
        "{social: true}}\n")
    (tmp / "fuses-friends.yaml").write_text(
        f"data: {{spec: '{tmp / 'plain.yaml'}'}}\nmodel: {{name: fusion, params: "
        "{sources: [interactions, social]}}\n")


def _cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, text the one line must hold); the inputs are ``_write_inputs(tmp)``'s."""
    missing = str(tmp / "no-such-run")
    bad_data, broken_suite, on_bad_data = (tmp / "bad-spec.yaml", tmp / "suite.yaml",
                                           tmp / "bad-data.yaml")
    wants_friends, fuses_friends = tmp / "wants-friends.yaml", tmp / "fuses-friends.yaml"
    return {
        "train: bad config key": (["train", "-c", BPRMF, "--out", str(tmp / "a"),
                                   "--set", "trainer.lrr=0.1"], "did you mean 'lr'?"),
        "train: typo'd source": (["train", "-c", QUICK, "--out", str(tmp / "b"), "--set",
                                  "model.params.sources=[interactions,socail]"],
                                 "unknown name 'socail'; did you mean 'social'?"),
        "train: unknown model param": (["train", "-c", BPRMF, "--out", str(tmp / "c"),
                                        "--set", "model.params.embeding_dim=8"],
                                       "did you mean 'embedding_dim'?"),
        "train: unknown preset": (["train", "-c", BPRMF, "--out", str(tmp / "d"),
                                   "--set", "data.preset=movielens"], "movielens"),
        "train: bad data file": (["train", "-c", str(on_bad_data), "--out", str(tmp / "e")],
                                 "listens.csv line 3: field 'user' is empty"),
        "train: a source the data lacks": (["train", "-c", str(wants_friends), "--out",
                                            str(tmp / "f")], "needs a social source"),
        "train: fusion of a source the data lacks": (
            ["train", "-c", str(fuses_friends), "--out", str(tmp / "g")],
            "fusion: source(s) ['social'] were requested but dataset 'plain' does not provide"),
        "evaluate: missing run folder": (["evaluate", missing], "is not a finished run folder"),
        "recommend: missing run folder": (["recommend", missing, "--user", "u1"],
                                          "is not a finished run folder"),
        "text: unknown preset": (["text", "show", "--preset", "movielens", "--item", "1"],
                                 "is neither a preset name"),
        "text: bad data file": (["text", "show", "--spec", str(bad_data), "--item", "a"],
                                "line 3"),
        "encode: bad encoder key": (["encode", "-c", QUICK, "--set", "encoder.pooling=max"],
                                    "encoder.pooling"),
        "data: unknown download": (["data", "download", "netflix"], "no download for 'netflix'"),
        "benchmark: bad suite": (["benchmark", "-c", str(broken_suite), "--out",
                                  str(tmp / "bench")], "seedz"),
        "tune: bad config key": (["tune", "-c", BPRMF, "--out", str(tmp / "tune"),
                                  "--set", "trainer.epoch=2"], "did you mean 'epochs'?"),
        "serve: missing run folder": (["serve", missing], "no-such-run"),
        "forget: missing run folder": (["forget", missing, "--user", "u1"], "no-such-run"),
        "retrain: missing run folder": (["retrain", missing, "--events", str(tmp / "e.db"),
                                         "--out", str(tmp / "r")], "no-such-run"),
        "reidentify: missing run folder": (["reidentify", missing, "--candidates",
                                            str(tmp / "ids.txt")], "is not a finished run"),
        "pseudonym: missing key file": (["pseudonym", "u1", "--key-file", str(tmp / "no-key")],
                                        "cannot read the pseudonym key file"),
    }


CASES = list(_cases(Path("unused")))  # the names only; nothing is written


@pytest.mark.parametrize("case", CASES)
def test_user_error_is_one_line_and_exit_2(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FUSIONREC_PSEUDONYM_KEY", "0123456789abcdef" * 2)  # reidentify's key
    _write_inputs(tmp_path)
    argv, expected = _cases(tmp_path)[case]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == USER_ERROR == 2
    assert len(err) == 1, err
    assert err[0].startswith("fusionrec: error: ") and expected in err[0], err[0]


def test_the_real_process_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "fusionrec.cli.main", "train", "-c", QUICK, "--out",
         str(tmp_path / "run"), "--set", "model.params.sources=[socail]"],
        capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "fusionrec: error: fusion params: sources: unknown name 'socail'; did you mean "
        "'social'? (known: interactions, user_attributes, item_attributes, item_text, social, "
        "kg)"]
    assert not (tmp_path / "run").exists()  # refused before any work


def test_every_library_error_shares_the_base():
    """Walk the package: each exception class it defines is a FusionRecError."""
    import importlib
    import inspect
    import pkgutil

    import fusionrec

    found = []
    for info in pkgutil.walk_packages(fusionrec.__path__, "fusionrec."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (opacus, faiss, ...) not installed here
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and issubclass(cls, BaseException)):
                found.append(cls)
    strays = [f"{c.__module__}.{c.__name__}" for c in found if not issubclass(c, FusionRecError)]
    assert len(found) >= 21 and strays == []
