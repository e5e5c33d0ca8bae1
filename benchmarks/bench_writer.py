"""The writer: the engine's decide + group-commit path and the store's append, on SQLite (a
temporary file, always) and PostgreSQL (a scratch database at LEDGER_TEST_POSTGRES_URL's
server, skipped when unreachable).

- `test_writer_*_1000`: 1,000 authorizations submitted at once, timed until every reply (all
  durable) has arrived: queueing, deciding, encoding, one or a few commits, callbacks.
- `test_writer_one`: one authorization through the writer, submit to durable reply.
- `test_append_1000`: the store's append alone, 1,000 events + 1,000 request keys in one
  transaction (table lock, NOTIFY and unnest INSERTs on PostgreSQL).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from domain.cards import commands as cc
from domain.common import APPROVALS, Principal, Role, luhn_complete
from domain.registry import commands as rc
from ledger.codec import Outcome
from ledger.engine import Ledger, Request
from ledger.store import KeyRow, open_store

CARDS = 200
LOAD_MINOR = 90_000_000
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
_ids = itertools.count(1)


def _rid(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


@dataclass
class Bench:
    ledger: Ledger
    terminal: str  # credential id
    cards: list[str]


def _submit_all(ledger: Ledger, credential_id: str, commands: list[object],
                timeout_s: float = 60.0) -> list[object]:
    """Submit everything at once (the writer batches it) and wait for every reply."""
    remaining = threading.Semaphore(0)
    replies: list[object] = [None] * len(commands)

    def answer(index: int) -> object:
        def done(reply: object) -> None:
            replies[index] = reply
            remaining.release()
        return done

    deadline = time.monotonic() + timeout_s
    for index, command in enumerate(commands):
        ledger.submit(Request(credential_id, command, answer(index), "",  # type: ignore[arg-type]
                              _rid("w"), "", deadline))
    for _ in commands:
        assert remaining.acquire(timeout=timeout_s), "the writer did not answer in time"
    return replies


def _approved(replies: list[object]) -> None:
    bad = [r for r in replies if not (isinstance(r, Outcome) and r.result in APPROVALS)]
    assert not bad, bad[:3]


def _prepare(url: str) -> Iterator[Bench]:
    store = open_store(url)
    store.create_schema()
    ledger = Ledger(store)
    token = ledger.bootstrap_admin("bench")
    ledger.start()
    try:
        admin = ledger.authenticate(token)
        assert admin is not None
        for command in (rc.RegisterPartner("P1", "Bench", "USD"),
                        rc.RegisterStore("P1", "S1", "Bench store", "UTC"),
                        rc.RegisterTerminal("S1", "T1")):
            reply = ledger.call(admin.credential_id, command, request_id=_rid("setup"))
            assert isinstance(reply, Outcome) and reply.result in APPROVALS, reply
        made = ledger.call(admin.credential_id, rc.CreateCredential(
            Principal(Role.TERMINAL, "P1", "S1", "T1"), "bench"), request_id=_rid("setup"))
        assert isinstance(made, Outcome)
        cards = [luhn_complete(f"8{seed:014d}") for seed in range(1, CARDS + 1)]
        _approved(_submit_all(ledger, admin.credential_id, [
            cc.IssueCard(n, "STANDARD", "USD", "bench", "S1") for n in cards]))
        _approved(_submit_all(ledger, admin.credential_id, [
            cc.ActivateCard(n, "") for n in cards]))
        _approved(_submit_all(ledger, admin.credential_id, [
            cc.LoadValue(n, LOAD_MINOR, "USD", "bench") for n in cards]))
        yield Bench(ledger, made.credential_id, cards)
    finally:
        ledger.stop()
        store.close()


@pytest.fixture(scope="module")
def sqlite_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    path: Path = tmp_path_factory.mktemp("writer") / "ledger.db"
    yield from _prepare(f"sqlite:///{path}")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    admin_url = os.environ.get("LEDGER_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL unreachable at {admin_url}: {str(error).strip()[:120]}")
    name = f"ledger_benchw_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin_url)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def postgres_bench(postgres_url: str) -> Iterator[Bench]:
    yield from _prepare(postgres_url)


@pytest.fixture(params=["sqlite", "postgres"])
def bench(request: pytest.FixtureRequest) -> Bench:
    return request.getfixturevalue(f"{request.param}_bench")  # type: ignore[no-any-return]


def test_writer_authorize_1000(benchmark, bench: Bench):
    cards = itertools.cycle(bench.cards)

    def run() -> list[object]:
        return _submit_all(bench.ledger, bench.terminal, [
            cc.Authorize(next(cards), 100, "USD", False, "") for _ in range(1_000)])

    _approved(benchmark(run))


def test_writer_one(benchmark, bench: Bench):
    cards = itertools.cycle(bench.cards)

    def run() -> object:
        return bench.ledger.call(bench.terminal, cc.Authorize(next(cards), 100, "USD", False, ""),
                                 request_id=_rid("one"))

    _approved([benchmark(run)])


def test_append_1000(benchmark, bench: Bench):
    """The store's transaction alone: 1,000 events on fresh streams + 1,000 request keys."""
    store = bench.ledger.store
    state = os.urandom(180)  # an encoded ValueAuthorized is ~180 bytes
    outcome = os.urandom(107)
    digest = os.urandom(16)

    def run() -> list[int]:
        stream = uuid.uuid4()
        events = [StoredEvent(stream, v, "sv.authorized.v1", state) for v in range(1, 1_001)]
        keys = [KeyRow("t:BENCH", _rid("append"), digest, outcome) for _ in range(1_000)]
        return store.append(events, keys)

    ids = benchmark(run)
    assert len(ids) in (0, 1_000)  # SQLite's recorder returns no ids


def test_writer_parallel_callers(benchmark, bench: Bench):
    """16 threads each waiting on one authorization at a time (the unary server's shape)."""
    cards = itertools.cycle(bench.cards)
    lock = threading.Lock()

    def one(_: int) -> object:
        with lock:
            card = next(cards)
        return bench.ledger.call(bench.terminal, cc.Authorize(card, 100, "USD", False, ""),
                                 request_id=_rid("par"))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        def run() -> list[object]:
            return list(pool.map(one, range(256)))

        _approved(benchmark(run))
