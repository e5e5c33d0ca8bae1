"""Shared fixtures: a fresh store on each backend, a started ledger, an alliance, a real server.

Backends: a test that uses `store_url` (or `store`, `ledger`, `alliance`, `server`) runs once
per backend named by its closest `backends` mark, both by default. Stories and end-to-end
tests run on SQLite (`pytestmark = pytest.mark.backends("sqlite")`); PostgreSQL stays where
the database is the subject: the store contract, several engines or processes on one
database, durability, the outage, turns, and the end-to-end smoke run (tests marked
`backends("sqlite", "postgres")` inside otherwise SQLite-only modules).

PostgreSQL tests reach the server at LEDGER_TEST_POSTGRES_URL (tests/support/databases.py) and
share one fresh database per test session, its tables dropped before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.engine import Ledger
from ledger.store import EventStore, open_store
from tests.support.alliance import Alliance, FakeClock, build_alliance, started_ledger
from tests.support.databases import (
    empty_postgres,
    fresh_postgres,
    fresh_second_postgres,
    split_postgres,
)

BACKENDS = ("sqlite", "postgres")
# "split": PostgreSQL with the log split by card partition (ledger/partitioned.py), half the
# partitions in a second database; only where a module's `backends` mark names it.
ALL_BACKENDS = (*BACKENDS, "split")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The fuzz suite's budget (tests/fuzz/conftest.py): here, in the first conftest pytest
    loads, so `pytest --fuzz-seconds 600` works from the repository root."""
    group = parser.getgroup("fuzz", "the fuzz suite (tests/fuzz)")
    group.addoption("--fuzz-seconds", type=float, default=None,
                    help="seconds per store (default 20, or FUZZ_SECONDS)")
    group.addoption("--fuzz-seed", type=int, default=None, help="seed (default 1, or FUZZ_SEED)")
    group.addoption("--fuzz-calls", type=int, default=None,
                    help="calls per phase instead of seconds (or FUZZ_CALLS)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_url" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    backends = marker.args if marker is not None else BACKENDS
    forced = os.environ.get("LEDGER_TEST_BACKEND", "")  # e.g. =split: every such test on it
    if forced:
        backends = (forced,)
    assert backends and set(backends) <= set(ALL_BACKENDS), backends
    metafunc.parametrize("store_url", backends, indirect=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh, empty database for this test session; dropped at the end."""
    with fresh_postgres("ledger_test") as url:
        yield url


@pytest.fixture(scope="session")
def pg_second_url() -> Iterator[str]:
    """A fresh database on the second PostgreSQL server (port 5433, made by .ci/run): the
    split layout's other server."""
    with fresh_second_postgres("ledger_test2") as url:
        yield url


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The URL of an empty database (no schema yet) on the backend of this test's parameter
    (split: the partitions' schemas made and placed, the global tables not yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    if request.param == "split":
        return split_postgres(request.getfixturevalue("pg_server_url"),
                              request.getfixturevalue("pg_second_url"))
    return empty_postgres(request.getfixturevalue("pg_server_url"))


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


@pytest.fixture
def other(store_url: str, ledger: Ledger, clock: Any) -> Iterator[Ledger]:
    """A second engine (a second 'process') on its own store for the same database."""
    second_store = open_store(store_url)
    second_store.check_schema()
    engine = Ledger(second_store, clock_us=clock).start()
    yield engine
    engine.stop()
    second_store.close()
