"""Shared fixtures: a fresh store on each backend, a started ledger, an alliance, a real server.

PostgreSQL tests reach the server at LEDGER_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and create a fresh database per test session.
When it is unreachable they skip with the reason, unless LEDGER_REQUIRE_POSTGRES=1 (set by
.ci/run): then the skip is a failure.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Iterator

import psycopg
import pytest

from ledger.engine import Ledger
from ledger.store import EventStore, open_store
from tests.helpers import Alliance, FakeClock, build_alliance, started_ledger

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The fuzz suite's budget (tests/fuzz/conftest.py): here, in the first conftest pytest
    loads, so `pytest --fuzz-seconds 600` works from the repository root."""
    group = parser.getgroup("fuzz", "the fuzz suite (tests/fuzz)")
    group.addoption("--fuzz-seconds", type=float, default=None,
                    help="seconds per store (default 20, or FUZZ_SECONDS)")
    group.addoption("--fuzz-seed", type=int, default=None, help="seed (default 1, or FUZZ_SEED)")
    group.addoption("--fuzz-calls", type=int, default=None,
                    help="calls per phase instead of seconds (or FUZZ_CALLS)")
BACKENDS = ["sqlite", "postgres"]


def _admin_url() -> str:
    return os.environ.get("LEDGER_TEST_POSTGRES_URL", DEFAULT_PG)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh, empty database for this test session; dropped at the end."""
    admin_url = _admin_url()
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        reason = f"PostgreSQL unreachable at {admin_url}: {str(error).strip().splitlines()[0]}"
        if os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"LEDGER_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    name = f"ledger_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin_url)
    yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _empty_pg(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                     "ledger_request_keys CASCADE")
    return url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The URL of an empty database (no schema yet), once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return _empty_pg(request.getfixturevalue("pg_server_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_store(store_url)
    opened.create_schema()
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(store: EventStore, clock: FakeClock) -> Iterator[Ledger]:
    """A started ledger whose clock the test moves (clock.advance(seconds))."""
    with started_ledger(store, clock_us=clock) as engine:
        yield engine


@pytest.fixture
def alliance(ledger: Ledger) -> Alliance:
    """Two partners (P1 issues USD cards, P2 an airline), stores, terminals, credentials."""
    return build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
