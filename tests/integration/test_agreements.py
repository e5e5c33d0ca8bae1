"""Agreements and accounting entities (issue 9, section 1): published versions are validated
and immutable, a store may become its own entity, and the net debit cap declines spending an
entity's cards at other entities' stores once its net payable in the open period would pass
the cap (its own stores keep working), also after a restart and until the period closes."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import msgspec
import pytest

from domain.cards import commands as cc
from domain.common import Principal, Result, Role
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.purchases import commands as pc
from domain.purchases.commands import Line
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Rule, RuleSet
from domain.settlement.agreements import Agreement, PublishAgreement, RegisterStoreEntity
from domain.settlement.model import Category
from domain.settlement.periods import CloseSettlementPeriod
from ledger.codec import card_stream_id, decode_event
from ledger.engine import Failure, Ledger
from ledger.refusals import Refusal
from ledger.work import Request
from projections.settlement import period_statements, settlement_runner
from tests.support.alliance import ok, rid, started_ledger

USD = "USD"
FOREVER_US = 2**62
EARN_1_PER_CENT = Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=1)
HOUR_US = 3_600_000_000


def call(ledger: Ledger, who: str, command: Any) -> Any:
    return ledger.call(who, command, request_id=rid("agree"), timeout_s=30)


def card(ledger: Ledger, alliance: Any, load: int, *, manager: str = "",
         store: str = "S1") -> str:
    manager = manager or alliance.p1_manager
    number = ok(call(ledger, manager, cc.IssueCard("", "STANDARD", USD, "", store))).card_number
    assert ok(call(ledger, manager, cc.ActivateCard(number, ""))).result == Result.APPROVED
    assert ok(call(ledger, manager, cc.LoadValue(number, load, USD, "psp"))).result == 1
    return number


def spend(ledger: Ledger, terminal: str, number: str, amount: int) -> Result:
    hold = ok(call(ledger, terminal, cc.Authorize(number, amount, USD, False, "")))
    if hold.result != Result.APPROVED:
        return Result(hold.result)
    assert ok(call(ledger, terminal, cc.Capture(hold.authorization_id, 0))).result == 1
    return Result.APPROVED


def publish(ledger: Ledger, who: str, agreement: Agreement) -> Any:
    return call(ledger, who, PublishAgreement(agreement))


def earning_everywhere(ledger: Ledger, alliance: Any, *, point_value_micros: int = 1_000_000,
                       months: int = 12) -> None:
    """P1's program (points expire `months` after earning), and a point per cent spent at
    every store of the alliance."""
    assert ok(call(ledger, alliance.p1_manager, DefineProgram(
        "P1", USD, point_value_micros, int(ExpiryKind.MONTHS_AFTER), months, "UTC",
        0))).result == Result.APPROVED
    assert ok(call(ledger, alliance.admin, PublishRuleSet(RuleSet(
        rule_set_id="everywhere", version=1, scope="alliance", valid_from_us=0,
        valid_to_us=FOREVER_US, rules=(EARN_1_PER_CENT,))))).result == Result.APPROVED


def cap_of(clock: Any, entity: str, cap: int) -> Agreement:
    return Agreement(f"cap-{entity}", 1, clock.now_us, entity, net_debit_cap_minor=cap,
                     cap_currency=USD)


def test_the_cap_declines_spending_elsewhere_and_never_at_home(ledger, alliance, store, clock):
    p1_card = card(ledger, alliance, 5_000)
    p2_card = card(ledger, alliance, 5_000, manager=alliance.p2_manager, store="A1")
    assert ok(publish(ledger, alliance.admin, cap_of(clock, "P1", 1_000))).result == 1
    assert spend(ledger, alliance.t_air, p1_card, 600) == Result.APPROVED  # P1 owes P2 600
    assert spend(ledger, alliance.t_air, p1_card, 500) == Result.DECLINED_NET_DEBIT_CAP
    assert spend(ledger, alliance.t_air, p1_card, 400) == Result.APPROVED  # 1,000: the cap
    assert spend(ledger, alliance.t_air, p1_card, 1) == Result.DECLINED_NET_DEBIT_CAP
    assert spend(ledger, alliance.t1, p1_card, 500) == Result.APPROVED  # its own store
    # P2's card spent at P1's store: P1 is owed 300, so its net payable is 700
    assert spend(ledger, alliance.t1, p2_card, 300) == Result.APPROVED
    assert spend(ledger, alliance.t_air, p1_card, 300) == Result.APPROVED
    assert spend(ledger, alliance.t_air, p1_card, 1) == Result.DECLINED_NET_DEBIT_CAP
    # a purchase paid with the card's value is declined the same way, nothing written
    before = ledger.state.card(p1_card).version
    bought = ok(call(ledger, alliance.t_air, pc.Purchase(
        p1_card, USD, (Line("sku", "cat", 1, 50),), 50, False, 0, "", "receipt")))
    assert bought.result == Result.DECLINED_NET_DEBIT_CAP
    assert ledger.state.card(p1_card).version == before
    # after a restart the positions are read again from the open period's rows
    ledger.stop()
    with started_ledger(store, clock_us=clock) as again:
        assert spend(again, alliance.t_air, p1_card, 1) == Result.DECLINED_NET_DEBIT_CAP
        assert spend(again, alliance.t1, p1_card, 1) == Result.APPROVED
        # a close starts a new period: nothing payable in it yet
        assert ok(call(again, alliance.admin, CloseSettlementPeriod("month end"))).result == 1
        assert spend(again, alliance.t_air, p1_card, 1_000) == Result.APPROVED
        assert spend(again, alliance.t_air, p1_card, 1) == Result.DECLINED_NET_DEBIT_CAP
    ledger.start()


def test_a_refund_across_gives_room_under_the_cap(ledger, alliance, clock):
    p1_card = card(ledger, alliance, 5_000)
    assert ok(publish(ledger, alliance.admin, cap_of(clock, "P1", 500))).result == 1
    hold = ok(call(ledger, alliance.t_air, cc.Authorize(p1_card, 500, USD, False, "")))
    assert ok(call(ledger, alliance.t_air, cc.Capture(hold.authorization_id, 0))).result == 1
    assert spend(ledger, alliance.t_air, p1_card, 100) == Result.DECLINED_NET_DEBIT_CAP
    assert ok(call(ledger, alliance.t_air, cc.Refund(hold.authorization_id, 200))).result == 1
    assert spend(ledger, alliance.t_air, p1_card, 200) == Result.APPROVED
    assert spend(ledger, alliance.t_air, p1_card, 1) == Result.DECLINED_NET_DEBIT_CAP


def test_a_newer_version_raises_the_cap_from_its_valid_from(ledger, alliance, clock):
    p1_card = card(ledger, alliance, 5_000)
    assert ok(publish(ledger, alliance.admin, cap_of(clock, "P1", 100))).result == 1
    raised = Agreement("cap-P1", 2, clock.now_us + HOUR_US, "P1", net_debit_cap_minor=1_000,
                       cap_currency=USD)
    assert ok(publish(ledger, alliance.admin, raised)).result == 1
    assert spend(ledger, alliance.t_air, p1_card, 200) == Result.DECLINED_NET_DEBIT_CAP
    clock.advance(3_600)
    assert spend(ledger, alliance.t_air, p1_card, 200) == Result.APPROVED


def _version(ledger: Ledger) -> int:
    return ledger.registry.version


@pytest.mark.parametrize(("agreement", "field"), [
    (Agreement("", 1, 0), "agreement.agreement_id"),
    (Agreement("a", 0, 0), "agreement.version"),
    (Agreement("a", 1, 0, "", "P2"), "agreement.entity_a"),
    (Agreement("a", 1, 0, "P2", "P1"), "agreement.entity_b"),
    (Agreement("a", 1, 0, sv_commission_bps=10_001), "agreement.sv_commission_bps"),
    (Agreement("a", 1, 0, sv_commission_bps=-1), "agreement.sv_commission_bps"),
    (Agreement("a", 1, 0, commission_paid_by=3), "agreement.commission_paid_by"),
    (Agreement("a", 1, 0, voucher_share_bps=20_000), "agreement.voucher_share_bps"),
    (Agreement("a", 1, 0, points_price_micros=-5), "agreement.points_price_micros"),
    (Agreement("a", 1, 0, "P1", "P2", net_debit_cap_minor=5, cap_currency=USD),
     "agreement.net_debit_cap_minor"),
    (Agreement("a", 1, 0, "P1", net_debit_cap_minor=5), "agreement.cap_currency"),
    (Agreement("a", 1, 0, "P1", cap_currency=USD), "agreement.cap_currency"),
    (Agreement("a", 1, 0, "P1", net_debit_cap_minor=5, cap_currency="XXXX"),
     "agreement.cap_currency"),
])
def test_a_bad_agreement_names_its_field_and_writes_nothing(ledger, alliance, clock,
                                                           agreement, field):
    agreement = msgspec.structs.replace(agreement, valid_from_us=clock.now_us)
    before = _version(ledger)
    reply = publish(ledger, alliance.admin, agreement)
    assert isinstance(reply, Failure) and reply.code == Refusal.INVALID_INPUT, reply
    assert field in reply.message
    assert _version(ledger) == before


def test_published_versions_are_numbered_forward_dated_and_keep_their_parties(
        ledger, alliance, clock):
    now = clock.now_us
    first = Agreement("p1p2", 1, now, "P1", "P2", sv_commission_bps=150)
    assert ok(publish(ledger, alliance.admin, first)).result == 1
    for bad, field in [
        (Agreement("p1p2", 3, now, "P1", "P2"), "agreement.version"),
        (Agreement("p1p2", 2, now - 1, "P1", "P2"), "agreement.valid_from"),
        (Agreement("p1p2", 2, now, "P1"), "agreement.entity_a"),
        (Agreement("other", 1, now, "P1", "P9"), "agreement.entity_b"),
    ]:
        reply = publish(ledger, alliance.admin, bad)
        assert isinstance(reply, Failure) and field in reply.message, (bad, reply)
    for who in (alliance.p1_manager, alliance.finance, alliance.t1):
        reply = publish(ledger, who, Agreement("p1p2", 2, now, "P1", "P2"))
        assert isinstance(reply, Failure) and reply.code == Refusal.DENIED
    assert ok(publish(ledger, alliance.admin, Agreement("p1p2", 2, now, "P1", "P2"))).result == 1
    terms = ledger.registry.agreements.for_pair("P2", "P1", now)
    assert terms is not None and terms.version == 2 and terms.sv_commission_bps == 0


def test_a_store_of_its_own_settles_as_its_own_entity(ledger, alliance):
    admin = alliance.admin
    assert ok(call(ledger, admin, rc.RegisterStore("P1", "S9", "Flagship Ltd", "UTC"))).result == 1
    assert ok(call(ledger, admin, RegisterStoreEntity("S9"))).result == Result.APPROVED
    assert ok(call(ledger, admin, RegisterStoreEntity("S9"))).result == (
        Result.DECLINED_INVALID_STATE)
    for store_id, field in (("S2", "store_id"), ("S404", "store_id")):  # S2 has terminals
        reply = call(ledger, admin, RegisterStoreEntity(store_id))
        assert isinstance(reply, Failure) and field in reply.message, reply
    assert ledger.registry.entities()["S9"] == "store"
    assert ok(call(ledger, admin, rc.RegisterTerminal("S9", "T9"))).result == 1
    t9 = ok(call(ledger, admin, rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S9", "T9"),
                                                     "till 9"))).credential_id
    number = card(ledger, alliance, 1_000)  # a P1 card, spent at S9: P1 owes S9
    hold = ok(call(ledger, t9, cc.Authorize(number, 250, USD, False, "")))
    captured = ok(call(ledger, t9, cc.Capture(hold.authorization_id, 0)))
    assert captured.result == Result.APPROVED
    events = ledger.store.stream(card_stream_id(number))
    legs = [leg.account for leg in decode_event(events[-1].state).legs]
    assert "clearing:P1:S9" in legs, legs


def test_commission_and_voucher_share_in_the_period_statement(ledger, alliance, clock):
    """P1's cards spent at P2's lounge: P1 owes P2 the value, and under their agreement P2
    pays P1 1.5 % commission on the period's sum (rounded half up once, not per sale); P1 may
    settle half of its payable in its own vouchers. A rebuild gives the same digest."""
    now = clock.now_us
    assert ok(publish(ledger, alliance.admin, Agreement(
        "p1p2", 1, now, "P1", "P2", sv_commission_bps=150))).result == 1
    assert ok(publish(ledger, alliance.admin, Agreement(
        "p1-terms", 1, now, "P1", voucher_share_bps=5_000))).result == 1
    number = card(ledger, alliance, 5_000)
    assert spend(ledger, alliance.t_air, number, 1_000) == Result.APPROVED
    assert spend(ledger, alliance.t_air, number, 333) == Result.APPROVED
    assert spend(ledger, alliance.t1, number, 400) == Result.APPROVED  # at home: no commission
    assert ok(call(ledger, alliance.admin, CloseSettlementPeriod("end"))).result == 1
    runner = settlement_runner(ledger.store)
    found, instructions = period_statements(runner, 1)
    p1 = found.statement(USD, "P1")
    assert p1 is not None
    lines = {(line.counterparty_id, Category(line.category).name):
             (line.receivable_minor, line.payable_minor) for line in p1.lines}
    assert lines == {("P2", "SV_SPENT_ACROSS"): (0, 1_333),
                     ("P2", "COMMISSION"): (20, 0)}  # 1,333 x 1.5 % = 19.995 -> 20
    assert p1.multilateral_net_minor == -1_313
    assert [(i.payer_id, i.payee_id, i.instrument.name, i.amount_minor) for i in instructions] == [
        ("P1", "P2", "CASH", 657), ("P1", "P2", "VOUCHER", 656)]
    digest = found.digest()
    runner.rebuild()
    assert period_statements(runner, 1)[0].digest() == digest
    # a projection process started afresh mid-log learns the agreements before its rows
    assert spend(ledger, alliance.t_air, number, 200) == Result.APPROVED
    second, _ = period_statements(settlement_runner(ledger.store), 2)
    p1_now = second.statement(USD, "P1")
    assert p1_now is not None and p1_now.multilateral_net_minor == -197  # 200 - 3 commission


def test_two_writers_see_each_others_positions(ledger, other, alliance, clock):
    """Two server processes: each reads the other's captures before it decides, once it has
    heard of them (`sync`: a process hears of another's commits through the database's
    notification within milliseconds; a decision in that window does not see them), so the
    cap holds across both."""
    number = card(ledger, alliance, 5_000)
    assert ok(publish(ledger, alliance.admin, cap_of(clock, "P1", 1_000))).result == 1
    other.sync()
    assert spend(ledger, alliance.t_air, number, 600) == Result.APPROVED
    other.sync()
    assert spend(other, alliance.t_air, number, 401) == Result.DECLINED_NET_DEBIT_CAP
    assert spend(other, alliance.t_air, number, 400) == Result.APPROVED
    ledger.sync()
    assert spend(ledger, alliance.t_air, number, 1) == Result.DECLINED_NET_DEBIT_CAP
    assert ok(call(other, alliance.finance, CloseSettlementPeriod("end"))).result == 1
    ledger.sync()
    assert spend(ledger, alliance.t_air, number, 1_000) == Result.APPROVED
    other.sync()
    assert spend(other, alliance.t_air, number, 1) == Result.DECLINED_NET_DEBIT_CAP


def test_an_agreement_without_valid_from_applies_from_its_publication(ledger, alliance, clock):
    assert ok(publish(ledger, alliance.admin, Agreement("now", 1, 0, "P1",
                                                        voucher_share_bps=100))).result == 1
    terms = ledger.registry.agreements.for_entity("P1", clock.now_us)
    assert terms is not None and terms.valid_from_us == clock.now_us


def test_points_earned_and_redeemed_across_partners_are_settled(ledger, alliance, clock):
    """A P1 card earns P1 points at P2's lounge (P2 owes P1 their value) and redeems them there
    (P1 owes P2 what they paid for); a full return undoes both; P1 over its cap may not have
    its points redeemed at P2's lounge, while P1's own stores keep taking them."""
    approved = Result.APPROVED
    earning_everywhere(ledger, alliance)
    number = card(ledger, alliance, 0)
    lounge = ok(call(ledger, alliance.t_air, pc.Purchase(
        number, USD, (Line("seat", "travel", 1, 500),), 0, False, 0, "", "r1")))
    assert lounge.result == approved and lounge.purchase.points_earned == 500  # worth 5.00
    paid = ok(call(ledger, alliance.t_air, pc.Purchase(
        number, USD, (Line("tea", "food", 1, 300),), 0, False, 300, "", "r2")))
    assert paid.result == approved and paid.purchase.points_redeemed == 300
    assert ok(call(ledger, alliance.admin, CloseSettlementPeriod("p1"))).result == approved
    found, _ = period_statements(settlement_runner(ledger.store), 1)
    p1 = found.statement(USD, "P1")
    assert p1 is not None
    assert {(Category(line.category).name, line.receivable_minor, line.payable_minor)
            for line in p1.lines} == {("POINTS_ISSUED_ACROSS", 500 + 300, 0),
                                      ("POINTS_REDEEMED_ACROSS", 0, 300)}
    # (the tea earned 300 points at the lounge too: P2 owes P1 for 800 points' value)
    returned = ok(call(ledger, alliance.t_air, pc.Return(paid.purchase.purchase_id,
                                                         (pc.ReturnLine(0, 1),), "")))
    assert returned.result == approved
    second, _ = period_statements(settlement_runner(ledger.store), 2)
    p1_now = second.statement(USD, "P1")
    assert p1_now is not None and p1_now.multilateral_net_minor == 0  # -300 issued, +300 back
    assert ok(publish(ledger, alliance.admin, cap_of(clock, "P1", 100))).result == approved
    over = ok(call(ledger, alliance.t_air, pc.Purchase(
        number, USD, (Line("tea", "food", 1, 300),), 0, False, 200, "", "r3")))
    assert over.result == Result.DECLINED_NET_DEBIT_CAP
    at_home = ok(call(ledger, alliance.t1, pc.Purchase(
        number, USD, (Line("tea", "food", 1, 300),), 0, False, 200, "", "r4")))
    assert at_home.result == approved


def test_points_legs_keep_a_programs_outstanding_value(ledger, alliance, clock):
    """Earned (+), redeemed (-) and expired (-, to breakage) at the point value: the sum of a
    program's outstanding legs over a card's events is what its points are worth."""
    earning_everywhere(ledger, alliance, point_value_micros=1_500_000, months=1)
    number = card(ledger, alliance, 0)
    assert ok(call(ledger, alliance.t1, pc.Purchase(
        number, USD, (Line("a", "b", 1, 333),), 0, False, 0, "", "r1"))).result == 1
    assert ok(call(ledger, alliance.t1, pc.Purchase(
        number, USD, (Line("a", "b", 1, 200),), 0, False, 100, "", "r2"))).result == 1
    clock.advance(40 * 86_400)
    # Both lots expire (the first, 333 points, spent down to 233 by the redemption; the
    # second, 200), as the expiry job's step records it.
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    ledger.submit(Request("", pc.MaintainCard(number, clock.now_us), done.set_result,
                          system=True))
    assert ok(done.result(30)).result == 1
    totals: dict[str, int] = {}
    for stored in ledger.store.stream(card_stream_id(number)):
        for leg in getattr(decode_event(stored.state), "legs", ()):
            totals[leg.account] = totals.get(leg.account, 0) + leg.amount_minor
    # 333 + 200 points earned (at 1.5 cents: 4.99 + 3.00), 100 redeemed (1.50), 233 + 200
    # expired (3.49 + 3.00): nothing left
    assert totals["points:P1:outstanding"] == 499 + 300 - 150 - 349 - 300 == 0
    assert totals["points_breakage:P1"] == 349 + 300
    assert totals["points_redeemed:P1:P1"] == 150  # spent at home: no flow to settle
    assert totals["points_sold:P1:P1"] == -(499 + 300)


def test_agreed_rates_per_point_replace_the_point_value(ledger, alliance, clock):
    """Under P1 and P2's agreement, P2 pays 0.8 cents per P1 point its sales hand out, billed
    at 50 %, and P1 reimburses 1.2 cents per point redeemed at P2 (the point value is 1 cent):
    the statement shows the agreed amounts, rounded once on the period's sums."""
    approved = Result.APPROVED
    earning_everywhere(ledger, alliance)
    assert ok(publish(ledger, alliance.admin, Agreement(
        "p1p2", 1, clock.now_us, "P1", "P2", points_reimbursement_micros=1_200_000,
        points_price_micros=800_000, points_billing_bps=5_000))).result == approved
    number = card(ledger, alliance, 0)
    for receipt, price, points in (("r1", 501, 0), ("r2", 300, 299)):
        bought = ok(call(ledger, alliance.t_air, pc.Purchase(
            number, USD, (Line("x", "y", 1, price),), 0, False, points, "", receipt)))
        assert bought.result == approved, bought
    assert ok(call(ledger, alliance.admin, CloseSettlementPeriod("end"))).result == approved
    found, _ = period_statements(settlement_runner(ledger.store), 1)
    p1 = found.statement(USD, "P1")
    assert p1 is not None
    lines = {Category(line.category).name: (line.receivable_minor, line.payable_minor)
             for line in p1.lines}
    # issued: 501 + 300 points (the second basket, paid in points, earned on its price too)
    # x 0.8 cents x 50 % = 320.4 -> 320; redeemed: 299 x 1.2 cents = 358.8 -> 359 (at the
    # point value they would be 801 x 1 cent = 801 and 299)
    assert lines == {"POINTS_ISSUED_ACROSS": (320, 0), "POINTS_REDEEMED_ACROSS": (0, 359)}
