"""The payloads of ``benchmarks/hostile_input.py``: one :class:`Case` per pathological request.

Every case is one that a correct service rejects with a 4xx, quickly. Bodies are built as raw
bytes, so the JSON can hold what ``json.dumps`` would refuse or normalise (``NaN``, a lone
surrogate escape, a 100,000-digit number, 100,000 levels of nesting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MB = 1_000_000


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    expect: str = "4xx"  # what a correct service answers (every case: a 4xx)


def _write(name: str, body: bytes | str, key: str, path: str = "/v1/events") -> Case:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Case(name, "POST", path, data, {"Authorization": f"Bearer {key}",
                                           "Content-Type": "application/json"})


def _event_with(user: str, item: str, **fields_json: str) -> str:
    """An events body whose first event has raw JSON text for some fields (``value='NaN'``)."""
    event = {"user_id": json.dumps(user), "item_id": json.dumps(item), "kind": '"rating"',
             "value": "3", **fields_json}
    inner = ",".join(f'"{k}":{v}' for k, v in event.items())
    return '{"events":[{' + inner + "}]}"


def _text_body(text: str) -> str:
    return json.dumps({"users": [{"user_id": "hostile-user", "text": text}]})


def _id_write(name: str, raw_id_json: str, item: str, key: str) -> Case:
    """A new user (with one event on a known item) whose id is raw JSON text, so escapes
    reach the server as sent; only the id can be the reason to refuse it."""
    body = ('{"users":[{"user_id":' + raw_id_json + '}],"events":[{"user_id":' + raw_id_json
            + ',"item_id":' + json.dumps(item) + ',"kind":"like"}]}')
    return _write(name, body, key)


def build_cases(key: str, user: str, item: str) -> list[Case]:
    """The hostile requests; ``user``/``item`` are known ids of the served run (batches of
    known ids make the server do the most work a well-formed request can ask)."""
    auth = {"Authorization": f"Bearer {key}"}
    words = "lorem ipsum dolor sit amet " * (MB // 27 + 1)
    events = [{"user_id": user, "item_id": item, "kind": "like"}] * 10_000
    pairs = [{"user_id": user, "item_id": item}] * 10_000
    return [
        # sizes: bodies over any sane limit (text with spaces: the size alone must be refused)
        _write("body_1mb", _text_body(words[:MB]), key),
        _write("body_10mb", _text_body((words * 10)[:10 * MB]), key),
        # long runs without spaces (the 10-minute freeze was the 1 MB one)
        _write("text_no_spaces_1mb", _text_body("a" * MB), key),
        _write("text_no_spaces_100k", _text_body("x" * 100_000), key),
        _write("text_no_spaces_10k", _text_body("@." * 5_000), key),
        _write("id_no_spaces_1mb", _event_with("b" * MB, item), key),
        # long digit runs: in text (phone-number scrubbing) and as a JSON number literal
        _write("text_digits_100k", _text_body("7" * 100_000), key),
        _write("number_100k_digits", _event_with(user, item, value="9" * 100_000), key),
        # deeply nested JSON (a recursive parser or validator overflows its stack)
        _write("nested_json_100k", '{"users":[{"user_id":"n","attributes":{"a":'
               + "[" * 100_000 + "]" * 100_000 + "}}]}", key),
        # 10,000-item batches (the limit is FUSIONREC_MAX_BATCH, default 1,000)
        _write("events_batch_10k", json.dumps({"events": events}), key),
        _write("score_batch_10k", json.dumps({"pairs": pairs}), key, path="/v1/score"),
        # NaN / infinity / absurd numbers (Python's json accepts NaN and Infinity literals)
        _write("value_nan", _event_with(user, item, value="NaN"), key),
        _write("value_inf", _event_with(user, item, value="Infinity"), key),
        _write("value_minus_inf", _event_with(user, item, value="-Infinity"), key),
        _write("value_1e999", _event_with(user, item, value="1e999"), key),
        _write("rating_99", _event_with(user, item, value="99"), key),
        _write("timestamp_1e300", _event_with(user, item, timestamp="1e300"), key),
        # unicode edge cases in ids (a lone surrogate cannot be stored as UTF-8)
        _id_write("id_lone_surrogate", '"u\\ud800x"', item, key),
        _id_write("id_rtl_override", '"u\\u202egnp.exe"', item, key),
        _id_write("id_zero_width", '"u\\u200bx"', item, key),
        _id_write("id_nul", '"u\\u0000x"', item, key),
        _write("body_invalid_utf8", b'{"users":[{"user_id":"\xff\xfe","text":"x"}]}', key),
        # path-like ids: written ones must stay readable, so the grammar must refuse them
        _id_write("id_slash", '"a/b"', item, key),
        _id_write("id_dotdot", '".."', item, key),
        _id_write("id_percent_2f", '"a%2Fb"', item, key),
        Case("get_dotdot_path", "GET", "/v1/users/..%2F..%2Fadmin/recommendations",
             headers=auth),
    ]
