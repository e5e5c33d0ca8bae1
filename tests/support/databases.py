"""Databases for tests: a fresh PostgreSQL database (dropped afterwards) and an emptied one.

PostgreSQL is reached at LEDGER_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres). When it is unreachable the test skips with the
reason, unless LEDGER_REQUIRE_POSTGRES=1 (set by .ci/run): then the skip is a failure.

A second PostgreSQL server (partitions placed on another server: tests/e2e/test_two_clusters.py)
is reached at LEDGER_TEST_SECOND_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5433/postgres: the cluster `.ci/run` creates and starts). When
it is unreachable the test FAILS, saying so: a skip would hide a CI run without it. Only
LEDGER_NO_SECOND_CLUSTER=1 turns that into a skip, for a machine that cannot have one.
LEDGER_TEST_DB_PREFIX (default none) goes before every database name this module makes, so
several checkouts sharing one server can tell (and drop) their own."""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_SECOND_PG = "postgresql://postgres@127.0.0.1:5433/postgres"


def admin_url() -> str:
    return os.environ.get("LEDGER_TEST_POSTGRES_URL", DEFAULT_PG)


def second_admin_url() -> str:
    return os.environ.get("LEDGER_TEST_SECOND_POSTGRES_URL", DEFAULT_SECOND_PG)


def _unreachable(url: str, error: psycopg.Error) -> str:
    return f"PostgreSQL unreachable at {url}: {str(error).strip().splitlines()[0]}"


@contextmanager
def fresh_postgres(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database named `prefix`_<pid>_<random>; dropped on exit."""
    url = admin_url()
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        reason = _unreachable(url, error)
        if os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"LEDGER_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with _database(admin, url, prefix) as created:
        yield created


@contextmanager
def fresh_second_postgres(prefix: str) -> Iterator[str]:
    """`fresh_postgres` on the second PostgreSQL server (second_admin_url()). Unreachable, it
    skips with the reason (as the PostgreSQL tests do on a machine without PostgreSQL),
    unless LEDGER_REQUIRE_POSTGRES=1 (CI): then it fails, naming `.ci/run`, which creates
    and starts that cluster. LEDGER_NO_SECOND_CLUSTER=1 always skips."""
    url = second_admin_url()
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        reason = _unreachable(url, error)
        if os.environ.get("LEDGER_NO_SECOND_CLUSTER") == "1":
            pytest.skip(f"LEDGER_NO_SECOND_CLUSTER=1: {reason}")
        if os.environ.get("LEDGER_REQUIRE_POSTGRES") != "1":
            pytest.skip(f"the second PostgreSQL cluster is down: {reason} (`bash .ci/run` "
                        "creates and starts it: cluster 'second', port 5433)")
        pytest.fail(f"the second PostgreSQL cluster is needed and down: {reason}. "
                    "`bash .ci/run` creates and starts it (cluster 'second', port 5433; "
                    "CI runs it, so a skip here would hide it); set "
                    "LEDGER_NO_SECOND_CLUSTER=1 to skip these tests on a machine without "
                    "one, or LEDGER_TEST_SECOND_POSTGRES_URL to use another server",
                    pytrace=False)
    with _database(admin, url, prefix) as created:
        yield created


@contextmanager
def _database(admin: psycopg.Connection[Any], url: str, prefix: str) -> Iterator[str]:
    """A new database on `admin`'s server; its URL (`url` with the database's name); dropped,
    and `admin` closed, on exit."""
    name = f"{os.environ.get('LEDGER_TEST_DB_PREFIX', '')}{prefix}_{os.getpid()}_" \
           f"{secrets.token_hex(3)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def empty_postgres(url: str) -> str:
    """Drop the ledger's tables in the database at `url` (no schema left); returns `url`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                     "ledger_request_keys, projection_positions, proj_movements, "
                     "proj_movement_cards, proj_maintenance_cards, proj_settlement_totals, "
                     "proj_settlement_periods, proj_settlement_cards, "
                     "proj_settlement_commission, proj_settlement_point_rates, "
                     "proj_settlement_payments, proj_fin_cards, "
                     "proj_fin_card_points, proj_fin_lots, proj_fin_programs, proj_fin_money, "
                     "proj_fin_points, proj_cust_activity, proj_cust_cards, proj_cust_stores, "
                     "audit_checkpoints, audit_chain, ledger_partitioning, "
                     "ledger_partition_owners, ledger_placement CASCADE")
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = "
                                     "'public' AND tablename LIKE 'proj\\_%'").fetchall():
            conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')  # any read model's
        for (schema,) in conn.execute("SELECT nspname FROM pg_namespace "
                                      "WHERE nspname LIKE 'ledger\\_p%'").fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return url


def split_postgres(url: str, other: str) -> str:
    """The split layout (ledger/partitioned.py) in emptied databases: the global tables and
    partitions 0..7 at `url`, partitions 8..15 at `other` (another database: its own pool,
    as another server would be); returns `url`, the one the ledger is opened with."""
    from ledger import limits, partitioned
    from ledger.store import PostgresStore

    empty_postgres(url)
    empty_postgres(other)
    half = limits.PARTITIONS // 2
    store = PostgresStore(url)
    try:
        partitioned.create_split(store, limits.PARTITIONS,
                                 [url] * half + [other] * (limits.PARTITIONS - half))
    finally:
        store.close()
    return url


def owned_partitions(url: str, pid: int) -> int:
    """How many card partitions the server process `pid` holds the live lease of (its route
    socket is named after its pid: entrypoints/cli.py)."""
    from psycopg.conninfo import conninfo_to_dict

    from ledger.ownership import leases

    return sum(lease.address.endswith(f"ledger-{pid}.sock")
               for lease in leases(conninfo_to_dict(url)))
