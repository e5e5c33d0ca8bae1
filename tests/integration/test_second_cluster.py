"""The second PostgreSQL server of the tests (tests/support/databases.py): a scratch database
on it, and what happens when it is down (in CI, LEDGER_REQUIRE_POSTGRES=1, a failure naming
`.ci/run`; elsewhere a skip with the reason, as for PostgreSQL itself)."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.databases import fresh_postgres, fresh_second_postgres

pytestmark = [pytest.mark.postgres]

NOBODY = "postgresql://postgres@127.0.0.1:1/postgres"  # port 1: nothing listens


def test_a_scratch_database_on_the_second_server_dropped_on_exit():
    with fresh_postgres("tc_first") as first, fresh_second_postgres("tc_second") as second:
        with psycopg.connect(first) as a, psycopg.connect(second) as b:
            ports = [conn.execute("SELECT inet_server_port()").fetchone()[0] for conn in (a, b)]
            names = [conn.execute("SELECT current_database()").fetchone()[0] for conn in (a, b)]
        assert ports[0] != ports[1]  # two servers, not two databases of one
        assert names[1].startswith("tc_second_")
    with psycopg.connect(second.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (names[1],)).fetchone()
    assert left == (0,)


def test_a_second_server_that_is_down_fails_the_test_and_names_ci_run(monkeypatch):
    monkeypatch.setenv("LEDGER_TEST_SECOND_POSTGRES_URL", NOBODY)
    monkeypatch.setenv("LEDGER_REQUIRE_POSTGRES", "1")  # as in CI
    monkeypatch.delenv("LEDGER_NO_SECOND_CLUSTER", raising=False)
    with pytest.raises(pytest.fail.Exception) as failed, fresh_second_postgres("tc_down"):
        raise AssertionError("unreachable: no database without a server")
    assert ".ci/run" in str(failed.value) and "127.0.0.1:1" in str(failed.value)


def test_it_is_a_skip_only_when_the_machine_says_it_has_none(monkeypatch):
    monkeypatch.setenv("LEDGER_TEST_SECOND_POSTGRES_URL", NOBODY)
    monkeypatch.setenv("LEDGER_NO_SECOND_CLUSTER", "1")
    with pytest.raises(pytest.skip.Exception) as skipped, fresh_second_postgres("tc_down"):
        raise AssertionError("unreachable: no database without a server")
    assert "LEDGER_NO_SECOND_CLUSTER=1" in str(skipped.value)


def test_outside_ci_a_second_server_that_is_down_skips_naming_ci_run(monkeypatch):
    monkeypatch.setenv("LEDGER_TEST_SECOND_POSTGRES_URL", NOBODY)
    monkeypatch.delenv("LEDGER_REQUIRE_POSTGRES", raising=False)
    monkeypatch.delenv("LEDGER_NO_SECOND_CLUSTER", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped, fresh_second_postgres("tc_down"):
        raise AssertionError("unreachable: no database without a server")
    assert ".ci/run" in str(skipped.value) and "127.0.0.1:1" in str(skipped.value)
