"""PII scrubbing: nothing identifying survives; ordinary numbers, years and names do."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrec.text.scrub import is_pii_column, scrub_pii

PII = [
    ("mail me at john.doe+music@example.co.uk please", "john.doe"),
    ("contact: JANE_99@mail-server.org", "JANE_99"),
    ("see https://www.last.fm/music/Britney+Spears for more", "last.fm"),
    ("http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)", "imdb"),
    ("visit www.example.com/shop today", "example"),
    ("shop at cheap-guitars.com now", "cheap-guitars"),
    ("follow @dj_shadow on twitter", "dj_shadow"),
    ("call +1 415 555 0100 anytime", "555"),
    ("call +44 (20) 7946 0958 anytime", "7946"),
    ("US number (415) 555-0100.", "555"),
    ("dial 415-555-0100 now", "0100"),
    ("dial 415.555.0100 now", "0100"),
    ("ring 415 555 0100 now", "0100"),
    ("card 4111 1111 1111 1111 expires", "1111"),
    ("order 1234567890123 shipped", "1234567"),
    ("server at 192.168.10.21 is down", "192.168"),
    ("odd host a..shop.example.com/x?y=1 here", "example"),
    ("(see my-band.fm)", "my-band"),
]


@pytest.mark.parametrize("text, secret", PII)
def test_pii_is_removed(text, secret):
    out = scrub_pii(text)
    assert secret not in out, out
    assert re.search(r"\[(email|url|user|phone|number|ip)\]", out), out


@pytest.mark.parametrize("text", [
    "Kolya (1996).",
    "Recently rated (out of 5): Star Wars (1977): 5; Fargo (1996): 4.",
    "Tags: 80s (41), new wave (38), 1985 songs.",
    "Rated 4.6 of 5 on average by 13 reviewers.",
    "Released 1995 2001 2003 in three editions.",
    "AC/DC, Guns N' Roses and blink-182.",
    "Monster Standard 100 - 21' Instrument Cable.",
    "Listened 12,345 times.",
    "version 2.0 of the plugin",
])
def test_ordinary_text_survives(text):
    assert scrub_pii(text) == text


def test_whitespace_is_normalised_but_lines_kept_by_callers():
    assert scrub_pii("  a \t b  ") == "a b"


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(alphabet=st.characters(whitelist_categories=("L", "Zs")), max_size=20),
       email=st.emails())
def test_any_email_is_removed(prefix, email):
    out = scrub_pii(f"{prefix} {email} thanks")
    local = email.split("@")[0]
    assert "@" not in out.replace("[email]", ""), out
    assert email not in out
    # the placeholder and the fixed suffix are ours: "ema" (of "[email]") or "than" is no leak
    rest = out.replace("[email]", "").replace("thanks", "")
    assert local not in rest or len(local) < 3 or local in prefix


@settings(max_examples=200, deadline=None)
@given(country=st.integers(1, 999), groups=st.lists(st.integers(100, 9999), min_size=2,
                                                       max_size=4),
       sep=st.sampled_from([" ", "-", "."]))
def test_any_international_phone_is_removed(country, groups, sep):
    number = f"+{country} " + sep.join(str(g) for g in groups)
    out = scrub_pii(f"my number is {number}, call me")
    assert not re.search(r"\d{3}", out), out


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=7, max_size=30))
def test_any_long_digit_run_is_removed(digits):
    out = scrub_pii(f"id {digits} end")
    assert not re.search(r"\d{7}", out), out


@settings(max_examples=100, deadline=None)
@given(handle=st.from_regex(r"[A-Za-z0-9_]{2,15}", fullmatch=True))
def test_any_handle_is_removed(handle):
    out = scrub_pii(f"thanks @{handle} for the tip")
    assert f"@{handle}" not in out


# Runs without spaces that made the old patterns quadratic (32k characters of "a." took 47 s).
# Their time is measured by benchmarks/scrub.py (linear: 10x from 100k to 1M characters) and,
# through the service, by benchmarks/hostile_input.py; here: the privacy rules still hold on them.
HOSTILE = ["a" * 1_000_000, "1" * 1_000_000, "a." * 500_000, "1." * 500_000,
           "a-" * 500_000, "+1" * 500_000, "a@" * 500_000, "@a." * 333_333,
           ("b" * 62 + ".") * 16_000]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:4]))
def test_long_runs_without_spaces_keep_the_privacy_rules(text):
    out = scrub_pii(text)
    assert not re.search(r"\d{7,}", out)  # no long digit run survives
    assert not re.search(r"[\w.]@[A-Za-z0-9-]+\.[A-Za-z0-9-]+", out)  # no e-mail survives
    # no bare host survives (checked per token: a regex scan from every position would itself
    # be quadratic on these runs)
    assert not any(token.lower().rstrip("/").endswith((".com", ".net", ".org", ".io"))
                   for token in out.split())


def test_pii_inside_a_megabyte_run_is_still_found():
    out = scrub_pii("x" * 500_000 + " john.doe@example.org " + "1." * 200_000 + "shop.io")
    assert "john.doe" not in out and "[email]" in out and out.endswith("[url]")


def test_identifying_columns_are_recognised():
    for name in ("zip_code", "Email", "phone-number", "postcode", "street_address"):
        assert is_pii_column(name)
    for name in ("age", "gender", "occupation", "genres", "release_year"):
        assert not is_pii_column(name)
