"""The configuration reference is generated from the config dataclasses and kept current."""

from __future__ import annotations

import dataclasses
import inspect
from functools import lru_cache
from pathlib import Path

import pytest

from fusionrec.config_reference import field_doc, sections
from fusionrec.config_reference import render as _render
from fusionrec.models.registry import MODELS, model_class, params_class

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


@lru_cache(maxsize=1)
def render() -> str:
    # one render for the module (it reads every model's source for the field comments)
    return _render()


def test_the_committed_reference_is_current():
    # Fails when a config field, default or comment changed without regenerating the file:
    # python -m fusionrec.config_reference --out docs/configuration.md
    assert DOC.read_text(encoding="utf-8") == render()


def _classes():
    yield from sections()
    yield from ((f"model {name}", params_class(name)) for name in MODELS)


@pytest.mark.parametrize("where, cls", list(_classes()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_every_key_is_documented_in_its_row(where, cls):
    text = render()
    for item in dataclasses.fields(cls):
        doc = field_doc(cls, item.name)
        assert doc, f"{where}.{item.name} has no description"
        assert f"| `{item.name}` |" in text


@pytest.mark.parametrize("name", sorted(MODELS))
def test_constructor_defaults_match_the_params_dataclass(name):
    """A model whose constructor names its parameters must default them as its dataclass does,
    so the reference shows what a model built without them uses."""
    declared = {f.name: f.default for f in dataclasses.fields(params_class(name))
                if f.default is not dataclasses.MISSING}
    signature = inspect.signature(model_class(name)).parameters
    named = {key: p.default for key, p in signature.items()
             if key in declared and p.default is not inspect.Parameter.empty}
    assert named == {key: declared[key] for key in named}
    undeclared = [key for key, p in signature.items()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD
                  and key not in declared and key not in ("trainer", "config", "runner")]
    # every constructor argument a config may set is documented (``runner``, the Trainer a
    # torch model's fit runs, is handed in by code, never read from a config)
    assert undeclared == []


def test_reference_lists_the_known_values_of_a_setting():
    text = render()
    assert "| `sources` | `str \\| tuple[str, ...]` | `'all'` |" in text
    assert "### `fusion`" in text and "### `lightgcn`" in text and "## `trainer`" in text
    assert "| `lr` | `float` | `0.005` | learning rate |" in text


def test_the_tuners_default_spaces_name_declared_params():
    from fusionrec.training.tune_space import DEFAULT_SPACES

    for model, space in DEFAULT_SPACES.items():
        declared = {f.name for f in dataclasses.fields(params_class(model))}
        searched = {key.split(".", 2)[2] for key in space if key.startswith("model.params.")}
        assert searched <= declared, (model, searched - declared)
