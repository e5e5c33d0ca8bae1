"""A card's state is bounded by what can still change (domain/cards/retention.py): settled
authorizations and old purchases leave it by age and by count, spent lots and finished coupons
follow, the sums the rules read survive, and a request naming what was let go is told so."""

from __future__ import annotations

import itertools
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.cards import retention
from domain.cards.decide import CardState, HoldStatus
from domain.common import Meta, Result, Role
from domain.points.program import DAY_US, Program
from domain.points.purse import ExpiryKind
from domain.purchases.commands import Purchase, Return, ReturnLine
from domain.purchases.decide import (
    Evaluation,
    PurchaseContext,
    decide_purchase,
    decide_return,
    qualifying_spend,
)
from domain.rules.model import Line

CARD = "6277000000000011"
T0 = 1_700_000_000_000_000
TTL = 3_600 * 1_000_000
PROGRAM = Program("P1", "EUR", 10_000, ExpiryKind.NEVER, 0, "UTC", 0, ())


class Card:
    """One card driven through the domain's decisions at a clock the test moves."""

    def __init__(self) -> None:
        self.now = T0
        self.requests = itertools.count(1)
        self.state: CardState = cards.fold([cards.ev.CardIssued(
            self.meta(), CARD, "STANDARD", "EUR", "P1", "S1", "")])  # type: ignore[assignment]
        self.apply(cards.Decision(Result.APPROVED, (cards.ev.CardActivated(self.meta(), ""),)))
        self.apply(cards.decide_load(self.state, cc.LoadValue(CARD, 10**12, "EUR", "psp"),
                                     self.ctx()))

    def meta(self) -> Meta:
        return Meta(f"r{next(self.requests)}", "cred", int(Role.TERMINAL), "P1", "S1", "T1",
                    self.now)

    def ctx(self) -> cards.Context:
        return cards.Context(self.meta(), self.now, 10**13, TTL, "P1")

    def apply(self, decision: cards.Decision) -> cards.Decision:
        for event in decision.events:
            self.state = cards.evolve(self.state, event)
        return decision

    def authorize(self, amount: int = 100) -> str:
        decision = self.apply(cards.decide_authorize(
            self.state, cc.Authorize(CARD, amount, "EUR", False, ""), self.ctx()))
        assert decision.result == Result.APPROVED
        return decision.authorization_id

    def capture(self, authorization_id: str) -> Result:
        return self.apply(cards.decide_capture(self.state, cc.Capture(authorization_id, 0),
                                               self.ctx())).result

    def refund(self, authorization_id: str, amount: int = 1) -> Result:
        return self.apply(cards.decide_refund(self.state, cc.Refund(authorization_id, amount),
                                              self.ctx())).result

    def buy(self, price: int = 1_000, points: int = 10, redeem: int = 0) -> str:
        cmd = Purchase(CARD, "EUR", (Line("sku", "cat", 1, price),), 0, False, redeem, "", "")
        ctx = PurchaseContext(self.meta(), self.now, "P1", PROGRAM,
                              Evaluation(points, price, ("rs@1",), (), 0), 0, 600,
                              local_date="2023-11-14")
        decision = decide_purchase(self.state, cmd, ctx)
        assert decision.result == Result.APPROVED, decision.reason
        assert decision.event is not None
        self.state = cards.evolve(self.state, decision.event)
        return decision.event.purchase_id

    def give_back(self, purchase_id: str) -> Result:
        decision = decide_return(self.state, Return(purchase_id, (ReturnLine(0, 1),), "r"),
                                 self.meta(), self.now, PROGRAM)
        for event in decision.events:
            self.state = cards.evolve(self.state, event)
        return decision.result


def size(state: CardState) -> int:
    return len(msgspec.msgpack.encode(state))


# ------------------------------------------------------------------------------ holds


def test_settled_authorizations_beyond_the_count_leave_memory_and_a_refund_brings_one_back(
) -> None:
    card = Card()
    first = card.authorize()
    assert card.capture(first) == Result.APPROVED
    late = msgspec.structs.replace(card.state.holds[first])  # as its stream will tell it
    for _ in range(retention.AUTHORIZATIONS_IN_MEMORY):
        assert card.capture(card.authorize()) == Result.APPROVED
    assert len(card.state.holds) == retention.AUTHORIZATIONS_IN_MEMORY
    assert first not in card.state.holds
    assert retention.let_go(card.state.history.authorizations_dropped, first)
    assert card.refund(first) == Result.DECLINED_AUTHORIZATION_NOT_FOUND  # without its story
    decision = card.apply(cards.decide_refund(card.state, cc.Refund(first, 60), card.ctx(),
                                              late))
    assert decision.result == Result.APPROVED
    event = decision.events[0]
    assert event.hold is not None and event.hold.refunded_minor == 0  # type: ignore[attr-defined]
    assert card.state.holds[first].refunded_minor == 60  # back in memory, the newest settled
    assert card.refund(first, 41) == Result.DECLINED_REFUND_EXCEEDS_CAPTURED
    assert card.refund(first, 40) == Result.APPROVED


def test_pending_holds_are_never_let_go_however_many_settle_behind_them() -> None:
    card = Card()
    pending = card.authorize()
    for _ in range(retention.AUTHORIZATIONS_IN_MEMORY + 50):
        card.capture(card.authorize())
    assert card.state.holds[pending].status == HoldStatus.PENDING
    assert len(card.state.settled) == retention.AUTHORIZATIONS_IN_MEMORY
    assert len(card.state.holds) == retention.AUTHORIZATIONS_IN_MEMORY + 1
    assert card.capture(pending) == Result.APPROVED


def test_many_pending_holds_are_kept_and_settle_in_order() -> None:
    """More pending holds than the bound (the fuzzer made one): none is let go, and each
    settles and leaves in the order it settled."""
    card = Card()
    pending = [card.authorize() for _ in range(retention.AUTHORIZATIONS_IN_MEMORY + 200)]
    assert len(card.state.holds) == len(pending) and not card.state.settled
    for authorization_id in pending:
        assert card.capture(authorization_id) == Result.APPROVED
    assert list(card.state.settled) == pending[-retention.AUTHORIZATIONS_IN_MEMORY:]
    assert set(card.state.holds) == set(card.state.settled)


def test_a_refund_a_year_after_the_authorization_is_declined_whether_or_not_the_card_changed(
) -> None:
    card = Card()
    old = card.authorize()
    card.capture(old)
    card.now += retention.REFUND_WINDOW_US - DAY_US
    assert card.refund(old) == Result.APPROVED  # inside the window
    card.now += DAY_US
    assert card.refund(old) == Result.DECLINED_REFUND_WINDOW_CLOSED  # still in the state
    assert old in card.state.holds
    card.capture(card.authorize())  # the next event lets it go
    assert old not in card.state.holds
    assert retention.let_go(card.state.history.authorizations_dropped, old)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["auth", "capture", "void", "later"]),
                          st.integers(0, 30)), max_size=80))
def test_the_next_expiry_and_the_lapsed_holds_equal_a_scan_of_every_hold(
        steps: list[tuple[str, int]]) -> None:
    card = Card()
    for action, n in steps:
        pending = [a for a, h in card.state.holds.items() if h.status == HoldStatus.PENDING]
        if action == "auth":
            card.authorize()
        elif action == "later":
            card.now += n * TTL // 10
        elif pending:
            target = pending[n % len(pending)]
            hold = card.state.holds[target]
            if action == "capture":
                card.apply(cards.decide_capture(card.state, cc.Capture(target, 0), card.ctx()))
            else:
                card.apply(cards.decide_void(card.state, cc.Void(target), card.ctx()))
            assert hold.status != HoldStatus.PENDING
        live = [h for h in card.state.holds.values() if h.status == HoldStatus.PENDING]
        assert card.state.next_expiry_us == min((h.expires_at_us for h in live),
                                                default=cards.NO_EXPIRY)
        lapsed = sorted((h for h in live if h.expires_at_us <= card.now),
                        key=lambda h: h.expires_at_us)
        released = cards.expired_holds(card.state, card.now, card.meta())
        assert [e.authorization_id for e in released] == [  # type: ignore[attr-defined]
            h.authorization_id for h in lapsed]
        assert cards.held_at(card.state, card.now) == card.state.held_minor - sum(
            h.amount_minor for h in lapsed)


# ------------------------------------------------------------------------------ purchases


def test_purchases_beyond_the_count_leave_and_a_return_is_told_so_while_the_sums_survive(
) -> None:
    card = Card()
    first = card.buy()
    extra = 20
    for _ in range(retention.PURCHASES_KEPT_MAX + extra - 1):
        card.buy()
    assert len(card.state.purchases) == retention.PURCHASES_KEPT_MAX
    assert first not in card.state.purchases
    assert card.give_back(first) == Result.DECLINED_PURCHASE_NOT_FOUND  # the domain's view
    assert retention.let_go(card.state.history.purchases_dropped, first)
    made = retention.PURCHASES_KEPT_MAX + extra
    history = card.state.history
    assert history.purchases_made == made
    # the tier's qualifying spend and the CAP's period sums count every purchase
    assert qualifying_spend(card.state, card.now) == made * 1_000
    assert history.period_points["DAY|2023-11-14"] == made * 10
    assert history.period_points["MONTH|2023-11"] == made * 10
    # a return of a kept one takes its share off the sums
    kept = next(iter(card.state.purchases))
    assert card.give_back(kept) == Result.APPROVED
    assert qualifying_spend(card.state, card.now) == (made - 1) * 1_000
    assert card.state.history.period_points["DAY|2023-11-14"] == (made - 1) * 10


def test_a_return_after_the_window_is_declined() -> None:
    card = Card()
    bought = card.buy()
    card.now += retention.RETURN_WINDOW_US
    assert card.give_back(bought) == Result.DECLINED_RETURN_WINDOW_CLOSED
    card.buy()
    assert bought not in card.state.purchases


def test_a_spent_lot_stays_while_a_kept_purchase_redeemed_from_it_then_goes() -> None:
    card = Card()
    card.buy(points=50)
    lot_id = next(iter(card.state.lots))
    spender = card.buy(points=0, redeem=50)
    assert card.state.lots[lot_id].remaining == 0  # spent, but a return may put points back
    assert card.give_back(spender) == Result.APPROVED
    assert card.state.lots[lot_id].remaining == 50
    card.buy(points=0, redeem=50)
    for _ in range(retention.PURCHASES_KEPT_MAX):
        card.buy(points=0)
    assert lot_id not in card.state.lots  # the purchases that named it are gone


# ------------------------------------------------------------------------------ the bound


def test_the_state_of_a_busy_card_stops_growing() -> None:
    card = Card()
    rng = random.Random(7)
    sizes = []
    for step in range(1, 6_001):
        if rng.random() < 0.2:  # the customer spends points now and then: lots come and go
            spendable = sum(lot.remaining for lot in card.state.lots.values())
            card.buy(points=rng.randint(0, 20), redeem=spendable if spendable > 200 else 0)
        else:
            card.capture(card.authorize(rng.randint(1, 500)))
        if step in (3_000, 6_000):
            sizes.append(size(card.state))
    assert sizes[1] <= sizes[0] * 1.1, sizes
    assert len(card.state.settled) <= retention.AUTHORIZATIONS_IN_MEMORY
    assert len(card.state.purchases) <= retention.PURCHASES_KEPT_MAX


def test_a_replacement_card_carries_the_history() -> None:
    card = Card()
    for _ in range(3):
        card.buy()
    decision = cards.decide_replace(card.state, "6277000000000029", False, "lost", card.ctx())
    new = cards.fold(list(decision.replacement_events))
    assert new is not None
    assert new.history == card.state.history
    assert new.refs == card.state.refs
    assert qualifying_spend(new, card.now) == 3_000


@pytest.mark.parametrize("record_id", ["x", f"{CARD}.", f"{CARD}.0", f"{CARD}.abc"])
def test_an_id_that_names_no_version_was_never_let_go(record_id: str) -> None:
    assert not retention.let_go({CARD: 10}, record_id)
