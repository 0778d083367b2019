"""Schemathesis against the service's own OpenAPI schema, in process (ASGI): whatever the
generated request, the answer is never a 5xx, and every rejection is a 4xx with a ``detail``.

Generated ids are mostly random strings (answered 404), so a share of the path parameters and
body ids is swapped for ids the run really has, to reach the code behind the lookups. The fast
test sends about 50 requests; the slow one at least 500 (the issue's acceptance bar).
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
    from fusionrec.serving.settings import ServeSettings

    base = tmp_path_factory.getbasetemp()
    run_dir = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(trained_run(base), run_dir)  # DELETE /v1/users may forget users in it
    monkey = pytest.MonkeyPatch()
    monkey.setenv(CACHE_ENV, str(run_dir.parent / "cache"))
    app = create_app(ServeSettings(run_dir=str(run_dir), api_key=KEY, max_batch=50,
                                   max_text_chars=500))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ids = {name: json.loads((run_dir / f"{name}.json").read_text())[:20]
           for name in ("users", "items")}
    yield schema, ids
    shutdown_lifespans()  # stops the app: closes its event store
    monkey.undo()


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
        auth = {"Authorization": f"Bearer {KEY}"} if data.draw(st.booleans()) else None
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
