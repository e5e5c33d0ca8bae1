"""Bounded resources: a full queue refuses at once (RESOURCE_EXHAUSTED, nothing written), a
request whose deadline passed before it was decided is not applied (DEADLINE_EXCEEDED), and the
card cache stays within its bound while evicted cards reload correctly.

The writer is held still by a store whose commits wait on an event the test controls, with
batch_max=1 so that what the pipeline can absorb is exact: one batch committing, two decided
batches waiting (the commit queue's size), one decided batch in the decider's hand, and
queue_max requests in the queue."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from domain.cards import commands as cc
from domain.common import Result
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.engine import Failure, Ledger, Refusal, Request
from ledger.store import EventStore
from tests.support.alliance import (
    Alliance,
    FakeClock,
    build_alliance,
    new_card,
    ok,
    rid,
    started_ledger,
    wait_until,
)

# Stories told on SQLite (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

QUEUE_MAX = 4
ABSORBED_MAX = 1 + 2 + 1 + QUEUE_MAX  # committing, waiting to commit, being handed over, queued
USD = "USD"


class HeldCommits:
    """Makes every append of `store` wait until `release` is set; `entered` is set once the
    first append is waiting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: EventStore) -> None:
        self.real = store.append
        self.entered = threading.Event()
        self.release = threading.Event()
        monkeypatch.setattr(store, "append", self)

    def __call__(self, events: Any, keys: Any, snapshots: Any = (), *lanes: Any) -> Any:
        self.entered.set()
        self.release.wait(60)
        return self.real(events, keys, snapshots, *lanes)


@pytest.fixture
def small(store: EventStore, clock: FakeClock) -> Iterator[Ledger]:
    with started_ledger(store, clock_us=clock, queue_max=QUEUE_MAX, batch_max=1,
                        card_cache_max=5) as engine:
        yield engine


@pytest.fixture
def small_alliance(small: Ledger) -> Alliance:
    return build_alliance(small, small.admin_token)  # type: ignore[attr-defined]




def balance(engine: Ledger, alliance: Alliance, number: str) -> tuple[int, int]:
    card = ok(engine.call(alliance.admin, cc.GetBalance(number))).card
    assert card is not None
    return card.balance_minor, card.held_minor




def fill_the_pipeline(engine: Ledger, alliance: Alliance, number: str,
                      held: HeldCommits) -> list[threading.Event]:
    """Submit authorizations until the writer can take no more: one committing (held), two
    waiting to commit, one in the decider's hand. Returns their completion events."""
    done: list[threading.Event] = []
    for index in range(4):
        finished = threading.Event()
        done.append(finished)
        engine.submit(Request(alliance.t1, cc.Authorize(number, 1, USD, False, ""),
                              lambda _reply, f=finished: f.set(), "", f"fill-{index}", "",
                              math.inf))
        if index == 0:
            assert held.entered.wait(30)
    wait_until(lambda: engine.commits.full() and engine.queued == 0)
    return done


def test_a_full_queue_refuses_at_once_and_writes_nothing(small, small_alliance, store,
                                                         monkeypatch):
    number = new_card(small, small_alliance, load=1_000)
    held = HeldCommits(monkeypatch, store)
    fillers = fill_the_pipeline(small, small_alliance, number, held)
    replies: dict[int, Any] = {}
    refused_at_once: list[int] = []
    for index in range(20):
        small.submit(Request(small_alliance.t1, cc.Authorize(number, 10, USD, False, ""),
                             lambda reply, i=index: replies.__setitem__(i, reply), "",
                             f"burst-{index}", "", math.inf))
        if index in replies:  # answered before submit returned: no waiting at all
            refused_at_once.append(index)
    assert len(refused_at_once) == 20 - QUEUE_MAX
    assert all(replies[i] == Failure(Refusal.OVERLOADED, replies[i].message)
               for i in refused_at_once)
    held.release.set()
    for finished in fillers:
        assert finished.wait(30)
    wait_until(lambda: len(replies) == 20)
    accepted = [i for i in range(20) if i not in refused_at_once]
    assert all(ok(replies[i]).result == Result.APPROVED for i in accepted)
    # the refused ones left nothing behind: 4 fillers of 1 and QUEUE_MAX holds of 10
    assert balance(small, small_alliance, number) == (1_000, 4 + 10 * QUEUE_MAX)
    # and a refused request can be sent again: it is new to the ledger
    again = small.call(small_alliance.t1, cc.Authorize(number, 10, USD, False, ""),
                       request_id=f"burst-{refused_at_once[0]}", terminal_id="")
    assert ok(again).result == Result.APPROVED and not again.replayed


def test_over_grpc_a_full_queue_is_resource_exhausted(small, small_alliance, store,
                                                      monkeypatch):
    number = new_card(small, small_alliance, load=1_000)
    server = ServerThread(small).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        pos = pb_grpc.PosServiceStub(channel)
        md = (("authorization", f"Bearer {small_alliance.tokens['t1']}"),)
        held = HeldCommits(monkeypatch, store)
        fillers = fill_the_pipeline(small, small_alliance, number, held)
        queued = [pos.Authorize.future(pb.AuthorizeRequest(  # fill the queue over gRPC
            request_id=f"q-{index}", card_number=number, amount_minor=10, currency=USD),
            metadata=md, timeout=60) for index in range(QUEUE_MAX)]
        wait_until(lambda: small.queued == small.queue_max)
        with pytest.raises(grpc.RpcError) as refused:
            pos.Authorize(pb.AuthorizeRequest(request_id="one-too-many", card_number=number,
                                              amount_minor=10, currency=USD),
                          metadata=md, timeout=60)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        held.release.set()
        for finished in fillers:
            assert finished.wait(30)
        assert all(call.result(timeout=30).result == pb.APPROVED for call in queued)
        assert balance(small, small_alliance, number) == (1_000, 4 + 10 * QUEUE_MAX)
        reply = pos.Authorize(pb.AuthorizeRequest(request_id="one-too-many", card_number=number,
                                                  amount_minor=10, currency=USD),
                              metadata=md, timeout=60)
        assert reply.result == pb.APPROVED and not reply.replayed
    finally:
        channel.close()
        server.stop(grace_s=1.0, quiet_s=0)


def test_a_request_past_its_deadline_is_not_applied(small, small_alliance, store, monkeypatch):
    number = new_card(small, small_alliance, load=1_000)
    held = HeldCommits(monkeypatch, store)
    fillers = fill_the_pipeline(small, small_alliance, number, held)
    late: list[Any] = []
    arrived = threading.Event()
    # queued behind the held pipeline; its deadline passes while it waits
    small.submit(Request(small_alliance.t1, cc.Authorize(number, 500, USD, False, ""),
                         lambda reply: (late.append(reply), arrived.set()), "", "late-1", "",
                         time.monotonic() + 0.05))
    wait_until(lambda: small.queued == 1)
    time.sleep(0.1)  # lets the deadline pass (the writer is held, so nothing races it)
    held.release.set()
    for finished in fillers:
        assert finished.wait(30)
    assert arrived.wait(30)
    assert late == [Failure(Refusal.DEADLINE_PASSED, late[0].message)]
    assert balance(small, small_alliance, number) == (1_000, 4)  # only the four fillers
    retry = ok(small.call(small_alliance.t1, cc.Authorize(number, 500, USD, False, ""),
                          request_id="late-1"))
    assert retry.result == Result.APPROVED and not retry.replayed
    again = ok(small.call(small_alliance.t1, cc.Authorize(number, 500, USD, False, ""),
                          request_id="late-1"))
    assert again.replayed and again.authorization_id == retry.authorization_id
    assert balance(small, small_alliance, number) == (1_000, 504)


def test_an_expired_deadline_is_refused_even_when_the_writer_is_idle(ledger, alliance):
    number = new_card(ledger, alliance, load=1_000)
    done = threading.Event()
    replies: list[Any] = []
    ledger.submit(Request(alliance.t1, cc.Authorize(number, 100, USD, False, ""),
                          lambda reply: (replies.append(reply), done.set()), "", "gone-1", "",
                          time.monotonic() - 1))
    assert done.wait(30)
    assert isinstance(replies[0], Failure) and replies[0].code == Refusal.DEADLINE_PASSED
    assert balance(ledger, alliance, number) == (1_000, 0)


def test_the_card_cache_stays_bounded_and_evicted_cards_reload(small, small_alliance):
    numbers = [new_card(small, small_alliance, load=100 + i) for i in range(25)]
    assert len(small.cards) <= 5
    for number in numbers:
        ok(small.call(small_alliance.t1, cc.Authorize(number, 7, USD, False, ""),
                      request_id=rid(), terminal_id=""))
        assert len(small.cards) <= 5
    for i, number in enumerate(numbers):  # most were evicted: they reload from the store
        assert balance(small, small_alliance, number) == (100 + i, 7)
    assert len(small.cards) <= 5


def test_many_at_once_beyond_the_queue_are_refused_after_those_that_fit(
        small, small_alliance, store, monkeypatch):
    """`submit_all` (a Batch message) puts its requests in the queue as one item: those that
    fit under queue_max are queued, in order, and the rest refused at once, writing nothing."""
    number = new_card(small, small_alliance, load=1_000)
    held = HeldCommits(monkeypatch, store)
    fillers = fill_the_pipeline(small, small_alliance, number, held)
    replies: dict[int, Any] = {}
    small.submit_all([Request(small_alliance.t1, cc.Authorize(number, 10, USD, False, ""),
                              lambda reply, i=index: replies.__setitem__(i, reply), "",
                              f"many-{index}", "", math.inf) for index in range(10)])
    assert sorted(replies) == list(range(QUEUE_MAX, 10))  # answered before it returned
    assert all(replies[i].code == Refusal.OVERLOADED for i in range(QUEUE_MAX, 10))
    assert small.queued == QUEUE_MAX
    held.release.set()
    for finished in fillers:
        assert finished.wait(30)
    wait_until(lambda: len(replies) == 10)
    assert all(ok(replies[i]).result == Result.APPROVED for i in range(QUEUE_MAX))
    assert small.queued == 0
    assert balance(small, small_alliance, number) == (1_000, 4 + 10 * QUEUE_MAX)


def test_a_list_longer_than_a_batch_is_decided_in_order_over_several(store, clock):
    """A Batch message of more operations than a batch holds is cut: the rest waits at the
    head of the queue and is decided next, before anything queued after it, so its
    operations are decided in the order they were sent."""
    with started_ledger(store, clock_us=clock, batch_max=10) as engine:
        alliance = build_alliance(engine, engine.admin_token)  # type: ignore[attr-defined]
        number = new_card(engine, alliance, load=25)
        count = 37  # batches of 10, 10, 10 and 7; the card pays for the first 25
        replies: list[Any] = [None] * count
        done = threading.Event()
        left = [count]
        lock = threading.Lock()

        def answer(index: int) -> Any:
            def record(reply: Any) -> None:
                replies[index] = reply
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        done.set()
            return record

        batches = engine.batches
        engine.submit_all([Request(alliance.t1, cc.Authorize(number, 1, USD, False, ""),
                                   answer(index), "", f"long-{index}", "", math.inf)
                           for index in range(count)])
        assert done.wait(60)
        assert [ok(reply).result for reply in replies] == (
            [Result.APPROVED] * 25 + [Result.DECLINED_INSUFFICIENT_FUNDS] * 12)
        assert engine.batches - batches == 4
        assert engine.queued == 0
