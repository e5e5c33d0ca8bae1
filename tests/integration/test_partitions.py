"""Card partitions, their owners and routing (issue 14): two engines on one PostgreSQL
database, as two `serve --workers 2` processes run them, each owning half of the partitions
(ledger/ownership.py) and sending the other's cards to it (ledger/routing.py)."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.cards import commands as cc
from domain.common import Result
from ledger import limits
from ledger.engine import Ledger
from ledger.ownership import Ownership, partition_of_card, recorded_count
from ledger.routing import RouteListener, Router
from ledger.work import Request
from tests.integration.test_multi_writer import (
    USD,
    catch_up,
    fold_from_store,
    from_both,
    new_card,
)

pytestmark = [pytest.mark.postgres, pytest.mark.backends("postgres")]

WAIT_S = 30.0  # an upper bound for a lease the database has freed to be seen free


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def until(condition: Any, what: str) -> None:
    """Poll a condition (not a timing assertion: the bound only stops a hung test)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_two_owners_split_the_partitions_and_route_to_each_other(store):
    params = store.connect_params
    a = Ownership(params, "unix:/tmp/a.sock", (0, 2))
    b = Ownership(params, "unix:/tmp/b.sock", (1, 2))
    try:
        a.run_once()
        b.run_once()
        a.run_once()
        count = limits.PARTITIONS
        assert a.count == b.count == count
        evens = frozenset(range(0, count, 2))
        odds = frozenset(range(1, count, 2))
        assert (a.owned, b.owned) == (evens, odds)  # each only its own, though all were free
        assert {p: a.owner(p) for p in range(count)} == {
            p: (None if p in evens else "unix:/tmp/b.sock") for p in range(count)}
        assert {p: b.owner(p) for p in range(count)} == {
            p: ("unix:/tmp/a.sock" if p in evens else None) for p in range(count)}
        # the count is recorded once: a process asking for another one gets the recorded one
        with psycopg.connect(**params, autocommit=True) as conn:
            assert recorded_count(conn, wanted=64) == count
    finally:
        a.stop()
        b.stop()


def test_a_dead_owners_partitions_are_taken_over_and_never_twice(store):
    params = store.connect_params
    clock = FakeClock()
    a = Ownership(params, "unix:/tmp/a.sock", (0, 2), clock=clock)
    b = Ownership(params, "unix:/tmp/b.sock", (1, 2))
    c = Ownership(params, "unix:/tmp/c.sock", (0, 2))  # a second process preferring a's
    try:
        b.run_once()
        a.run_once()
        c.run_once()
        assert c.owned == frozenset()  # a holds them: a lease is held by one process only
        # a has run long enough to take over, but b's partitions are owned: nothing to take
        clock.now += limits.LEASE_STARTUP_S + limits.LEASE_TAKEOVER_S
        a.run_once()
        assert len(a.owned) == limits.PARTITIONS // 2
        b.stop()  # its session ends: its leases are free (kill -9 ends it the same way)

        def b_seen_gone() -> bool:
            a.run_once()
            return not any(a.owner(p) == "unix:/tmp/b.sock" for p in range(a.count))

        until(b_seen_gone, "a sees b's leases gone")
        a.run_once()  # a pass that starts with them gone: their free time counts from here
        assert len(a.owned) == limits.PARTITIONS // 2  # free since just now: not yet taken
        clock.now += limits.LEASE_TAKEOVER_S
        a.run_once()
        assert a.owned == frozenset(range(limits.PARTITIONS))
        c.run_once()
        assert c.owned == frozenset()
        assert all(c.owner(p) == "unix:/tmp/a.sock" for p in range(c.count))
        # worker 1 runs again: a gives its partitions back, and it takes them
        b2 = Ownership(params, "unix:/tmp/b2.sock", (1, 2))
        b2.run_once()
        assert b2.owned == frozenset()  # a holds them still
        a.run_once()
        assert len(a.owned) == limits.PARTITIONS // 2

        def b2_has_its_own() -> bool:
            b2.run_once()
            return b2.owned == frozenset(range(1, limits.PARTITIONS, 2))

        until(b2_has_its_own, "b2 gets worker 1's partitions back")
        a.run_once()
        assert all(a.owner(p) == "unix:/tmp/b2.sock" for p in range(1, limits.PARTITIONS, 2))
        b2.stop()
    finally:
        for ownership in (a, b, c):
            ownership.stop()


@dataclass
class Node:
    engine: Ledger
    ownership: Ownership
    listener: RouteListener
    router: Router


@pytest.fixture
def nodes(ledger: Ledger, other: Ledger, tmp_path: Path) -> Iterator[list[Node]]:
    """The `ledger` and `other` engines as workers 0 and 1 of 2, routing to each other."""
    made = []
    for index, engine in enumerate((ledger, other)):
        address = f"unix:{tmp_path}/worker-{index}.sock"
        listener = RouteListener(address, engine.enqueue)
        params = engine.store.connect_params
        assert params is not None
        ownership = Ownership(params, address, (index, 2))
        ownership.run_once()
        engine.router = Router(ownership, engine.enqueue)
        made.append(Node(engine, ownership, listener, engine.router))
    for node in made:
        node.ownership.run_once()  # each now knows where the other listens
    yield made
    for node in made:
        node.engine.router = None
        node.router.close()
        node.listener.close()
        node.ownership.stop()


def card_owned_by(nodes: list[Node], index: int, alliance: Any, load: int) -> str:
    """A new card whose partition worker `index` owns."""
    count = nodes[0].ownership.count
    while True:
        number = new_card(nodes[0].engine, alliance, load)
        if partition_of_card(number, count) in nodes[index].ownership.owned:
            return number


def test_a_busy_card_is_decided_by_its_owner_alone(nodes, alliance, store):
    """160 authorizations for one card arrive through both engines at once: every one is
    decided by the card's owner, so no commit conflicts (before partitions: one failed
    optimistic commit and one turn at the log per contended batch), and exactly what fits is
    approved."""
    ledger, other = nodes[0].engine, nodes[1].engine
    number = card_owned_by(nodes, 1, alliance, load=10_000)
    catch_up(ledger, alliance)
    catch_up(other, alliance)
    conflicts = ledger.conflicts + other.conflicts
    forwarded, received = nodes[0].router.forwarded, nodes[1].listener.received
    replies = from_both(ledger, other, alliance, cc.Authorize(number, 100, USD, False, ""), 40)
    assert Counter(Result(r.result) for r in replies) == {
        Result.APPROVED: 100, Result.DECLINED_INSUFFICIENT_FUNDS: 60}
    assert nodes[0].router.forwarded - forwarded == 80  # the half that reached worker 0
    assert nodes[1].listener.received - received == 80
    assert nodes[1].router.forwarded == 0  # worker 1 owns the card: it never sends it away
    assert ledger.conflicts + other.conflicts == conflicts  # the owner was never overtaken
    assert fold_from_store(store, number) == (10_000, 10_000)


def test_requests_to_an_owner_that_dies_are_decided_by_the_receiver_once(nodes, alliance,
                                                                        store):
    """The owner's socket breaks with requests sent and not answered: the receiving engine
    decides them itself. Those the owner committed come back as replays, so each request id
    is applied once and the card's figures add up."""
    ledger, other = nodes[0].engine, nodes[1].engine
    number = card_owned_by(nodes, 1, alliance, load=100_000)
    catch_up(other, alliance)
    nodes[1].listener.close()  # the owner "dies": its listener and connections go
    replies = [ledger.call(alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                           request_id=f"after-{i}", timeout_s=20) for i in range(20)]
    assert all(getattr(r, "result", None) == Result.APPROVED for r in replies), replies
    # retried with the same ids through the owner itself: each one is a replay
    again = [other.call(alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                        request_id=f"after-{i}", timeout_s=20) for i in range(20)]
    assert all(getattr(r, "replayed", False) for r in again), again
    assert [r.authorization_id for r in again] == [r.authorization_id for r in replies]
    assert fold_from_store(store, number) == (100_000, 2_000)


def test_the_route_directory_must_be_private(tmp_path):
    """An owner trusts the credential a forwarded request names: only this user's processes
    may reach its socket, so the directory is made 0700 or refused with what is wrong."""
    from ledger.routing import private_directory
    from ledger.store import ConfigError

    made = private_directory(str(tmp_path / "routes"))
    assert os.stat(made).st_mode & 0o777 == 0o700
    listener = RouteListener(f"unix:{made}/x.sock", lambda request: None)
    try:
        assert os.stat(f"{made}/x.sock").st_mode & 0o777 == 0o600
    finally:
        listener.close()
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with pytest.raises(ConfigError, match=r"must belong to this user and be private to it "
                                          r"\(mode 0700; it is 755"):
        private_directory(str(shared))


def test_a_reply_with_nothing_in_it_ends_the_route_and_the_request_is_decided_here(tmp_path):
    """An owner that answers with neither an outcome nor a failure (another version, a bug)
    is a broken route: the request is handed to this process's own writer, never left
    waiting."""
    import socket
    import threading

    from ledger import routing

    path = tmp_path / "broken.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def broken_owner() -> None:
        conn, _ = server.accept()
        for item in routing._forwarded.decode(routing._read_frame(conn)):
            conn.sendall(routing._frame([routing.Returned(item.seq)]))
        conn.recv(1)  # until the peer goes

    threading.Thread(target=broken_owner, daemon=True).start()
    decided_here = threading.Event()
    peer = routing._Peer(f"unix:{path}", lambda request: decided_here.set())
    answered = threading.Event()
    assert peer.send(Request("c-1", cc.GetCard("6" * 16), lambda reply: answered.set()))
    assert decided_here.wait(WAIT_S) and not answered.is_set()
    assert peer.dead
    server.close()


def test_closing_the_router_waits_for_the_owner_and_loses_nothing(nodes, alliance, store):
    """On SIGTERM the router waits for the owner's answers before the ledger stops; each
    request is answered once and applied once."""
    import threading

    ledger, other = nodes[0].engine, nodes[1].engine
    number = card_owned_by(nodes, 1, alliance, load=100_000)
    catch_up(other, alliance)
    replies: dict[int, Any] = {}
    lock = threading.Lock()

    def record(i: int) -> Any:
        def done(reply: Any) -> None:
            with lock:
                assert i not in replies, "answered twice"
                replies[i] = reply
        return done

    for i in range(50):
        ledger.submit(Request(alliance.t1, cc.Authorize(number, 10, USD, False, ""),
                              record(i), "", f"closing-{i}", "", math.inf))
    nodes[0].router.close()
    until(lambda: len(replies) == 50, "every request answered")
    assert all(r.result == Result.APPROVED for r in replies.values())
    assert fold_from_store(store, number) == (100_000, 500)
