"""Redeeming another program's points at a partner (issue 9, section 2): a purchase names the
program (`redeem_program`); its purse pays, earliest expiry first, at its point value, where
the program's owner is the store's entity or has an agreement in force with it; the legs say
what the owner owes the store's entity, a return restores the points and reverses exactly
those legs; points earned stay in the card's own program. A table of decisions, then the
shapes the stored schema and the idempotency hash keep."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import CardStatus, InvalidInput, Meta, Result, Role
from domain.points import purse
from domain.points.program import DAY_US, Program
from domain.purchases.commands import Purchase, Return, ReturnLine, SimulatePurchase
from domain.purchases.decide import (
    Evaluation,
    PurchaseContext,
    accepted_at,
    decide_purchase,
    decide_return,
)
from domain.rules.model import Line
from domain.settlement.agreements import Agreement, Agreements
from ledger.codec import decode_event, encode, payload_hash

CARD = "6000000000000015"
NOW = 1_796_000_000_000_000  # 2026-12-01
META = Meta("req-1", "cred", int(Role.TERMINAL), "P3", "S9", "T9", NOW)
RETAIL = Program("P1", "USD", 1_000_000, 0, 0, "UTC", 0)  # the card's own: 1 point = 1 cent
AIR = Program("P2", "USD", 1_500_000, 0, 0, "UTC", 0)  # 1 mile = 1.5 cents
EURO = Program("P2", "EUR", 1_500_000, 0, 0, "UTC", 0)


def lot(lot_id: str, points: int, expires: int = purse.NEVER_US, program: str = "",
        value: int = 1_000_000, vests: int = 0) -> purse.Lot:
    return purse.Lot(lot_id, points, points, 0, vests, expires, "test", "r@1", value, program)


def card(*lots: purse.Lot, debt: int = 0) -> cards.CardState:
    state = cards.CardState(CARD, "STANDARD", "USD", "P1", "S1", "", CardStatus.ACTIVE,
                            lots={x.lot_id: x for x in lots}, version=7)
    state.points_debt = debt
    return state


def agreements(*found: Agreement) -> Agreements:
    book = Agreements()
    for agreement in found:
        book.add(agreement)
    return book


P2_P3 = agreements(Agreement("p2p3", 1, 0, "P2", "P3"))
HOLDINGS = (lot("own", 10_000), lot("air-late", 300, NOW + 90 * DAY_US, "P2", 1_500_000),
            lot("air-soon", 200, NOW + 10 * DAY_US, "P2", 1_500_000))


def buy(state: cards.CardState, points: int, *, program: str = "P2", price: int = 1_000,
        earned: int = 10, acquirer: str = "P3", book: Agreements | None = P2_P3,
        own: Program | None = RETAIL, defined: Program | None = AIR) -> tuple[Result, str, Any]:
    cmd = Purchase(CARD, "USD", (Line("tea", "food", 1, price),), 0, False, points, "", "R-1",
                   redeem_program=program)
    ctx = PurchaseContext(META, NOW, acquirer, own, Evaluation(earned, price, ("rs@1",), ()),
                          0, 600, local_date="2026-12-01",
                          redeem_program=defined if program else None, agreements=book)
    decision = decide_purchase(state, cmd, ctx)
    return decision.result, decision.reason, decision.event


def legs_of(*events: Any) -> dict[str, int]:
    totals: dict[str, int] = {}
    for event in events:
        for leg in event.legs:
            totals[leg.account] = totals.get(leg.account, 0) + leg.amount_minor
    return {account: total for account, total in totals.items() if total}



# ------------------------------------------------------------------------------ decisions


def test_another_programs_points_pay_at_a_partner_with_an_agreement() -> None:
    state = card(*HOLDINGS)
    result, _, made = buy(state, 400)
    assert result == Result.APPROVED
    # the P2 purse pays, the lot expiring first first; the own purse is untouched
    assert made.redeemed == (("air-soon", 200), ("air-late", 200))
    assert (made.points_redeemed, made.points_redeemed_value_minor) == (400, 600)
    assert (made.points_owner, made.redeemed_owner) == ("P1", "P2")
    assert made.lot is not None and made.lot.program == "" and made.lot.amount == 10
    assert legs_of(made) == {
        "points:P2:outstanding": -600, "points_redeemed:P2:P3": 600,  # P2 owes P3
        "points_sold:P3:P1": -10, "points:P1:outstanding": 10}  # P3 owes P1 the earned points
    after = cards.evolve(state, made)
    assert purse.spendable(after.purse_of("P2"), NOW) == 100
    assert purse.spendable(after.purse, NOW) == 10_010
    assert after.purchases[made.purchase_id].redeemed_owner == "P2"


@pytest.mark.parametrize(("book", "acquirer", "expected"), [
    (P2_P3, "P3", Result.APPROVED),  # the pair's agreement
    (agreements(Agreement("a0p2", 1, 0, "A0", "P2")), "A0", Result.APPROVED),  # either way
    (agreements(Agreement("all", 1, 0)), "P3", Result.APPROVED),  # alliance-wide
    (None, "P2", Result.APPROVED),  # at the owner's own stores: no agreement needed
    (None, "P3", Result.DECLINED_NO_AGREEMENT),
    (agreements(), "P3", Result.DECLINED_NO_AGREEMENT),
    (P2_P3, "P4", Result.DECLINED_NO_AGREEMENT),  # another pair's
    (agreements(Agreement("p2", 1, 0, "P2")), "P3", Result.DECLINED_NO_AGREEMENT),  # its own
    (agreements(Agreement("p3", 1, 0, "P3")), "P3", Result.DECLINED_NO_AGREEMENT),  # terms
    (agreements(Agreement("p2p3", 1, NOW + 1, "P2", "P3")), "P3",
     Result.DECLINED_NO_AGREEMENT),  # not yet in force
])
def test_where_another_programs_points_pay(book, acquirer, expected) -> None:
    result, reason, made = buy(card(*HOLDINGS), 100, acquirer=acquirer, book=book)
    assert result == expected, reason
    assert (made is None) == (expected != Result.APPROVED)
    if expected == Result.DECLINED_NO_AGREEMENT:
        assert "no agreement" in reason and acquirer in reason
    assert accepted_at(book, "P2", acquirer, NOW) == (expected == Result.APPROVED)


@pytest.mark.parametrize(("changes", "expected", "words"), [
    ({"defined": None}, Result.DECLINED_NO_POINTS_PROGRAM, "no points program of 'P2'"),
    ({"defined": EURO}, Result.DECLINED_CURRENCY_MISMATCH, "EUR"),
    ({"points": 501}, Result.DECLINED_INSUFFICIENT_POINTS, "500 spendable in P2's program"),
    ({"points": 700, "price": 1_000}, Result.DECLINED_TENDER_EXCEEDS_DUE, "worth 1050"),
])
def test_declines_name_what_is_wrong(changes, expected, words) -> None:
    values: dict[str, object] = {"points": 100}
    values.update(changes)
    points = values.pop("points")
    result, reason, made = buy(card(*HOLDINGS), points, **values)  # type: ignore[arg-type]
    assert (result, made) == (expected, None)
    assert words in reason, reason


def test_the_own_purse_does_not_lend_to_another_programs() -> None:
    """10,000 points of the card's own program and 500 of P2: 501 of P2 are declined, and
    the own program's points debt does not reduce P2's."""
    state = card(*HOLDINGS, debt=9_999)
    assert buy(state, 501)[0] == Result.DECLINED_INSUFFICIENT_POINTS
    assert buy(state, 500)[0] == Result.APPROVED
    assert buy(state, 2, program="")[0] == Result.DECLINED_INSUFFICIENT_POINTS  # 1 own free


def test_earliest_expiry_first_within_the_program_only() -> None:
    """The own program's lot expiring first, an expired, a pending and an empty P2 lot are
    passed over; P2's live lots pay in order of expiry, then of earning."""
    state = card(
        lot("own-first", 1_000, NOW + DAY_US),
        lot("air-gone", 50, NOW, "P2", 1_500_000),
        lot("air-pending", 50, NOW + 5 * DAY_US, "P2", 1_500_000, vests=NOW + 1),
        lot("air-b", 30, NOW + 20 * DAY_US, "P2", 1_500_000),
        lot("air-a", 30, NOW + 20 * DAY_US, "P2", 1_500_000),
        lot("air-c", 100, NOW + 30 * DAY_US, "P2", 1_500_000),
        msgspec.structs.replace(lot("air-empty", 9, NOW + 2 * DAY_US, "P2"), remaining=0))
    result, _, made = buy(state, 100)
    assert result == Result.APPROVED
    assert made.redeemed == (("air-a", 30), ("air-b", 30), ("air-c", 40))


def test_naming_the_cards_own_program_is_redeeming_it() -> None:
    state = card(*HOLDINGS)
    result, _, made = buy(state, 100, program="P1", book=None)
    assert result == Result.APPROVED
    assert made.redeemed == (("own", 100),) and made.redeemed_owner == ""
    assert legs_of(made)["points_redeemed:P1:P3"] == 100


def test_a_card_without_a_program_of_its_own_may_redeem_anothers() -> None:
    result, _, made = buy(card(*HOLDINGS), 100, own=None)
    assert result == Result.APPROVED
    assert (made.points_owner, made.redeemed_owner, made.lot) == ("", "P2", None)
    assert legs_of(made) == {"points:P2:outstanding": -150, "points_redeemed:P2:P3": 150}


def test_returns_restore_the_programs_points_and_reverse_its_legs_exactly() -> None:
    """Three lines returned one at a time: the P2 points go back to their lots (latest expiry
    first), the P2 legs and the own program's earned points are reversed in proportion, and
    after the last return every points account is back where it began."""
    state = card(*HOLDINGS)
    cmd = Purchase(CARD, "USD", tuple(Line(f"x{i}", "food", 1, 333) for i in range(3)), 0,
                   False, 401, "", "R-1", redeem_program="P2")
    ctx = PurchaseContext(META, NOW, "P3", RETAIL, Evaluation(10, 999, ("rs@1",), ()), 0, 600,
                          redeem_program=AIR, agreements=P2_P3)
    made = decide_purchase(state, cmd, ctx).event
    assert made is not None and made.points_redeemed_value_minor == 601
    state = cards.evolve(state, made)
    returns = []
    for index in range(3):
        decision = decide_return(state, Return(made.purchase_id, (ReturnLine(index, 1),), "r"),
                                 META, NOW + 1, RETAIL)
        assert decision.result == Result.APPROVED
        returned = decision.events[0]
        assert isinstance(returned, ev.PurchaseReturned)
        returns.append(returned)
        state = cards.evolve(state, returned)
    assert [sum(p for _, p in r.points_restored) for r in returns] == [133, 134, 134]
    assert returns[0].points_restored == (("air-late", 133),)  # the longest life back first
    # 601 x 133 // 401, then 601 x 267 // 401 less that, then the rest
    assert [legs_of(r).get("points_redeemed:P2:P3") for r in returns] == [-199, -201, -201]
    assert legs_of(made, *returns) == {}  # P2's and P1's legs all reversed to the minor unit
    assert purse.spendable(state.purse_of("P2"), NOW) == 500
    assert purse.spendable(state.purse, NOW) == 10_000


# ------------------------------------------------------------------------------ the schema


def test_bad_redeem_program_is_refused_naming_the_field() -> None:
    base = Purchase(CARD, "USD", (Line("tea", "food", 1, 100),), 0, False, 10, "", "R-1")
    for program in ("P 2", "x" * 65, "p2;drop", "ALLIANCE\n"):
        with pytest.raises(InvalidInput, match=r"^redeem_program"):
            msgspec.structs.replace(base, redeem_program=program).validate()
    with pytest.raises(InvalidInput, match=r"^redeem_program.*without points_to_redeem"):
        msgspec.structs.replace(base, points_to_redeem=0, redeem_program="P2").validate()
    for program in ("P2", "alliance", ""):
        msgspec.structs.replace(base, redeem_program=program).validate()


class _PurchaseBefore(msgspec.Struct, frozen=True, array_like=True, tag="Purchase"):
    """Purchase as released before redeem_program."""

    card_number: str
    currency: str
    lines: tuple[Line, ...]
    stored_value_minor: int
    allow_partial: bool
    points_to_redeem: int
    local_time: str
    receipt_ref: str
    coupon_codes: tuple[str, ...] = ()
    override_discount_minor: int = 0
    override_approver: str = ""
    override_reason: str = ""
    stored_value_pays_rest: bool = False


class _SimulateBefore(msgspec.Struct, frozen=True, array_like=True, tag="SimulatePurchase"):
    purchase: _PurchaseBefore
    store_id: str


def test_a_purchase_without_the_field_hashes_as_before_it_existed() -> None:
    """Request keys store the payload hash: a Purchase keyed before the upgrade and retried
    after it must still match. The digests were taken on the commit before the field."""
    fields = (CARD, "USD", (Line("tea", "food", 2, 150, 40),), 0, False, 120,
              "2026-04-03T12:30:00", "R-1", ("ABC",), 0, "", "", True)
    now, before = Purchase(*fields), _PurchaseBefore(*fields)  # type: ignore[arg-type]
    assert payload_hash(now) == hashlib.blake2b(encode(before), digest_size=16).digest()
    assert payload_hash(now).hex() == "fe280612d817149cc29eccc79d48f1b0"
    assert payload_hash(SimulatePurchase(now, "S1")).hex() == "fa0420723588e087e5f02ab658a1e54f"
    assert payload_hash(SimulatePurchase(now, "S1")) == hashlib.blake2b(
        encode(_SimulateBefore(before, "S1")), digest_size=16).digest()
    short = Purchase(CARD, "USD", (Line("tea", "food", 1, 300),), 0, False, 0, "", "r1")
    assert payload_hash(short).hex() == "edc22491351ceeecae9c2f570aec926c"
    # with the field set the hash covers it: another program is another request
    other = msgspec.structs.replace(now, redeem_program="P2")
    assert payload_hash(other) not in (payload_hash(now), payload_hash(
        msgspec.structs.replace(now, redeem_program="P3")))


def test_an_event_written_before_the_field_decodes_as_the_cards_own() -> None:
    result, _, made = buy(card(*HOLDINGS), 100, program="", book=None)
    assert result == Result.APPROVED
    fields = msgspec.msgpack.decode(encode(made))
    assert fields[-1] == ""  # redeemed_owner, the last field
    old = decode_event(msgspec.msgpack.encode(fields[:-1]))
    assert isinstance(old, ev.PurchaseMade) and old.redeemed_owner == "" and old == made
    record = cards.evolve(card(*HOLDINGS), old).purchases[made.purchase_id]
    assert record.redeemed_owner == "" and record.points_owner == "P1"


def test_a_replacement_card_returns_the_miles_to_the_purse_they_came_from() -> None:
    """The purchase record and the P2 lots move to the new card (CarriedLoyalty), which
    restores the miles and reverses P2's legs when the basket comes back."""
    old = card(*HOLDINGS)
    made = buy(old, 100)[2]
    old = cards.evolve(old, made)
    ctx = cards.Context(META, NOW, 10**9, 3_600_000_000, "P1")
    replaced = cards.decide_replace(old, "6000000000000023", False, "lost", ctx)
    assert replaced.result == Result.APPROVED
    new = cards.fold(list(replaced.replacement_events))
    assert new is not None and new.purchases[made.purchase_id].redeemed_owner == "P2"
    decision = decide_return(new, Return(made.purchase_id, (ReturnLine(0, 1),), "r"), META,
                             NOW + 1, RETAIL)
    returned = decision.events[0]
    assert isinstance(returned, ev.PurchaseReturned)
    assert returned.points_restored == (("air-soon", 100),)
    assert legs_of(made, returned) == {}
    assert purse.spendable(cards.evolve(new, returned).purse_of("P2"), NOW) == 500
