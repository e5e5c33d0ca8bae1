"""Issue 13: two processes (two engines on one database, both backends) on one busy card take
turns at the log instead of invalidating each other's decisions, so every request is decided;
the bounds answer RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED, never UNAVAILABLE unless the
database failed. The multi-process version (`serve --workers N`) is tests/e2e/test_busy_card.py.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from domain.cards import commands as cc
from domain.common import Result
from domain.purchases.commands import Purchase
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule
from ledger import limits
from ledger.codec import Outcome, card_stream_id, encode, payload_hash
from ledger.engine import Failure, Ledger, Refusal
from ledger.store import (
    Busy,
    Conflict,
    EventStore,
    KeyRow,
    Unavailable,
    open_store,
)
from tests.integration.test_multi_writer import (
    AppendHook,
    call,
    card,
    catch_up,
    fold_from_store,
    new_card,
)
from tests.integration.test_purchase_stories import program, rule_set
from tests.support.alliance import ok, rid

USD = "USD"
TIMEOUT_S = 30.0
TILLS = 12
PER_TILL = 20
HOLDING = 1_000
AMOUNT = 37
FITS = HOLDING // AMOUNT  # 27


@pytest.fixture
def second(other: Ledger) -> Ledger:
    """A second engine (a second 'process') for the same database (tests/conftest.py)."""
    return other


def _tills(engines: list[Ledger], credentials: list[str], command: Any) -> list[Any]:
    """TILLS threads start together, each sending PER_TILL requests (fresh ids) one after
    another through engine i % 2; every reply, decided or not (never retried)."""
    replies: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(TILLS, timeout=TIMEOUT_S)

    def till(index: int) -> None:
        engine = engines[index % len(engines)]
        start.wait()
        for i in range(PER_TILL):
            reply = call(engine, credentials[index % len(credentials)], command,
                         f"till-{index}-{i}-{rid()}")
            with lock:
                replies.append(reply)

    threads = [threading.Thread(target=till, args=(i,)) for i in range(TILLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return replies


def _assert_every_request_decided(replies: list[Any], decline: Result) -> None:
    failures = [r for r in replies if not isinstance(r, Outcome)]
    assert not failures, failures[:3]
    assert Counter(Result(r.result) for r in replies) == {
        Result.APPROVED: FITS, decline: TILLS * PER_TILL - FITS}


def test_a_busy_card_on_two_engines_decides_every_authorization(ledger, second, alliance,
                                                                store):
    catch_up(second, alliance)
    for _ in range(3):
        n = new_card(ledger, alliance, load=HOLDING)
        replies = _tills([ledger, second], [alliance.t1, alliance.t2, alliance.t3],
                         cc.Authorize(n, AMOUNT, USD, False, ""))
        _assert_every_request_decided(replies, Result.DECLINED_INSUFFICIENT_FUNDS)
        approved = [r for r in replies if r.result == Result.APPROVED]
        # decided one after another: each approval left a distinct available balance
        assert sorted(r.card.available_minor for r in approved) == [
            HOLDING - AMOUNT * k for k in range(FITS, 0, -1)]
        for engine in (ledger, second):
            seen = card(engine, alliance, n)
            assert (seen.balance_minor, seen.available_minor) == (HOLDING,
                                                                  HOLDING - FITS * AMOUNT)
        assert fold_from_store(store, n) == (HOLDING, FITS * AMOUNT)


def test_a_busy_card_on_two_engines_decides_every_points_purchase(ledger, second, alliance,
                                                                  store):
    tv = Rule(rule_id="tv-points", effect=Effect.EARN, categories=("electronics",),
              rate_num=1, rate_den=100)
    ok(call(ledger, alliance.p1_manager, program()))
    ok(call(ledger, alliance.p1_manager, PublishRuleSet(rule_set(tv))))
    catch_up(second, alliance)
    mug = (Line("mug", "home", 1, 5_00),)  # 0.37 in points, the rest paid elsewhere
    for _ in range(2):
        n = new_card(ledger, alliance, load=0)
        earned = ok(call(ledger, alliance.t1, Purchase(
            n, USD, (Line("tv", "electronics", 1, HOLDING * 100),), 0, False, 0, "", "")))
        assert earned.card.points == HOLDING
        replies = _tills([ledger, second], [alliance.t1, alliance.t2, alliance.t3],
                         Purchase(n, USD, mug, 0, False, AMOUNT, "", ""))
        _assert_every_request_decided(replies, Result.DECLINED_INSUFFICIENT_POINTS)
        for engine in (ledger, second):
            assert card(engine, alliance, n).points == HOLDING - FITS * AMOUNT


# ------------------------------------------------------------------------------ the turn


def test_the_other_engine_waits_while_one_takes_its_turn(ledger, second, alliance, store,
                                                         monkeypatch):
    """Engine A's commit conflicts (B spent first); A decides again in its turn. B, spending
    again meanwhile, reaches its commit during A's turn: it waits until A has committed, so
    A's decision stands (one conflict, not a chain of them), and B's request is decided
    after it, on the card as A left it."""
    n = new_card(ledger, alliance, load=1_000)
    catch_up(second, alliance)
    assert card(second, alliance, n).available_minor == 1_000  # both engines cache it
    AppendHook(monkeypatch, store, lambda: ok(call(second, alliance.t3,
                                                   cc.Authorize(n, 300, USD, False, ""))))
    b_committing = threading.Event()
    b_real_append = second.store.append

    def b_append(*args: Any) -> Any:
        b_committing.set()
        return b_real_append(*args)

    monkeypatch.setattr(second.store, "append", b_append)
    real_turn = store.turn
    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def turn(wait_s: float) -> Iterator[Any]:
        with real_turn(wait_s) as append:
            if "b" not in seen:
                b_committing.clear()  # set by B's first spend, before the turn
                spender = threading.Thread(target=lambda: seen.setdefault("b", call(
                    second, alliance.t3, cc.Authorize(n, 300, USD, False, ""))))
                spender.start()
                assert b_committing.wait(TIMEOUT_S)
                spender.join(0.3)  # time for B's commit to land, if it could
                seen["b_waited"] = spender.is_alive()
                seen["spender"] = spender
            yield append

    monkeypatch.setattr(store, "turn", turn)
    conflicts = (ledger.conflicts, second.conflicts)
    mine = ok(call(ledger, alliance.t1, cc.Authorize(n, 500, USD, False, "")))
    seen["spender"].join(TIMEOUT_S)
    assert seen["b_waited"]
    assert mine.result == Result.APPROVED and mine.card.available_minor == 200
    assert ok(seen["b"]).result == Result.DECLINED_INSUFFICIENT_FUNDS
    assert (ledger.conflicts, second.conflicts) == (conflicts[0] + 1, conflicts[1] + 1)
    assert fold_from_store(store, n) == (1_000, 800)


def _held_turn(store_url: str) -> contextlib.AbstractContextManager[Any]:
    """The log's write lock held by a third 'process' until the block exits."""
    stack = contextlib.ExitStack()
    holder = open_store(store_url)
    stack.callback(holder.close)
    stack.enter_context(holder.turn(TIMEOUT_S))
    return stack


def test_no_turn_in_time_is_resource_exhausted_then_deadline_exceeded(ledger, alliance,
                                                                      store, store_url,
                                                                      monkeypatch):
    n = new_card(ledger, alliance, load=1_000)
    monkeypatch.setattr(limits, "TURN_WAIT_MAX_S", 0.2)
    real_append = store.append

    def conflicting(*args: Any) -> Any:
        raise Conflict("as if another process had written first")

    monkeypatch.setattr(store, "append", conflicting)
    command = cc.Authorize(n, 100, USD, False, "")
    with _held_turn(store_url):
        busy = ledger.call(alliance.t1, command, request_id="busy-1", timeout_s=TIMEOUT_S)
        late = ledger.call(alliance.t1, command, request_id="busy-2", timeout_s=0.1)
    assert isinstance(busy, Failure) and busy.code == Refusal.OVERLOADED, busy
    assert isinstance(late, Failure) and late.code == Refusal.DEADLINE_PASSED, late
    assert fold_from_store(store, n) == (1_000, 0)  # nothing written
    monkeypatch.setattr(store, "append", real_append)
    again = ok(ledger.call(alliance.t1, command, request_id="busy-1", timeout_s=TIMEOUT_S))
    assert again.result == Result.APPROVED and not again.replayed
    assert fold_from_store(store, n) == (1_000, 100)


@pytest.mark.backends("postgres")
def test_a_key_recorded_by_another_engine_during_the_turn_is_replayed(ledger, second,
                                                                      alliance, store,
                                                                      monkeypatch):
    """A request key can still conflict in a turn: another process may record it without
    events (no lock needed), e.g. a client's retry it declined. The turn rolls back, learns
    the key and replays it. (PostgreSQL only: on SQLite every write, keys included, needs
    the one write lock the turn holds, so it cannot happen.)"""
    n = new_card(ledger, alliance, load=1_000)
    catch_up(second, alliance)
    command = cc.Authorize(n, 100, USD, False, "")
    theirs = Outcome(int(Result.DECLINED_INSUFFICIENT_FUNDS), "Authorize", n)
    row = KeyRow("t:T1", "both-1", payload_hash(command), encode(theirs))
    AppendHook(monkeypatch, store, lambda: ok(call(second, alliance.t3,
                                                   cc.Authorize(n, 300, USD, False, ""))))
    real_turn = store.turn

    @contextlib.contextmanager
    def turn(wait_s: float) -> Iterator[Any]:
        with real_turn(wait_s) as append:
            if not second.store.find_keys([(row.key_space, row.request_id)]):
                if second.store.split:  # a key goes with its card's lane (ledger/partitioned)
                    second.store.append([], [row], (), [(store.lane_of(card_stream_id(n)),)])
                else:
                    second.store.append([], [row])
            yield append

    monkeypatch.setattr(store, "turn", turn)
    mine = ok(call(ledger, alliance.t1, command, "both-1"))
    assert mine.replayed and mine.result == Result.DECLINED_INSUFFICIENT_FUNDS
    assert fold_from_store(store, n) == (1_000, 300)  # only the other engine's spend


def test_an_outage_in_the_turn_is_unavailable(ledger, alliance, store, monkeypatch):
    n = new_card(ledger, alliance, load=1_000)

    def conflicting(*args: Any) -> Any:
        raise Conflict("as if another process had written first")

    @contextlib.contextmanager
    def down(wait_s: float) -> Iterator[Any]:
        raise Unavailable("connection refused")
        yield

    monkeypatch.setattr(store, "append", conflicting)
    monkeypatch.setattr(store, "turn", down)
    reply = ledger.call(alliance.t1, cc.Authorize(n, 100, USD, False, ""), request_id=rid(),
                        timeout_s=TIMEOUT_S)
    assert isinstance(reply, Failure) and reply.code == Refusal.DATABASE_DOWN, reply
    assert reply.message.startswith("database unavailable")


# ------------------------------------------------------------------------------ the store


def _event(number: str, version: int) -> StoredEvent:
    return StoredEvent(card_stream_id(number), version, "test", b"{}")


def test_a_turn_excludes_other_writers_until_it_ends(store: EventStore, store_url: str) -> None:
    other = open_store(store_url)
    try:
        done: list[list[int]] = []
        with store.turn(TIMEOUT_S) as append:
            with pytest.raises(Busy), other.turn(0.1):
                pass
            writer = threading.Thread(target=lambda: done.append(
                other.append([_event("x", 1)], [])))
            writer.start()
            writer.join(0.3)  # time for the other's commit to land, if it could
            assert writer.is_alive() and not done
            mine = append([_event("y", 1)], [KeyRow("k", "turn-1", b"h", b"o")])
        writer.join(TIMEOUT_S)
        assert done
        if store.lane_of(card_stream_id("x")) == store.lane_of(card_stream_id("y")):
            assert done[0][0] > mine[-1]  # committed after the turn, in its lane's order
        assert isinstance(Busy("x"), Conflict)  # decided again, never reported as an outage
    finally:
        other.close()


def test_a_turn_that_fails_writes_nothing(store: EventStore) -> None:
    before = store.max_notification_id()
    with pytest.raises(RuntimeError), store.turn(TIMEOUT_S) as append:
        append([_event("z", 1)], [KeyRow("k", "turn-2", b"h", b"o")])
        raise RuntimeError("the decider failed after appending")
    assert store.max_notification_id() == before
    assert store.find_keys([("k", "turn-2")]) == {}
    store.append([], [KeyRow("k", "turn-3", b"h", b"o")])
    with pytest.raises(Conflict), store.turn(TIMEOUT_S) as append:  # a key taken
        append([_event("z", 1)], [KeyRow("k", "turn-3", b"h", b"o")])
    assert store.stream(card_stream_id("z")) == []
    with store.turn(TIMEOUT_S) as append:  # nothing appended: nothing written
        pass
    assert store.max_notification_id() == before
