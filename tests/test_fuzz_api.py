"""Schemathesis against the service's own OpenAPI schema, in process (ASGI): whatever the
generated request, the answer is never a 5xx, and every rejection is a 4xx with a ``detail``.

Generated ids are mostly random strings (answered 404), so a share of the path parameters and
body ids is swapped for ids the run really has, to reach the code behind the lookups. The fast
test sends about 50 requests; the slow one at least 500 (the issue's acceptance bar).

The schema only yields valid JSON, so a second pass takes generated requests and breaks them
the way a hostile client would (issue 19): numbers become NaN, infinity or 1e999, ids become
strings outside the id grammar ("a/b", "..", "%2F", non-ASCII, over-long). Those too must be
4xx with a JSON ``detail``, never a 5xx.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving_support import trained_run

from fusionrec.encoders.config import CACHE_ENV

schemathesis = pytest.importorskip("schemathesis")

KEY = "fuzz-test-key-0123456789"
ID_FIELDS = {"user_id": "users", "item_id": "items", "friends": "users"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The schema (loaded from the running app) and the run's real ids."""
    import json

    from schemathesis.python.asgi import shutdown_lifespans

    from fusionrec.serving.app import create_app

    run_dir = _run_copy(tmp_path_factory)
    monkey = pytest.MonkeyPatch()
    monkey.setenv(CACHE_ENV, str(run_dir.parent / "cache"))
    app = create_app(_settings(run_dir))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ids = {name: json.loads((run_dir / f"{name}.json").read_text())[:20]
           for name in ("users", "items")}
    yield schema, ids
    shutdown_lifespans()  # stops the app: closes its event store
    monkey.undo()


def _run_copy(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fuzz") / "run"
    # A copy: DELETE /v1/users may forget users in it.
    shutil.copytree(trained_run(tmp_path_factory.getbasetemp()), run_dir)
    return run_dir


def _settings(run_dir):
    from fusionrec.serving.settings import ServeSettings

    return ServeSettings(run_dir=str(run_dir), api_key=KEY, max_batch=50, max_text_chars=500)


def _with_real_ids(value, draw, ids):
    """``value`` with some id fields (at any depth) replaced by ids the run has."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ID_FIELDS and draw(st.booleans()):
                pool = ids[ID_FIELDS[key]]
                item = ([draw(st.sampled_from(pool))] if isinstance(item, list)
                        else draw(st.sampled_from(pool)))
            out[key] = _with_real_ids(item, draw, ids)
        return out
    if isinstance(value, list):
        return [_with_real_ids(item, draw, ids) for item in value]
    return value


def _fuzz(api, examples: int) -> Counter:
    schema, ids = api
    seen: Counter = Counter()
    problems: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data) -> None:
        case = data.draw(schema.as_strategy())
        if case.path_parameters:
            case.path_parameters = _with_real_ids(case.path_parameters, data.draw, ids)
        if isinstance(case.body, (dict, list)):
            case.body = _with_real_ids(case.body, data.draw, ids)
        # Mostly keyed: access is deny-by-default, so an anonymous request stops at the 401.
        keyed = data.draw(st.integers(0, 4)) > 0
        auth = {"Authorization": f"Bearer {KEY}"} if keyed else None
        response = case.call(headers=auth, timeout=120)  # a DELETE rebuilds the engine
        seen[response.status_code] += 1
        label = f"{case.operation.label} {case.path_parameters} {case.query} {case.body}"
        if response.status_code >= 500:
            problems.append(f"{response.status_code} for {label}: {response.text[:200]}")
        elif response.status_code >= 400 and "detail" not in response.json():
            problems.append(f"{response.status_code} without detail for {label}")

    run()
    assert problems == [], problems[:5]
    return seen


def test_fifty_generated_requests_get_no_server_error(api):
    seen = _fuzz(api, 50)
    assert sum(seen.values()) >= 50
    assert seen[200] + seen[201] > 0 and any(400 <= code < 500 for code in seen)


@pytest.mark.slow
def test_five_hundred_generated_requests_get_no_server_error(api):
    seen = _fuzz(api, 520)
    assert sum(seen.values()) >= 500, seen
    assert not [code for code in seen if code >= 500]


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]
BAD_IDS = ["a/b", "../u1", ".", "..", "a b", "%2F", "a%2Fb", "\u00e9t\u00e9", "x" * 129,
           "a?b", "a#b", "~forgotten~0", "u1\n", "\u202eu1", "\ud800", ""]


def _break(value, draw, marker: dict):
    """``value`` with some numbers replaced by a non-finite placeholder and some id fields
    by ids outside the grammar (``marker`` records what was broken)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ID_FIELDS and draw(st.booleans()):
                bad = draw(st.sampled_from(BAD_IDS))
                marker["ids"] += 1
                item = [bad] if isinstance(item, list) else bad
            else:
                item = _break(item, draw, marker)
            out[key] = item
        if "item_id" in out and "value" not in out and draw(st.booleans()):
            marker["numbers"] += 1  # an event (or pair) given a non-finite value
            out["value"] = f"@@{draw(st.sampled_from(NON_FINITE))}@@"
        return out
    if isinstance(value, list):
        return [_break(item, draw, marker) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and draw(st.booleans()):
        marker["numbers"] += 1
        return f"@@{draw(st.sampled_from(NON_FINITE))}@@"
    return value


def test_nan_infinity_and_bad_ids_get_no_server_error(api, tmp_path_factory, monkeypatch):
    from fastapi.testclient import TestClient

    from fusionrec.serving.app import create_app

    run_dir = _run_copy(tmp_path_factory)  # an app of its own: the schema's stays untouched
    monkeypatch.setenv(CACHE_ENV, str(run_dir.parent / "cache"))
    with TestClient(create_app(_settings(run_dir)),
                    headers={"Authorization": f"Bearer {KEY}"}) as client:
        _hostile_fuzz(api[0], client)


def _hostile_fuzz(schema, client) -> None:
    import json
    from urllib.parse import quote

    seen: Counter = Counter()
    problems: list[str] = []
    broken = Counter()

    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data) -> None:
        case = data.draw(schema.as_strategy())
        marker = {"ids": 0, "numbers": 0}
        params = dict(case.path_parameters or {})
        for name in params:
            if data.draw(st.booleans()):
                params[name] = data.draw(st.sampled_from(BAD_IDS))
                marker["ids"] += 1
        body = _break(case.body, data.draw, marker) if isinstance(case.body, (dict, list)) \
            else case.body
        query = dict(case.query or {})
        for name, value in query.items():  # k=NaN, limit=1e999, ...
            if isinstance(value, (int, float)) and data.draw(st.booleans()):
                query[name] = data.draw(st.sampled_from(NON_FINITE + ["nan", "inf"]))
                marker["numbers"] += 1
        path = case.path.format(**{k: quote(str(v), safe="", errors="surrogatepass")
                                 for k, v in params.items()})
        content = None
        if isinstance(body, (dict, list)):
            text = json.dumps(body)
            for literal in NON_FINITE:  # placeholders -> bare JSON tokens (NaN, 1e999, ...)
                text = text.replace(f'"@@{literal}@@"', literal)
            content = text.encode()
        response = client.request(case.method, path, params=query, content=content,
                                  headers={"Content-Type": "application/json"} if content else {})
        broken.update({k: v for k, v in marker.items() if v})
        seen[response.status_code] += 1
        label = f"{case.method} {path} {query} {content!r:.200}"
        if response.status_code >= 500:
            problems.append(f"{response.status_code} for {label}: {response.text[:200]}")
        elif response.status_code >= 400:
            try:
                assert "detail" in response.json()
            except (ValueError, AssertionError):
                problems.append(f"{response.status_code} without a JSON detail for {label}")
        elif marker["numbers"]:
            problems.append(f"accepted a non-finite number: {label}")

    run()
    assert problems == [], problems[:5]
    assert broken["numbers"] > 0 and broken["ids"] > 0, broken  # both kinds were sent
    assert sum(seen.values()) >= 60 and any(400 <= code < 500 for code in seen)
