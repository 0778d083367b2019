"""Keyed pseudonyms at ingest: raw user ids never reach a run folder, the embedding cache or
the logs; the key holder (and only they) can map pseudonyms back."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from privacy_support import KEY, byte_hits, files_under, fixture_paths, pseudonym, raw_id, \
    run_config, trained

from fusionrec.config import ConfigError, DataConfig
from fusionrec.data.schema import Attributes
from fusionrec.privacy.pseudonym import (KEY_ENV, KEY_FILE_ENV, PseudonymError, Pseudonymiser,
                                         resolve_key)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.getbasetemp()


def test_pseudonyms_are_keyed_hmacs_and_map_back_only_with_the_key():
    import hashlib
    import hmac

    keyed, other = Pseudonymiser(KEY), Pseudonymiser(b"another key of enough length")
    expected = "p" + hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()[:20]
    assert keyed.pseudonym("alice") == expected == keyed.pseudonym("alice")
    assert other.pseudonym("alice") != expected and keyed.pseudonym("bob") != expected
    assert keyed.key_id != other.key_id and KEY.decode() not in repr(keyed)
    found = keyed.reidentify([expected, "p" + "0" * 20], ["bob", "alice", "carol"])
    assert found == {expected: "alice"}
    assert other.reidentify([expected], ["alice"]) == {}
    with pytest.raises(PseudonymError, match="at least 16 bytes"):
        Pseudonymiser(b"short")


def test_key_comes_from_config_file_then_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"  from-the-file-0123456789\n")
    env = {KEY_ENV: "from-the-environment-0123"}
    assert resolve_key(key_file, env) == b"from-the-file-0123456789"
    assert resolve_key(None, env) == b"from-the-environment-0123"
    assert resolve_key(None, {KEY_FILE_ENV: str(key_file)}) == b"from-the-file-0123456789"
    with pytest.raises(PseudonymError, match=KEY_ENV):
        resolve_key(None, {})
    with pytest.raises(PseudonymError, match="cannot read"):
        resolve_key(tmp_path / "missing", {})


def test_dataset_keeps_every_table_and_drops_identifying_attribute_columns():
    from fusionrec.data.synthetic import generate

    dataset = generate(n_users=30, n_items=20, n_interactions=200)
    emails = np.array([f"user{u}@example.org" for u in range(dataset.n_users)], dtype=object)
    columns = {**dataset.user_attributes.columns, "email": emails}
    dataset = dataset.replace(user_attributes=Attributes(columns))
    out = Pseudonymiser(KEY).dataset(dataset)
    assert out.users.ids == tuple(Pseudonymiser(KEY).pseudonym(u) for u in dataset.users.ids)
    assert out.interactions is dataset.interactions and out.social is dataset.social
    assert "email" not in out.user_attributes.columns
    assert set(out.user_attributes.columns) == set(columns) - {"email"}


def test_pseudonymize_flag_is_validated():
    assert DataConfig(pseudonymize=True).pseudonymize is True
    with pytest.raises(ConfigError, match="data.pseudonymize"):
        DataConfig(pseudonymize="yes")


def test_no_raw_user_id_in_any_file_of_a_trained_run_or_the_cache(base, caplog):
    with caplog.at_level(logging.DEBUG):
        run_dir = trained(base)
    users = json.loads((run_dir / "users.json").read_text())
    assert users == [pseudonym(u) for u in range(60)]
    files = files_under(run_dir, fixture_paths(base)["cache"])
    assert len(files) >= 10 and any(p.name == "model.safetensors" for p in files)
    needles = {raw_id(u): raw_id(u).encode() for u in range(60)}
    assert byte_hits(files, needles) == []
    # the search can find what is there: the source files do hold the raw ids
    assert byte_hits(files_under(fixture_paths(base)["data"]), {"u7": raw_id(7).encode()})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not [r for r in needles if r in logged]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["privacy"] == {"pseudonymized": True,
                                   "pseudonym_key_id": Pseudonymiser(KEY).key_id}
    assert KEY.decode() not in (run_dir / "config.yaml").read_text()


def test_reloading_with_another_key_is_refused(base, tmp_path):
    from dataclasses import replace

    from fusionrec.training.artifacts import open_run
    from fusionrec.training.run import load_run_split

    config, manifest, _ = open_run(trained(base))
    dataset, split = load_run_split(trained(base), config, manifest)
    assert dataset.users.ids[3] == pseudonym(3) and len(split.train)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"not-the-key-of-this-run-0123")
    config = replace(config, data=replace(config.data, pseudonym_key_file=str(wrong)))
    with pytest.raises(PseudonymError, match="not the one this run was pseudonymised with"):
        load_run_split(trained(base), config, manifest)


def test_cli_pseudonym_and_reidentify(base, tmp_path, capsys, monkeypatch):
    from fusionrec.cli.main import main

    monkeypatch.setenv(KEY_FILE_ENV, str(fixture_paths(base)["key"]))
    assert main(["pseudonym", raw_id(4), raw_id(9)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{raw_id(4)}\t{pseudonym(4)}",
                                                    f"{raw_id(9)}\t{pseudonym(9)}"]
    candidates = tmp_path / "candidates.txt"
    candidates.write_text(f"{raw_id(2)}\nnobody\n{raw_id(11)}\n")
    run_dir = str(trained(base))
    assert main(["reidentify", run_dir, "--candidates", str(candidates)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{pseudonym(2)}\t{raw_id(2)}",
                                         f"{pseudonym(11)}\t{raw_id(11)}"]
    assert "2 of 60 pseudonyms re-identified" in captured.err
    assert main(["reidentify", run_dir, "--from-data"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 60
    monkeypatch.setenv(KEY_FILE_ENV, str(candidates))  # a key file, but the wrong key
    assert main(["reidentify", run_dir, "--candidates", str(candidates)]) == 2
    assert "not the one this run was pseudonymised with" in capsys.readouterr().err


def test_pseudonymised_config_round_trips(base):
    from fusionrec.config import RunConfig

    config = run_config(base)
    assert RunConfig.from_dict(config.to_dict()) == config
