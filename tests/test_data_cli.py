"""``fusionrec data validate|download|generate`` (network always mocked to fail)."""

from __future__ import annotations

import argparse
import json
import urllib.error

import pytest

from fusionrec.cli import data_cmd
from fusionrec.cli.main import USER_ERROR
from fusionrec.errors import FusionRecError
from fusionrec.data import download as download_module
from fusionrec.data.load import load_dataset


def run(argv: list[str]) -> int:
    """Dispatch like ``fusionrec.cli.main.main`` does, with only the data commands registered."""
    parser = argparse.ArgumentParser(prog="fusionrec")
    data_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FusionRecError as error:
        print(f"error: {error}")
        return USER_ERROR


@pytest.fixture
def tiny_spec(tmp_path):
    (tmp_path / "listens.csv").write_text("user,item\nu1,a\nu2,a\nu2,b\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: tiny\nroot: .\nsources:\n  interactions:\n    file: listens.csv\n"
                    "    columns: {user: user, item: item}\n")
    return spec


def test_validate_prints_the_table_and_exits_0(tiny_spec, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert run(["data", "validate", str(tiny_spec), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "listens.csv" in text and "usable: yes" in text
    report = json.loads(out.read_text())
    assert report["usable"] and report["counts"]["interactions"] == 3


def test_validate_exits_1_with_one_line_errors(tiny_spec, capsys):
    (tiny_spec.parent / "listens.csv").write_text("user,item\nu1,a\n,b\nu1,a\n")
    assert run(["data", "validate", str(tiny_spec)]) == 1
    text = capsys.readouterr().out
    assert "listens.csv line 3: field 'user' is empty (a missing id)" in text


def test_validate_unknown_preset_exits_1(capsys):
    assert run(["data", "validate", "no-such-preset"]) == 1
    assert "is neither a preset name" in capsys.readouterr().out


def test_generate_writes_a_loadable_dataset(tmp_path, capsys):
    out = tmp_path / "gen"
    assert run(["data", "generate", "--out", str(out), "--users", "40", "--items", "30",
                "--interactions", "200", "--seed", "3"]) == 0
    assert "spec.yaml" in capsys.readouterr().out
    dataset, report = load_dataset(out / "spec.yaml")
    assert report.usable and (dataset.n_users, dataset.n_items) == (40, 30)
    assert len(dataset.interactions) <= 200  # the generator drops repeated pairs


def test_generate_rejects_impossible_sizes(tmp_path, capsys):
    assert run(["data", "generate", "--out", str(tmp_path), "--users", "2", "--items", "10",
                "--interactions", "1000"]) == USER_ERROR
    assert "error: n_interactions" in capsys.readouterr().out


@pytest.mark.parametrize("name, origin", [("ml-100k", "GroupLens"), ("lastfm-kg", "KGCN")])
def test_download_offline_explains_how_to_place_files(monkeypatch, tmp_path, capsys, name, origin):
    def offline(url, timeout=None):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", offline)
    assert run(["data", "download", name, "--data-dir", str(tmp_path)]) == USER_ERROR
    text = capsys.readouterr().out
    assert origin in text
    assert "looks offline" in text and "to install by hand" in text
    assert str(tmp_path) in text
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_download_verifies_checksums(monkeypatch, tmp_path):
    """A fake archive is unpacked flat into the sub-folder, then fails its sha256 check."""
    import io
    import zipfile

    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
        archive.writestr("../../evil.txt", "no escape")

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(blob.getvalue()))}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(download_module, "urlopen",
                        lambda url, timeout=None: Response(blob.getvalue()))
    with pytest.raises(download_module.DownloadError, match="failed the checksum"):
        download_module.download("ml-100k", tmp_path)
    assert (tmp_path / "ml-100k" / "u.data").read_text() == "1\t2\t3\t4\n"
    assert (tmp_path / "ml-100k" / "evil.txt").is_file()
    assert not (tmp_path.parent / "evil.txt").exists()


def test_download_unknown_name(capsys):
    assert run(["data", "download", "netflix"]) == USER_ERROR
    assert "no download for 'netflix'" in capsys.readouterr().out
