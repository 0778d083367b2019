"""benchmarks/hostile_input.py without a model: its payloads say what their names say, its
verdicts follow the acceptance limits, and its raw client reads an early 413 and polls a
health endpoint (against tiny local servers). The timed run is the benchmark itself."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("hostile_input", BENCH / "hostile_input.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for its helper modules
    return module


@pytest.fixture(scope="module")
def cases(bench):
    import hostile_cases

    return {c.name: c for c in hostile_cases.build_cases("k" * 12, "u1", "i1")}


def _first_event(case) -> dict:
    return json.loads(case.body)["events"][0]


def test_cases_cover_every_kind_the_issue_names(cases):
    assert len(cases["body_1mb"].body) >= 1_000_000
    assert len(cases["body_10mb"].body) >= 10_000_000
    text = json.loads(cases["text_no_spaces_1mb"].body)["users"][0]["text"]
    assert len(text) == 1_000_000 and " " not in text
    assert json.loads(cases["text_digits_100k"].body)["users"][0]["text"].isdigit()
    assert cases["number_100k_digits"].body.count(b"9") >= 100_000
    nested = cases["nested_json_100k"].body
    assert b"[" * 100_000 + b"]" * 100_000 in nested
    assert len(json.loads(cases["events_batch_10k"].body)["events"]) == 10_000
    score = cases["score_batch_10k"]
    assert score.path == "/v1/score" and len(json.loads(score.body)["pairs"]) == 10_000
    # Python's json reads these literals as the non-finite floats the server must refuse
    assert math.isnan(_first_event(cases["value_nan"])["value"])
    assert _first_event(cases["value_inf"])["value"] == math.inf
    assert _first_event(cases["value_minus_inf"])["value"] == -math.inf
    assert _first_event(cases["value_1e999"])["value"] == math.inf
    assert _first_event(cases["timestamp_1e300"])["timestamp"] == 1e300
    assert _first_event(cases["id_lone_surrogate"])["user_id"] == "u\ud800x"
    assert "\u202e" in _first_event(cases["id_rtl_override"])["user_id"]
    assert "\u200b" in _first_event(cases["id_zero_width"])["user_id"]
    assert "\x00" in _first_event(cases["id_nul"])["user_id"]
    with pytest.raises(UnicodeDecodeError):
        cases["body_invalid_utf8"].body.decode("utf-8")
    assert [_first_event(cases[n])["user_id"] for n in ("id_slash", "id_dotdot",
                                                          "id_percent_2f")] == ["a/b", "..",
                                                                                "a%2Fb"]
    for name in ("id_lone_surrogate", "id_rtl_override", "id_slash", "id_percent_2f"):
        body = json.loads(cases[name].body)  # a new user: listed under users, then used
        assert body["users"][0]["user_id"] == body["events"][0]["user_id"]
    assert ".." in cases["get_dotdot_path"].path and cases["get_dotdot_path"].method == "GET"
    # every write carries the key: a 401 would be a rejection for the wrong reason
    for case in cases.values():
        assert case.headers["Authorization"] == "Bearer " + "k" * 12


def test_judge_applies_the_acceptance_limits(bench):
    limits = (100.0, 50.0)
    assert bench.judge([413, 422], [3.0, 80.0], 12.0, 0, limits) == []
    assert bench.judge([500], [3.0], 1.0, 0, limits) == ["status 500"]
    assert bench.judge([None], [10000.0], math.inf, 4, limits) == [
        "status None", "reject 10000 ms > 100", "4 /healthz unanswered",
        "/healthz p99 inf ms > 50"]
    assert bench.judge([201, 422], [1.0, 1.0], 1.0, 0, limits) == ["status 201"]
    assert bench.judge([422], [101.0], 50.5, 0, limits) == ["reject 101 ms > 100",
                                                            "/healthz p99 50.5 ms > 50"]


def test_table_names_each_verdict(bench):
    rows = [{"case": "value_nan", "body_bytes": 80, "statuses": [500, 500],
             "reject_ms_max": 4.2, "healthz_p99_ms": 2.0, "pass": False, "why": "status 500"},
            {"case": "body_1mb", "body_bytes": 1_000_040, "statuses": [413],
             "reject_ms_max": 9.0, "healthz_p99_ms": 3.5, "pass": True, "why": ""}]
    lines = bench.table(rows).splitlines()
    assert lines[2].startswith("value_nan") and lines[2].endswith("FAIL: status 500")
    assert "1.00" in lines[3] and "413" in lines[3] and lines[3].endswith("PASS")


def test_send_reads_an_early_answer_after_a_broken_pipe():
    import hostile_client

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_and_close():  # like a server refusing by Content-Length, body unread
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 12\r\n\r\n"
                         b'{"detail":1}')
            time.sleep(0.2)

    thread = threading.Thread(target=answer_and_close)
    thread.start()
    reply = hostile_client.send(port, "POST", "/v1/events", b"x" * 10_000_000)
    thread.join()
    listener.close()
    assert reply.status == 413 and reply.seconds < 5 and reply.detail == '{"detail":1}'


def test_health_poller_times_every_poll():
    import hostile_client

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with hostile_client.HealthPoller(server.server_address[1], interval=0.01) as poller:
            poller.mark()
            time.sleep(0.3)
            latencies, unanswered = poller.since_mark()
            assert poller.alive()
        assert len(latencies) >= 5 and unanswered == 0
        assert all(0 < s < 1 for s in latencies)
    finally:
        server.shutdown()
        server.server_close()
    assert "hostile_client" in sys.modules


def test_server_exceptions_are_counted_by_type_and_message(bench):
    log = ("INFO: started\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
           "ValueError: Out of range float values are not JSON compliant\n"
           "ValueError: Out of range float values are not JSON compliant\n"
           "UnicodeEncodeError: 'utf-8' codec can't encode character\n"
           "    raise ValueError: indented lines are frames, not the exception\n")
    assert bench.server_exceptions(log) == {
        "ValueError: Out of range float values are not JSON compliant": 2,
        "UnicodeEncodeError: 'utf-8' codec can't encode character": 1}
