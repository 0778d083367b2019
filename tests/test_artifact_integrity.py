"""Tampered, truncated or incompletely listed run-folder files are refused with a message that
names the file (flipped bytes in each artefact are covered in test_training_artifacts)."""

from __future__ import annotations

import json

import pytest

from privacy_support import cache_of, copy_run

from fusionrec.data.errors import DataError
from fusionrec.encoders.config import CACHE_ENV
from fusionrec.training import artifacts
from fusionrec.training.artifacts import RunError, open_run


@pytest.fixture
def bpr_run(tmp_path_factory, tmp_path):
    return copy_run(tmp_path_factory.getbasetemp(), tmp_path / "run", model="bpr-mf")


def _manifest(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("name", ["model.safetensors", "split.parquet", "users.json",
                                  "model.json", "split.json"])
def test_truncated_artefacts_are_refused(bpr_run, name):
    _truncate(bpr_run / name)
    with pytest.raises(RunError, match=f"{name} was modified after training"):
        open_run(bpr_run)


def test_truncated_or_gutted_manifest_is_refused(bpr_run):
    manifest = _manifest(bpr_run)
    (bpr_run / "manifest.json").write_text(json.dumps({**manifest, "files": []}))
    with pytest.raises(RunError, match="has no file checksums"):
        open_run(bpr_run)
    files = dict(manifest["files"])
    del files["model.safetensors"]  # hiding a swapped model from the check
    (bpr_run / "manifest.json").write_text(json.dumps({**manifest, "files": files}))
    with pytest.raises(RunError, match=r"lists no sha256 for \['model.safetensors'\]"):
        open_run(bpr_run)
    _truncate(bpr_run / "manifest.json")
    with pytest.raises(RunError, match="manifest.json is not valid JSON"):
        open_run(bpr_run)


def test_deleted_artefact_is_named(bpr_run):
    (bpr_run / "items.json").unlink()
    with pytest.raises(RunError, match="items.json is missing from the run folder"):
        open_run(bpr_run)


def test_split_rows_changed_with_a_matching_run_manifest_are_still_refused(bpr_run):
    """Re-hashing split.parquet into manifest.json is not enough: split.json's own hash of the
    rows catches changed rows when the split is read."""
    import pyarrow.parquet as pq

    from fusionrec.training.run import load_run_split

    path = bpr_run / "split.parquet"
    table = pq.read_table(path).to_pydict()
    table["label"][0] = 0.0 if table["label"][0] else 1.0
    import pyarrow as pa

    pq.write_table(pa.table(table), path)
    manifest = _manifest(bpr_run)
    manifest["files"]["split.parquet"] = artifacts.file_sha256(path)
    (bpr_run / "manifest.json").write_text(json.dumps(manifest))
    config, manifest, _ = open_run(bpr_run)  # the run manifest itself now agrees
    with pytest.raises(DataError, match="rows do not match the sha256 in split.json"):
        load_run_split(bpr_run, config, manifest)


def test_service_and_forget_refuse_a_tampered_run(tmp_path_factory, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from fusionrec.privacy.forget import forget_user
    from fusionrec.serving.app import create_app
    from fusionrec.serving.settings import ServeSettings

    run_dir = copy_run(tmp_path_factory.getbasetemp(), tmp_path / "run")
    monkeypatch.setenv(CACHE_ENV, str(cache_of(run_dir)))
    key = "integrity-key-0123"
    with TestClient(create_app(ServeSettings(run_dir=str(run_dir), api_key=key))) as client:
        _truncate(run_dir / "model.safetensors", 0.9)
        answer = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 422
        assert "model.safetensors was modified" in answer.json()["detail"]
        assert client.get("/readyz").status_code == 200  # the old model keeps serving
    with pytest.raises(RunError, match="model.safetensors was modified"):
        with TestClient(create_app(ServeSettings(run_dir=str(run_dir), api_key=key))):
            pass
    with pytest.raises(RunError, match="model.safetensors was modified"):
        forget_user(run_dir, "anyone")
