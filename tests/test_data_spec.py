"""Spec dataclasses, their YAML form, the data root, DataError and LoadReport."""

from __future__ import annotations

import pickle

import pytest

from fusionrec.data.errors import DataError
from fusionrec.data.load import resolve_spec
from fusionrec.data.paths import DEFAULT_DATA_DIR, preset_names, preset_path, resolve_data_dir
from fusionrec.data.report import FileReport, LoadReport
from fusionrec.data.spec import DatasetSpec, TableSpec
from fusionrec.data.spec_yaml import read_spec, spec_from_dict, spec_to_dict, write_spec

PRESETS = ("lastfm", "lastfm-kg", "ml-100k", "amazon-instruments")


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("FUSIONREC_DATA", raising=False)
    assert resolve_data_dir(None) == DEFAULT_DATA_DIR.expanduser()
    monkeypatch.setenv("FUSIONREC_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_presets_are_shipped():
    assert set(PRESETS) | {"synthetic"} == set(preset_names())
    assert preset_path("nope") is None


@pytest.mark.parametrize("name", PRESETS)
def test_preset_specs_round_trip_through_yaml(name, tmp_path):
    spec = read_spec(preset_path(name))
    assert spec.name == name
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert read_spec(write_spec(spec, tmp_path / "spec.yaml")) == spec


@pytest.mark.parametrize("file, fmt, compression, sep", [
    ("a.csv", "csv", "none", ","), ("a.tsv.gz", "tsv", "gzip", "\t"),
    ("a.jsonl.gz", "jsonl", "gzip", None), ("dir/a.parquet", "parquet", "none", None),
])
def test_table_format_from_extension(file, fmt, compression, sep):
    table = TableSpec(file)
    assert (table.format, table.compression, table.sep) == (fmt, compression, sep)


@pytest.mark.parametrize("kwargs, message", [
    ({"file": "u.data"}, "cannot tell the format from the extension .data; set format:"),
    ({"file": "a.csv", "header": False}, "give the column names as names:"),
    ({"file": "a.csv", "sep": "::"}, "sep must be one character"),
    ({"file": "a.csv", "encoding": "klingon"}, "unknown encoding 'klingon'"),
    ({"file": "a.csv", "quoting": "some"}, "'some' is not one of minimal, none, all"),
])
def test_table_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TableSpec(**kwargs)


def _interactions(**extra):
    return {"name": "t", "sources": {"interactions": {"file": "a.csv",
                                                      "columns": {"user": "u", "item": "i"},
                                                      **extra}}}


@pytest.mark.parametrize("data, message", [
    (_interactions(colums={}), "sources.interactions: unknown key 'colums'; did you mean 'columns'"),
    (_interactions(duplicates="maybe"), "'maybe' is not one of error, dedupe, keep"),
    ({"name": "t", "sources": {"interactions": {"file": "a.csv", "columns": {"user": "u"}}}},
     r"missing role\(s\) \['item'\]"),
    ({"name": "t", "sources": {"interactions": {"columns": {"user": "u", "item": "i"}}}},
     "missing file:"),
    ({"name": "t", "sources": {"interaction": {}}}, "at least interactions"),
    ({"sources": _interactions()["sources"]}, "name: missing"),
    ({**_interactions(), "vocabulary": {"users_from": ["social"]}},
     "source 'social' is not in this spec"),
])
def test_spec_errors_name_the_key(data, message):
    with pytest.raises(ValueError, match=message):
        spec_from_dict(data)


def test_read_spec_errors_are_one_line_data_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nsources: {interactions: {file: a.csv\n")
    with pytest.raises(DataError, match=r"bad\.yaml line \d+: is not valid YAML"):
        read_spec(bad)
    bad.write_text("name: t\nsources:\n  interactions: {file: a.csv, columns: {user: u}}\n")
    with pytest.raises(DataError) as caught:
        read_spec(bad)
    assert "\n" not in str(caught.value) and "missing role" in str(caught.value)


def test_resolve_spec_accepts_presets_paths_and_objects(tmp_path):
    spec, folder = resolve_spec("ml-100k")
    assert isinstance(spec, DatasetSpec) and folder is None
    assert resolve_spec("synthetic") == (None, None)
    path = write_spec(spec, tmp_path / "mine.yaml")
    assert resolve_spec(path) == (spec, tmp_path.resolve())
    with pytest.raises(DataError, match="is neither a preset name"):
        resolve_spec("no-such-thing")


def test_data_error_is_one_line_and_picklable():
    error = DataError("tags.dat", 9, "tagValue", "is not valid UTF-8\n(byte 0xe1)")
    assert str(error) == "tags.dat line 9: field 'tagValue' is not valid UTF-8 (byte 0xe1)"
    assert str(DataError("x.parquet", 3, None, "bad", unit="row")) == "x.parquet row 3: bad"
    assert str(DataError("x.csv", None, None, "is empty")) == "x.csv: is empty"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert isinstance(error, ValueError)


def test_reports_keep_their_counts_consistent():
    report = FileReport("social", "f.tsv", 10, 7, {"unknown user": 2, "self-loop": 1},
                        {"duplicate edge (kept)": 1})
    with pytest.raises(ValueError, match="rows read"):
        FileReport("social", "f.tsv", 10, 8, {"unknown user": 1})
    load = LoadReport("t", "/data", (report,), {"users": 3})
    assert load.usable and load.file("social") is report
    text = load.summary()
    assert "dropped 2: unknown user" in text and "warning 1: duplicate edge (kept)" in text
    assert load.to_dict()["files"][0]["dropped"] == {"unknown user": 2, "self-loop": 1}
    failed = LoadReport("t", "/data", errors=("f.tsv line 2: bad",))
    assert not failed.usable and "f.tsv line 2: bad" in failed.summary()
    with pytest.raises(KeyError):
        load.file("kg")
