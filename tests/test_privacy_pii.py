"""PII never leaks: contact details planted in reviews, item titles, tags and user attributes
go in through the CSV loader and must not come out of texts, prompts, logs, the run folder or
any API response."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from privacy_support import byte_hits, files_under

from fusionrec.encoders.config import CACHE_ENV

PII = ("jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111",
       "evil-tracker.com", "@janedoe99", "555-867-5309", "192.168.44.201")
REVIEW = ("Loved it! write to jane.doe@example.com or ring +44 20 7946 0958; card "
          "4111 1111 1111 1111, more at https://evil-tracker.com/x?id=7 and @janedoe99")
API_KEY = "pii-test-key-0123"


def _leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [needle for needle in PII if needle.lower() in lowered]


def _pii_dataset():
    """The synthetic world with PII in every free-text field a person could type into."""
    from fusionrec.data.schema import Attributes, ItemAttributes, ItemText, Reviews, Tags, \
        Vocabulary
    from fusionrec.data.synthetic import generate

    dataset = generate(n_users=50, n_items=40, n_interactions=600, review_fraction=0.5)
    rev = dataset.reviews
    texts = tuple(REVIEW if j % 2 == 0 else text for j, text in enumerate(rev.text))
    fields = dict(dataset.item_text.fields)
    name = "title" if "title" in fields else next(iter(fields))
    fields[name] = tuple(f"{t} (mail jane.doe@example.com)" if i % 3 == 0 else t
                         for i, t in enumerate(fields[name]))
    tags = dataset.item_attributes.tags
    tag_names = list(tags.vocabulary.ids)
    tag_names[int(tags.tag[0])] = "call 555-867-5309"
    users = dataset.user_attributes.columns
    bio = np.array([f"from 192.168.44.201 ({u})" for u in range(dataset.n_users)], dtype=object)
    return dataset.replace(
        reviews=Reviews(rev.user, rev.item, texts, rev.rating, rev.timestamp),
        item_text=ItemText(fields),
        item_attributes=ItemAttributes(dataset.item_attributes.attributes, Tags(
            tags.item, tags.tag, Vocabulary(tuple(tag_names)), tags.user, tags.weight,
            tags.timestamp)),
        user_attributes=Attributes({**users, "bio": bio,
                                    "email": np.array(["jane.doe@example.com"] *
                                                      dataset.n_users, dtype=object)}))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from fusionrec.data.export import write_dataset

    base = tmp_path_factory.mktemp("pii")
    spec = write_dataset(_pii_dataset(), base / "data")
    assert _leaks((base / "data" / "reviews.csv").read_text())  # the PII is really in the input
    return base, spec


def test_pii_reaches_no_text_prompt_log_artefact_or_api_response(world, caplog, capsys,
                                                                  monkeypatch):
    from fusionrec.cli.main import main
    from fusionrec.config import RunConfig
    from fusionrec.data.load import load_dataset
    from fusionrec.serving.app import create_app
    from fusionrec.serving.settings import ServeSettings
    from fusionrec.text.items import item_texts
    from fusionrec.text.users import user_texts
    from fusionrec.evaluation.runs import train_run

    base, spec = world
    monkeypatch.setenv(CACHE_ENV, str(base / "cache"))
    caplog.set_level(logging.DEBUG)
    dataset, _ = load_dataset(spec)
    assert any(_leaks(t) for t in dataset.reviews.text)  # ingest keeps the raw data as given
    outputs = list(item_texts(dataset)) + list(user_texts(dataset))
    # the planted text does reach the texts, scrubbed (placeholders), not silently dropped
    assert any("[email]" in t and "[url]" in t for t in outputs)
    # the prompt a cross-encoder would read, through the CLI a user inspects it with
    pairs = [(str(dataset.users.ids[u]), str(dataset.items.ids[i]))
             for u, i in zip(dataset.reviews.user[:4:2], dataset.reviews.item[:4:2])]
    for user, item in pairs:
        assert main(["text", "show", "--spec", str(spec), "--prompt", "--user", user,
                     "--item", item]) == 0
        assert main(["text", "show", "--spec", str(spec), "--item", item]) == 0
    config = RunConfig.from_dict({
        "data": {"spec": str(spec)}, "protocol": {"name": "topk-random", "seed": 0},
        "model": {"name": "fusion", "params": {"embedding_dim": 8, "hidden": [16], "layers": 1,
                                               "encoder": {"model": "hashing:64"}}},
        "trainer": {"epochs": 2, "batch_size": 512, "lr": 0.01, "num_threads": 1},
        "evaluation": {"ks": [5]}})
    run_dir = base / "run"
    train_run(config, run_dir, progress=False)
    responses = []
    settings = ServeSettings(run_dir=str(run_dir), api_key=API_KEY, log_level="debug")
    with TestClient(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {API_KEY}"}
        posted = client.post("/v1/events", headers=auth, json={
            "items": [{"item_id": "new-item", "text": "Cover band, contact jane.doe@example.com "
                                                      "or 555-867-5309"}],
            "users": [{"user_id": "new-user", "text": REVIEW[:200]}],
            "events": [{"user_id": "new-user", "item_id": "new-item"}]})
        assert posted.status_code == 201
        responses.append(posted.text)
        for user in list(dataset.users.ids[:12]) + ["new-user"]:
            for path in (f"/v1/users/{user}", f"/v1/users/{user}/recommendations?k=20&"
                         "explain=true&exclude_seen=false", f"/v1/users/{user}/events"):
                answer = client.get(path, headers=auth)
                assert answer.status_code == 200, (path, answer.text)
                responses.append(answer.text)
        for item in list(dataset.items.ids[:40:3]) + ["new-item"]:
            answer = client.get(f"/v1/items/{item}/similar?k=45", headers=auth)
            assert answer.status_code == 200
            responses.append(answer.text)
        responses.append(client.get("/v1/users?limit=1000", headers=auth).text)
    # the new item is answered with a scrubbed name
    assert "Cover band, contact [email] or [phone]" in "".join(responses)
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, *responses]
    outputs += [record.getMessage() for record in caplog.records]
    leaks = {needle for text in outputs for needle in _leaks(text)}
    assert leaks == set(), leaks
    needles = {needle: needle.encode() for needle in PII}
    assert byte_hits(files_under(run_dir, base / "cache"), needles) == []
