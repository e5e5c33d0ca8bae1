"""Refunds and capture reversals of authorizations the card no longer keeps in memory (it keeps
the latest `retention.AUTHORIZATIONS_IN_MEMORY` settled ones): found again in the card's
stream, decided like any other, never more than was captured, also after a restart and on a
replacement card; beyond the lookback or the year, declined as too old."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pytest

from domain.cards import commands as cc
from domain.cards import retention
from domain.common import Result
from ledger.engine import Failure
from ledger.refusals import Refusal
from ledger.work import Request
from tests.integration.test_engine_stories import approved, authorize, call, new_card, result
from tests.support.alliance import started_ledger

DAY_S = 86_400


def captured(ledger: Any, alliance: Any, number: str, amount: int) -> str:
    hold = approved(authorize(ledger, alliance.t1, number, amount))
    approved(call(ledger, alliance.t1, cc.Capture(hold.authorization_id, 0)))
    return hold.authorization_id


def bury(ledger: Any, alliance: Any, number: str) -> None:
    """Settle enough newer authorizations that the card lets the older ones go."""
    for _ in range(retention.AUTHORIZATIONS_IN_MEMORY + 1):
        captured(ledger, alliance, number, 1)


def balance(ledger: Any, number: str) -> int:
    state = ledger.state.card(number)
    assert state is not None
    return state.balance_minor


def test_a_refund_of_an_authorization_let_go_is_found_in_the_stream(ledger, alliance, store,
                                                                    clock):
    number = new_card(ledger, alliance, load=10_000)
    old = captured(ledger, alliance, number, 500)
    bury(ledger, alliance, number)
    assert old not in ledger.state.card(number).holds
    before = balance(ledger, number)
    assert result(call(ledger, alliance.t1, cc.Refund(old, 300))) == Result.APPROVED
    assert balance(ledger, number) == before + 300
    assert result(call(ledger, alliance.t1, cc.Refund(old, 201))) == (
        Result.DECLINED_REFUND_EXCEEDS_CAPTURED)
    bury(ledger, alliance, number)  # let go again: its stream now holds the refund too
    assert result(call(ledger, alliance.t1, cc.Refund(old, 201))) == (
        Result.DECLINED_REFUND_EXCEEDS_CAPTURED)
    # after a restart (a cold card, its snapshot and stream) the same story
    ledger.stop()
    with started_ledger(store, clock_us=clock) as again:
        assert result(call(again, alliance.t1, cc.Refund(old, 201))) == (
            Result.DECLINED_REFUND_EXCEEDS_CAPTURED)
        assert result(call(again, alliance.t1, cc.Refund(old, 200))) == Result.APPROVED
        # a terminal of another store may not refund it
        bury(again, alliance, number)
        reply = call(again, alliance.t3, cc.Refund(old, 1))
        assert isinstance(reply, Failure) and reply.code == Refusal.DENIED
    ledger.start()  # for the fixture's stop


def test_a_capture_reversal_of_an_authorization_let_go_holds_it_again(ledger, alliance):
    number = new_card(ledger, alliance, load=10_000)
    hold = approved(authorize(ledger, alliance.t1, number, 700))
    approved(call(ledger, alliance.t1, cc.Capture(hold.authorization_id, 0), "cap-late"))
    bury(ledger, alliance, number)
    available = ledger.state.card(number).available_minor
    assert result(call(ledger, alliance.t1, cc.Reverse("cap-late"))) == Result.APPROVED
    card = ledger.state.card(number)
    assert card.holds[hold.authorization_id].status == 1  # PENDING again
    assert card.available_minor == available  # held again, not yet spendable
    approved(call(ledger, alliance.t1, cc.Void(hold.authorization_id)))
    assert ledger.state.card(number).available_minor == available + 700


def test_a_refund_lands_on_the_replacement_card(ledger, alliance):
    number = new_card(ledger, alliance, load=10_000)
    old = captured(ledger, alliance, number, 400)
    bury(ledger, alliance, number)
    reply = call(ledger, alliance.s1_manager, cc.ReplaceCard(number, "", "lost"))
    replaced = approved(reply)
    new_number = ledger.state.card(number).replaced_by
    assert new_number and replaced.result == Result.APPROVED
    before = balance(ledger, new_number)
    assert result(call(ledger, alliance.t1, cc.Refund(old, 100))) == Result.APPROVED
    assert balance(ledger, new_number) == before + 100
    assert balance(ledger, number) == 0


def test_too_far_back_is_declined_as_too_old(ledger, alliance, clock, monkeypatch):
    number = new_card(ledger, alliance, load=10_000)
    old = captured(ledger, alliance, number, 500)
    bury(ledger, alliance, number)
    monkeypatch.setattr(retention, "REFUND_LOOKBACK_EVENTS", 10)
    assert result(call(ledger, alliance.t1, cc.Refund(old, 1))) == (
        Result.DECLINED_REFUND_WINDOW_CLOSED)
    monkeypatch.undo()
    clock.advance(366 * DAY_S)
    assert result(call(ledger, alliance.t1, cc.Refund(old, 1))) == (
        Result.DECLINED_REFUND_WINDOW_CLOSED)


@pytest.mark.parametrize("made_up", ["{n}.2", "{n}.999999"])
def test_an_id_that_was_no_authorization_is_not_found(ledger, alliance, made_up):
    number = new_card(ledger, alliance, load=10_000)
    bury(ledger, alliance, number)
    reply = call(ledger, alliance.t1, cc.Refund(made_up.format(n=number), 1))
    assert result(reply) == Result.DECLINED_AUTHORIZATION_NOT_FOUND


def test_refunds_of_a_let_go_authorization_queued_together_see_each_other(ledger, alliance):
    """Refunds and the captures that push the authorization out of memory again, submitted
    without waiting: whether they are decided in one attempt, in batches still at the committer
    or after it, each refund sees the ones before (never OVERLOADED, never more than captured)."""
    number = new_card(ledger, alliance, load=10_000)
    old = captured(ledger, alliance, number, 2)
    bury(ledger, alliance, number)
    holds = [approved(authorize(ledger, alliance.t1, number, 1)).authorization_id
             for _ in range(2 * (retention.AUTHORIZATIONS_IN_MEMORY + 1))]
    commands: list[Any] = [cc.Refund(old, 1)]
    commands += [cc.Capture(h, 0) for h in holds[:len(holds) // 2]]
    commands += [cc.Refund(old, 1)]
    commands += [cc.Capture(h, 0) for h in holds[len(holds) // 2:]]
    commands += [cc.Refund(old, 1)]
    futures = []
    for i, command in enumerate(commands):
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        ledger.submit(Request(alliance.t1, command, future.set_result, "", f"together-{i}", "",
                              time.monotonic() + 30))
        futures.append(future)
    results = [result(f.result(35)) for f in futures]
    refunds = [r for c, r in zip(commands, results, strict=True) if isinstance(c, cc.Refund)]
    assert refunds == [Result.APPROVED, Result.APPROVED, Result.DECLINED_REFUND_EXCEEDS_CAPTURED]
    assert all(r == Result.APPROVED for c, r in zip(commands, results, strict=True)
               if isinstance(c, cc.Capture))
