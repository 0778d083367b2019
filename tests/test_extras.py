"""The optional extras: pyproject and ``fusionrec.extras`` agree, and a missing extra is one line.

The core-install check runs the CLI in a subprocess where every extra's packages are hidden
(``sys.modules[name] = None`` makes ``import name`` fail and ``find_spec(name)`` answer None,
as on an install without them), so it holds on a dev machine that has them all.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fusionrec import extras
from fusionrec.cli.main import main

REPO = Path(__file__).resolve().parents[1]

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
OPTIONAL = PYPROJECT["project"]["optional-dependencies"]
HIDDEN = sorted({module for modules in extras.EXTRA_MODULES.values() for module in modules})

# Distribution name in pyproject -> import name, where they differ.
IMPORT_NAME = {"faiss-cpu": "faiss", "prometheus-client": "prometheus_client",
               "sentence-transformers": "sentence_transformers", "psycopg[binary]": "psycopg",
               "swagger-ui-bundle": "swagger_ui_bundle"}


def _distributions(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip()
        if not name.startswith("fusionrec["):
            names.add(name)
    return names


def test_every_extra_module_is_installed_by_that_extra():
    for extra, modules in extras.EXTRA_MODULES.items():
        installed = {IMPORT_NAME.get(name, name) for name in _distributions(OPTIONAL[extra])}
        assert set(modules) <= installed, (extra, set(modules) - installed)


def test_core_dependencies_carry_no_extra_package():
    core = {IMPORT_NAME.get(name, name) for name in _distributions(PYPROJECT["project"]["dependencies"])}
    assert not core & set(HIDDEN)
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]


def test_test_extra_pulls_in_what_the_fast_tier_imports():
    assert "fusionrec[serve,tune,dp]" in OPTIONAL["test"]
    listed = set().union(*(_distributions(reqs) for name, reqs in OPTIONAL.items() if name != "all"))
    everything = OPTIONAL["all"][0]
    assert everything.startswith("fusionrec[")
    named = set(everything[len("fusionrec["):-1].split(","))
    assert named == set(OPTIONAL) - {"all", "test"}
    assert {"pytest", "hypothesis", "schemathesis", "httpx"} <= listed


def test_missing_module_names_the_first_absent_package(monkeypatch):
    monkeypatch.setattr(extras, "find_spec", lambda name: None if name == "faiss" else object())
    assert extras.missing_module("serve") == "faiss"
    assert extras.missing_module("tune") is None
    with pytest.raises(extras.MissingExtraError, match=r"pip install 'fusionrec\[serve\]'"):
        extras.require("serve", "fusionrec serve")
    with pytest.raises(ValueError, match="unknown extra 'srve'"):
        extras.missing_module("srve")


@pytest.mark.parametrize("argv, extra", [(["serve", "RUN"], "serve"),
                                          (["tune", "-c", "x.yaml"], "tune"),
                                          (["dp-head", "RUN", "--out", "OUT"], "dp")])
def test_command_without_its_extra_fails_in_one_line(monkeypatch, capsys, argv, extra):
    hidden = extras.EXTRA_MODULES[extra][0]
    monkeypatch.setattr(extras, "find_spec", lambda name: None if name == hidden else object())
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"pip install 'fusionrec[{extra}]'" in err and hidden in err


_CORE = f"""
import sys
for name in {HIDDEN!r}:
    sys.modules[name] = None  # as if not installed
from fusionrec.cli.main import main
import fusionrec.training.run, fusionrec.evaluation.evaluate  # train + evaluate need no extra
try:
    main(["serve", "--help"])
except SystemExit as done:
    assert done.code == 0
main(["--help"])
"""


def test_core_install_cli_works_and_serve_help_names_the_extra():
    out = subprocess.run([sys.executable, "-c", _CORE], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "needs the 'serve' extra" in out.stdout
    assert "pip install 'fusionrec[serve]'" in out.stdout
    assert "quickstart" in out.stdout  # the top-level help listed the commands
