"""Two Ledger instances on the same database, as two server processes would run: each has its
own store (connection pool), card cache, key cache and registry, and learns the other's
writes only through the database (log following, version and key conflicts)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import msgspec
import pytest

from domain.cards import commands as cc
from domain.cards import events as ev
from domain.cards.decide import fold
from domain.common import Principal, Result, Role
from domain.points.purse import ExpiryKind
from domain.purchases.commands import Purchase
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger import limits
from ledger.codec import Outcome, card_stream_id, decode_event
from ledger.engine import Failure, Ledger, Refusal
from ledger.store import EventStore
from projections.maintenance import PointsExpiry
from tests.integration.test_purchase_stories import program, rule_set
from tests.support.alliance import ok, rid
from tests.support.rpc import ready

USD = "USD"
TIMEOUT_S = 20.0


# ------------------------------------------------------------------------------ helpers


def call(engine: Ledger, credential: str, command: Any, request_id: str | None = None,
         **kwargs: Any) -> Outcome | Failure:
    return engine.call(credential, command, request_id=rid() if request_id is None
                       else request_id, timeout_s=TIMEOUT_S, **kwargs)


def catch_up(engine: Ledger, alliance: Any) -> None:
    """Make an engine's writer read the log now (a Sync always does), so its registry knows
    the credentials the other engine created. Ledger.call reads the registry outside the
    writer to pick the key space (see test_a_credential_new_to_an_engine_...)."""
    engine.sync(timeout_s=TIMEOUT_S)


def new_card(engine: Ledger, alliance: Any, load: int) -> str:
    issued = ok(call(engine, alliance.s1_manager, cc.IssueCard("", "STANDARD", USD, "", "")))
    ok(call(engine, alliance.s1_manager, cc.ActivateCard(issued.card_number, "")))
    if load:
        assert ok(call(engine, alliance.t1, cc.LoadValue(issued.card_number, load, USD,
                                                         "p"))).result == Result.APPROVED
    return issued.card_number


def card(engine: Ledger, alliance: Any, number: str) -> Any:
    reply = ok(engine.call(alliance.admin, cc.GetCard(number), timeout_s=TIMEOUT_S))
    return reply.card


def version(store: EventStore, number: str) -> int:
    return len(store.stream(card_stream_id(number)))


def decided(engine: Ledger, credential: str, command: Any, request_id: str,
            **kwargs: Any) -> Outcome:
    """The ledger's decision, at the first attempt: another engine on the same card is not an
    outage, so never UNAVAILABLE (issue 13; the engines take turns after a conflict)."""
    reply = call(engine, credential, command, request_id, **kwargs)
    assert isinstance(reply, Outcome), reply
    return reply


def from_both(ledger: Ledger, other: Ledger, alliance: Any, command: Any,
              each: int) -> list[Outcome]:
    """`command` sent `each` times (fresh request ids) by two terminals through each engine at
    once; every reply, once decided."""
    replies: list[Outcome] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def spend(engine: Ledger, credential: str, name: str) -> None:
        try:
            for i in range(each):
                reply = decided(engine, credential, command, f"{name}-{i}")
                with lock:
                    replies.append(reply)
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=spend, args=args) for args in [
        (ledger, alliance.t1, "a1"), (ledger, alliance.t2, "a2"),
        (other, alliance.t1, "b1"), (other, alliance.t3, "b3")]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return replies


def fold_from_store(store: EventStore, number: str) -> tuple[int, int]:
    """(balance, held) from the card's events alone."""
    state = fold([decode_event(e.state) for e in store.stream(card_stream_id(number))])
    assert state is not None
    return state.balance_minor, state.held_minor


class AppendHook:
    """Runs `before` inside the first append of `store` (on the engine's commit path),
    so another engine's commit lands between this engine's decision and its commit."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: EventStore,
                 before: Any) -> None:
        self.real = store.append
        self.before = before
        self.fired = threading.Event()
        self.result: Any = None
        monkeypatch.setattr(store, "append", self)

    def __call__(self, events: Any, keys: Any, snapshots: Any = (), *lanes: Any) -> Any:
        if not self.fired.is_set():
            self.fired.set()
            self.result = self.before()
        return self.real(events, keys, snapshots, *lanes)


# ------------------------------------------------------------------------------ stories


def test_concurrent_authorizations_from_both_never_overspend(ledger, other, alliance, store):
    n = new_card(ledger, alliance, load=10_000)
    catch_up(other, alliance)
    replies = from_both(ledger, other, alliance, cc.Authorize(n, 100, USD, False, ""), 40)
    assert len(replies) == 160
    results = Counter(Result(r.result) for r in replies)
    assert results == {Result.APPROVED: 100, Result.DECLINED_INSUFFICIENT_FUNDS: 60}
    ids = [r.authorization_id for r in replies if r.result == Result.APPROVED]
    assert len(set(ids)) == 100
    assert all(r.card.available_minor >= 0 for r in replies if r.card is not None)
    for engine in (ledger, other):
        seen = card(engine, alliance, n)
        assert (seen.balance_minor, seen.held_minor, seen.available_minor) == (10_000, 10_000, 0)
    assert fold_from_store(store, n) == (10_000, 10_000)
    holds = [decode_event(e.state) for e in store.stream(card_stream_id(n))]
    assert sorted(e.authorization_id for e in holds if isinstance(e, ev.ValueAuthorized)) == \
        sorted(ids)


def test_a_stale_cache_is_corrected_by_the_conflict(ledger, other, alliance, store,
                                                    monkeypatch):
    n = new_card(ledger, alliance, load=1_000)
    catch_up(other, alliance)
    assert card(other, alliance, n).available_minor == 1_000  # both engines cache the card

    def the_other_spends_first() -> Outcome:
        return ok(call(other, alliance.t3, cc.Authorize(n, 800, USD, False, "")))

    hook = AppendHook(monkeypatch, store, the_other_spends_first)
    conflicts = ledger.conflicts
    mine = ok(call(ledger, alliance.t1, cc.Authorize(n, 500, USD, True, "")))
    assert hook.fired.is_set() and hook.result.result == Result.APPROVED
    assert ledger.conflicts > conflicts
    # re-decided on the card as the other engine left it: only 200 were still available
    assert mine.result == Result.PARTIALLY_APPROVED and mine.approved_amount_minor == 200
    assert fold_from_store(store, n) == (1_000, 1_000)
    for engine in (ledger, other):
        seen = card(engine, alliance, n)
        assert (seen.held_minor, seen.available_minor) == (1_000, 0)


def test_a_cache_refreshes_from_the_log_without_a_conflict(ledger, other, alliance, store):
    n = new_card(ledger, alliance, load=1_000)
    assert card(other, alliance, n).available_minor == 1_000
    ok(call(ledger, alliance.t1, cc.Authorize(n, 700, USD, False, "")))
    # Without any Sync: the other engine learns of the commit by itself (on PostgreSQL from
    # the commit's NOTIFY, on SQLite by reading the log before every batch).
    deadline = time.monotonic() + TIMEOUT_S
    while card(other, alliance, n).held_minor != 700:
        assert time.monotonic() < deadline, "the other engine never saw the authorization"
        time.sleep(0.01)
    conflicts = other.conflicts
    reply = ok(call(other, alliance.t3, cc.Authorize(n, 500, USD, False, "")))
    assert reply.result == Result.DECLINED_INSUFFICIENT_FUNDS
    assert other.conflicts == conflicts  # it followed the log before deciding
    assert fold_from_store(store, n) == (1_000, 700)


def test_a_follower_far_behind_reloads(ledger, other, alliance, store, monkeypatch):
    n = new_card(ledger, alliance, load=1_000)
    assert card(other, alliance, n).available_minor == 1_000
    monkeypatch.setattr(limits, "TAIL_PAGE_ROWS", 2)
    monkeypatch.setattr(limits, "TAIL_PAGES_MAX", 1)
    for _ in range(5):
        ok(call(ledger, alliance.t1, cc.Authorize(n, 100, USD, False, "")))
    ok(call(ledger, alliance.admin, rc.RevokeCredential(alliance.t2)))
    assert ok(call(other, alliance.t3, cc.Authorize(n, 600, USD, False, ""))).result == \
        Result.DECLINED_INSUFFICIENT_FUNDS
    refused = call(other, alliance.t2, cc.Authorize(n, 1, USD, False, ""))
    assert isinstance(refused, Failure) and refused.code == Refusal.UNAUTHENTICATED
    assert fold_from_store(store, n) == (1_000, 500)


def test_a_retry_sent_to_the_other_instance_replays(ledger, other, alliance, store):
    n = new_card(ledger, alliance, load=5_000)
    catch_up(other, alliance)
    first = ok(call(ledger, alliance.t1, cc.Authorize(n, 1_000, USD, False, ""), "pay-1"))
    loaded = ok(call(ledger, alliance.t1, cc.LoadValue(n, 300, USD, "p"), "load-1"))
    before = version(store, n)
    again = ok(call(other, alliance.t1, cc.Authorize(n, 1_000, USD, False, ""), "pay-1"))
    assert again.replayed and again.authorization_id == first.authorization_id
    assert again.approved_amount_minor == first.approved_amount_minor
    assert again.card == first.card
    load_again = ok(call(other, alliance.t1, cc.LoadValue(n, 300, USD, "p"), "load-1"))
    assert load_again.replayed and load_again.card == loaded.card
    # a gateway acting for T1 on the other engine shares the key space too
    via_gateway = ok(call(other, alliance.gw1, cc.Authorize(n, 1_000, USD, False, ""), "pay-1",
                          terminal_id="T1"))
    assert via_gateway.replayed and via_gateway.authorization_id == first.authorization_id
    mismatch = ok(call(other, alliance.t1, cc.Authorize(n, 999, USD, False, ""), "pay-1"))
    assert mismatch.result == Result.DUPLICATE_REQUEST_MISMATCH
    assert version(store, n) == before
    # the follow-ups work across engines too
    assert ok(call(other, alliance.t1, cc.Reverse("pay-1"))).result == Result.APPROVED
    assert ok(call(ledger, alliance.t1, cc.Capture(first.authorization_id, 0))).result == \
        Result.DECLINED_AUTHORIZATION_NOT_PENDING
    assert fold_from_store(store, n) == (5_300, 0)


def test_a_second_reversal_on_the_other_engine_is_acknowledged(ledger, other, alliance, store):
    n = new_card(ledger, alliance, load=5_000)
    catch_up(other, alliance)
    ok(call(ledger, alliance.t1, cc.Authorize(n, 1_000, USD, False, ""), "pay-2"))
    assert ok(call(ledger, alliance.t1, cc.Reverse("pay-2"))).result == Result.APPROVED
    before = version(store, n)
    second = ok(call(other, alliance.t1, cc.Reverse("pay-2")))
    assert version(store, n) == before  # nothing applied twice, whatever the answer
    assert second.result == Result.APPROVED  # as the same engine answers


def test_the_same_request_decided_by_both_at_once_applies_once(ledger, other, alliance, store,
                                                              monkeypatch):
    n = new_card(ledger, alliance, load=5_000)
    catch_up(other, alliance)
    command = cc.Authorize(n, 1_000, USD, False, "")

    def the_retry_lands_on_the_other_first() -> Outcome:
        return ok(call(other, alliance.t1, command, "race-1"))

    hook = AppendHook(monkeypatch, store, the_retry_lands_on_the_other_first)
    mine = ok(call(ledger, alliance.t1, command, "race-1"))
    theirs: Outcome = hook.result
    assert theirs.result == Result.APPROVED and not theirs.replayed
    assert mine.replayed and mine.authorization_id == theirs.authorization_id
    assert fold_from_store(store, n) == (5_000, 1_000)
    holds = [e for e in map(decode_event, (s.state for s in store.stream(card_stream_id(n))))
             if isinstance(e, ev.ValueAuthorized)]
    assert len(holds) == 1


def test_a_reversal_on_one_declines_the_late_original_on_the_other(ledger, other, alliance,
                                                                  store):
    n = new_card(ledger, alliance, load=5_000)
    catch_up(other, alliance)
    assert ok(call(ledger, alliance.t1, cc.Reverse("lost-1"))).result == Result.APPROVED
    before = version(store, n)
    late = ok(call(other, alliance.t1, cc.Authorize(n, 1_000, USD, False, ""), "lost-1"))
    assert late.result == Result.DECLINED_REQUEST_REVERSED
    assert version(store, n) == before
    # and a double reversal across engines applies once
    ok(call(ledger, alliance.t1, cc.LoadValue(n, 2_000, USD, "p"), "load-x"))
    assert ok(call(ledger, alliance.t1, cc.Reverse("load-x"))).result == Result.APPROVED
    before = version(store, n)
    assert ok(call(other, alliance.t1, cc.Reverse("load-x"))).result == Result.APPROVED
    assert version(store, n) == before
    assert fold_from_store(store, n) == (5_000, 0)


def test_registry_changes_through_one_bind_the_other(ledger, other, alliance):
    n = new_card(ledger, alliance, load=0)
    catch_up(other, alliance)
    ok(call(ledger, alliance.admin, rc.DefineCardClass("STANDARD", 10, 3600)))
    assert ok(call(other, alliance.t1, cc.LoadValue(n, 1_001, USD, "p"))).result == \
        Result.DECLINED_LIMIT_EXCEEDED
    assert ok(call(other, alliance.t1, cc.LoadValue(n, 1_000, USD, "p"))).result == \
        Result.APPROVED


def test_a_credential_revoked_through_one_is_refused_by_the_other(ledger, other, alliance,
                                                                 store):
    n = new_card(ledger, alliance, load=5_000)
    catch_up(other, alliance)
    assert ok(call(other, alliance.t2, cc.Authorize(n, 100, USD, False, ""))).result == \
        Result.APPROVED
    ok(call(ledger, alliance.admin, rc.RevokeCredential(alliance.t2)))
    before = version(store, n)
    refused = call(other, alliance.t2, cc.Authorize(n, 100, USD, False, ""))
    assert isinstance(refused, Failure) and refused.code == Refusal.UNAUTHENTICATED
    read = other.call(alliance.t2, cc.GetBalance(n), timeout_s=TIMEOUT_S)
    assert isinstance(read, Failure) and read.code == Refusal.UNAUTHENTICATED
    assert version(store, n) == before
    assert other.authenticate(alliance.tokens["t2"]) is None


# ------------------------------------------------------------------------------ over gRPC


@pytest.fixture
def other_server(other: Ledger) -> Iterator[grpc.Channel]:
    """The second engine behind a real gRPC server; yields a channel to it."""
    thread = ServerThread(other).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{thread.port}")
    ready(channel)
    yield channel
    channel.close()
    thread.stop(grace_s=1.0, quiet_s=0)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def grpc_code(method: Any, request: Any, token: str) -> grpc.StatusCode:
    try:
        method(request, metadata=bearer(token), timeout=TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_revoked_through_one_is_refused_by_the_others_pos_service(ledger, other, other_server,
                                                                 alliance):
    n = new_card(ledger, alliance, load=1_000)
    catch_up(other, alliance)
    pos = pb_grpc.PosServiceStub(other_server)
    request = pb.GetBalanceRequest(card_number=n)
    assert grpc_code(pos.GetBalance, request, alliance.tokens["t1"]) == grpc.StatusCode.OK
    ok(call(ledger, alliance.admin, rc.RevokeCredential(alliance.t1)))
    assert grpc_code(pos.GetBalance, request, alliance.tokens["t1"]) == \
        grpc.StatusCode.UNAUTHENTICATED
    authorize = pb.AuthorizeRequest(request_id=rid(), card_number=n, amount_minor=1,
                                    currency=USD)
    assert grpc_code(pos.Authorize, authorize, alliance.tokens["t1"]) == \
        grpc.StatusCode.UNAUTHENTICATED


def test_revoked_through_one_cannot_list_movements_on_the_other(ledger, other, other_server,
                                                               alliance):
    n = new_card(ledger, alliance, load=1_000)
    cards = pb_grpc.CardServiceStub(other_server)
    request = pb.ListMovementsRequest(card_number=n)
    token = alliance.tokens["p1_manager"]
    catch_up(other, alliance)
    assert grpc_code(cards.ListMovements, request, token) == grpc.StatusCode.OK
    ok(call(ledger, alliance.admin, rc.RevokeCredential(alliance.p1_manager)))
    assert grpc_code(cards.ListMovements, request, token) == grpc.StatusCode.UNAUTHENTICATED


def test_a_credential_created_through_one_is_accepted_by_the_other(ledger, other, other_server,
                                                                  alliance):
    n = new_card(ledger, alliance, load=1_000)
    catch_up(other, alliance)
    created = ok(call(ledger, alliance.admin, rc.CreateCredential(
        Principal(Role.TERMINAL, "P1", "S1", "T2"), "new terminal")))
    pos = pb_grpc.PosServiceStub(other_server)
    assert grpc_code(pos.GetBalance, pb.GetBalanceRequest(card_number=n), created.token) == \
        grpc.StatusCode.OK


def test_a_credential_new_to_an_engine_still_gets_its_own_key_space(ledger, other, alliance,
                                                                   store):
    n = new_card(ledger, alliance, load=1_000)
    catch_up(other, alliance)
    created = ok(call(ledger, alliance.admin, rc.CreateCredential(
        Principal(Role.TERMINAL, "P1", "S1", "T2"), "new terminal")))
    first = ok(call(other, created.credential_id, cc.Authorize(n, 100, USD, False, ""), "new-1"))
    again = ok(call(other, created.credential_id, cc.Authorize(n, 100, USD, False, ""), "new-1"))
    assert first.result == Result.APPROVED
    assert again.replayed and again.authorization_id == first.authorization_id
    assert fold_from_store(store, n) == (1_000, 100)


def test_concurrent_purchases_from_both_never_overspend_points_or_value(ledger, other,
                                                                         alliance, store):
    electronics = Rule(rule_id="tv-points", effect=Effect.EARN, categories=("electronics",),
                       rate_num=1, rate_den=100)
    ok(call(ledger, alliance.p1_manager, program()))
    ok(call(ledger, alliance.p1_manager, PublishRuleSet(rule_set(electronics))))
    n = new_card(ledger, alliance, load=5_00)
    earned = ok(call(ledger, alliance.t1, Purchase(n, USD, (Line("tv", "electronics", 1,
                                                                  1_000_00),),
                                                   0, False, 0, "", "")))
    assert earned.card.points == 1_000
    catch_up(other, alliance)
    mug = (Line("mug", "home", 1, 1_50),)  # 1.00 in points (no points earned) + 0.50 value
    replies = from_both(ledger, other, alliance, Purchase(n, USD, mug, 50, False, 100, "", ""),
                        10)
    results = Counter(Result(r.result) for r in replies)
    # 5.00 of value pays ten mugs' 0.50, 1,000 points pay ten mugs' 1.00: exactly ten
    assert results[Result.APPROVED] == 10, results
    assert sum(results.values()) == 40
    for engine in (ledger, other):
        seen = card(engine, alliance, n)
        assert (seen.points, seen.balance_minor) == (0, 0)
    state = fold([decode_event(e.state) for e in store.stream(card_stream_id(n))])
    assert state is not None and state.balance_minor == 0
    assert all(0 <= lot.remaining <= lot.amount for lot in state.lots.values())
    assert sum(lot.remaining for lot in state.lots.values()) == 0


def test_the_expiry_job_in_both_processes_expires_each_lot_once(ledger, other, alliance, store,
                                                                clock):
    ok(call(ledger, alliance.p1_manager, msgspec.structs.replace(
        program(), expiry_kind=int(ExpiryKind.MONTHS_AFTER), expiry_n=1)))
    earn = Rule(rule_id="earn", effect=Effect.EARN, rate_num=1, rate_den=100)
    ok(call(ledger, alliance.p1_manager, PublishRuleSet(rule_set(earn))))
    numbers = [new_card(ledger, alliance, load=0) for _ in range(6)]
    for number in numbers:
        bought = ok(call(ledger, alliance.t1, Purchase(number, USD, (Line("tv", "tv", 1,
                                                                          90_00),),
                                                       0, False, 0, "", "")))
        assert bought.card.points == 90
    clock.advance(40 * 86_400)
    catch_up(other, alliance)
    runs: list[Any] = []
    threads = [threading.Thread(target=lambda engine=engine: runs.append(
        PointsExpiry(engine).run(clock.now_us))) for engine in (ledger, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(runs) == 2 and sum(run.failures for run in runs) == 0
    assert sum(run.points_expired for run in runs) == 6 * 90  # once, whoever got there first
    expired = [decode_event(e.state) for n in numbers for e in store.stream(card_stream_id(n))]
    assert sum(1 for e in expired if isinstance(e, ev.PointsExpired)) == 6
