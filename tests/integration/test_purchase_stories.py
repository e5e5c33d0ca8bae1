"""Stories of the basket flow through the engine, on both stores: a points program and a rule
set published by their managers, purchases that charge stored value and earn points with an
explanation, redemption, pending points that vest, expiry, returns (including after the points
were spent), dry runs, retries, versioned rule sets and every bad input writing nothing."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from domain.cards import commands as cc
from domain.cards import events as ev
from domain.common import InvalidInput, Result
from domain.coupons.model import (
    Campaign,
    CouponKind,
    CouponStatus,
    DefineCouponCampaign,
    IssueCoupon,
    ListCoupons,
)
from domain.points.program import ALLIANCE, Clawback, DefineProgram, TierLevel
from domain.points.purse import ExpiryKind
from domain.purchases.commands import Purchase, Return, ReturnLine, SimulatePurchase
from domain.registry import commands as rc
from domain.rules.commands import GetRuleSet, ListRuleSets, PublishRuleSet
from domain.rules.model import Effect, Line, Rule, RuleSet, Stacking
from ledger.codec import Outcome
from ledger.engine import Failure, Ledger, Refusal
from projections.maintenance import PointsExpiry
from tests.integration.test_engine_stories import (
    approved,
    call,
    card_events,
    new_card,
    result,
    version,
    view,
)
from tests.support.alliance import build_alliance, card_number, ok, rid, started_ledger

# Stories told on SQLite (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

USD = "USD"
DAY_US = 86_400 * 1_000_000
FOREVER_US = 2**62
_seeds = itertools.count(50_000)

EARN_1_PER_USD = Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=100)
VIP_HAPPY_HOUR = Rule(rule_id="vip-happy-hour", effect=Effect.MULTIPLY, multiplier_bp=30_000,
                      card_classes=("VIP",), weekdays=(0, 1, 2, 3, 4), minute_from=17 * 60,
                      minute_to=19 * 60, stacking=Stacking.EXCLUSIVE, priority=10)
NO_TOBACCO = Rule(rule_id="no-tobacco", effect=Effect.EXCLUDE, categories=("tobacco",))
BIG_BASKET = Rule(rule_id="big-basket", effect=Effect.THRESHOLD_BONUS, threshold_minor=100_00,
                  points=50)

MONDAY_6PM = "2026-11-30T18:00:00"  # a Monday
MONDAY_9AM = "2026-11-30T09:00:00"


def program(owner: str = "P1", *, vesting_days: int = 0, kind: ExpiryKind = ExpiryKind.NEVER,
            n: int = 0, value_micros: int = 1_000_000) -> DefineProgram:
    """1 point = 1 cent by default, never expires, spendable at once."""
    return DefineProgram(owner, USD, value_micros, int(kind), n, "Asia/Shanghai", vesting_days)


def rule_set(*rules: Rule, rule_set_id: str = "p1-everyday", version: int = 1,
             scope: str = "partner:P1", valid_from_us: int = 0,
             valid_to_us: int = FOREVER_US) -> RuleSet:
    return RuleSet(rule_set_id=rule_set_id, version=version, scope=scope,
                   valid_from_us=valid_from_us, valid_to_us=valid_to_us, rules=rules)


def setup_program(ledger: Ledger, alliance: Any, *rules: Rule, **program_options: Any) -> None:
    approved(call(ledger, alliance.p1_manager, program(**program_options)))
    approved(call(ledger, alliance.p1_manager,
                  PublishRuleSet(rule_set(*(rules or (EARN_1_PER_USD,))))))


def basket(*lines: tuple[str, str, int, int]) -> tuple[Line, ...]:
    return tuple(Line(*line) for line in lines)


SHIRT_AND_SOCKS = basket(("shirt-1", "apparel", 1, 40_00), ("socks-3", "apparel", 3, 5_00))


def purchase(number: str, lines: tuple[Line, ...] = SHIRT_AND_SOCKS, *, stored_value: int = 0,
             points: int = 0, local_time: str = MONDAY_9AM, partial: bool = False,
             coupons: tuple[str, ...] = ()) -> Purchase:
    return Purchase(number, USD, lines, stored_value, partial, points, local_time, "rcpt-1",
                    coupons)


def buy(ledger: Ledger, alliance: Any, command: Any, request_id: str | None = None) -> Outcome:
    reply = ok(call(ledger, alliance.t1, command, request_id))
    assert reply.purchase is not None
    return reply


def points_of(ledger: Ledger, alliance: Any, number: str) -> int:
    return view(ledger, alliance, number).points


def failure(reply: Any, code: str) -> str:
    assert isinstance(reply, Failure) and reply.code == code, reply
    return reply.message


# ------------------------------------------------------------------------------ purchases


def test_a_purchase_charges_stored_value_and_earns_points_with_an_explanation(ledger, alliance):
    setup_program(ledger, alliance, EARN_1_PER_USD, BIG_BASKET)
    number = new_card(ledger, alliance, load=200_00)
    kernel_calls = ledger.rule_book.kernel_calls
    reply = buy(ledger, alliance, purchase(number, stored_value=55_00))
    assert reply.result == Result.APPROVED
    # evaluated once, with the batch, before deciding: the decision reused that evaluation
    assert ledger.rule_book.kernel_calls == kernel_calls + 1
    p = reply.purchase
    assert (p.total_minor, p.sv_charged_minor, p.other_tender_minor) == (55_00, 55_00, 0)
    assert p.points_earned == 55 and p.points_pending == 0
    assert p.rule_sets == ("p1-everyday@1",)
    assert [(a.rule_id, a.points) for a in p.awards] == [("base", 55)]
    assert reply.card.balance_minor == 145_00 and reply.card.points == 55
    assert p.purchase_id == f"{number}.{reply.card.version}"
    made = card_events(ledger.store, number)[-1]
    assert isinstance(made, ev.PurchaseMade)
    assert made.lot.rule_set == "p1-everyday@1" and made.lot.value_micros_per_point == 1_000_000
    assert sum(leg.amount_minor for leg in made.legs) == 0
    # A big basket crosses the threshold: the bonus is its own line of the explanation.
    big = buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 120_00)),
                                         stored_value=100_00))
    assert big.purchase.other_tender_minor == 20_00
    assert sorted((a.rule_id, a.points) for a in big.purchase.awards) == [
        ("base", 120), ("big-basket", 50)]
    assert points_of(ledger, alliance, number) == 55 + 170


def test_a_vip_happy_hour_basket_earns_triple_outside_the_excluded_category(ledger, alliance):
    setup_program(ledger, alliance, EARN_1_PER_USD, VIP_HAPPY_HOUR, NO_TOBACCO)
    vip = new_card(ledger, alliance, load=500_00, card_class="VIP")
    lines = basket(("wine-1", "drinks", 2, 15_00), ("cig-1", "tobacco", 1, 12_00))
    happy = buy(ledger, alliance, purchase(vip, lines, stored_value=42_00,
                                           local_time=MONDAY_6PM))
    assert happy.purchase.points_earned == 90  # 30.00 eligible x 1 x 3; tobacco earns nothing
    morning = buy(ledger, alliance, purchase(vip, lines, local_time=MONDAY_9AM))
    assert morning.purchase.points_earned == 30
    standard = new_card(ledger, alliance, load=0)
    evening = buy(ledger, alliance, purchase(standard, lines, local_time=MONDAY_6PM))
    assert evening.purchase.points_earned == 30  # the multiplier is for VIP cards only
    assert evening.purchase.other_tender_minor == 42_00


def test_points_pay_first_then_stored_value_and_a_retry_applies_once(ledger, alliance):
    setup_program(ledger, alliance)
    number = new_card(ledger, alliance, load=100_00)
    buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 90_00)),
                                   stored_value=90_00))
    assert points_of(ledger, alliance, number) == 90
    request_id = rid("pay-with-points")
    command = purchase(number, basket(("mug-1", "home", 1, 5_00)), points=90, stored_value=4_10)
    first = buy(ledger, alliance, command, request_id)
    p = first.purchase
    assert (p.points_redeemed, p.points_redeemed_value_minor, p.sv_charged_minor) == (90, 90,
                                                                                      4_10)
    assert first.card.points == 5  # 90 - 90 + 5 earned on the mug
    events_after = version(ledger.store, number)
    again = buy(ledger, alliance, command, request_id)
    assert again.replayed and again.purchase == first.purchase
    assert version(ledger.store, number) == events_after
    assert view(ledger, alliance, number).balance_minor == 100_00 - 90_00 - 4_10
    changed = purchase(number, basket(("mug-1", "home", 2, 5_00)), points=90)
    assert result(call(ledger, alliance.t1, changed, request_id)) == \
        Result.DUPLICATE_REQUEST_MISMATCH


def test_declines_say_why_and_write_nothing(ledger, alliance):
    setup_program(ledger, alliance)
    number = new_card(ledger, alliance, load=10_00)
    before = version(ledger.store, number)
    cases = [
        (purchase(number, stored_value=20_00), Result.DECLINED_INSUFFICIENT_FUNDS),
        (purchase(number, stored_value=60_00), Result.DECLINED_TENDER_EXCEEDS_DUE),
        (purchase(number, points=1), Result.DECLINED_INSUFFICIENT_POINTS),
        (purchase(number, points=10_000), Result.DECLINED_TENDER_EXCEEDS_DUE),
        (Purchase(number, "EUR", SHIRT_AND_SOCKS, 0, False, 0, "", ""),
         Result.DECLINED_CURRENCY_MISMATCH),
    ]
    for command, expected in cases:
        reply = buy(ledger, alliance, command)
        assert reply.result == expected, (command, reply)
        assert reply.purchase.decline_reason
    assert version(ledger.store, number) == before
    blocked = new_card(ledger, alliance, load=10_00)
    approved(call(ledger, alliance.s1_manager, cc.BlockCard(blocked, "lost")))
    assert buy(ledger, alliance, purchase(blocked)).result == Result.DECLINED_CARD_NOT_ACTIVE
    unknown = card_number(next(_seeds))
    assert result(call(ledger, alliance.t1, purchase(unknown))) == Result.DECLINED_CARD_NOT_FOUND


def test_allow_partial_charges_what_the_card_has_and_leaves_the_rest_to_other_tenders(
        ledger, alliance):
    setup_program(ledger, alliance)
    number = new_card(ledger, alliance, load=30_00)
    reply = buy(ledger, alliance, purchase(number, stored_value=55_00, partial=True))
    assert reply.result == Result.PARTIALLY_APPROVED
    assert (reply.purchase.sv_charged_minor, reply.purchase.other_tender_minor) == (30_00, 25_00)
    assert reply.card.available_minor == 0 and reply.purchase.points_earned == 55


def test_without_a_program_nothing_is_earned_and_points_cannot_be_redeemed(ledger, alliance):
    number = new_card(ledger, alliance, load=100_00)
    reply = buy(ledger, alliance, purchase(number, stored_value=10_00))
    assert reply.result == Result.APPROVED and reply.purchase.points_earned == 0
    assert buy(ledger, alliance, purchase(number, points=5)).result == \
        Result.DECLINED_NO_POINTS_PROGRAM
    # An alliance-wide program serves cards whose issuer has none.
    approved(call(ledger, alliance.admin, program(ALLIANCE)))
    approved(call(ledger, alliance.admin, PublishRuleSet(rule_set(
        EARN_1_PER_USD, rule_set_id="alliance-base", scope="alliance"))))
    assert buy(ledger, alliance, purchase(number)).purchase.points_earned == 55


# ------------------------------------------------------------------------------ dry runs


def test_simulate_purchase_evaluates_the_same_and_writes_nothing(ledger, alliance):
    setup_program(ledger, alliance, EARN_1_PER_USD, BIG_BASKET)
    number = new_card(ledger, alliance, load=200_00)
    lines = basket(("tv-1", "electronics", 1, 120_00))
    before = version(ledger.store, number)
    dry = ok(call(ledger, alliance.t1, SimulatePurchase(purchase(number, lines,
                                                                  stored_value=120_00), ""), ""))
    assert version(ledger.store, number) == before
    assert dry.card.balance_minor == 80_00 and dry.card.points == 170  # what it would be
    manager = ok(call(ledger, alliance.s1_manager,
                      SimulatePurchase(purchase(number, lines), "S1"), ""))
    assert manager.purchase.points_earned == 170
    real = buy(ledger, alliance, purchase(number, lines, stored_value=120_00))
    assert (real.purchase.points_earned, real.purchase.awards) == (170, dry.purchase.awards)
    failure(call(ledger, alliance.s1_manager, SimulatePurchase(purchase(number), "A1"), ""),
            Refusal.DENIED)
    failure(call(ledger, alliance.s1_manager, purchase(number)), Refusal.DENIED)


# ------------------------------------------------------------------------------ rule sets


def test_a_new_version_supersedes_the_old_from_its_effective_date(ledger, alliance, clock):
    approved(call(ledger, alliance.p1_manager, program()))
    approved(call(ledger, alliance.p1_manager, PublishRuleSet(rule_set(EARN_1_PER_USD))))
    double = Rule(rule_id="base", effect=Effect.EARN, rate_num=2, rate_den=100)
    start = clock.now_us + 7 * DAY_US
    approved(call(ledger, alliance.p1_manager,
                  PublishRuleSet(rule_set(double, version=2, valid_from_us=start))))
    number = new_card(ledger, alliance, load=0)
    assert buy(ledger, alliance, purchase(number)).purchase.rule_sets == ("p1-everyday@1",)
    clock.advance(8 * 24 * 3600)
    later = buy(ledger, alliance, purchase(number))
    assert later.purchase.rule_sets == ("p1-everyday@2",) and later.purchase.points_earned == 110
    latest = ok(call(ledger, alliance.t1, GetRuleSet("p1-everyday", 0), ""))
    assert latest.rule_sets[0].version == 2
    first = ok(call(ledger, alliance.auditor, GetRuleSet("p1-everyday", 1), ""))
    assert first.rule_sets[0].rules == (EARN_1_PER_USD,)
    listed = ok(call(ledger, alliance.p1_manager, ListRuleSets(""), ""))
    assert [(r.rule_set_id, r.version) for r in listed.rule_sets] == [("p1-everyday", 2)]
    assert ok(call(ledger, alliance.p2_manager, ListRuleSets(""), "")).rule_sets == ()
    failure(call(ledger, alliance.p2_manager, GetRuleSet("p1-everyday", 0), ""),
            Refusal.DENIED)
    failure(call(ledger, alliance.t1, GetRuleSet("nope", 0), ""), Refusal.NOT_FOUND)


def test_who_may_publish_and_what_a_bad_rule_set_is_told(ledger, alliance):
    store_rules = rule_set(EARN_1_PER_USD, rule_set_id="s1-local", scope="store:S1")
    approved(call(ledger, alliance.s1_manager, PublishRuleSet(store_rules)))
    other_store = rule_set(EARN_1_PER_USD, rule_set_id="s2-local", scope="store:S2")
    failure(call(ledger, alliance.s1_manager, PublishRuleSet(other_store)), Refusal.DENIED)
    failure(call(ledger, alliance.s1_manager, PublishRuleSet(rule_set(EARN_1_PER_USD))),
            Refusal.DENIED)
    failure(call(ledger, alliance.p2_manager, PublishRuleSet(rule_set(EARN_1_PER_USD))),
            Refusal.DENIED)
    failure(call(ledger, alliance.t1, PublishRuleSet(store_rules)), Refusal.DENIED)
    approved(call(ledger, alliance.p1_manager, PublishRuleSet(other_store)))
    failure(call(ledger, alliance.p1_manager, program("P2")), Refusal.DENIED)
    registry_version = ledger.registry.version
    impossible = Rule(rule_id="night", effect=Effect.MULTIPLY, multiplier_bp=20_000,
                      minute_from=22 * 60, minute_to=6 * 60)
    cases = [
        (rule_set(EARN_1_PER_USD, impossible, rule_set_id="x"), "rules[1] (night).minute_from"),
        (rule_set(Rule(rule_id="r", effect=Effect.EARN, rate_num=0)), "rules[0] (r).rate_num"),
        (rule_set(EARN_1_PER_USD, rule_set_id="s1-local", version=3, scope="store:S1"),
         "rule_set.version"),
        (rule_set(EARN_1_PER_USD, rule_set_id="s1-local", version=2, scope="store:S2"),
         "rule_set.scope"),
        (rule_set(EARN_1_PER_USD, rule_set_id="y", scope="store:NOPE"), "rule_set.scope"),
        (rule_set(EARN_1_PER_USD, valid_from_us=5, valid_to_us=5), "valid_to"),
    ]
    for bad, field in cases:
        command = PublishRuleSet(bad)
        try:
            command.validate()
        except ValueError as error:
            assert str(error).startswith(field), (field, error)
            continue
        message = failure(call(ledger, alliance.admin, command), Refusal.INVALID_INPUT)
        assert message.startswith(field), (field, message)
    assert ledger.registry.version == registry_version


# ------------------------------------------------------------------------------ lots


def test_pending_points_vest_after_the_return_window(ledger, alliance, clock):
    setup_program(ledger, alliance, vesting_days=14)
    number = new_card(ledger, alliance, load=100_00)
    reply = buy(ledger, alliance, purchase(number, stored_value=55_00))
    assert reply.purchase.points_pending == 55 and reply.card.points == 0
    assert buy(ledger, alliance, purchase(number, points=10)).result == \
        Result.DECLINED_INSUFFICIENT_POINTS
    clock.advance(14 * 24 * 3600)
    assert points_of(ledger, alliance, number) == 55 + 0  # the second purchase was declined


def test_points_expire_once_and_only_their_remainder(ledger, alliance, clock):
    setup_program(ledger, alliance, kind=ExpiryKind.MONTHS_AFTER, n=1)
    number = new_card(ledger, alliance, load=100_00)
    buy(ledger, alliance, purchase(number, stored_value=55_00))
    buy(ledger, alliance, purchase(number, basket(("mug-1", "home", 1, 20_00)), points=20))
    assert points_of(ledger, alliance, number) == 55 - 20 + 20
    clock.advance(40 * 24 * 3600)
    assert points_of(ledger, alliance, number) == 0  # a read counts them expired already
    buy(ledger, alliance, purchase(number, basket(("pen-1", "office", 1, 1_00))))
    buy(ledger, alliance, purchase(number, basket(("pen-1", "office", 1, 1_00))))
    expired = [e for e in card_events(ledger.store, number) if isinstance(e, ev.PointsExpired)]
    assert sorted(e.amount for e in expired) == [20, 35]  # each lot once, its remainder only
    assert points_of(ledger, alliance, number) == 2


# ------------------------------------------------------------------------------ returns


def test_a_partial_return_gives_back_its_share_of_every_tender(ledger, alliance):
    setup_program(ledger, alliance)
    number = new_card(ledger, alliance, load=200_00)
    buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 100_00)),
                                   stored_value=100_00))
    lines = basket(("shirt-1", "apparel", 1, 40_00), ("socks-3", "apparel", 3, 5_00))
    sale = buy(ledger, alliance, purchase(number, lines, points=100, stored_value=54_00))
    assert sale.card.points == 55 and sale.card.balance_minor == 46_00
    sale_id = sale.purchase.purchase_id
    one_sock = ok(call(ledger, alliance.t2, Return(sale_id, (ReturnLine(1, 1),), "too small")))
    r = one_sock.purchase
    # 5.00 of 55.00 returned: 54.00 * 5/55 -> 4.90, 100 points * 5/55 -> 9, 55 earned -> 5
    assert (r.sv_refunded_minor, r.points_restored, r.points_clawed) == (4_90, 9, 5)
    rest = ok(call(ledger, alliance.t2, Return(sale_id, (ReturnLine(0, 1), ReturnLine(1, 2)),
                                               "")))
    r = rest.purchase
    assert (r.sv_refunded_minor, r.points_restored, r.points_clawed) == (49_10, 91, 50)
    card = view(ledger, alliance, number)
    assert card.balance_minor == 100_00 and card.points == 100  # back to before the sale
    too_many = call(ledger, alliance.t2, Return(sale_id, (ReturnLine(1, 1),), ""))
    assert result(too_many) == Result.DECLINED_RETURN_EXCEEDS_PURCHASE
    assert result(call(ledger, alliance.t2, Return(sale_id, (ReturnLine(7, 1),), ""))) == \
        Result.DECLINED_RETURN_EXCEEDS_PURCHASE
    assert result(call(ledger, alliance.t2, Return(f"{number}.1", (ReturnLine(0, 1),), ""))) \
        == Result.DECLINED_PURCHASE_NOT_FOUND
    failure(call(ledger, alliance.t_air, Return(sale_id, (ReturnLine(0, 1),), "")),
            Refusal.DENIED)


def test_a_return_after_the_points_were_spent_writes_off_the_rest_and_never_goes_negative(
        ledger, alliance):
    setup_program(ledger, alliance)
    number = new_card(ledger, alliance, load=300_00)
    sale = buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 100_00)),
                                          stored_value=100_00))
    buy(ledger, alliance, purchase(number, basket(("mug-1", "home", 1, 90_00)), points=80,
                                   stored_value=89_20))
    assert points_of(ledger, alliance, number) == 20 + 90
    back = ok(call(ledger, alliance.t1, Return(sale.purchase.purchase_id, (ReturnLine(0, 1),),
                                               "")))
    r = back.purchase
    # 100 earned: 20 left in the sale's own lot, then 80 from the mug's lot
    assert (r.points_clawed, r.points_written_off, r.sv_refunded_minor) == (100, 0, 100_00)
    assert back.card.points == 10
    # Spend everything, then return the mug: the 80 points that paid for it come back first,
    # and its 90 earned points are clawed from them and the 10 left: nothing is written off.
    mug = [e for e in card_events(ledger.store, number) if isinstance(e, ev.PurchaseMade)][1]
    buy(ledger, alliance, purchase(number, basket(("pen-1", "office", 1, 10_00)), points=10))
    assert points_of(ledger, alliance, number) == 10
    spent = ok(call(ledger, alliance.t1, Return(mug.purchase_id, (ReturnLine(0, 1),), "")))
    p = spent.purchase
    assert (p.points_restored, p.points_clawed, p.points_written_off) == (80, 90, 0)
    assert spent.card.points == 0
    # A purchase whose points all went on something else: what is gone is written off.
    radio = buy(ledger, alliance, purchase(number, basket(("radio", "electronics", 1, 50_00)),
                                           stored_value=50_00))
    buy(ledger, alliance, purchase(number, basket(("cake", "bakery", 1, 60)), points=50))
    gone = ok(call(ledger, alliance.t1, Return(radio.purchase.purchase_id,
                                               (ReturnLine(0, 1),), "")))
    p = gone.purchase
    assert (p.points_clawed, p.points_written_off) == (0, 50)  # the cake earned nothing
    assert gone.card.points == 0  # never below zero under the WRITE_OFF policy
    written_off = sum(e.points_written_off for e in card_events(ledger.store, number)
                      if isinstance(e, ev.PurchaseReturned))
    assert written_off == 50


# ------------------------------------------------------------------------------ tiers


def test_tiers_upgrade_at_once_feed_the_rules_and_are_lowered_by_the_review(
        ledger, alliance, clock):
    tiers = (TierLevel("SILVER", 200_00), TierLevel("GOLD", 500_00))
    approved(call(ledger, alliance.p1_manager, msgspec.structs.replace(program(), tiers=tiers)))
    gold_double = Rule(rule_id="gold-double", effect=Effect.MULTIPLY, tiers=("GOLD",),
                       multiplier_bp=20_000)
    approved(call(ledger, alliance.p1_manager,
                  PublishRuleSet(rule_set(EARN_1_PER_USD, NO_TOBACCO, gold_double))))
    number = new_card(ledger, alliance, load=0)
    first = buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 250_00),
                                                          ("cig-1", "tobacco", 1, 50_00))))
    assert first.purchase.tier == "SILVER" and first.card.tier == "SILVER"  # tobacco: no
    second = buy(ledger, alliance, purchase(number, basket(("sofa", "home", 1, 250_00))))
    assert second.purchase.tier == "GOLD"
    assert second.purchase.points_earned == 250  # evaluated with the tier before the purchase
    third = buy(ledger, alliance, purchase(number, basket(("lamp", "home", 1, 10_00))))
    assert third.purchase.points_earned == 20  # GOLD doubles
    # A return lowers the qualifying spend at once, the tier only at the review.
    ok(call(ledger, alliance.t1, Return(second.purchase.purchase_id, (ReturnLine(0, 1),), "")))
    assert view(ledger, alliance, number).tier == "GOLD"
    job = PointsExpiry(ledger)
    assert job.run(clock.now_us).tiers_lowered == 0  # the window of the last whole month
    clock.advance(40 * 86_400)  # ...now ends after the return: 260.00 qualifies for SILVER
    assert job.run(clock.now_us).tiers_lowered == 1
    assert view(ledger, alliance, number).tier == "SILVER"
    clock.advance(400 * 86_400)  # a year without purchases
    assert job.run(clock.now_us).tiers_lowered == 1
    assert view(ledger, alliance, number).tier == ""
    assert job.run(clock.now_us).tiers_lowered == 0  # lowered once
    changes = [e.tier for e in card_events(ledger.store, number) if isinstance(e, ev.TierChanged)]
    assert changes == ["SILVER", ""]


def test_member_discounts_lower_what_is_due_and_what_earns(ledger, alliance):
    vip_10 = Rule(rule_id="vip-10", effect=Effect.DISCOUNT, card_classes=("VIP",),
                  discount_bp=1_000)
    vip_apparel_25 = Rule(rule_id="vip-apparel-25", effect=Effect.DISCOUNT,
                          card_classes=("VIP",), categories=("apparel",), discount_bp=2_500,
                          priority=5)
    setup_program(ledger, alliance, EARN_1_PER_USD, vip_10, vip_apparel_25)
    vip = new_card(ledger, alliance, load=100_00, card_class="VIP")
    lines = basket(("shirt-1", "apparel", 1, 40_00), ("tea-1", "grocery", 3, 5_00))
    dry = ok(call(ledger, alliance.t1, SimulatePurchase(purchase(vip, lines), ""), ""))
    # shirt: 25 % (the higher priority discount alone) = 10.00; tea: 10 % of 15.00 = 1.50
    assert (dry.purchase.total_minor, dry.purchase.discount_minor) == (55_00, 11_50)
    assert dry.purchase.other_tender_minor == 43_50
    assert dry.purchase.points_earned == 30 + 13  # earned on what is paid
    discounts = {a.rule_id: a.discount_minor for a in dry.purchase.awards if a.discount_minor}
    assert discounts == {"vip-apparel-25": 10_00, "vip-10": 1_50}
    assert buy(ledger, alliance, purchase(vip, lines, stored_value=43_51)).result == \
        Result.DECLINED_TENDER_EXCEEDS_DUE
    paid = buy(ledger, alliance, purchase(vip, lines, stored_value=43_50))
    assert paid.card.balance_minor == 56_50 and paid.purchase.discount_minor == 11_50
    standard = new_card(ledger, alliance, load=0)
    assert buy(ledger, alliance, purchase(standard, lines)).purchase.discount_minor == 0
    # A full return gives back what was paid, not the list price.
    back = ok(call(ledger, alliance.t1, Return(paid.purchase.purchase_id,
                                               (ReturnLine(0, 1), ReturnLine(1, 3)), "")))
    assert back.purchase.sv_refunded_minor == 43_50 and back.card.balance_minor == 100_00


# ------------------------------------------------------------------------------ coupons


def campaign(campaign_id: str, clock: Any, **terms: Any) -> DefineCouponCampaign:
    values: dict[str, Any] = dict(
        campaign_id=campaign_id, owner="P1", currency=USD, kind=CouponKind.VALUE,
        value_minor=20_00, percent_bp=0, min_spend_minor=0, valid_from_us=clock.now_us,
        valid_to_us=clock.now_us + 30 * DAY_US, stores=(), categories=(), partial_use=False,
        restore_on_return=False, funded_by="P1")
    values.update(terms)
    return DefineCouponCampaign(Campaign(**values))


def give_coupon(ledger: Ledger, alliance: Any, number: str, campaign_id: str) -> str:
    reply = approved(call(ledger, alliance.s1_manager, IssueCoupon(number, campaign_id)))
    (coupon,) = reply.coupons
    assert coupon.code.startswith(coupon.coupon_id + "-")
    return coupon.code


def test_a_coupon_partly_used_then_expires(ledger, alliance, clock):
    setup_program(ledger, alliance)
    approved(call(ledger, alliance.p1_manager, campaign("gift-20", clock, partial_use=True)))
    number = new_card(ledger, alliance, load=100_00)
    code = give_coupon(ledger, alliance, number, "gift-20")
    first = buy(ledger, alliance, purchase(number, basket(("mug-1", "home", 1, 12_00)),
                                           coupons=(code,)))
    p = first.purchase
    assert (p.coupon_discount_minor, p.other_tender_minor) == (12_00, 0)
    assert p.coupons_used[0].amount_minor == 12_00 and not p.coupons_used[0].used_up
    assert p.points_earned == 12  # coupons are a tender: the basket still earns
    listed = approved(call(ledger, alliance.t1, ListCoupons(number), ""))
    assert [(c.remaining_minor, c.status, c.code) for c in listed.coupons] == [
        (8_00, CouponStatus.ACTIVE, "")]  # lists never show the code
    second = buy(ledger, alliance, purchase(number, basket(("pen-1", "office", 1, 5_00)),
                                            coupons=(code,), stored_value=0))
    assert second.purchase.coupon_discount_minor == 5_00
    clock.advance(31 * 86_400)
    late = buy(ledger, alliance, purchase(number, basket(("pen-1", "office", 1, 5_00)),
                                          coupons=(code,)))
    assert late.result == Result.DECLINED_COUPON_NOT_USABLE
    assert "expired" in late.purchase.decline_reason
    assert PointsExpiry(ledger).run(clock.now_us).cards_checked == 1
    lapsed = [e for e in card_events(ledger.store, number) if isinstance(e, ev.CouponExpired)]
    assert [(e.remaining_minor) for e in lapsed] == [3_00]  # 20.00 - 12.00 - 5.00, once
    assert PointsExpiry(ledger).run(clock.now_us).failures == 0
    assert len([e for e in card_events(ledger.store, number)
                if isinstance(e, ev.CouponExpired)]) == 1


def test_coupon_codes_cannot_be_forged_moved_or_used_twice(ledger, alliance, clock):
    setup_program(ledger, alliance)
    approved(call(ledger, alliance.p1_manager, campaign("once-5", clock, value_minor=5_00)))
    approved(call(ledger, alliance.p1_manager,
                  campaign("s2-only", clock, stores=("S2",), value_minor=5_00)))
    approved(call(ledger, alliance.p1_manager,
                  campaign("min-50", clock, min_spend_minor=50_00, value_minor=5_00)))
    number, other = new_card(ledger, alliance, load=100_00), new_card(ledger, alliance, load=0)
    code = give_coupon(ledger, alliance, number, "once-5")
    coupon_id, mac = code.split("-")
    forged = f"{coupon_id}-{'A' * len(mac)}"
    before = version(ledger.store, number)
    for bad in (forged, "K99-" + mac, code.lower()):
        reply = call(ledger, alliance.t1, purchase(number, coupons=(bad,)))
        assert isinstance(reply, Failure) and reply.code == Refusal.INVALID_INPUT, bad
        assert reply.message.startswith("coupon_codes[0]")
    elsewhere = call(ledger, alliance.t1, purchase(other, coupons=(code,)))
    assert isinstance(elsewhere, Failure) and "not a coupon code of this card" in \
        elsewhere.message
    assert version(ledger.store, number) == before
    used = buy(ledger, alliance, purchase(number, basket(("pen-1", "office", 1, 2_00)),
                                          coupons=(code,)))
    assert used.purchase.coupons_used[0].used_up  # single use: the 3.00 left is gone
    again = buy(ledger, alliance, purchase(number, coupons=(code,)))
    assert again.result == Result.DECLINED_COUPON_NOT_USABLE
    assert "used already" in again.purchase.decline_reason
    s2 = give_coupon(ledger, alliance, number, "s2-only")
    assert "store S1" in buy(ledger, alliance, purchase(number, coupons=(s2,))
                             ).purchase.decline_reason
    assert ok(call(ledger, alliance.t3, purchase(number, coupons=(s2,)))).result == \
        Result.APPROVED  # T3 is at S2
    minimum = give_coupon(ledger, alliance, number, "min-50")
    assert "at least 5000" in buy(ledger, alliance, purchase(
        number, basket(("pen-1", "office", 1, 2_00)), coupons=(minimum,))).purchase.decline_reason
    failure(call(ledger, alliance.t1, IssueCoupon(number, "once-5")), Refusal.DENIED)
    failure(call(ledger, alliance.p2_manager, IssueCoupon(number, "once-5")), Refusal.DENIED)
    failure(call(ledger, alliance.s1_manager, campaign("x", clock)), Refusal.DENIED)


def test_a_spend_threshold_issues_a_supplier_funded_coupon_given_back_on_a_full_return(
        ledger, alliance, clock):
    approved(call(ledger, alliance.p1_manager, program()))
    approved(call(ledger, alliance.p1_manager, campaign(
        "acme-10pct", clock, kind=CouponKind.PERCENT, value_minor=0, percent_bp=1_000,
        categories=("apparel",), funded_by="SUPPLIER-ACME", restore_on_return=True)))
    next_visit = Rule(rule_id="spend-100-coupon", effect=Effect.THRESHOLD_BONUS,
                      threshold_minor=100_00, points=0, coupon_campaign="acme-10pct")
    approved(call(ledger, alliance.p1_manager,
                  PublishRuleSet(rule_set(EARN_1_PER_USD, next_visit))))
    number = new_card(ledger, alliance, load=300_00)
    big = buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 120_00)),
                                         stored_value=120_00))
    (issued,) = big.purchase.coupons_issued
    assert issued.campaign_id == "acme-10pct" and issued.code
    dry = ok(call(ledger, alliance.t1, SimulatePurchase(purchase(
        number, basket(("tv-1", "electronics", 1, 120_00))), ""), ""))
    assert dry.purchase.coupons_issued[0].code == ""  # a dry run gives nothing to use
    lines = basket(("coat-1", "apparel", 1, 80_00), ("tea-1", "grocery", 1, 20_00))
    sale = buy(ledger, alliance, purchase(number, lines, stored_value=92_00,
                                          coupons=(issued.code,)))
    assert sale.purchase.coupon_discount_minor == 8_00  # 10 % of the apparel only
    made = card_events(ledger.store, number)[-1]
    assert isinstance(made, ev.PurchaseMade)
    assert {leg.account: leg.amount_minor for leg in made.legs
            if leg.account.startswith("coupons:")} == {"coupons:SUPPLIER-ACME:funding": -8_00,
                                                       "coupons:P1:given": 8_00}
    back = ok(call(ledger, alliance.t1, Return(sale.purchase.purchase_id,
                                               (ReturnLine(0, 1), ReturnLine(1, 1)), "")))
    assert [(u.coupon_id, u.amount_minor) for u in back.purchase.coupons_used] == [
        (issued.coupon_id, 8_00)]
    again = buy(ledger, alliance, purchase(number, lines, coupons=(issued.code,)))
    assert again.result == Result.APPROVED and again.purchase.coupon_discount_minor == 8_00


# ------------------------------------------------------------------------------ history rules


def test_buy_ten_coffees_get_one_free_across_visits(ledger, alliance):
    stamps = Rule(rule_id="coffee-card", effect=Effect.STAMP, categories=("coffee",),
                  stamps_needed=10)
    setup_program(ledger, alliance, EARN_1_PER_USD, stamps)
    number = new_card(ledger, alliance, load=100_00)
    coffee = ("latte", "coffee", 1, 4_00)
    for visit in range(3):  # 3 + 3 + 3 coffees: 9 stamps
        reply = buy(ledger, alliance, purchase(number, basket((*coffee[:2], 3, coffee[3]))))
        (progress,) = reply.purchase.stamps
        assert (progress.after, progress.free_units) == (3 * (visit + 1), 0)
    two = buy(ledger, alliance, purchase(number, basket((*coffee[:2], 2, coffee[3]),
                                                         ("cake", "bakery", 1, 3_00))))
    (progress,) = two.purchase.stamps
    # the 10th coffee earns the last stamp, the 11th is free
    assert (progress.before, progress.after, progress.free_units) == (9, 0, 1)
    assert two.purchase.discount_minor == 4_00 and two.purchase.other_tender_minor == 7_00
    assert ("p1-everyday@1", "coffee-card") in {(a.rule_set, a.rule_id)
                                                for a in two.purchase.awards}
    # a return takes back the stamps its coffees earned
    first_id = f"{number}.{view(ledger, alliance, number).version - 3}"
    ok(call(ledger, alliance.t1, Return(first_id, (ReturnLine(0, 3),), "")))
    later = buy(ledger, alliance, purchase(number, basket(coffee)))
    assert later.purchase.stamps[0].before == 0 and later.purchase.stamps[0].after == 1


def test_a_first_purchase_bonus_once_and_a_monthly_cap_per_card(ledger, alliance):
    welcome = Rule(rule_id="welcome", effect=Effect.FIRST_PURCHASE_BONUS, points=100)
    monthly = Rule(rule_id="monthly-cap", effect=Effect.CAP, cap_period="MONTH", points=250)
    setup_program(ledger, alliance, EARN_1_PER_USD, welcome, monthly)
    number = new_card(ledger, alliance, load=0)
    first = buy(ledger, alliance, purchase(number, basket(("tv", "electronics", 1, 60_00)),
                                           local_time="2026-03-02T10:00"))
    assert first.purchase.points_earned == 160
    second = buy(ledger, alliance, purchase(number, basket(("tv", "electronics", 1, 60_00)),
                                            local_time="2026-03-09T10:00"))
    assert second.purchase.points_earned == 60  # no second welcome
    third = buy(ledger, alliance, purchase(number, basket(("sofa", "home", 1, 90_00)),
                                           local_time="2026-03-30T10:00"))
    assert third.purchase.points_earned == 30  # 250 a month: 160 + 60 already
    assert ("p1-everyday@1", "monthly-cap", -60) in {
        (a.rule_set, a.rule_id, a.points) for a in third.purchase.awards}
    april = buy(ledger, alliance, purchase(number, basket(("sofa", "home", 1, 90_00)),
                                           local_time="2026-04-01T10:00"))
    assert april.purchase.points_earned == 90  # a new month


def test_a_manager_override_records_who_approved_it(ledger, alliance):
    setup_program(ledger, alliance)
    number = new_card(ledger, alliance, load=100_00)
    approved_by = alliance.s1_manager

    def with_override(amount: int, approver: str, reason: str = "damaged box") -> Purchase:
        return msgspec.structs.replace(purchase(number, stored_value=45_00),
                                       override_discount_minor=amount,
                                       override_approver=approver, override_reason=reason)

    reply = buy(ledger, alliance, with_override(10_00, approved_by))
    p = reply.purchase
    assert (p.discount_minor, p.override_discount_minor, p.sv_charged_minor) == (10_00, 10_00,
                                                                                   45_00)
    assert p.override_approver == approved_by and p.points_earned == 55
    made = card_events(ledger.store, number)[-1]
    assert isinstance(made, ev.PurchaseMade)
    assert (made.override_approver, made.override_reason) == (approved_by, "damaged box")
    before = version(ledger.store, number)
    failure(call(ledger, alliance.t1, with_override(10_00, alliance.p1_manager)),
            Refusal.DENIED)  # a partner manager is not the store's manager
    failure(call(ledger, alliance.t3, with_override(10_00, approved_by)),
            Refusal.DENIED)  # S1's manager does not approve at S2
    for bad, field in ((with_override(10_00, ""), "override_token"),
                       (with_override(10_00, approved_by, reason=""), "override_reason"),
                       (with_override(0, approved_by), "override_discount_minor")):
        with pytest.raises(InvalidInput, match=f"^{field}"):
            bad.validate()  # what the servicer runs before anything reaches the ledger
    assert buy(ledger, alliance, with_override(90_00, approved_by)).result == \
        Result.DECLINED_TENDER_EXCEEDS_DUE
    approved(call(ledger, alliance.admin, rc.RevokeCredential(approved_by)))
    failure(call(ledger, alliance.t1, with_override(10_00, approved_by)), Refusal.DENIED)
    assert version(ledger.store, number) == before


def test_under_the_debt_policy_spent_points_are_owed_and_new_points_pay_first(ledger, alliance):
    approved(call(ledger, alliance.p1_manager, msgspec.structs.replace(
        program(), clawback=Clawback.POINTS_DEBT)))
    approved(call(ledger, alliance.p1_manager, PublishRuleSet(rule_set(EARN_1_PER_USD))))
    number = new_card(ledger, alliance, load=300_00)
    tv = buy(ledger, alliance, purchase(number, basket(("tv-1", "electronics", 1, 100_00)),
                                        stored_value=100_00))
    buy(ledger, alliance, purchase(number, basket(("mug-1", "home", 1, 1_00)), points=100))
    back = ok(call(ledger, alliance.t1, Return(tv.purchase.purchase_id, (ReturnLine(0, 1),),
                                               "")))
    p = back.purchase
    assert (p.points_clawed, p.points_written_off, p.points_debt_added) == (1, 0, 99)
    assert back.card.points == -99  # owed, by the program's explicit policy
    assert buy(ledger, alliance, purchase(number, points=1)).result == \
        Result.DECLINED_INSUFFICIENT_POINTS
    paying = buy(ledger, alliance, purchase(number, basket(("sofa", "home", 1, 120_00))))
    assert (paying.purchase.points_earned, paying.purchase.debt_settled) == (120, 99)
    assert paying.card.points == 21
    lots = [e.lot.amount for e in card_events(ledger.store, number)
            if isinstance(e, ev.PurchaseMade) and e.lot is not None]
    assert lots == [100, 1, 21]  # the debt was paid from the sofa's points before any lot


def test_a_replacement_card_takes_over_points_coupons_stamps_tier_and_purchases(
        ledger, alliance, clock):
    tiers = (TierLevel("SILVER", 50_00),)
    approved(call(ledger, alliance.p1_manager, msgspec.structs.replace(program(), tiers=tiers)))
    coffee_card = Rule(rule_id="coffee-card", effect=Effect.STAMP, categories=("coffee",),
                       stamps_needed=5)
    approved(call(ledger, alliance.p1_manager,
                  PublishRuleSet(rule_set(EARN_1_PER_USD, coffee_card))))
    approved(call(ledger, alliance.p1_manager, campaign("gift-5", clock, value_minor=5_00)))
    old = new_card(ledger, alliance, load=100_00)
    code = give_coupon(ledger, alliance, old, "gift-5")
    sale = buy(ledger, alliance, purchase(old, basket(("latte", "coffee", 3, 4_00),
                                                      ("tv", "electronics", 1, 50_00)),
                                          stored_value=62_00))
    assert sale.card.points == 62 and sale.card.tier == "SILVER"
    approved(call(ledger, alliance.s1_manager, cc.BlockCard(old, "lost")))
    new = approved(call(ledger, alliance.s1_manager, cc.ReplaceCard(old, "", "lost"))
                   ).card_number
    moved = view(ledger, alliance, new)
    assert (moved.points, moved.tier, moved.balance_minor) == (62, "SILVER", 38_00)
    assert view(ledger, alliance, old).points == 0
    # the coupon's code was made for the old number: it still works, once, on the new card
    used = buy(ledger, alliance, purchase(new, basket(("latte", "coffee", 2, 4_00)),
                                          coupons=(code,)))
    assert used.purchase.coupon_discount_minor == 5_00
    assert used.purchase.stamps[0].before == 3  # the stamp card goes on
    issued = approved(call(ledger, alliance.s1_manager, IssueCoupon(new, "gift-5"))).coupons[0]
    assert issued.coupon_id not in {c.coupon_id for c in approved(call(
        ledger, alliance.t1, ListCoupons(new), "")).coupons if c.coupon_id != issued.coupon_id}
    # the old purchase is returned through its id; the value and points land on the new card
    back = ok(call(ledger, alliance.t1, Return(sale.purchase.purchase_id, (ReturnLine(1, 1),),
                                               "")))
    assert back.result == Result.APPROVED and back.card.card_number == new
    assert back.purchase.sv_refunded_minor == 50_00


def test_stored_value_can_pay_whatever_is_left(ledger, alliance):
    vip_10 = Rule(rule_id="vip-10", effect=Effect.DISCOUNT, card_classes=("VIP",),
                  discount_bp=1_000)
    setup_program(ledger, alliance, EARN_1_PER_USD, vip_10)
    number = new_card(ledger, alliance, load=100_00, card_class="VIP")
    buy(ledger, alliance, purchase(number, basket(("tv", "electronics", 1, 50_00)),
                                   stored_value=45_00))
    rest = msgspec.structs.replace(purchase(number, points=40), stored_value_pays_rest=True)
    p = buy(ledger, alliance, rest).purchase
    # 55.00 less 10 % = 49.50, less 40 points (0.40): the card pays 49.10
    assert (p.discount_minor, p.points_redeemed_value_minor, p.sv_charged_minor) == (
        5_50, 40, 49_10)
    assert p.other_tender_minor == 0


def test_without_a_coupon_key_coupons_are_refused_and_nothing_else_is(store, clock):
    with started_ledger(store, clock_us=clock, coupon_key=None) as keyless:
        alliance = build_alliance(keyless, keyless.admin_token)  # type: ignore[attr-defined]
        setup_program(keyless, alliance)
        approved(call(keyless, alliance.p1_manager, campaign("gift-5", clock)))
        number = new_card(keyless, alliance, load=100_00)
        failure(call(keyless, alliance.s1_manager, IssueCoupon(number, "gift-5")),
                Refusal.NOT_CONFIGURED)
        failure(call(keyless, alliance.t1, purchase(number, coupons=("K10-" + "A" * 16,))),
                Refusal.NOT_CONFIGURED)
        assert buy(keyless, alliance, purchase(number, stored_value=55_00)).result == \
            Result.APPROVED


def test_campaign_profitability_from_the_log(ledger, alliance, clock, store_url):
    """What a rule set and a coupon campaign gave (points at their value, discounts, coupons,
    who funded them) against the sales and the margin on the lines of the purchases they
    touched; `report campaigns` prints the same."""
    from projections.campaigns import campaigns_from_log
    from tests.support.processes import run

    setup_program(ledger, alliance)
    approved(call(ledger, alliance.p1_manager, campaign("gift-5", clock, value_minor=5_00)))
    number = new_card(ledger, alliance, load=100_00)
    code = give_coupon(ledger, alliance, number, "gift-5")
    buy(ledger, alliance, purchase(number, (Line("mug", "home", 2, 10_00, 4_00),),
                                   coupons=(code,)))
    buy(ledger, alliance, purchase(number, (Line("pen", "office", 1, 3_00, 1_00),)))
    found = {(f.kind, f.name): f.row() for f in campaigns_from_log(
        ledger.store, 0, clock.now_us + 1)}
    rules = found[("rule_set", "p1-everyday@1")]
    assert (rules["purchases"], rules["sales_minor"], rules["margin_minor"]) == (
        2, 20_00 + 3_00, 8_00 + 1_00)
    assert rules["points"] == 20 + 3  # a point a dollar (a coupon is a tender: still earns)
    assert rules["points_value_minor"] == 23  # at a cent a point
    coupons = found[("coupon_campaign", "gift-5")]
    assert (coupons["coupons_issued"], coupons["coupons_used"], coupons["discount_minor"],
            coupons["funded_by"], coupons["margin_minor"]) == (1, 1, 5_00, "P1", 8_00)
    assert coupons["margin_after_minor"] == 8_00 - 5_00
    done = run("report", "campaigns", "--format", "json", "--database", store_url)
    assert done.returncode == 0, done.stderr
    assert "gift-5" in done.stdout
