"""The real tier's guard: a missing component skips, but fails under FUSIONREC_REQUIRE_REAL=1
(CI sets it, so the browser and PostgreSQL tests cannot pass there by skipping)."""

from __future__ import annotations

import pytest

import real_support


@pytest.mark.parametrize("value, outcome", [
    (None, pytest.skip.Exception), ("0", pytest.skip.Exception),
    ("1", pytest.fail.Exception), ("yes", pytest.fail.Exception)])
def test_missing_component_skips_unless_required(monkeypatch, value, outcome):
    if value is None:
        monkeypatch.delenv(real_support.REQUIRE_ENV, raising=False)
    else:
        monkeypatch.setenv(real_support.REQUIRE_ENV, value)
    with pytest.raises(outcome, match="no chromedriver"):
        real_support.missing_component("no chromedriver")


def test_postgres_database_needs_the_server_url_when_required(monkeypatch):
    monkeypatch.delenv(real_support.POSTGRES_ENV, raising=False)
    monkeypatch.setenv(real_support.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=real_support.POSTGRES_ENV):
        with real_support.fresh_postgres_database():
            pass


def test_database_url_keeps_server_and_options():
    assert real_support._with_database("postgresql://u@127.0.0.1:5433/postgres?sslmode=disable",
                                       "t1") == "postgresql://u@127.0.0.1:5433/t1?sslmode=disable"
